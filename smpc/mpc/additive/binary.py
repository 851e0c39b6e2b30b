"""Binary (XOR) sharing of 64-bit words for the additive protocol, with dealer AND triples.

x = x_0 ^ x_1 ^ ... ^ x_{N-1}, bit-packed: one uint64 word carries 64 shared bits. XOR,
NOT, shifts and AND with a public mask are local; AND of two shared words is the
boolean Beaver step (open e = x ^ a and f = y ^ b in one round, then
z = c ^ (e & b) ^ (a & f) ^ (e & f), the last term added by party 0), the
GMW/Beaver combination used by e.g. ABY (Demmler et al., NDSS 2015, section III-B).
"""

from __future__ import annotations

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.interfaces import BinaryShared
from smpc.mpc.sharing import open_shares, open_to
from smpc.ring import fused

_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


class BinaryTensor(BinaryShared):
    """This party's XOR share of a tensor of 64-bit words (:class:`~smpc.mpc.interfaces.BinaryShared`)."""

    __array_ufunc__ = None  # `ndarray ^ tensor` defers to our reflected operators

    def __init__(self, party, share: np.ndarray):
        self.party = party
        self.share = share

    @property
    def components(self) -> tuple[np.ndarray]:
        """This party's share as the one component of an N-party XOR sharing."""
        return (self.share,)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.share.shape

    def __bool__(self):
        raise TypeError("a shared value has no truth value; reveal it first")

    def __repr__(self) -> str:
        return f"BinaryTensor(shape={self.shape}, party={self.party.rank})"

    def _other(self, other) -> "BinaryTensor | np.ndarray":
        if isinstance(other, BinaryTensor):
            if other.party is not self.party:
                raise ProtocolError("operands belong to different parties or runs")
            return other
        value = np.asarray(other)
        if value.dtype.kind not in "iub":
            raise TypeError(f"binary operands must be integer words, got {value.dtype}")
        return value.astype(np.int64).view(np.uint64) if value.dtype.kind == "i" else value.astype(np.uint64)

    def __xor__(self, other) -> "BinaryTensor":
        other = self._other(other)
        if isinstance(other, BinaryTensor):
            return BinaryTensor(self.party, self.share ^ other.share)
        if self.party.rank == 0:
            return BinaryTensor(self.party, self.share ^ other)
        shape = np.broadcast_shapes(self.shape, other.shape)
        return BinaryTensor(self.party, np.broadcast_to(self.share, shape).copy())

    __rxor__ = __xor__

    def __invert__(self) -> "BinaryTensor":
        return self ^ _ONES

    def __and__(self, other) -> "BinaryTensor":
        other = self._other(other)
        if isinstance(other, BinaryTensor):
            return and_many(self.party, [(self, other)])[0]
        return BinaryTensor(self.party, self.share & other)

    __rand__ = __and__

    def __lshift__(self, bits: int) -> "BinaryTensor":
        return BinaryTensor(self.party, self.share << np.uint64(bits))

    def __rshift__(self, bits: int) -> "BinaryTensor":
        """Logical right shift of every word."""
        return BinaryTensor(self.party, self.share >> np.uint64(bits))

    def linear(self, fn) -> "BinaryTensor":
        return BinaryTensor(self.party, fn(self.share))

    def bit(self, index: int) -> "BinaryTensor":
        """Bit ``index`` of every word, as words 0 or 1."""
        return BinaryTensor(self.party, (self.share >> np.uint64(index)) & np.uint64(1))

    def reveal(self, to: int | None = None) -> np.ndarray | None:
        """The words (uint64) at every party, or at party ``to`` only (the others get None); one round."""
        if to is None:
            return open_shares(self.party, [self.share], combine=np.bitwise_xor)[0]
        return open_to(self.party, self.share, to, combine=np.bitwise_xor)


def and_many(party, pairs: list[tuple[BinaryTensor, BinaryTensor]]) -> list[BinaryTensor]:
    """Several ANDs of shared words in one round (their openings travel together)."""
    shapes = [np.broadcast_shapes(x.shape, y.shape) for x, y in pairs]
    triples = [party.dealer.binary_triple(shape) for shape in shapes]
    masked = []
    for (x, y), shape, triple in zip(pairs, shapes, triples):
        masked.append(np.broadcast_to(x.share, shape) ^ triple.a)
        masked.append(np.broadcast_to(y.share, shape) ^ triple.b)
    if party.world_size == 2:  # the peer's halves of e and f go straight into the finish (no e, f arrays)
        (peer,) = party.others
        for share in masked:
            party.send(peer, share, owned=True)
        theirs = [party.recv_like(peer, share.shape) for share in masked]
        results = []
        for index, triple in enumerate(triples):
            party.dealer.complete(triple)
            results.append(BinaryTensor(party, fused.and_finish_received(
                masked[2 * index], theirs[2 * index], masked[2 * index + 1], theirs[2 * index + 1], triple.a,
                triple.b, triple.c, party.rank == 0)))
        return results
    opened = open_shares(party, masked, combine=np.bitwise_xor, owned=True)
    results = []
    for index, triple in enumerate(triples):
        party.dealer.complete(triple)  # the last party's c, made by the dealer during the opening
        e, f = opened[2 * index], opened[2 * index + 1]
        results.append(BinaryTensor(party, fused.and_finish(e, f, triple.a, triple.b, triple.c, party.rank == 0)))
    return results
