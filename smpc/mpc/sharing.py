"""Additive secret sharing over Z_2^64: input sharing, opening, pseudo-random zero sharing.

A value x is held as shares x_0..x_{N-1} with x = sum x_i mod 2^64; any N-1 shares are
uniformly random, so they reveal nothing (semi-honest security).
"""

from __future__ import annotations

import numpy as np

from smpc.exceptions import PeerError
from smpc.ring.arith import wrapping

MAX_SHARED_ELEMENTS = 1 << 31


@wrapping
def share_from(party, ring_value: np.ndarray | None, src: int, frac: int | None) -> tuple[np.ndarray, int]:
    """Split ``ring_value`` (scale ``frac``) held by ``src`` into additive shares.

    The source sends each other party only a header (the value's scale and shape); the
    others' shares are the stream of the PRG they share with the source, and the source
    keeps ``x - sum(others)``. Cost: one round, no ring elements on the wire. Every
    party returns its share and the scale.
    """
    if party.rank == src:
        send_share_header(party, party.others, frac, ring_value.shape)
        return _less_streams(party, np.asarray(ring_value, dtype=np.uint64)), frac
    frac, shape = receive_share_header(party, src)
    return party.pair_prg(src).random_ring(shape), frac


#: elements per step of :func:`_less_streams` (its only temporaries are a step's PRG words)
_SHARE_STEP = 1 << 20


def _less_streams(party, value: np.ndarray) -> np.ndarray:
    """value minus the PRG stream of every peer, as a new array, a step at a time: the streams are drawn in steps
    (a stream continues across draws, so each peer's whole draw of the shape gets the same words), and no full-size
    temporary (a copy of the value, a whole stream) is made beside the result (sharing a large model faults in less
    fresh memory)."""
    flat = value.reshape(-1)
    out = np.empty(flat.size, np.uint64)
    prgs = [party.pair_prg(peer) for peer in party.others]
    for start in range(0, flat.size, _SHARE_STEP):
        stop = min(start + _SHARE_STEP, flat.size)
        if not prgs:
            out[start:stop] = flat[start:stop]
            continue
        np.subtract(flat[start:stop], prgs[0].random_ring(stop - start), out=out[start:stop])
        for prg in prgs[1:]:
            out[start:stop] -= prg.random_ring(stop - start)
    return out.reshape(value.shape)


def send_share_header(party, peers, frac: int, shape: tuple[int, ...]) -> None:
    """Tell ``peers`` the scale and shape of a value being shared: ``[frac, ndim, *shape]``."""
    header = np.array([frac, len(shape), *shape], dtype=np.int64)
    for peer in peers:
        party.send_meta(peer, header)


def receive_share_header(party, src: int) -> tuple[int, tuple[int, ...]]:
    """Receive and validate :func:`send_share_header`'s message from ``src``."""
    header = party.recv_meta(src)
    if not 2 <= header.size <= 18:
        raise PeerError(src, f"party {src} sent a malformed share header")
    frac = int(header[0])
    if frac not in (0, party.frac_bits):
        raise PeerError(src, f"party {src} shared a value with frac_bits={frac}, expected 0 or {party.frac_bits}")
    return frac, shape_from_meta([int(v) for v in header[1:]], src, max_share_elements(party))


def shape_from_meta(values: list[int], src: int, max_elements: int = MAX_SHARED_ELEMENTS) -> tuple[int, ...]:
    """Parse ``[ndim, *shape]`` sent by ``src``, refusing absurd shapes before anything is allocated.

    ``max_elements``: the most elements the receiver will expand for it (8 bytes each); callers pass
    the run's message limit, so a few header bytes cannot make a party allocate more than a message could.
    """
    if not values or not 0 <= values[0] <= 16 or len(values) != 1 + values[0]:
        raise PeerError(src, f"party {src} sent a malformed shape")
    shape = tuple(values[1:])
    count = 1
    for dim in shape:
        if dim < 0:
            raise PeerError(src, f"party {src} sent an invalid shape {shape}")
        count *= dim
    if count > max_elements or any(d > max(max_elements, 1) for d in shape):
        raise PeerError(src, f"party {src} sent a shape {shape} of {count} elements, over the limit of "
                             f"{max_elements} (the run's message limit)")
    return shape


def max_share_elements(party) -> int:
    """Elements a share header may announce: as many as one message of the run could carry."""
    return min(MAX_SHARED_ELEMENTS, party.options.max_payload // 8)


@wrapping
def open_shares(party, shares: list[np.ndarray], combine=np.add, owned: bool = False) -> list[np.ndarray]:
    """Reconstruct several shared values at every party in one round.

    Each party sends each of its shares to every other party, then combines what it got
    (``np.add`` for additive sharing, ``np.bitwise_xor`` for XOR sharing) into new arrays.
    Bytes sent per party: (N-1) * sum of sizes * 8. ``owned``: the shares are the caller's
    temporaries (uint64, contiguous, used nowhere else, never changed afterwards), so they are
    sent without a copy (the peers only read them).
    """
    for peer in party.others:
        for share in shares:  # a share that is not owned is copied: the caller may change it afterwards
            party.send(peer, share, owned=owned and _writable_words(share))
    if not party.others:
        return [np.array(share, dtype=np.uint64, copy=True) for share in shares]
    totals = [None] * len(shares)
    for peer in party.others:
        for index, share in enumerate(shares):
            received = party.recv_like(peer, np.shape(share))
            if totals[index] is None:
                totals[index] = combine(share, received, out=np.empty(received.shape, np.uint64))
            else:
                combine(totals[index], received, out=totals[index])
    return totals


def _writable_words(array: np.ndarray) -> bool:
    return array.dtype == np.uint64 and array.flags.c_contiguous and array.flags.writeable and array.base is None


def open_to(party, share: np.ndarray, dst: int, combine=np.add) -> np.ndarray | None:
    """Reconstruct a shared value at party ``dst`` only (one round); others get None. ``combine``: np.add for
    additive shares, np.bitwise_xor for XOR shares."""
    if not 0 <= dst < party.world_size:
        raise ValueError(f"reveal target {dst} is not a party rank (0..{party.world_size - 1})")
    if party.rank != dst:
        party.send(dst, share)
        return None
    total = np.array(share, dtype=np.uint64, copy=True)
    for peer in party.others:
        combine(total, party.recv_like(peer, share.shape), out=total)
    return total


@wrapping
def zero_share(party, shape: tuple[int, ...]) -> np.ndarray:
    """A share of zero from the pairwise PRGs, with no communication.

    Party i adds PRG(i,j) for j > i and subtracts it for j < i; the sum over parties
    cancels. Every party must call it with the same shape at the same point.
    """
    share = np.zeros(shape, np.uint64)
    for peer in party.others:
        stream = party.pair_prg(peer).random_ring(shape)
        if peer > party.rank:
            share += stream
        else:
            share -= stream
    return share
