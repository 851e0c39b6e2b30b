"""The spdz2k dealer's material for the bit domain (SPDZ2k with k = 1), and for crossing between the domains.

Binary values live in their own SPDZ2k instance: a bit x is a share x_i in Z_2^64 of some x~ with x~ = x mod 2, with
MAC shares summing to beta x~ mod 2^64 under a second key beta, uniform in [0, 2^63) (k = 1, s = 63; Cramer et al.,
CRYPTO 2018, with the smallest k). XOR is then addition, so it is local, and AND is a Beaver product mod 2^64.
Crossing between the domains takes bits authenticated in both (daBits, Rotaru and Wood, INDOCRYPT 2019) and a
mask whose bits are authenticated in the bit domain (edaBits, Escudero et al., CRYPTO 2020). Each request follows
:mod:`.requests`: parties 0..N-2 draw all their shares from their PRG in the order ``make_keyed`` does, the last
party draws what defines a uniform value and receives the rest. Bit-domain arrays are uint64 (one word per bit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.correlated.requests import expect_end, parse_shape, set_shape, shape_values
from smpc.mpc.one_hot import MAX_ONE_HOT_BITS
from smpc.mpc.spdz2k import words
from smpc.mpc.spdz2k.requests import REQUEST_TYPES, AuthRequest, draw
from smpc.ring.arith import wrapping

BIT_STATISTICAL_BITS = 63


def _elements(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


@dataclass(frozen=True)
class BitKeyRequest(AuthRequest):
    """The bit domain's key beta, uniform in [0, 2^63): parties 0..N-2 draw their shares (one word), the last
    receives beta minus their sum."""

    code: ClassVar[int] = 106
    sets_key: ClassVar[str | None] = "beta"

    def _values(self) -> list[int]:
        return []

    @classmethod
    def _parse(cls, values: list[int]) -> "BitKeyRequest":
        expect_end(values, "spdz2k bit key")
        return cls()

    def describe(self) -> str:
        return "the spdz2k bit domain's MAC key"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (1,)

    @wrapping
    def make_keyed(self, prgs, own_prg, key):
        key.beta = own_prg.random_ring((1,)) >> np.uint64(64 - BIT_STATISTICAL_BITS)
        others = sum((prg.random_ring((1,)) for prg in prgs[:-1]), np.zeros(1, np.uint64))
        return key.beta - others


@dataclass(frozen=True)
class _ShapeRequest(AuthRequest):
    shape: tuple[int, ...]
    what: ClassVar[str] = ""

    def __post_init__(self):
        set_shape(self, "shape", self.what)

    def _values(self) -> list[int]:
        return shape_values(self.shape)

    @classmethod
    def _parse(cls, values: list[int]):
        shape, rest = parse_shape(values, cls.what)
        expect_end(rest, cls.what)
        return cls(shape)


@dataclass(frozen=True)
class BitTripleRequest(_ShapeRequest):
    """Bit-domain Beaver triples: a, b uniform in Z_2^64, c = a b; every party draws a and b, parties 0..N-2 also
    the MAC shares and c's shares; the last receives its MAC shares of a and b, c and c's MAC (4 rows)."""

    code: ClassVar[int] = 107
    what: ClassVar[str] = "spdz2k bit triple"

    def describe(self) -> str:
        return f"bit-domain triples ({self.shape})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (4, *self.shape)

    @wrapping
    def make_keyed(self, prgs, own_prg, key):
        a = np.zeros(self.shape, np.uint64)
        b = np.zeros(self.shape, np.uint64)
        others = np.zeros(self.reply_shape, np.uint64)
        for index, prg in enumerate(prgs):
            a += prg.random_ring(self.shape)
            b += prg.random_ring(self.shape)
            if index < len(prgs) - 1:
                others += prg.random_ring(self.reply_shape)
        c = a * b
        return np.stack([a * key.beta[0], b * key.beta[0], c, c * key.beta[0]]) - others


@dataclass(frozen=True)
class BitRandomRequest(_ShapeRequest):
    """Bit-domain authenticated uniform words (the masks of the upper 63 bits when a bit is opened): the last party
    receives its value and MAC shares (2 rows)."""

    code: ClassVar[int] = 108
    what: ClassVar[str] = "spdz2k bit random"

    def describe(self) -> str:
        return f"bit-domain random words ({self.shape})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (2, *self.shape)

    @wrapping
    def make_keyed(self, prgs, own_prg, key):
        t = own_prg.random_ring(self.shape)
        others = np.zeros(self.reply_shape, np.uint64)
        for prg in prgs[:-1]:
            others += prg.random_ring(self.reply_shape)
        return np.stack([t, t * key.beta[0]]) - others


@dataclass(frozen=True)
class DaBitsRequest(_ShapeRequest):
    """Random bits authenticated in both domains: parties 0..N-2 draw the arithmetic value and MAC shares (limbs)
    and then the bit-domain value and MAC shares; the last receives all four, flat."""

    code: ClassVar[int] = 109
    what: ClassVar[str] = "spdz2k dabits"

    def describe(self) -> str:
        return f"dabits ({self.shape})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (6 * _elements(self.shape),)

    def make_keyed(self, prgs, own_prg, key):
        shape = self.shape
        bit = own_prg.random_bits(shape)
        arith = words.lift(bit)
        others_arith = np.zeros((2, *shape, 2), np.uint64)
        others_bit = np.zeros((2, *shape), np.uint64)
        for prg in prgs[:-1]:
            others_arith = words.add(others_arith, draw(prg, (2, *shape)))
            with np.errstate(over="ignore"):
                others_bit += prg.random_ring((2, *shape))
        wanted_arith = np.stack([arith, words.mul(arith, key.alpha)])
        with np.errstate(over="ignore"):
            wanted_bit = np.stack([bit, bit * key.beta[0]]) - others_bit
        return np.concatenate([words.sub(wanted_arith, others_arith).reshape(-1), wanted_bit.reshape(-1)])


@dataclass(frozen=True)
class EdaBitsRequest(_ShapeRequest):
    """A mask r uniform in Z_2^128 (authenticated) with the 64 bits of r mod 2^64 authenticated in the bit domain
    (planes (64, *shape)): every party draws its share of r; parties 0..N-2 then r's MAC and the planes' value and
    MAC shares; the last receives those, flat."""

    code: ClassVar[int] = 110
    what: ClassVar[str] = "spdz2k edabits"

    def describe(self) -> str:
        return f"edabits ({self.shape})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (2 * _elements(self.shape) + 128 * _elements(self.shape),)

    def make_keyed(self, prgs, own_prg, key):
        shape = self.shape
        r = np.zeros((*shape, 2), np.uint64)
        others_mac = np.zeros((*shape, 2), np.uint64)
        others_planes = np.zeros((2, 64, *shape), np.uint64)
        for index, prg in enumerate(prgs):
            r = words.add(r, draw(prg, shape))
            if index < len(prgs) - 1:
                others_mac = words.add(others_mac, draw(prg, shape))
                with np.errstate(over="ignore"):
                    others_planes += prg.random_ring((2, 64, *shape))
        low = r[..., 0]
        planes = (low[None] >> np.arange(64, dtype=np.uint64).reshape((64,) + (1,) * len(shape))) & np.uint64(1)
        with np.errstate(over="ignore"):
            wanted_planes = np.stack([planes, planes * key.beta[0]]) - others_planes
        mac = words.sub(words.mul(r, key.alpha), others_mac)
        return np.concatenate([mac.reshape(-1), wanted_planes.reshape(-1)])


@dataclass(frozen=True)
class OneHotRequest(AuthRequest):
    """Random offsets r uniform in Z_2^128 (authenticated) and the one-hot rows (count, 2^bits) of r mod 2^bits,
    authenticated: every party draws its share of r; parties 0..N-2 then r's MAC and the rows' value and MAC shares;
    the last receives those, flat. Opening x - r reveals only (x - r) mod 2^bits: the upper bits of r hide the
    rest."""

    count: int
    bits: int
    code: ClassVar[int] = 111

    def __post_init__(self):
        for name, value, high in (("count", self.count, 1 << 26), ("bits", self.bits, MAX_ONE_HOT_BITS)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= high:
                raise ProtocolError(f"malformed spdz2k one-hot request: {name} {value!r} outside 0..{high}")
            object.__setattr__(self, name, int(value))
        if self.count << self.bits > 1 << 28:
            raise ProtocolError(f"spdz2k one-hot request of {self.count} rows of 2^{self.bits} is over 2^28 entries")

    def _values(self) -> list[int]:
        return [self.count, self.bits]

    @classmethod
    def _parse(cls, values: list[int]) -> "OneHotRequest":
        if len(values) != 2:
            raise ProtocolError("malformed spdz2k one-hot request")
        return cls(values[0], values[1])

    def describe(self) -> str:
        return f"authenticated one-hot rows ({self.count} of 2^{self.bits})"

    @property
    def rows_shape(self) -> tuple[int, int]:
        return (self.count, 1 << self.bits)

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (2 * self.count + 4 * self.count * (1 << self.bits),)

    def make_keyed(self, prgs, own_prg, key):
        shape = (self.count,)
        r = np.zeros((self.count, 2), np.uint64)
        others_mac = np.zeros((self.count, 2), np.uint64)
        others_rows = np.zeros((2, *self.rows_shape, 2), np.uint64)
        for index, prg in enumerate(prgs):
            r = words.add(r, draw(prg, shape))
            if index < len(prgs) - 1:
                others_mac = words.add(others_mac, draw(prg, shape))
                others_rows = words.add(others_rows, draw(prg, (2, *self.rows_shape)))
        rows = np.zeros(self.rows_shape, np.uint64)
        rows[np.arange(self.count), (r[:, 0] & np.uint64((1 << self.bits) - 1)).astype(np.int64)] = 1
        rows = words.lift(rows)
        wanted_rows = words.sub(np.stack([rows, words.mul(rows, key.alpha)]), others_rows)
        mac = words.sub(words.mul(r, key.alpha), others_mac)
        return np.concatenate([mac.reshape(-1), wanted_rows.reshape(-1)])


for _kind in (BitKeyRequest, BitTripleRequest, BitRandomRequest, DaBitsRequest, EdaBitsRequest, OneHotRequest):
    REQUEST_TYPES[_kind.code] = _kind
