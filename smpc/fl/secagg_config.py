"""The public parameters of one secure-aggregation run, checked once before any endpoint starts."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Iterable

from smpc.fl.secagg_graph import graph_degree
from smpc.fl.secagg_identity import SESSION_BYTES, Enrolment, new_session
from smpc.fl.secagg_quantize import DEFAULT_CLIP, check_clip, check_frac_bits, choose_frac_bits


@dataclass(frozen=True)
class SecAggConfig:
    """What every endpoint knows in advance (all of it public).

    ``degree`` is each client's number of neighbours (``n_clients - 1``: complete graph),
    ``threshold`` the Shamir threshold t within each closed neighbourhood (the client
    and its neighbours, ``degree + 1`` clients). ``enrolment`` holds every client's
    verification key and ``session`` the run's 16-byte id, both signed into every statement
    (:mod:`smpc.fl.secagg_identity`). ``drop_before`` / ``drop_after`` only script the
    simulated dropouts; no endpoint but the dropping client reads them.
    """

    n_clients: int
    threshold: int
    degree: int
    neighbours: int | None
    shape: tuple[int, ...]
    clip: float
    frac_bits: int
    ring_bits: int
    drop_before: frozenset[int] = frozenset()
    drop_after: frozenset[int] = frozenset()
    record_view: bool = False
    enrolment: Enrolment | None = None
    session: bytes = b""

    @property
    def size(self) -> int:
        """Elements per update."""
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    def required_enrolment(self) -> Enrolment:
        """The enrolment; a run cannot go without it (``ValueError``)."""
        if self.enrolment is None:
            raise ValueError("secure aggregation needs the clients' enrolment (their verification keys)")
        return self.enrolment

    @property
    def group(self) -> int:
        """Clients in a closed neighbourhood: the holders of one client's shares."""
        return self.degree + 1


def threshold_range(group: int) -> tuple[int, int]:
    """Allowed thresholds ``(low, high)`` for neighbourhoods of ``group`` clients: ``group//2 + 1 .. group``.

    The threshold must exceed half of each neighbourhood (Bonawitz et al., CCS 2017,
    section 4, double masking; Bell et al., CCS 2020): an honest client reveals, for each
    neighbour, a share of either its mask key or its self-mask seed, never both, so a
    server that wrongly calls a client dropped cannot gather t shares of both from at
    most ``group`` honest holders. With c holders colluding with the server (they give
    both), that needs 2t > group + c: choose t above (group + c) / 2 to tolerate c
    colluders (the ConsistencyCheck round then also makes any such lie visible). It also
    keeps any t-1 colluding clients from learning a secret. The default is the lower end,
    tolerating the most dropouts (and no colluder for an odd group, one for an even one).
    """
    return group // 2 + 1, group


def make_config(
    n_clients: int,
    shape: tuple[int, ...],
    threshold: int | None,
    drop_before: Iterable[int],
    drop_after: Iterable[int],
    neighbours: int | None,
    clip: float,
    ring_bits: int,
    frac_bits: int | None,
    record_view: bool = False,
    *,
    enrolment: Enrolment | None = None,
    session: bytes | None = None,
) -> SecAggConfig:
    """Check every argument (``ValueError`` naming the problem) and fix the derived parameters; ``session``
    defaults to a fresh one. A run needs the ``enrolment`` of its ``n_clients`` clients."""
    degree = graph_degree(n_clients, neighbours)
    low, high = threshold_range(degree + 1)
    if threshold is None:
        threshold = low
    if not isinstance(threshold, int) or isinstance(threshold, bool) or not low <= threshold <= high:
        raise ValueError(
            f"threshold must be an integer in {low}..{high} (more than half of each neighbourhood of "
            f"{degree + 1} clients, and at most all of it), got {threshold!r}"
        )
    before = _client_set(drop_before, n_clients, "drop_before")
    after = _client_set(drop_after, n_clients, "drop_after")
    both = before & after
    if both:
        raise ValueError(f"clients {sorted(both)} are in both drop_before and drop_after")
    clip = DEFAULT_CLIP if clip is None else clip
    check_clip(clip)
    if frac_bits is None:
        frac_bits = choose_frac_bits(n_clients, float(clip), ring_bits)
    else:
        check_frac_bits(frac_bits, n_clients, float(clip), ring_bits)
    if enrolment is not None and (not isinstance(enrolment, Enrolment) or len(enrolment) != n_clients):
        raise ValueError(f"the enrolment must be an Enrolment of {n_clients} clients, got {enrolment!r}")
    session = new_session() if session is None else session
    if not isinstance(session, bytes) or len(session) != SESSION_BYTES:
        raise ValueError(f"session must be {SESSION_BYTES} bytes")
    return SecAggConfig(n_clients, threshold, degree, neighbours, tuple(shape), float(clip), frac_bits, ring_bits,
                        before, after, bool(record_view), enrolment, session)


def _client_set(indices: Iterable[int], n_clients: int, what: str) -> frozenset[int]:
    try:
        items = list(indices)
    except TypeError:
        raise ValueError(f"{what} must be a collection of client indices, got {indices!r}") from None
    values = []
    for index in items:
        try:
            value = operator.index(index)
        except TypeError:
            value = None
        if value is None or isinstance(index, bool):
            raise ValueError(f"{what} must hold integer client indices, got {index!r}")
        if not 0 <= value < n_clients:
            raise ValueError(f"{what} names client {value}, but the clients are 0..{n_clients - 1}")
        values.append(value)
    if len(set(values)) != len(values):
        raise ValueError(f"{what} names a client more than once: {sorted(values)}")
    return frozenset(values)
