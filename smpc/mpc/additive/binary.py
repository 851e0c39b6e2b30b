"""Binary (XOR) sharing of 64-bit words for the additive protocol, with dealer AND triples.

x = x_0 ^ x_1 ^ ... ^ x_{N-1}, bit-packed: one uint64 word carries 64 shared bits. XOR,
NOT, shifts and AND with a public mask are local; AND of two shared words is the
boolean Beaver step (open e = x ^ a and f = y ^ b in one round, then
z = c ^ (e & b) ^ (a & f) ^ (e & f), the last term added by party 0), the
GMW/Beaver combination used by e.g. ABY (Demmler et al., NDSS 2015, section III-B).
A round of ANDs masks each word once however many ANDs take it or its shifts, and a party's private word is
masked by that party alone (:mod:`smpc.mpc.circuits.masked_ands`).
"""

from __future__ import annotations

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.interfaces import BinaryShared
from smpc.mpc.circuits import masked_ands
from smpc.mpc.circuits.masked_ands import SHARED, ShiftTracked
from smpc.mpc.sharing import open_shares, open_to
from smpc.ring import fused

_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


class BinaryTensor(BinaryShared, ShiftTracked):
    """This party's XOR share of a tensor of 64-bit words (:class:`~smpc.mpc.interfaces.BinaryShared`).

    ``owner``: the rank of the only party whose share may be nonzero (a private input), or None.
    """

    __array_ufunc__ = None  # `ndarray ^ tensor` defers to our reflected operators

    def __init__(self, party, share: np.ndarray, owner: int | None = None):
        self.party = party
        self.share = share
        self.owner = owner

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
        return self._derive(BinaryTensor(self.party, self.share << np.uint64(bits)), bits)

    def __rshift__(self, bits: int) -> "BinaryTensor":
        """Logical right shift of every word."""
        return self._derive(BinaryTensor(self.party, self.share >> np.uint64(bits)), -bits)

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
    """Several ANDs of shared words in one round (their openings travel together): each word is masked and opened
    once, however many of the ANDs take it or a shift of it (:mod:`smpc.mpc.circuits.masked_ands`)."""
    groups = [(roots, party.dealer.and_triples(layout), layout) for layout, roots in masked_ands.layouts(pairs)]
    opened = _open_masked(party, [(word, mask, owner) for roots, material, layout in groups
                                  for word, mask, (_, owner) in zip(roots, material.masks, layout.masks)])
    results, at = [], 0
    for roots, material, layout in groups:
        party.dealer.complete(material)  # the last party's products, made by the dealer during the opening
        opened_here, at = opened[at : at + len(roots)], at + len(roots)
        for (i, shift_i, j, shift_j), product in zip(layout.products, material.products):
            results.append(BinaryTensor(party, _finish(opened_here[i], shift_i, opened_here[j], shift_j,
                                                       material.masks[i], material.masks[j], product,
                                                       party.rank == 0)))
    return results


def _open_masked(party, entries: list) -> list[np.ndarray]:
    """e = word ^ mask for each (word, this party's mask share or None, owner) in one round: a shared word's masked
    shares go to every peer; a private word is sent masked by its owner alone."""
    masked = [None if mask is None else np.bitwise_xor(word.share, mask, out=np.empty(mask.shape, np.uint64))
              for word, mask, _ in entries]
    for peer in party.others:
        for value, (_, _, owner) in zip(masked, entries):
            if owner in (SHARED, party.rank):
                party.send(peer, value, owned=True)  # fresh arrays, only read from here on
    totals = [value if owner == party.rank else None for value, (_, _, owner) in zip(masked, entries)]
    for peer in party.others:
        for index, (word, _, owner) in enumerate(entries):
            if owner == SHARED:
                received = party.recv_like(peer, word.shape)
                if totals[index] is None:
                    totals[index] = np.bitwise_xor(masked[index], received, out=np.empty(received.shape, np.uint64))
                else:
                    np.bitwise_xor(totals[index], received, out=totals[index])
            elif owner == peer:
                totals[index] = party.recv_like(peer, word.shape)
    return totals


def _finish(e_x: np.ndarray, shift_x: int, e_y: np.ndarray, shift_y: int, a_x: np.ndarray | None,
            a_y: np.ndarray | None, c: np.ndarray, leader: bool) -> np.ndarray:
    """This party's share of S(x) & T(y) from the opened e_x, e_y, its mask shares (None: zero) and product share c."""
    if e_x.shape == e_y.shape == c.shape:
        return fused.shifted_and_finish(e_x, masked_ands.split_shift(shift_x), e_y, masked_ands.split_shift(shift_y),
                                        a_x, a_y, c, leader)
    ex, ey = masked_ands.shift(e_x, shift_x), masked_ands.shift(e_y, shift_y)
    out = c.copy()
    if a_y is not None:
        out ^= ex & masked_ands.shift(a_y, shift_y)
    if a_x is not None:
        out ^= masked_ands.shift(a_x, shift_x) & ey
    if leader:
        out ^= ex & ey
    return out
