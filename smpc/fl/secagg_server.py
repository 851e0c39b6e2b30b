"""The server side of secure aggregation (Bonawitz et al., CCS 2017, figure 4 with its active-adversary
rounds: signed keys and ConsistencyCheck; SecAgg+ graph of Bell et al., CCS 2020).

The server relays messages, sums masked updates as they arrive (it never stores one
client's update, masked or not, unless ``record_view`` asks it to keep its transcript
for a test) and, in the unmasking round, rebuilds the self-mask seeds of the clients
that sent updates and the mask keys of those that dropped before, from t shares each.
A client whose channel finishes (:class:`~smpc.exceptions.PeerFinished`) or stays
silent past the run's timeout is a dropout; any other peer failure ends the run. A client whose key
advertisement or survivor-list signature does not verify under its enrolled key is left out, as a
dropout, and listed in ``refused``. After unmasking, the sum must lie within what the included clients'
clipped updates can reach; a sum outside it (a client masked a value beyond its clip) stops the run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from smpc.exceptions import PeerFinished, PeerTimeoutError
from smpc.fl import shamir
from smpc.fl import secagg_messages as msg
from smpc.fl.secagg_config import SecAggConfig
from smpc.fl.secagg_crypto import (
    KeyAgreementError,
    expand_mask,
    mask_seed,
    private_from_int,
    split_public,
)
from smpc.fl.secagg_errors import SecAggError
from smpc.fl.secagg_graph import is_connected, neighbour_graph
from smpc.fl.secagg_identity import keys_statement, survivors_statement
from smpc.fl.secagg_quantize import dequantize, ring_dtype
from smpc.net.party import Party
from smpc.ring.prg import KEY_BYTES


@dataclass
class ServerOutcome:
    """What the server ends with: the float sum over ``included``, or why it stopped.

    ``advertised`` .. ``answered`` are the clients left after each round (Bonawitz et
    al.'s U1, U2, U3 = ``included``, U4 = ``confirmed``, U5). ``refused``: clients left out
    for a signature that did not verify. ``failure`` is ``None`` on success, else
    ``(kind, message, stage, available, threshold)`` with kind ``"too_few"``,
    ``"disconnected"`` or ``"out_of_range"``. ``view`` is the list of ``(round, client, array)`` received,
    when recorded.
    """

    total: np.ndarray | None = None
    advertised: tuple[int, ...] = ()
    shared: tuple[int, ...] = ()
    included: tuple[int, ...] = ()
    confirmed: tuple[int, ...] = ()
    answered: tuple[int, ...] = ()
    refused: tuple[int, ...] = ()
    failure: tuple | None = None
    seconds: float = 0.0
    view: list | None = None


@dataclass
class _State:
    keys: dict[int, bytes] = field(default_factory=dict)
    key_signatures: dict[int, bytes] = field(default_factory=dict)
    confirmations: dict[int, bytes] = field(default_factory=dict)
    neighbours: dict[int, list[int]] = field(default_factory=dict)
    senders: dict[int, list[int]] = field(default_factory=dict)
    total: np.ndarray | None = None
    shares: dict[int, list[int]] = field(default_factory=dict)


class _Abort(Exception):
    """Internal: the run stops; ``failure`` is the outcome's failure tuple."""

    def __init__(self, failure: tuple):
        super().__init__(failure[1])
        self.failure = failure


class SecAggServer:
    """Runs the server's four rounds on endpoint 0 of a launched run."""

    def __init__(self, config: SecAggConfig, randbytes: Callable[[int], bytes] = os.urandom):
        self.config = config
        self._randbytes = randbytes  # only picks the public graph
        self.outcome = ServerOutcome(view=[] if config.record_view else None)
        self._state = _State()

    def run(self, party: Party) -> ServerOutcome:
        """All rounds; returns the outcome (its ``failure`` set if the run had to stop)."""
        start = time.perf_counter()
        try:
            self._advertise_keys(party)
            self._share_keys(party)
            self._collect_masked(party)
            self._check_consistency(party)
            self._unmask(party)
        except _Abort as stop:
            self.outcome.failure = stop.failure
        self._state = _State()  # keep nothing but the outcome
        self.outcome.seconds = time.perf_counter() - start
        return self.outcome

    # --- rounds ---------------------------------------------------------------------------
    def _advertise_keys(self, party) -> None:
        """Round 0: collect c_PK | s_PK, pick the graph, send each client its neighbours' keys."""
        cfg, st = self.config, self._state
        enrolment = cfg.required_enrolment()
        for c in range(cfg.n_clients):
            advertised = self._receive(party, 0, c, lambda c=c: msg.recv_public_keys(party, c))
            if advertised is None:
                continue
            keys, signature = advertised
            if self._accepts(enrolment, c, signature, keys_statement(cfg.session, c, keys)):
                st.keys[c], st.key_signatures[c] = keys, signature
            else:
                self.outcome.refused += (c,)
        alive = sorted(st.keys)
        self.outcome.advertised = tuple(alive)
        self._require(party, alive, msg.ROUND_SHARE, len(alive), "advertising keys", "clients advertised keys")
        graph = neighbour_graph(cfg.n_clients, cfg.neighbours, self._randbytes)
        st.neighbours = {u: [v for v in graph[u] if v in st.keys] for u in alive}
        for u in alive:
            self._require(party, alive, msg.ROUND_SHARE, len(st.neighbours[u]) + 1, "advertising keys",
                          f"clients advertised keys in client {u}'s neighbourhood")
        for u in alive:
            msg.send_go(party, u, msg.ROUND_SHARE)
            rows = [st.keys[v] + st.key_signatures[v] for v in st.neighbours[u]]
            msg.send_neighbours(party, u, st.neighbours[u], rows)

    def _share_keys(self, party) -> None:
        """Round 1: collect each client's encrypted shares and route them to their holders."""
        st = self._state
        outgoing: dict[int, np.ndarray] = {}
        for u in self.outcome.advertised:
            rows = self._receive(party, 1, u, lambda u=u: msg.recv_encrypted_shares(party, u, len(st.neighbours[u])))
            if rows is not None:
                outgoing[u] = rows
        alive = sorted(outgoing)
        self.outcome.shared = tuple(alive)
        st.senders = {v: [u for u in st.neighbours[v] if u in outgoing] for v in alive}
        self._require(party, alive, msg.ROUND_MASKED, len(alive), "sharing keys", "clients shared their keys")
        for v in alive:
            self._require(party, alive, msg.ROUND_MASKED, len(st.senders[v]) + 1, "sharing keys",
                          f"clients shared keys in client {v}'s neighbourhood")
        for v in alive:
            rows = [outgoing[u][st.neighbours[u].index(v)] for u in st.senders[v]]
            msg.send_go(party, v, msg.ROUND_MASKED)
            msg.send_routed_shares(party, v, st.senders[v], rows)

    def _collect_masked(self, party) -> None:
        """Round 2: sum the masked updates; check enough senders remain around everyone; ask for shares."""
        cfg, st = self.config, self._state
        dtype = ring_dtype(cfg.ring_bits)
        st.total = np.zeros(cfg.size, dtype=dtype)
        included = []
        for u in self.outcome.shared:
            masked = self._receive(party, 2, u, lambda u=u: msg.recv_masked(party, u, cfg.size, dtype))
            if masked is not None:
                np.add(st.total, masked, out=st.total)
                included.append(u)
        self.outcome.included = tuple(included)
        alive = set(included)
        stage = "masked input collection"
        self._require(party, included, msg.ROUND_CHECK, len(included), stage, "clients sent masked updates")
        for v in self.outcome.shared:
            around = sum(u in alive for u in st.senders[v]) + (v in alive)
            if v in alive or around > 0:
                self._require(party, included, msg.ROUND_CHECK, around, stage,
                              f"clients that sent masked updates are in client {v}'s neighbourhood")
        if not is_connected(included, st.senders):
            self._stop(party, included, msg.ROUND_CHECK, (
                "disconnected", "the clients that sent masked updates split into unconnected groups of the "
                "neighbour graph; unmasking would reveal each group's sum, so the run was aborted",
                stage, len(included), cfg.threshold))
        for u in included:
            msg.send_go(party, u, msg.ROUND_CHECK)
            self._announce_survivors(party, u, included)

    def _check_consistency(self, party) -> None:
        """Round 3: collect each survivor's signature of U3; send every client those of its neighbourhood."""
        cfg, st = self.config, self._state
        enrolment = cfg.required_enrolment()
        survivors = list(self.outcome.included)
        for u in self.outcome.included:
            signature = self._receive(party, 3, u, lambda u=u: msg.recv_signature(party, u))
            if signature is None:
                continue
            if self._accepts(enrolment, u, signature, survivors_statement(cfg.session, survivors, st.keys[u])):
                st.confirmations[u] = signature
            else:
                self.outcome.refused += (u,)
        confirmed = sorted(st.confirmations)
        self.outcome.confirmed = tuple(confirmed)
        stage = "consistency check"
        self._require(party, confirmed, msg.ROUND_UNMASK, len(confirmed), stage, "clients confirmed the survivor list")
        groups = {u: sorted({u, *st.neighbours[u]} & set(confirmed)) for u in confirmed}
        for u in confirmed:
            self._require(party, confirmed, msg.ROUND_UNMASK, len(groups[u]), stage,
                          f"clients confirmed the survivor list in client {u}'s neighbourhood")
        for u in confirmed:
            msg.send_go(party, u, msg.ROUND_UNMASK)
            msg.send_confirmations(party, u, groups[u], [st.confirmations[v] for v in groups[u]])

    def _unmask(self, party) -> None:
        """Round 3: gather shares; rebuild b of every sender of an update and s_SK of every dropout; unmask."""
        cfg, st = self.config, self._state
        for u in self.outcome.confirmed:
            rows = self._receive(party, 4, u, lambda u=u: msg.recv_share_rows(party, u, len(st.senders[u]) + 1))
            if rows is not None:
                st.shares[u] = rows
        self.outcome.answered = tuple(sorted(st.shares))
        included = set(self.outcome.included)
        dropped = [v for v in self.outcome.shared if v not in included and any(u in included for u in st.senders[v])]
        seeds = {u: self._reconstruct(u, include_self=True) for u in self.outcome.included}
        mask_keys = {v: self._reconstruct(v, include_self=False) for v in dropped}
        dtype = ring_dtype(cfg.ring_bits)
        for u, seed in seeds.items():
            np.subtract(st.total, expand_mask(_seed_bytes(seed, u), cfg.size, dtype), out=st.total)
        for v, secret in mask_keys.items():
            self._remove_pairwise(v, secret, included)
        self._check_range(len(included))
        self.outcome.total = dequantize(st.total, cfg.frac_bits, cfg.ring_bits).reshape(cfg.shape)

    # --- steps a malicious server would change (the tests' attacks override them) ----------
    def _announce_survivors(self, party, client: int, survivors: list[int]) -> None:
        """Tell ``client`` the survivor list U3 (an honest server tells everyone the same)."""
        msg.send_survivors(party, client, survivors)

    def _accepts(self, enrolment, client: int, signature: bytes, statement: bytes) -> bool:
        """Whether ``client``'s signature of ``statement`` verifies (else the client is left out)."""
        return enrolment.verifies(client, signature, statement)

    # --- helpers --------------------------------------------------------------------------
    def _check_range(self, summed: int) -> None:
        """Stop if an element of the unmasked ring sum leaves +-summed * rint(clip 2^f), all that ``summed``
        clipped updates can reach: some client masked a value beyond its clip (honest ones clip first)."""
        cfg = self.config
        bound = summed * round(cfg.clip * 2.0**cfg.frac_bits)
        signed = self._state.total.view(np.int32 if cfg.ring_bits == 32 else np.int64)
        outside = int(np.count_nonzero((signed > bound) | (signed < -bound)))
        if outside:
            raise _Abort(("out_of_range", f"the unmasked sum leaves the range {summed} clipped updates can reach "
                          f"(|sum| <= {summed} x clip {cfg.clip:g}) at {outside} of {cfg.size} elements: a client "
                          f"sent a value beyond its clipping range", "unmasking", outside, 0))

    def _reconstruct(self, owner: int, include_self: bool) -> int:
        """Owner's b (``include_self``: it sent its update) or s_SK (it dropped) from t answered shares."""
        cfg, st = self.config, self._state
        points = {}
        if include_self and owner in st.shares:
            points[owner + 1] = st.shares[owner][0]
        for h in st.senders[owner]:
            if h in st.shares:
                points[h + 1] = st.shares[h][1 + st.senders[h].index(owner)]
        if len(points) < cfg.threshold:
            what = "self-mask seed" if include_self else "mask key (it dropped before sending its update)"
            raise _Abort((
                "too_few", f"unmasking needs {cfg.threshold} shares of client {owner}'s {what}, but only "
                f"{len(points)} of its neighbourhood answered: {len(self.outcome.answered)} of "
                f"{len(self.outcome.included)} clients that sent updates answered the unmasking round "
                f"({cfg.n_clients} clients, threshold {cfg.threshold}); missing clients: "
                f"{_missing(cfg.n_clients, self.outcome.answered)}",
                "unmasking", len(points), cfg.threshold))
        return shamir.reconstruct(points, cfg.threshold)

    def _remove_pairwise(self, v: int, secret: int, included: set[int]) -> None:
        """Take out the masks the surviving neighbours u of dropout v added (+ if u < v, - if u > v)."""
        cfg, st = self.config, self._state
        try:
            private = private_from_int(secret)
        except ValueError:
            raise SecAggError(f"the shares of client {v}'s mask key are inconsistent") from None
        dtype = ring_dtype(cfg.ring_bits)
        for u in st.senders[v]:
            if u not in included:
                continue
            try:
                seed = mask_seed(private, split_public(st.keys[u])[1], u, v)
            except KeyAgreementError:
                raise SecAggError(f"client {u}'s masking public key is unusable") from None
            mask = expand_mask(seed, cfg.size, dtype)
            (np.subtract if u < v else np.add)(st.total, mask, out=st.total)

    def _receive(self, party, round_no: int, client: int, read: Callable):
        """A client's message, or None if it dropped out (finished or timed out)."""
        try:
            value = read()
        except (PeerFinished, PeerTimeoutError):
            return None
        if self.outcome.view is not None:
            self.outcome.view.append((round_no, client, value))  # what arrived, as it arrived
        return value

    def _require(self, party, waiting, round_no: int, available: int, stage: str, what: str) -> None:
        """Abort (telling the ``waiting`` clients) unless ``available`` reaches the threshold."""
        t = self.config.threshold
        if available < t:
            message = (f"secure aggregation aborted after {stage}: only {available} {what}, fewer than the "
                       f"threshold {t} ({self.config.n_clients} clients); missing clients: "
                       f"{_missing(self.config.n_clients, waiting)}")
            self._stop(party, waiting, round_no, ("too_few", message, stage, available, t))

    def _stop(self, party, waiting, round_no: int, failure: tuple) -> None:
        for c in waiting:
            msg.send_go(party, c, round_no, proceed=False)
        raise _Abort(failure)



def _seed_bytes(value: int, owner: int) -> bytes:
    if value >= 1 << (8 * KEY_BYTES):
        raise SecAggError(f"the shares of client {owner}'s self-mask seed are inconsistent")
    return value.to_bytes(KEY_BYTES, "big")


def _missing(n_clients: int, present) -> list[int]:
    """The clients (0-based) not in ``present``: who dropped, for error messages."""
    here = set(present)
    return [c for c in range(n_clients) if c not in here]
