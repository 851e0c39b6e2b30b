"""Theoretical rounds and bytes of any program on the shared-tensor interface, without running a protocol.

:class:`CostTensor` implements the interface's protocol steps (products of shared operands,
truncation, sign bits) by adding each step's cost from the protocol's theory to a
:class:`Ledger` and returning zeros. Running e.g. ``functions.exp`` on it composes the
theory of exactly the steps the function takes, for the bench's "theory" column.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.circuits import sign_bit
from smpc.mpc.circuits.adders import add, carry_save, prefix_carries
from smpc.mpc.bilinear import Bilinear
from smpc.mpc.tensor import SharedTensor
from smpc.ring.bitslice import plane_words
from smpc_bench.cases import frame_bytes

def _tree(words: int) -> int:
    """Bytes of the sign-bit tree's openings: eq_hi, lt_lo and eq_lo (not the lowest pair) per level."""
    return sum(frame_bytes((3 * groups - 1, words)) for groups in sign_bit.TREE_GROUPS)


class Ledger:
    """Bytes each party sends and the rounds of the busiest party, summed over steps."""

    def __init__(self, protocol: str, parties: int):
        self.protocol, self.parties = protocol, parties
        self.bytes = [0] * parties
        self.rounds = 0

    def _add(self, rounds: int, per_party: list[int]) -> None:
        self.rounds += rounds
        self.bytes = [total + extra for total, extra in zip(self.bytes, per_party)]

    def product(self, shape_x, shape_y, shape_z, truncated: bool) -> None:
        """A product of two shared operands (Beaver or replicated), then its truncation if fixed point."""
        if self.protocol == "additive":
            self._add(1, [(self.parties - 1) * (frame_bytes(shape_x) + frame_bytes(shape_y))] * self.parties)
        elif not truncated:
            self._add(1, [frame_bytes(shape_z)] * 3)  # re-share z_i to the predecessor
        if truncated:
            self.truncation(shape_z)

    def truncation(self, shape) -> None:
        if self.protocol == "additive":
            self._add(1, [(self.parties - 1) * frame_bytes(shape)] * self.parties)
        else:  # party 0: c' twice and the corrections; parties 1, 2: swap, then re-share
            self._add(2, [2 * frame_bytes(shape) + frame_bytes((2, *shape))] + [2 * frame_bytes(shape)] * 2)

    def sign(self, count: int, with_product: bool) -> None:
        """The sign bit (or x times it) of ``count`` elements."""
        if count == 0:
            return
        words = plane_words(count)
        if self.protocol == "additive":
            per_peer = frame_bytes((count,)) + _tree(words) + frame_bytes((words,))
            self._add(7, [(self.parties - 1) * per_peer] * self.parties)
            return
        fields = sign_bit.layout(count, with_mask=False, with_arith_bit=True, with_product=with_product)
        helper = 2 * frame_bytes((count,)) + frame_bytes((sign_bit.correction_size(fields),))
        computing = _tree(words) + frame_bytes((words,)) + frame_bytes((count,))
        self._add(8, [helper, computing, computing])

    def opening(self, shape) -> None:
        """Opening a shared value to every party (one round)."""
        if self.protocol == "additive":
            self._add(1, [(self.parties - 1) * frame_bytes(shape)] * self.parties)
        else:  # each party sends one component to its predecessor
            self._add(1, [frame_bytes(shape)] * 3)

    def binary_and(self, pairs: list) -> list:
        """One round of ANDs of pairs of XOR-shared words (additive: Beaver-style openings of both operands to
        every peer; aby3: one message of the flattened results to the predecessor)."""
        shapes = [np.broadcast_shapes(x.shape, y.shape) for x, y in pairs]
        if self.protocol == "additive":
            self._add(1, [(self.parties - 1) * sum(2 * frame_bytes(shape) for shape in shapes)] * self.parties)
        else:
            total = sum(int(np.prod(shape, dtype=np.int64)) for shape in shapes)
            self._add(1, [frame_bytes((total,))] * 3)
        return [CostBinary(self, shape) for shape in shapes]

    def a2b(self, shape) -> "CostBinary":
        """Arithmetic to binary sharing: the adders of :mod:`smpc.mpc.additive.conversions` (additive) or ABY3's first
        level by party 0 and the pair, then the Kogge-Stone levels (:mod:`smpc.mpc.aby3.conversions`)."""
        if self.protocol == "additive":
            words = carry_save(self.binary_and, [CostBinary(self, shape) for _ in range(self.parties)])
            return words[0] if len(words) == 1 else add(self.binary_and, words[0], words[1])
        count = int(np.prod(shape, dtype=np.int64))
        self._add(1, [2 * frame_bytes((2, count))] + [frame_bytes((2, count))] * 2)
        prefix_carries(self.binary_and, CostBinary(self, (count,)), CostBinary(self, (count,)), shift=2)
        return CostBinary(self, shape)

    def b2a(self, shape) -> None:
        """Binary bits (``shape``: bits first) to arithmetic sharing, one round: additive opens the bits masked by
        dabits, packed into one word per element; aby3's party 0 sends each other party one word per bit, and
        parties 1 and 2 one word to each other."""
        count = int(np.prod(shape, dtype=np.int64))
        if self.protocol == "additive":
            self._add(1, [(self.parties - 1) * frame_bytes(shape[1:])] * self.parties)
        else:
            self._add(1, [2 * frame_bytes((count,))] + [frame_bytes((count,))] * 2)

    def busiest(self) -> int:
        return max(self.bytes)


class CostBinary:
    """XOR-shared words of a shape: local operations are free, ANDs of two shared words cost a round."""

    def __init__(self, ledger: Ledger, shape):
        self.ledger, self.shape = ledger, tuple(shape)

    def _like(self, other) -> "CostBinary":
        other_shape = other.shape if isinstance(other, CostBinary) else np.shape(other)
        return CostBinary(self.ledger, np.broadcast_shapes(self.shape, other_shape))

    def __xor__(self, other):
        return self._like(other)

    __rxor__ = __xor__

    def __and__(self, other):
        if isinstance(other, CostBinary):
            return self.ledger.binary_and([(self, other)])[0]
        return self._like(other)

    __rand__ = __and__

    def __invert__(self):
        return self

    def __lshift__(self, bits: int):
        return self

    def __rshift__(self, bits: int):
        return self

    def bit(self, index: int):
        return self


class _CostParty:
    def __init__(self, ledger: Ledger, frac_bits: int):
        self.ledger, self.frac_bits = ledger, frac_bits
        self.rank, self.world_size = 0, ledger.parties


class CostTensor(SharedTensor):
    """A shared tensor of zeros whose protocol steps only add their theoretical cost to the ledger."""

    def _public_components(self, ring):
        return (ring,)

    def _shared_bilinear(self, left, right, op: Bilinear):
        shape = op.output_shape(left.shape, right.shape)
        frac = left.frac_bits + right.frac_bits
        truncated = frac > self.party.frac_bits
        self.party.ledger.product(left.shape, right.shape, shape, truncated)
        return self._new((np.zeros(shape, np.uint64),), self.party.frac_bits if truncated else frac)

    def _truncate_ring(self, bits: int):
        self.party.ledger.truncation(self.shape)
        return (np.zeros(self.shape, np.uint64),)

    def _is_negative(self):
        self.party.ledger.sign(self.size, with_product=False)
        return self._new((np.zeros(self.shape, np.uint64),), 0)

    def _times_negative(self):
        self.party.ledger.sign(self.size, with_product=True)
        return self._new((np.zeros(self.shape, np.uint64),))

    def to_binary(self):
        return self.party.ledger.a2b(self.shape)

    def _bits_to_arithmetic(self, bits: list):
        shape = (len(bits), *self.shape)
        self.party.ledger.b2a(shape)
        return self._new((np.zeros(shape, np.uint64),), 0)

    def _random_one_hot(self, count: int, bits: int):
        """Offline material (no online cost): zeros of the right shapes."""
        rows = self._new((np.zeros((count, 1 << bits), np.uint64),), 0)
        return self._new((np.zeros(count, np.uint64),), 0), lambda: rows

    def reveal_ring(self, to=None):
        """An opening inside a protocol step (a table lookup's masked index): its cost, and zeros."""
        if to is not None:
            raise TypeError("a cost model has no values to reveal")
        self.party.ledger.opening(self.shape)
        return np.zeros(self.shape, np.uint64)


def theory(fn, shapes: list[tuple[int, ...]], protocol: str, parties: int, frac_bits: int = 16) -> dict:
    """Rounds (busiest party) and bytes (busiest party) of ``fn(*tensors)`` on fixed-point inputs of ``shapes``."""
    ledger = Ledger(protocol, parties)
    party = _CostParty(ledger, frac_bits)
    tensors = [CostTensor(party, (np.zeros(shape, np.uint64),), frac_bits) for shape in shapes]
    fn(*tensors)
    return {"rounds": ledger.rounds, "bytes": ledger.busiest()}
