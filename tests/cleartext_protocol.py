"""A one-party "protocol" that computes in the clear, registered from the test suite.

It exists to show that a protocol is one module plus one :func:`smpc.mpc.registry.register` call: the test matrix
(``tests/conftest.py``'s ``setup`` fixture) runs every op suite on it with no edits to the suites. It is also a
reference: the same ring arithmetic as the real protocols (Z_2^64, fixed point, floor truncation), with nothing
shared, so its results differ from numpy only by fixed-point rounding. Never a way to compute on private data.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.bilinear import Bilinear
from smpc.mpc.cost import CostTheory
from smpc.mpc.interfaces import BinaryShared, Protocol
from smpc.mpc.one_hot import one_hot_rows
from smpc.mpc.registry import CorrelatedKind, ProtocolSpec, register
from smpc.mpc.tensor import SharedTensor, public_to_ring, source_value
from smpc.ring.arith import wrapping

NAME = "cleartext"


@wrapping
def _floor_shift(ring: np.ndarray, bits: int) -> np.ndarray:
    """x / 2^bits of signed ring values rounded to the nearest (an arithmetic shift after adding half a unit):
    within half a unit, unbiased like the protocols' stochastic rounding."""
    half = np.uint64(1 << (bits - 1))
    return ((ring + half).view(np.int64) >> np.int64(bits)).view(np.uint64)


class PlainTensor(SharedTensor):
    """The whole value as the one component (the only party holds it)."""

    def _public_components(self, ring):
        return (ring,)

    @wrapping
    def _shared_bilinear(self, left, right, op: Bilinear):
        product = op.apply(left.components[0], right.components[0])
        excess = left.frac_bits + right.frac_bits - self.party.frac_bits
        if excess > 0:
            return self._new((_floor_shift(product, excess),), self.party.frac_bits)
        return self._new((product,), left.frac_bits + right.frac_bits)

    def _truncate_ring(self, bits: int):
        return (_floor_shift(self.components[0], bits),)

    def reveal_ring(self, to: int | None = None):
        if to not in (None, 0):
            raise ValueError(f"reveal target {to} is not a party rank (0..0)")
        return self.components[0].copy()

    def _is_negative(self):
        return self._new((self.components[0] >> np.uint64(63),), 0)

    @wrapping
    def _times_negative(self):
        value = self.components[0]
        return self._new((value * (value >> np.uint64(63)),))

    def to_binary(self) -> "PlainBinary":
        return PlainBinary(self.components[0].copy())

    def _bits_to_arithmetic(self, bits: list):
        return self._new((np.stack([bit.words for bit in bits]),), 0)

    @wrapping
    def _random_one_hot(self, count: int, bits: int):
        offsets = self.party.prg.random_ring((count,))  # uniform in the ring; the rows use its low bits
        rows = one_hot_rows(offsets, bits)
        return self._new((offsets,), 0), lambda: self._new((rows,), 0)


class PlainBinary(BinaryShared):
    """64-bit words in the clear, with the binary-sharing interface."""

    __array_ufunc__ = None

    def __init__(self, words: np.ndarray):
        self.words = np.asarray(words, dtype=np.uint64)

    @property
    def shape(self):
        return self.words.shape

    @staticmethod
    def _words(other):
        if isinstance(other, PlainBinary):
            return other.words
        value = np.asarray(other)
        return value.astype(np.int64).view(np.uint64) if value.dtype.kind == "i" else value.astype(np.uint64)

    def __xor__(self, other):
        return PlainBinary(self.words ^ self._words(other))

    __rxor__ = __xor__

    def __and__(self, other):
        return PlainBinary(self.words & self._words(other))

    __rand__ = __and__

    def __invert__(self):
        return PlainBinary(~self.words)

    def __lshift__(self, bits: int):
        return PlainBinary(self.words << np.uint64(bits))

    def __rshift__(self, bits: int):
        return PlainBinary(self.words >> np.uint64(bits))

    def bit(self, index: int):
        return PlainBinary((self.words >> np.uint64(index)) & np.uint64(1))

    def linear(self, fn):
        return PlainBinary(fn(self.words))

    def reveal(self, to: int | None = None):
        return self.words.copy()


class PlaintextProtocol(Protocol):
    """One party, no communication, no correlated randomness."""

    name = NAME
    has_dealer = False

    def attach(self, party) -> None:
        party.protocol = self
        party.dealer = None

    def share(self, party, x, src: int) -> PlainTensor:
        ring, frac = source_value(party, x, src)
        return PlainTensor(party, (ring.copy(),), frac)

    def client_messages(self, ring, parties, key_source):
        return [[np.array(ring, dtype=np.uint64, copy=True)]]

    def from_components(self, party, components, frac_bits: int) -> PlainTensor:
        return PlainTensor(party, tuple(components), frac_bits)

    def from_public(self, party, value) -> PlainTensor:
        ring, frac = public_to_ring(value, party.frac_bits)
        return PlainTensor(party, (ring.copy(),), frac)


class PlaintextCost(CostTheory):
    """Nothing is sent: every step costs 0 rounds and 0 bytes."""

    def product(self, ledger, shape_x, shape_y, shape_z, truncated):
        return None

    def truncation(self, ledger, shape):
        return None

    def sign(self, ledger, count, with_product):
        return None

    def opening(self, ledger, shape):
        return None

    def binary_and(self, ledger, shapes):
        return None

    def a2b(self, ledger, shape):
        return None

    def b2a(self, ledger, shape):
        return None


def _make(correlated: str, **options) -> PlaintextProtocol:
    if options:
        raise ValueError(f"protocol {NAME!r} takes no options, got {sorted(options)}")
    return PlaintextProtocol()


SPEC = register(ProtocolSpec(
    name=NAME,
    summary="one party computing in the clear (a test reference, not a protocol for private data)",
    security="none: the one party sees everything",
    make=_make,
    cost=PlaintextCost,
    min_parties=1,
    max_parties=1,
    correlated=(CorrelatedKind("none", "nothing to correlate"),),
    test_parties=(1,),
    bench_parties=1,
    label="plaintext reference",
    in_bench=False,
), replace=True)
