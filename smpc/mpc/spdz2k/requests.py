"""The spdz2k dealer's requests: authenticated material in Z_2^128 (k = 64, s <= 64), seed-compressed.

Every value the dealer makes comes with MAC shares under the global key alpha (uniform in [0, 2^s), drawn by the
dealer at the run's first request and known to nobody else): shares x_i and m_i with sum x_i = x and
sum m_i = alpha * x mod 2^128 (Cramer, Damgard, Escudero, Scholl and Xing, "SPDZ2k", CRYPTO 2018, section 3).
Parties ``0..N-2`` expand all their shares from the PRG they share with the dealer; the last party expands what it
can (the value shares that define a uniform value) and receives a correction for the rest (the trusted dealer's
seed trick, :mod:`smpc.mpc.correlated.trusted`). Each request is a frozen dataclass on the wire as an int64
vector, validated whole before anything is allocated, like :mod:`smpc.mpc.correlated.requests`; its
:meth:`AuthRequest.make_keyed` is the dealer's side. Arrays are uint64 limbs (a trailing axis of 2).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.bilinear import Bilinear
from smpc.mpc.correlated.requests import (MAX_REQUEST_VALUES, Request, check_elements, expect_end, parse_shape,
                                          set_shape, shape_values)
from smpc.mpc.spdz2k import words

MIN_STATISTICAL_BITS = 1
MAX_STATISTICAL_BITS = 64
_TOP = np.uint64(63)
_LOW_MASK = np.uint64((1 << 63) - 1)


@dataclass(eq=False)
class Shares:
    """This party's authenticated share of a value: its value share and its MAC share (Z_2^128 limbs, or uint64
    words in the bit domain; None at the last party until its material is completed)."""

    value: np.ndarray | None
    mac: np.ndarray | None


def draw(prg, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform Z_2^128 limbs of ``shape`` from ``prg``."""
    return prg.random_ring((*shape, 2))


class DealerKey:
    """The dealer's secret state for one run: the MAC key alpha (limbs), set by the run's first request."""

    def __init__(self):
        self.alpha: np.ndarray | None = None
        self.beta: np.ndarray | None = None  # the bit domain's key (:mod:`.bit_requests`), one uint64

    def decode(self, message) -> "Bound":
        """A party's request, validated in full, bound to this key (what :func:`smpc.mpc.correlated.trusted.serve`
        calls ``make`` on)."""
        return Bound(decode(message), self)

    def missing(self) -> str | None:
        """The next key to set up: "alpha", then "beta", then None."""
        if self.alpha is None:
            return "alpha"
        return "beta" if self.beta is None else None


@dataclass(frozen=True)
class Bound:
    """A request with the dealer's key, in the shape :func:`smpc.mpc.correlated.trusted.serve` expects."""

    request: "AuthRequest"
    key: DealerKey

    @property
    def reply_to_every_party(self) -> bool:
        return self.request.reply_to_every_party

    def describe(self) -> str:
        return self.request.describe()

    def make(self, prgs: list, own_prg) -> np.ndarray:
        if self.request.sets_key != self.key.missing():
            raise ProtocolError("the spdz2k dealer's first requests must set up the MAC keys, and only those")
        return self.request.make_keyed(prgs, own_prg, self.key)


class AuthRequest(Request):
    """A request for authenticated material; the last party's correction is :attr:`reply_shape` uint64.
    ``sets_key``: the key this request sets up (``"alpha"``, ``"beta"``), which must be the next one missing."""

    sets_key: ClassVar[str | None] = None

    def make(self, prgs: list, own_prg) -> np.ndarray:
        raise ProtocolError("spdz2k material needs the dealer's MAC key (served through DealerKey.decode)")

    @abstractmethod
    def make_keyed(self, prgs: list, own_prg, key: DealerKey) -> np.ndarray:
        """The last party's correction, from the PRGs shared with every party and the dealer's key."""


def _sum_draws(prgs: list, shape: tuple) -> np.ndarray:
    total = np.zeros((*shape, 2), np.uint64)
    for prg in prgs:
        total = words.add(total, draw(prg, shape))
    return total


@dataclass(frozen=True)
class KeyRequest(AuthRequest):
    """The MAC key: alpha uniform in [0, 2^statistical_bits); parties 0..N-2 draw their shares of it, the last
    party receives alpha minus their sum."""

    statistical_bits: int
    code: ClassVar[int] = 101
    sets_key: ClassVar[str | None] = "alpha"

    def __post_init__(self):
        bits = self.statistical_bits
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not (
                MIN_STATISTICAL_BITS <= bits <= MAX_STATISTICAL_BITS):
            raise ProtocolError(f"malformed spdz2k key request: statistical bits {bits!r} outside "
                                f"{MIN_STATISTICAL_BITS}..{MAX_STATISTICAL_BITS}")
        object.__setattr__(self, "statistical_bits", int(bits))

    def _values(self) -> list[int]:
        return [self.statistical_bits]

    @classmethod
    def _parse(cls, values: list[int]) -> "KeyRequest":
        if len(values) != 1:
            raise ProtocolError("malformed spdz2k key request")
        return cls(values[0])

    def describe(self) -> str:
        return f"the spdz2k MAC key ({self.statistical_bits} statistical bits)"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (2,)

    def make_keyed(self, prgs, own_prg, key):
        word = own_prg.random_ring((1,))[0] >> np.uint64(64 - self.statistical_bits)
        key.alpha = np.array([word, 0], dtype=np.uint64)
        return words.sub(key.alpha, _sum_draws(prgs[:-1], ()))


@dataclass(frozen=True)
class RandomRequest(AuthRequest):
    """An authenticated uniform r of ``shape``; with ``owner`` >= 0 that party knows r (it draws r from its PRG
    before its shares), with -1 nobody does. The last party receives its value share and its MAC share."""

    shape: tuple[int, ...]
    owner: int
    code: ClassVar[int] = 102

    def __post_init__(self):
        set_shape(self, "shape", "spdz2k random")
        owner = self.owner
        if isinstance(owner, bool) or not isinstance(owner, (int, np.integer)) or not -1 <= owner < 1 << 16:
            raise ProtocolError(f"malformed spdz2k random request: owner {self.owner!r}")
        object.__setattr__(self, "owner", int(self.owner))

    def _values(self) -> list[int]:
        return [self.owner, *shape_values(self.shape)]

    @classmethod
    def _parse(cls, values: list[int]) -> "RandomRequest":
        if not values:
            raise ProtocolError("malformed spdz2k random request")
        shape, rest = parse_shape(values[1:], "spdz2k random")
        expect_end(rest, "spdz2k random")
        return cls(shape, values[0])

    def describe(self) -> str:
        who = "nobody" if self.owner < 0 else f"party {self.owner}"
        return f"authenticated random values ({self.shape}, known to {who})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (2, *self.shape, 2)

    def make_keyed(self, prgs, own_prg, key):
        if self.owner >= len(prgs):
            raise ProtocolError(f"spdz2k random request for party {self.owner} of a run of {len(prgs)} parties")
        r = draw(prgs[self.owner] if self.owner >= 0 else own_prg, self.shape)
        out = np.empty(self.reply_shape, np.uint64)
        values = np.zeros((*self.shape, 2), np.uint64)
        macs = np.zeros((*self.shape, 2), np.uint64)
        for prg in prgs[:-1]:
            values = words.add(values, draw(prg, self.shape))
            macs = words.add(macs, draw(prg, self.shape))
        out[0] = words.sub(r, values)
        out[1] = words.sub(words.mul(r, key.alpha), macs)
        return out


@dataclass(frozen=True)
class TripleRequest(AuthRequest):
    """An authenticated Beaver triple with c = op(a, b). Every party draws its shares of a and b; parties 0..N-2
    also draw their MAC shares and their shares of c and its MAC; the last party receives its MAC shares of a and
    b, its share of c and its MAC share of c, as one flat vector."""

    op: Bilinear
    shape_x: tuple[int, ...]
    shape_y: tuple[int, ...]
    code: ClassVar[int] = 103

    def __post_init__(self):
        set_shape(self, "shape_x", "spdz2k triple")
        set_shape(self, "shape_y", "spdz2k triple")
        check_elements(self.shape_z, "spdz2k triple")

    @property
    def shape_z(self) -> tuple[int, ...]:
        try:
            return tuple(int(d) for d in self.op.output_shape(self.shape_x, self.shape_y))
        except (ValueError, TypeError) as exc:
            raise ProtocolError(f"malformed spdz2k triple request: {exc}") from None

    def _values(self) -> list[int]:
        return [*self.op.encode(), *shape_values(self.shape_x), *shape_values(self.shape_y)]

    @classmethod
    def _parse(cls, values: list[int]) -> "TripleRequest":
        try:
            op, rest = Bilinear.decode(values)
        except ValueError as exc:
            raise ProtocolError(f"malformed spdz2k triple request: {exc}") from None
        shape_x, rest = parse_shape(rest, "spdz2k triple")
        shape_y, rest = parse_shape(rest, "spdz2k triple")
        expect_end(rest, "spdz2k triple")
        return cls(op, shape_x, shape_y)

    def describe(self) -> str:
        params = f" {list(self.op.params)}" if self.op.params else ""
        return f"authenticated triple({self.op.name}{params}, {self.shape_x}, {self.shape_y})"

    def sizes(self) -> tuple[int, int, int]:
        """Elements of a, b and c."""
        return (int(np.prod(self.shape_x, dtype=np.int64)), int(np.prod(self.shape_y, dtype=np.int64)),
                int(np.prod(self.shape_z, dtype=np.int64)))

    @property
    def reply_shape(self) -> tuple[int, ...]:
        nx, ny, nz = self.sizes()
        return (2 * (nx + ny + 2 * nz),)

    def make_keyed(self, prgs, own_prg, key):
        sx, sy, sz = self.shape_x, self.shape_y, self.shape_z
        a = np.zeros((*sx, 2), np.uint64)
        b = np.zeros((*sy, 2), np.uint64)
        others = {name: np.zeros((*shape, 2), np.uint64)
                  for name, shape in (("ma", sx), ("mb", sy), ("c", sz), ("mc", sz))}
        last = len(prgs) - 1
        for index, prg in enumerate(prgs):
            a = words.add(a, draw(prg, sx))
            b = words.add(b, draw(prg, sy))
            if index < last:
                for name, shape in (("ma", sx), ("mb", sy), ("c", sz), ("mc", sz)):
                    others[name] = words.add(others[name], draw(prg, shape))
        c = words.apply(self.op, a, b)
        parts = (words.sub(words.mul(a, key.alpha), others["ma"]), words.sub(words.mul(b, key.alpha), others["mb"]),
                 words.sub(c, others["c"]), words.sub(words.mul(c, key.alpha), others["mc"]))
        return np.concatenate([part.reshape(-1) for part in parts])


@dataclass(frozen=True)
class TruncRequest(AuthRequest):
    """An authenticated truncation pair for ``bits`` (1..62): r uniform in Z_2^128, and, of r's low 64 bits, the
    top bit and (r mod 2^63) >> bits, each with MACs. Every party draws its share of r; the last party receives the
    other five shares (r's MAC, the bit and its MAC, the shifted low part and its MAC)."""

    shape: tuple[int, ...]
    bits: int
    code: ClassVar[int] = 104

    def __post_init__(self):
        set_shape(self, "shape", "spdz2k truncation")
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)) or not 0 < self.bits < 63:
            raise ProtocolError(f"malformed spdz2k truncation request: bits {self.bits!r} outside 1..62")
        object.__setattr__(self, "bits", int(self.bits))

    def _values(self) -> list[int]:
        return [self.bits, *shape_values(self.shape)]

    @classmethod
    def _parse(cls, values: list[int]) -> "TruncRequest":
        if not values:
            raise ProtocolError("malformed spdz2k truncation request: no bits")
        shape, rest = parse_shape(values[1:], "spdz2k truncation")
        expect_end(rest, "spdz2k truncation")
        return cls(shape, values[0])

    def describe(self) -> str:
        return f"authenticated truncation pair ({self.bits} bits, {self.shape})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (5, *self.shape, 2)

    def make_keyed(self, prgs, own_prg, key):
        shape = self.shape
        r = np.zeros((*shape, 2), np.uint64)
        others = np.zeros(self.reply_shape, np.uint64)
        last = len(prgs) - 1
        for index, prg in enumerate(prgs):
            r = words.add(r, draw(prg, shape))
            if index < last:
                for field in range(5):
                    others[field] = words.add(others[field], draw(prg, shape))
        low = r[..., 0]
        msb = words.lift(low >> _TOP)
        shifted = words.lift((low & _LOW_MASK) >> np.uint64(self.bits))
        out = np.empty(self.reply_shape, np.uint64)
        for field, value in enumerate((words.mul(r, key.alpha), msb, words.mul(msb, key.alpha), shifted,
                                       words.mul(shifted, key.alpha))):
            out[field] = words.sub(value, others[field])
        return out


@dataclass(frozen=True)
class BitsRequest(AuthRequest):
    """An authenticated r uniform in Z_2^128 for each of ``count`` elements and the 64 bits of r mod 2^64, each an
    authenticated 0/1 (the comparisons' mask, :mod:`.compare`). Every party draws its share of r; parties 0..N-2
    then draw r's MAC share and the bits' value and MAC shares; the last party receives those (129 rows)."""

    count: int
    code: ClassVar[int] = 105

    def __post_init__(self):
        count = self.count
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 0 < count <= 1 << 24:
            raise ProtocolError(f"malformed spdz2k bits request: count {count!r} outside 1..2^24")
        object.__setattr__(self, "count", int(count))

    def _values(self) -> list[int]:
        return [self.count]

    @classmethod
    def _parse(cls, values: list[int]) -> "BitsRequest":
        if len(values) != 1:
            raise ProtocolError("malformed spdz2k bits request")
        return cls(values[0])

    def describe(self) -> str:
        return f"authenticated masks with their bits ({self.count} elements)"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (129, self.count, 2)

    def make_keyed(self, prgs, own_prg, key):
        shape = (self.count,)
        r = np.zeros((self.count, 2), np.uint64)
        others = np.zeros(self.reply_shape, np.uint64)
        last = len(prgs) - 1
        for index, prg in enumerate(prgs):
            r = words.add(r, draw(prg, shape))
            if index < last:
                others = words.add(others, draw(prg, self.reply_shape[:-1]))
        bits = words.lift((r[:, 0][None, :] >> np.arange(64, dtype=np.uint64)[:, None]) & np.uint64(1))
        whole = np.concatenate([words.mul(r, key.alpha)[None], bits, words.mul(bits, key.alpha)])
        return words.sub(whole, others)


REQUEST_TYPES: dict[int, type[AuthRequest]] = {
    kind.code: kind for kind in (KeyRequest, RandomRequest, TripleRequest, TruncRequest, BitsRequest)
}


def decode(message) -> AuthRequest:
    """A spdz2k request a party sent, validated in full before anything is allocated (:class:`ProtocolError`)."""
    if not isinstance(message, np.ndarray) or message.dtype != np.int64 or message.ndim != 1:
        raise ProtocolError("malformed spdz2k dealer request: expected an int64 vector")
    if not 1 <= message.size <= MAX_REQUEST_VALUES:
        raise ProtocolError(f"malformed spdz2k dealer request of {message.size} values")
    values = message.tolist()
    kind = REQUEST_TYPES.get(values[0])
    if kind is None:
        raise ProtocolError(f"unknown spdz2k dealer request type {values[0]}")
    return kind._parse(values[1:])
