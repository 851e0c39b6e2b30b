"""ABY3 replicated secret sharing over Z_2^64: three parties, honest majority, no dealer.

Mohassel and Rindal, "ABY3: A Mixed Protocol Framework for Machine Learning", CCS 2018,
https://eprint.iacr.org/2018/403, section 3 (semi-honest). x = x_0 + x_1 + x_2 and party
i holds (x_i, x_{i+1}), indices mod 3, so component j is held by parties j and j-1.

Costs (n output elements, per party): share 1 round (the source sends n elements to
each other party); add/sub and public products 0; integer ``*``/``@``/conv2d 1 round
and n elements (ABY3 section 3.2); fixed-point products and truncation 2 rounds (see
:mod:`smpc.mpc.aby3.truncation`); reveal 1 round and n elements (to one party:
only one party sends).
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.aby3 import conversions as replicated_conversions
from smpc.mpc.bilinear import Bilinear
from smpc.mpc.interfaces import Protocol
from smpc.mpc.aby3.binary import ReplicatedBinaryTensor
from smpc.mpc.aby3.one_hot import random_one_hot
from smpc.mpc.aby3.sign import replicated_msb
from smpc.mpc.aby3.truncation import truncate_3of3
from smpc.mpc.sharing import receive_share_header, send_share_header, zero_share
from smpc.mpc.tensor import SharedTensor
from smpc.mpc.tensor_core import public_to_ring, source_value
from smpc.ring.arith import wrapping
from smpc.ring.prg import PRG

PARTIES = 3


def next_rank(rank: int) -> int:
    return (rank + 1) % PARTIES


def prev_rank(rank: int) -> int:
    return (rank - 1) % PARTIES


class ReplicatedTensor(SharedTensor):
    """This party's two components ``(x_i, x_{i+1})`` of a 2-out-of-3 replicated sharing."""

    def _public_components(self, ring: np.ndarray):
        # a public value sits in component 0: party 0's first and party 2's second
        rank = self.party.rank
        return (ring if rank == 0 else None, ring if rank == 2 else None)

    @wrapping
    def _three_out_of_three(self, left: SharedTensor, right: SharedTensor, op: Bilinear) -> np.ndarray:
        """z_i = op(x_i, y_i + y_{i+1}) + op(x_{i+1}, y_i) + alpha_i, a fresh 3-out-of-3 sharing."""
        (x_i, x_next), (y_i, y_next) = left.components, right.components
        z = op.apply(x_i, y_i + y_next)
        z += op.apply(x_next, y_i)
        z += zero_share(self.party, z.shape)
        return z

    def _shared_bilinear(self, left: SharedTensor, right: SharedTensor, op: Bilinear) -> SharedTensor:
        z = self._three_out_of_three(left, right, op)
        frac = left.frac_bits + right.frac_bits
        excess = frac - self.party.frac_bits
        if excess > 0:
            return self._new(truncate_3of3(self.party, z, excess), self.party.frac_bits)
        return self._new(reshare(self.party, z), frac)

    @wrapping
    def _truncate_ring(self, bits: int) -> tuple[np.ndarray, ...]:
        first = self.components[0] + zero_share(self.party, self.shape)  # re-randomised 3-out-of-3
        return truncate_3of3(self.party, first, bits)

    def _is_negative(self) -> SharedTensor:
        """The sign bit as a shared integer 0/1 (:mod:`smpc.mpc.aby3.sign`; 8 rounds)."""
        if self.size == 0:
            return self._new((np.zeros(self.shape, np.uint64), np.zeros(self.shape, np.uint64)), 0)
        return self._new(replicated_msb(self.party, self.components), 0)

    def _times_negative(self) -> SharedTensor:
        """x * msb(x) in the sign bit's 8 rounds (no separate multiplication)."""
        if self.size == 0:
            return self._new((np.zeros(self.shape, np.uint64), np.zeros(self.shape, np.uint64)))
        return self._new(replicated_msb(self.party, self.components, times_self=True))

    def _random_one_hot(self, count: int, bits: int):
        """Random offsets and their one-hot rows, made by the parties (:mod:`smpc.mpc.aby3.one_hot`)."""
        offsets, rows = random_one_hot(self.party, count, bits)
        rows_tensor = self._new(rows, 0)
        return self._new(offsets, 0), lambda: rows_tensor

    def _bits_to_arithmetic(self, bits: list) -> "ReplicatedTensor":
        """Binary-shared bits (words 0/1, each of this shape) as one stacked integer tensor: one B2A round."""
        stacked = ReplicatedBinaryTensor(self.party, tuple(np.stack([bit.components[i] for bit in bits])
                                                           for i in range(2)))
        return self._new(replicated_conversions.b2a(self.party, stacked), 0)

    def to_binary(self):
        """This value in replicated binary (XOR) sharing (:func:`smpc.mpc.aby3.conversions.a2b`, 6 rounds)."""
        return replicated_conversions.a2b(self.party, self.components)

    @wrapping
    def reveal_ring(self, to: int | None = None) -> np.ndarray | None:
        """The raw ring elements, to all (everyone sends its second component to its
        predecessor) or to party ``to`` (only its successor sends). One round."""
        party = self.party
        first, second = self.components
        if to is None:
            party.send(prev_rank(party.rank), second)
            return first + second + party.recv_like(next_rank(party.rank), self.shape)
        if not 0 <= to < PARTIES:
            raise ValueError(f"reveal target {to} is not a party rank (0..2)")
        if party.rank == next_rank(to):
            party.send(to, second)
        if party.rank != to:
            return None
        return first + second + party.recv_like(next_rank(to), self.shape)


@wrapping
def reshare(party, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From a 3-out-of-3 sharing (z_i at party i) to replicated: send z_i to party i-1."""
    party.send(prev_rank(party.rank), z)
    return z, party.recv_like(next_rank(party.rank), z.shape)


class Aby3Protocol(Protocol):
    """``protocol="aby3"``: exactly three parties, replicated sharing, no dealer."""

    name = "aby3"
    has_dealer = False

    def attach(self, party) -> None:
        party.protocol = self
        party.dealer = None

    @wrapping
    def share(self, party, x, src: int) -> ReplicatedTensor:
        """Secret-share ``x`` held by party ``src`` (the others pass None).

        Component src comes from the PRG src shares with src-1, component src+1 from
        the one it shares with src+1; src sends the third, x minus both, to the others.
        """
        value = source_value(party, x, src)
        after, before = next_rank(src), prev_rank(src)
        if value is not None:
            ring, frac = value
            own = party.pair_prg(before).random_ring(ring.shape)
            following = party.pair_prg(after).random_ring(ring.shape)
            third = ring - own - following
            send_share_header(party, (after, before), frac, ring.shape)
            for peer in (after, before):
                party.send(peer, third)
            return ReplicatedTensor(party, (own, following), frac)
        frac, shape = receive_share_header(party, src)
        third = party.recv_like(src, shape)
        if party.rank == after:
            return ReplicatedTensor(party, (party.pair_prg(src).random_ring(shape), third), frac)
        return ReplicatedTensor(party, (third, party.pair_prg(src).random_ring(shape)), frac)

    @wrapping
    def client_messages(self, ring, parties, key_source):
        """Seed-compressed replicated shares: x = x0 + x1 + x2 with x0 and x1 PRG streams of two fresh keys, x2 the
        rest; party i gets (x_i, x_{i+1}), so a client uploads one ring vector and four keys in all."""
        first, second = key_source(), key_source()
        ring = np.asarray(ring, dtype=np.uint64)
        last = ring - PRG(first).random_ring(ring.shape)  # a new array: the caller's ring stays as it was
        last -= PRG(second).random_ring(ring.shape)
        return [[first, second], [second, last], [last, first]]

    def from_components(self, party, components, frac_bits: int) -> ReplicatedTensor:
        return ReplicatedTensor(party, tuple(components), frac_bits)

    def from_public(self, party, value) -> ReplicatedTensor:
        """A public value as a (trivially) shared tensor."""
        ring, frac = public_to_ring(value, party.frac_bits)
        zero = np.zeros_like(ring)
        first = ring.copy() if party.rank == 0 else zero
        second = ring.copy() if party.rank == 2 else zero.copy()
        return ReplicatedTensor(party, (first, second), frac)
