"""Dropout-robust secure aggregation of float updates (Bonawitz et al., CCS 2017; SecAgg+, Bell et al., CCS 2020).

:func:`secure_aggregate` sums one float array per client so that the server learns the
sum and nothing else. It launches ``n + 1`` endpoints of smpc's runtime (threads with
``transport="local"``, processes over loopback TCP with ``"tcp"``): endpoint 0 is the
server, endpoint ``c + 1`` is client ``c``; clients talk only to the server.

Rounds: AdvertiseKeys, ShareKeys, MaskedInputCollection, ConsistencyCheck and Unmasking
(Bonawitz et al., figure 4, in the version for an active adversary). Every client holds a
long-term Ed25519 key registered at enrolment (:mod:`smpc.fl.secagg_identity`) and signs
its advertised keys and the survivor list it is shown.

Threat model. Against a semi-honest server, even together with fewer than t clients of
any neighbourhood, the server learns only the sum of the updates of the clients that
sent one (Bonawitz et al., section 6; Bell et al., eprint 2020/704, for the sparse
graph); clients learn nothing. Against an actively malicious server: it cannot
substitute a client's keys (every neighbour checks the signature under the enrolled
key), and it cannot call a client dropped to some clients and alive to others without
being caught (a client unmasks only after t clients of its neighbourhood signed the
very survivor list it was shown); with c clients of a neighbourhood colluding with it,
no single update is revealed as long as 2t > group + c (:func:`smpc.fl.secagg_config.threshold_range`).
Not covered: a malicious server can still pick a neighbour graph that isolates a
client (the graph is public but server-chosen) or abort. A malicious client can shift
the sum by up to its clip per element (honest clients clip before masking); a value
beyond that is caught by the server's range check of the unmasked sum, unless other
clients' values bring the sum back into range. Dropouts may happen at any point.

Parameters and their reasons: :mod:`smpc.fl.secagg_quantize` (ring, clip, fraction
bits, error bound), :mod:`smpc.fl.secagg_graph` (neighbour graph),
:mod:`smpc.fl.secagg_crypto` (keys and masks), :mod:`smpc.fl.secagg_messages` (wire).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.fl.secagg_client import run_client
from smpc.fl.secagg_config import SecAggConfig, make_config
from smpc.fl.secagg_errors import SecAggError, TooFewSurvivorsError
from smpc.fl.secagg_identity import Enrolment, check_signing_keys, enrol
from smpc.fl.secagg_quantize import DEFAULT_CLIP, error_bound
from smpc.fl.secagg_server import SecAggServer, ServerOutcome
from smpc.net.launch import TRANSPORTS, launch
from smpc.net.party import Party, PartyOptions
from smpc.net.tcp import TlsConfig

SERVER = 0


@dataclass
class SecAggResult:
    """The sum and what it cost.

    ``total``: float64 sum over ``included`` (the clients whose masked update reached
    the server), within ``error_bound`` per element of the sum of their clipped
    updates. ``dropped_before``: clients that never sent a masked update;
    ``dropped_after``: clients that sent one but did not answer the unmasking round.
    Bytes are counted on the wire (headers included) per client, in client order.
    ``seconds``: wall time of the whole run (endpoint start-up included);
    ``server_seconds``: the server's four rounds. ``server_view``: every message the
    server received as ``(round, client, value)``, when asked for (tests only).
    """

    total: np.ndarray
    included: tuple[int, ...]
    dropped_before: tuple[int, ...]
    dropped_after: tuple[int, ...]
    config: SecAggConfig
    error_bound: float
    clipped_elements: int
    client_bytes_sent: list[int]
    client_bytes_received: list[int]
    server_bytes_sent: int
    server_bytes_received: int
    seconds: float
    server_seconds: float
    server_view: list | None = None

    @property
    def bytes_per_client(self) -> float:
        """Mean bytes a client sent plus received."""
        both = [s + r for s, r in zip(self.client_bytes_sent, self.client_bytes_received)]
        return sum(both) / len(both)


class SecAggProtocol:
    """The protocol object :func:`smpc.net.launch.launch` expects: no dealer, nothing to attach."""

    name = "secagg"
    has_dealer = False

    def attach(self, party: Party) -> None:
        party.protocol = self
        party.dealer = None

    def serve_dealer(self, party) -> None:
        raise ProtocolError("secure aggregation has no dealer")

    def describe(self) -> str:
        """What every endpoint must agree on (compared at connection set-up)."""
        return f"protocol {self.name}"


def secure_aggregate(
    updates: Sequence[np.ndarray],
    threshold: int | None = None,
    drop_before: Iterable[int] = (),
    drop_after: Iterable[int] = (),
    transport: str = "local",
    *,
    neighbours: int | None = None,
    clip: float = DEFAULT_CLIP,
    ring_bits: int = 32,
    frac_bits: int | None = None,
    timeout: float = 60.0,
    tls: TlsConfig | None = None,
    return_stats: bool = False,
    signing_keys: Sequence[bytes] | None = None,
    enrolment: Enrolment | None = None,
) -> np.ndarray | SecAggResult:
    """The float sum of ``updates`` over the clients not in ``drop_before``, by secure aggregation.

    ``updates``: one equal-shaped real array per client (client ``c`` is ``updates[c]``),
    at least 2. ``threshold``: Shamir threshold t within each neighbourhood, in
    ``group//2 + 1 .. group`` for neighbourhoods of ``group = degree + 1`` clients
    (default: the smallest). ``drop_before``: clients that take part in AdvertiseKeys
    and ShareKeys, then leave without sending their masked update. ``drop_after``:
    clients that leave right after sending it (they never answer the unmasking round).
    ``neighbours``: SecAgg+ degree k (default: complete graph). ``clip``, ``ring_bits``,
    ``frac_bits``: quantisation (frac_bits default: the most that cannot overflow). ``tls``: mutual
    TLS between the endpoints (``transport="tcp"`` only), as :func:`smpc.run`.
    ``signing_keys`` (client c's 32-byte Ed25519 private key at index c) and their ``enrolment``:
    given together, or neither (fresh ones for this run, as in a simulation).
    Returns the sum (float64, shape of an update), or a :class:`SecAggResult` with
    ``return_stats=True``. Raises ``ValueError`` for bad arguments and
    :class:`TooFewSurvivorsError` naming the counts when fewer than t clients remain.
    """
    result = run_secure_aggregation(
        updates, threshold, drop_before, drop_after, transport, neighbours=neighbours, clip=clip,
        ring_bits=ring_bits, frac_bits=frac_bits, timeout=timeout, tls=tls, signing_keys=signing_keys,
        enrolment=enrolment,
    )
    return result if return_stats else result.total


def run_secure_aggregation(
    updates: Sequence[np.ndarray],
    threshold: int | None = None,
    drop_before: Iterable[int] = (),
    drop_after: Iterable[int] = (),
    transport: str = "local",
    *,
    neighbours: int | None = None,
    clip: float = DEFAULT_CLIP,
    ring_bits: int = 32,
    frac_bits: int | None = None,
    timeout: float = 60.0,
    tls: TlsConfig | None = None,
    record_view: bool = False,
    signing_keys: Sequence[bytes] | None = None,
    enrolment: Enrolment | None = None,
) -> SecAggResult:
    """Like :func:`secure_aggregate` with ``return_stats=True``; ``record_view`` keeps the server's transcript."""
    start = time.perf_counter()
    arrays = check_updates(updates)
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; choose one of {TRANSPORTS}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    signing_keys, enrolment = _identities(len(arrays), signing_keys, enrolment)
    config = make_config(len(arrays), arrays[0].shape, threshold, drop_before, drop_after, neighbours, clip,
                         ring_bits, frac_bits, record_view, enrolment=enrolment)
    program = functools.partial(_endpoint, config, arrays, signing_keys)
    report = launch(program, config.n_clients + 1, SecAggProtocol(), transport, PartyOptions(timeout=float(timeout)),
                    tls)
    outcome: ServerOutcome = report.results[SERVER]
    _raise_failure(outcome)
    sent = [int(s["bytes_sent"]) for s in report.stats]
    received = [int(s["bytes_received"]) for s in report.stats]
    included = set(outcome.included)
    return SecAggResult(
        total=outcome.total,
        included=outcome.included,
        dropped_before=tuple(c for c in range(config.n_clients) if c not in included),
        dropped_after=tuple(c for c in outcome.included if c not in outcome.answered),
        config=config,
        error_bound=error_bound(len(outcome.included), config.frac_bits),
        clipped_elements=sum(int(np.count_nonzero(np.abs(a) > config.clip)) for a in arrays),
        client_bytes_sent=sent[1:],
        client_bytes_received=received[1:],
        server_bytes_sent=sent[SERVER],
        server_bytes_received=received[SERVER],
        seconds=time.perf_counter() - start,
        server_seconds=outcome.seconds,
        server_view=outcome.view,
    )


def check_updates(updates: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The updates as float64 arrays, after checking count, dtype, shapes and finiteness (``ValueError``)."""
    if isinstance(updates, np.ndarray):
        updates = list(updates) if updates.ndim >= 1 else [updates]
    if not isinstance(updates, (list, tuple)):
        raise ValueError(f"updates must be a list of arrays, one per client, got {type(updates).__name__}")
    if len(updates) < 2:
        raise ValueError(f"secure aggregation needs at least 2 clients, got {len(updates)}")
    arrays = []
    for c, update in enumerate(updates):
        array = np.asarray(update)
        if array.dtype.kind not in "iuf":
            raise ValueError(f"client {c}'s update has dtype {array.dtype}; real numbers are needed")
        array = np.asarray(array, dtype=np.float64)  # no copy when it already is float64
        if array.shape != np.shape(updates[0]):
            raise ValueError(f"client {c}'s update has shape {array.shape}, client 0's has {np.shape(updates[0])}")
        if not np.isfinite(array).all():
            raise ValueError(f"client {c}'s update holds NaN or infinite values")
        arrays.append(array)
    return arrays


def _identities(n_clients: int, signing_keys, enrolment) -> tuple[list[bytes], Enrolment]:
    """The clients' signing keys and enrolment: both given (checked to match), or fresh ones."""
    if signing_keys is None and enrolment is None:
        return enrol(n_clients)
    if signing_keys is None or enrolment is None:
        raise ValueError("give both signing_keys and their enrolment, or neither (fresh keys for this run)")
    if not isinstance(enrolment, Enrolment) or len(enrolment) != n_clients:
        raise ValueError(f"the enrolment must be an Enrolment of {n_clients} clients")
    return check_signing_keys(signing_keys, enrolment), enrolment


def _endpoint(config: SecAggConfig, updates: list[np.ndarray], signing_keys: list[bytes],
              party: Party) -> ServerOutcome | None:
    """One endpoint's program: the server on endpoint 0, client ``rank - 1`` elsewhere (only its own key)."""
    if party.rank == SERVER:
        return SecAggServer(config).run(party)
    client = party.rank - 1
    run_client(party, client, config, updates[client], signing_keys[client])
    return None


def _raise_failure(outcome: ServerOutcome) -> None:
    if outcome.failure is None:
        return
    kind, message, stage, available, threshold = outcome.failure
    if kind == "too_few":
        raise TooFewSurvivorsError(message, stage, available, threshold)
    raise SecAggError(message)
