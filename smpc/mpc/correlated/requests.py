"""The trusted dealer's requests: one frozen dataclass per kind of material, with its wire form and its answer.

A request travels as a short int64 vector ``[type code, fields...]`` (shapes as ``ndim, *dims``), at most
:data:`MAX_REQUEST_VALUES` values. Every request type knows:

* :meth:`Request.encode` and, through :func:`decode`, how to read itself back: a peer's message is checked
  whole (dtype, length, type code, every field, trailing values, sizes against :data:`MAX_ELEMENTS` and
  :data:`MAX_NDIM`) before the dealer allocates anything, and anything else is a :class:`ProtocolError`;
* :meth:`Request.describe`: the request in words, from its public fields only (for error messages);
* :attr:`Request.reply_shape`: the uint64 correction the last party receives (:meth:`Request.reply_shape_for`: a
  party's, for a request that replies to every party);
* :meth:`Request.make`: the dealer's side, that correction from the PRGs it shares with every party.

The parties build the same objects, so their arguments are checked by the same code before anything is sent.
:data:`REQUEST_TYPES` maps type codes to classes; :func:`decode` is the only reader.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.bilinear import MUL, Bilinear
from smpc.mpc.circuits import masked_ands, sign_bit
from smpc.mpc.circuits.masked_ands import SHARED, WORD_BITS, AndLayout, split_shift
from smpc.mpc.fss import compare as fss_compare, wire as fss_wire
from smpc.mpc.one_hot import MAX_ONE_HOT_BITS, one_hot_rows
from smpc.ring import fused
from smpc.ring.arith import wrapping

MAX_ELEMENTS = 1 << 31  # per shape in a request
MAX_NDIM = 16
MAX_REQUEST_VALUES = 64


class Request(ABC):
    """One request to the trusted dealer (subclasses are frozen dataclasses that validate on construction)."""

    code: ClassVar[int]
    #: False: only the last party gets a reply (the others expand theirs from their PRGs); True: every party does
    reply_to_every_party: ClassVar[bool] = False

    def encode(self) -> np.ndarray:
        """The wire form: an int64 vector ``[code, fields...]``."""
        return np.array([self.code, *self._values()], dtype=np.int64)

    @abstractmethod
    def _values(self) -> list[int]:
        """The fields as integers, in wire order."""

    @classmethod
    @abstractmethod
    def _parse(cls, values: list[int]) -> "Request":
        """The request from its fields (everything after the type code); raises :class:`ProtocolError`."""

    @abstractmethod
    def describe(self) -> str:
        """The request in words (public fields only)."""

    @property
    @abstractmethod
    def reply_shape(self) -> tuple[int, ...]:
        """The shape of the uint64 correction the last party receives."""

    def reply_shape_for(self, rank: int) -> tuple[int, ...]:
        """The shape of the reply party ``rank`` receives (with :attr:`reply_to_every_party`; else only the last
        party's, :attr:`reply_shape`)."""
        return self.reply_shape

    @abstractmethod
    def make(self, prgs: list, own_prg) -> np.ndarray:
        """The dealer's side: the last party's correction (``prgs[i]``: the PRG shared with party ``i``;
        ``own_prg``: the dealer's private CSPRNG)."""


def decode(message) -> Request:
    """The request a party sent, validated in full before anything is allocated; :class:`ProtocolError` if malformed."""
    if not isinstance(message, np.ndarray) or message.dtype != np.int64 or message.ndim != 1:
        raise ProtocolError(f"malformed dealer request ({_format(message)}): expected an int64 vector")
    if not 1 <= message.size <= MAX_REQUEST_VALUES:
        raise ProtocolError(f"malformed dealer request of {message.size} values: expected 1 to {MAX_REQUEST_VALUES}")
    values = message.tolist()
    kind = REQUEST_TYPES.get(values[0])
    if kind is None:
        raise ProtocolError(f"unknown dealer request type {values[0]}")
    return kind._parse(values[1:])


def _format(message) -> str:
    if isinstance(message, np.ndarray):
        return f"{message.dtype}{list(message.shape)}"
    return type(message).__name__


# --- the request types ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TripleRequest(Request):
    """A Beaver triple with ``c = op(a, b)``, ``a`` of ``shape_x`` and ``b`` of ``shape_y``."""

    op: Bilinear
    shape_x: tuple[int, ...]
    shape_y: tuple[int, ...]
    code: ClassVar[int] = 1

    def __post_init__(self):
        _set_shape(self, "shape_x", "triple")
        _set_shape(self, "shape_y", "triple")
        _check_elements(self.reply_shape, "triple")

    def _values(self) -> list[int]:
        return [*self.op.encode(), *_shape_values(self.shape_x), *_shape_values(self.shape_y)]

    @classmethod
    def _parse(cls, values: list[int]) -> "TripleRequest":
        try:
            op, rest = Bilinear.decode(values)
        except ValueError as exc:
            raise ProtocolError(f"malformed triple request: {exc}") from None
        shape_x, rest = _parse_shape(rest, "triple")
        shape_y, rest = _parse_shape(rest, "triple")
        _expect_end(rest, "triple")
        return cls(op, shape_x, shape_y)

    def describe(self) -> str:
        params = f" {list(self.op.params)}" if self.op.params else ""
        return f"triple({self.op.name}{params}, {self.shape_x}, {self.shape_y})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        try:
            return tuple(int(d) for d in self.op.output_shape(self.shape_x, self.shape_y))
        except (ValueError, TypeError) as exc:
            raise ProtocolError(f"malformed triple request: {exc}") from None

    @wrapping
    def make(self, prgs: list, own_prg) -> np.ndarray:
        """The last party's c: op(sum of a, sum of b) minus the other parties' c shares."""
        shape_z = self.reply_shape
        a, b, c_others = None, None, np.zeros(shape_z, np.uint64) if len(prgs) == 1 else None
        for index, prg in enumerate(prgs):  # each sum starts as the first party's stream (no zeros to add to)
            a = _accumulate(a, prg.random_ring(self.shape_x))
            b = _accumulate(b, prg.random_ring(self.shape_y))
            if index < len(prgs) - 1:
                c_others = _accumulate(c_others, prg.random_ring(shape_z))
        if self.op.code == MUL and self.shape_x == self.shape_y:
            return fused.product_minus(a, b, c_others)  # one pass, into c_others
        return self.op.apply(a, b) - c_others


@dataclass(frozen=True)
class TruncRequest(Request):
    """A truncation pair for ``bits`` (1..62) on ``shape``: r, its top bit, (r mod 2^63) >> bits."""

    shape: tuple[int, ...]
    bits: int
    code: ClassVar[int] = 2

    def __post_init__(self):
        _set_shape(self, "shape", "truncation")
        if not isinstance(self.bits, (int, np.integer)) or not 0 < self.bits < 63:
            raise ProtocolError(f"malformed truncation request: bits {self.bits!r} outside 1..62")
        object.__setattr__(self, "bits", int(self.bits))

    def _values(self) -> list[int]:
        return [self.bits, *_shape_values(self.shape)]

    @classmethod
    def _parse(cls, values: list[int]) -> "TruncRequest":
        if not values:
            raise ProtocolError("malformed truncation request: no bits")
        shape, rest = _parse_shape(values[1:], "truncation")
        _expect_end(rest, "truncation")
        return cls(shape, values[0])

    def describe(self) -> str:
        return f"truncation pair ({self.bits} bits, {self.shape})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (2, *self.shape)

    @wrapping
    def make(self, prgs: list, own_prg) -> np.ndarray:
        """The last party's shares of r's top bit and of (r mod 2^63) >> bits, stacked."""
        r = msb_others = low_others = None
        for index, prg in enumerate(prgs):
            r = _accumulate(r, prg.random_ring(self.shape))
            if index < len(prgs) - 1:
                msb_others = _accumulate(msb_others, prg.random_ring(self.shape))
                low_others = _accumulate(low_others, prg.random_ring(self.shape))
        if msb_others is None:  # a single party: nobody else holds shares
            msb_others, low_others = np.zeros(self.shape, np.uint64), np.zeros(self.shape, np.uint64)
        return fused.truncation_correction(r, msb_others, low_others, self.bits)


@dataclass(frozen=True)
class _ShapeRequest(Request):
    """Material of one ``shape`` (the field, checks and wire form both such requests share; ``what`` names the
    kind in messages and descriptions)."""

    shape: tuple[int, ...]
    what: ClassVar[str]

    def __post_init__(self):
        _set_shape(self, "shape", self.what)

    def _values(self) -> list[int]:
        return _shape_values(self.shape)

    @classmethod
    def _parse(cls, values: list[int]) -> "_ShapeRequest":
        shape, rest = _parse_shape(values, cls.what)
        _expect_end(rest, cls.what)
        return cls(shape)

    def describe(self) -> str:
        return f"{self.what} {self.shape}"


@dataclass(frozen=True)
class AndTriplesRequest(Request):
    """XOR-shared masks of the words one round of ANDs opens and the products of their shifts: an
    :class:`~smpc.mpc.circuits.masked_ands.AndLayout` (the last party receives its shares of the products,
    concatenated)."""

    layout: AndLayout
    code: ClassVar[int] = 8

    def __post_init__(self):
        layout = self.layout
        if not isinstance(layout, AndLayout) or not layout.masks or not layout.products:
            raise ProtocolError("malformed AND triples request: it needs at least one mask and one product")
        masks = []
        for shape, owner in layout.masks:
            holder = _ShapeHolder(shape)
            _set_shape(holder, "shape", "AND triples")
            if isinstance(owner, bool) or not isinstance(owner, (int, np.integer)) or owner < SHARED:
                raise ProtocolError(f"malformed AND triples request: mask owner {owner!r} is not a rank or {SHARED}")
            masks.append((holder.shape, int(owner)))
        products = []
        for product in layout.products:
            if len(product) != 4 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                             for v in product):
                raise ProtocolError(f"malformed AND triples request: product {product!r} is not four integers")
            i, shift_i, j, shift_j = (int(v) for v in product)
            if not (0 <= i < len(masks) and 0 <= j < len(masks)):
                raise ProtocolError(f"malformed AND triples request: product names mask {i} or {j} of {len(masks)}")
            if not (abs(shift_i) < WORD_BITS and abs(shift_j) < WORD_BITS):
                raise ProtocolError(f"malformed AND triples request: shift {shift_i} or {shift_j} outside -63..63")
            try:
                np.broadcast_shapes(masks[i][0], masks[j][0])
            except ValueError:
                raise ProtocolError(f"malformed AND triples request: masks {i} and {j} do not broadcast") from None
            products.append((i, shift_i, j, shift_j))
        object.__setattr__(self, "layout", AndLayout(tuple(masks), tuple(products)))
        if self.layout.description_size > masked_ands.MAX_DESCRIPTION:
            raise ProtocolError(f"malformed AND triples request: {self.layout.description_size} values to describe, "
                                f"at most {masked_ands.MAX_DESCRIPTION}")
        _check_elements(self.reply_shape, "AND triples")

    def _values(self) -> list[int]:
        values = [len(self.layout.masks)]
        for shape, owner in self.layout.masks:
            values += [owner, *_shape_values(shape)]
        values.append(len(self.layout.products))
        for product in self.layout.products:
            values += list(product)
        return values

    @classmethod
    def _parse(cls, values: list[int]) -> "AndTriplesRequest":
        if not values or not 0 < values[0] <= MAX_REQUEST_VALUES:
            raise ProtocolError("malformed AND triples request: no mask count")
        rest, masks = values[1:], []
        for _ in range(values[0]):
            if not rest:
                raise ProtocolError("malformed AND triples request: a mask is missing")
            shape, after = _parse_shape(rest[1:], "AND triples")
            masks.append((shape, rest[0]))
            rest = after
        if not rest or not 0 < rest[0] <= MAX_REQUEST_VALUES or len(rest) != 1 + 4 * rest[0]:
            raise ProtocolError("malformed AND triples request: the products do not match their count")
        products = tuple(tuple(rest[1 + 4 * k : 5 + 4 * k]) for k in range(rest[0]))
        return cls(AndLayout(tuple(masks), products))

    def describe(self) -> str:
        owners = ", ".join("shared" if owner == SHARED else f"party {owner}'s" for _, owner in self.layout.masks)
        return (f"AND triples ({len(self.layout.products)} products of {len(self.layout.masks)} masks: {owners}; "
                f"shapes {[shape for shape, _ in self.layout.masks]})")

    def product_sizes(self) -> list[int]:
        """The number of words of each product, in order."""
        return [int(np.prod(self.layout.product_shape(k), dtype=np.int64)) for k in range(len(self.layout.products))]

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (sum(self.product_sizes()),)

    def make(self, prgs: list, own_prg) -> np.ndarray:
        """The last party's product shares, concatenated: each product of the masks' shifts (every mask the XOR of
        every party's stream, or its owner's alone) XOR the other parties' shares."""
        masks = []
        for shape, owner in self.layout.masks:  # every party draws its masks first, in order, then its products
            if owner >= len(prgs):
                raise ProtocolError(f"AND triples request names party {owner} of {len(prgs)} as a mask's owner")
            if owner != SHARED:
                masks.append(prgs[owner].random_ring(shape))
                continue
            mask = None
            for prg in prgs:
                mask = _accumulate(mask, prg.random_ring(shape), np.bitwise_xor)
            masks.append(mask)
        out = np.empty(self.reply_shape, np.uint64)
        start = 0
        for k, (i, shift_i, j, shift_j) in enumerate(self.layout.products):
            shape = self.layout.product_shape(k)
            others = None
            for prg in prgs[:-1]:
                others = _accumulate(others, prg.random_ring(shape), np.bitwise_xor)
            size = int(np.prod(shape, dtype=np.int64))
            out[start : start + size] = _shifted_and(masks[i], shift_i, masks[j], shift_j, shape, others).reshape(-1)
            start += size
        return out


@dataclass
class _ShapeHolder:
    """A mask's shape on its way through :func:`_set_shape`."""

    shape: object


def _shifted_and(a_x: np.ndarray, shift_x: int, a_y: np.ndarray, shift_y: int, shape: tuple,
                 others: np.ndarray | None) -> np.ndarray:
    """S(a_x) & T(a_y) ^ others (the shifts of :func:`masked_ands.shift`) of the broadcast ``shape``."""
    if a_x.shape == a_y.shape == tuple(shape):
        return fused.shifted_and_xor(a_x, split_shift(shift_x), a_y, split_shift(shift_y), others)
    product = np.broadcast_to(masked_ands.shift(a_x, shift_x), shape) & masked_ands.shift(a_y, shift_y)
    return product if others is None else product ^ others


@dataclass(frozen=True)
class DabitsRequest(_ShapeRequest):
    """Random bits of ``shape`` shared twice: XOR (bit 0 of a word) and additively."""

    code: ClassVar[int] = 4
    what: ClassVar[str] = "dabits"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return self.shape

    @wrapping
    def make(self, prgs: list, own_prg) -> np.ndarray:
        """The last party's additive shares of bits r: every party's XOR share comes from its own PRG (so r, their
        XOR, is uniform and known to no party), and so do the other parties' additive shares."""
        r = prgs[-1].random_bits(self.shape)
        for prg in prgs[:-1]:
            r ^= prg.random_bits(self.shape)
        for prg in prgs[:-1]:
            r -= prg.random_ring(self.shape)
        return r


@dataclass(frozen=True)
class _ComparisonRequest(Request):
    """Material for the sign bits of ``count`` elements, ``with_product``: for x * msb(x) too (the fields and
    checks both comparison requests share; ``what`` names the kind in messages, ``max_count`` bounds ``count``)."""

    count: int
    with_product: bool = False
    what: ClassVar[str]
    max_count: ClassVar[int] = MAX_ELEMENTS

    def __post_init__(self):
        if not isinstance(self.count, (int, np.integer)) or not 0 <= self.count <= self.max_count:
            raise ProtocolError(f"malformed {self.what} request: count {self.count!r} outside 0..{self.max_count}")
        if self.with_product not in (0, 1):  # also True and False
            raise ProtocolError(f"malformed {self.what} request: with_product {self.with_product!r} is not 0 or 1")
        object.__setattr__(self, "count", int(self.count))
        object.__setattr__(self, "with_product", bool(self.with_product))

    def _values(self) -> list[int]:
        return [self.count, int(self.with_product)]

    @classmethod
    def _parse(cls, values: list[int]) -> "_ComparisonRequest":
        if len(values) != 2:
            raise ProtocolError(f"malformed {cls.what} request: {len(values)} fields, expected 2")
        return cls(values[0], values[1])


@dataclass(frozen=True)
class SignRequest(_ComparisonRequest):
    """Sign-bit material for ``count`` elements (see :mod:`smpc.mpc.circuits.sign_bit`); ``with_product``: with
    shares of r * s too."""

    code: ClassVar[int] = 5
    what: ClassVar[str] = "sign-bit"

    def describe(self) -> str:
        return f"sign-bit material ({self.count} elements{', with product' if self.with_product else ''})"

    def fields(self) -> list[sign_bit.Field]:
        """The material's layout (the order every party draws it in)."""
        return sign_bit.layout(self.count, with_mask=True, with_arith_bit=True, with_product=self.with_product)

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (sign_bit.correction_size(self.fields()),)

    def make(self, prgs: list, own_prg) -> np.ndarray:
        """The last party's flat corrections of the derived fields."""
        return sign_bit.deal(self.fields(), prgs)


@dataclass(frozen=True)
class OneHotRequest(Request):
    """``count`` random offsets r (uniform mod 2^bits, bits 0..24) and the one-hot rows (count, 2^bits) of r."""

    count: int
    bits: int
    code: ClassVar[int] = 6

    def __post_init__(self):
        if not isinstance(self.count, (int, np.integer)) or self.count < 0:
            raise ProtocolError(f"malformed one-hot request: count {self.count!r} is not a non-negative integer")
        if not isinstance(self.bits, (int, np.integer)) or not 0 <= self.bits <= MAX_ONE_HOT_BITS:
            raise ProtocolError(f"malformed one-hot request: bits {self.bits!r} outside 0..{MAX_ONE_HOT_BITS}")
        object.__setattr__(self, "count", int(self.count))
        object.__setattr__(self, "bits", int(self.bits))
        _check_elements(self.reply_shape, "one-hot")

    def _values(self) -> list[int]:
        return [self.count, self.bits]

    @classmethod
    def _parse(cls, values: list[int]) -> "OneHotRequest":
        if len(values) != 2:
            raise ProtocolError(f"malformed one-hot request: {len(values)} fields, expected 2")
        return cls(values[0], values[1])

    def describe(self) -> str:
        return f"random one-hot rows ({self.count} of 2^{self.bits})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return (self.count, 1 << self.bits)

    @wrapping
    def make(self, prgs: list, own_prg) -> np.ndarray:
        """The last party's share of the one-hot rows of r = the sum of every party's PRG offsets."""
        offsets = np.zeros(self.count, np.uint64)
        for prg in prgs:
            offsets += prg.random_ring((self.count,))
        if len(prgs) == 1:
            return one_hot_rows(offsets, self.bits)
        others = None
        for prg in prgs[:-1]:
            others = _accumulate(others, prg.random_ring(self.reply_shape))
        return fused.negated_one_hot(others, offsets)  # e_r - the others' rows, in place: one pass


@dataclass(frozen=True)
class FssSignRequest(_ComparisonRequest):
    """Function-secret-sharing keys for the sign bit of ``count`` elements (and x msb(x), ``with_product``):
    :mod:`smpc.mpc.fss.compare`. Every party expands its shares of the masks r and of u = r_63 XOR s from its PRG
    (party 0 also its shares of s and r s); the dealer draws the same, adds them up, makes both parties' one-bit DCF
    keys for r and sends each party its own (they share the correction words, which the seed trick cannot
    compress), with party 1's shares of s and r s: :func:`smpc.mpc.fss.wire.reply_words`."""

    code: ClassVar[int] = 7
    what: ClassVar[str] = "FSS sign"
    max_count: ClassVar[int] = fss_wire.max_count(MAX_ELEMENTS)  # every reply within MAX_ELEMENTS
    reply_to_every_party: ClassVar[bool] = True

    def describe(self) -> str:
        return f"FSS sign keys ({self.count} elements{', with product' if self.with_product else ''})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return self.reply_shape_for(1)

    def reply_shape_for(self, rank: int) -> tuple[int, ...]:
        """Party 1 (the last) also receives its shares of s and r s; party 0 draws its own."""
        return (fss_wire.reply_words(rank, self.count, self.with_product),)

    @wrapping
    def make(self, prgs: list, own_prg) -> list[np.ndarray]:
        """Each party's packed keys, in rank order."""
        if len(prgs) != 2:
            raise ProtocolError(f"FSS sign keys are for two parties, this run has {len(prgs)}")
        drawn = tuple(fss_compare.draw_shares(prg, rank, self.count, self.with_product)
                      for rank, prg in enumerate(prgs))
        return [fss_wire.pack(keys) for keys in fss_compare.deal_keys(own_prg, drawn)]


REQUEST_TYPES: dict[int, type[Request]] = {
    kind.code: kind
    for kind in (TripleRequest, TruncRequest, AndTriplesRequest, DabitsRequest, SignRequest, OneHotRequest,
                 FssSignRequest)
}


def _accumulate(total: np.ndarray | None, stream: np.ndarray, combine=np.add) -> np.ndarray:
    """total + stream (or another ``combine``), in place where there is a total (``stream`` itself, a fresh array,
    where there is none)."""
    if total is None:
        return stream
    return combine(total, stream, out=total)


# --- shapes on the wire --------------------------------------------------------------------------------------------
def _shape_values(shape: tuple[int, ...]) -> list[int]:
    return [len(shape), *shape]


def _set_shape(request: Request, name: str, what: str) -> None:
    """Check the shape field ``name`` (ints >= 0, at most MAX_NDIM, at most MAX_ELEMENTS) and store it as ints."""
    shape = getattr(request, name)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ProtocolError(f"malformed {what} request: {name} {shape!r} is not a shape") from None
    if len(dims) > MAX_NDIM:
        raise ProtocolError(f"malformed {what} request: {len(dims)} dimensions, at most {MAX_NDIM}")
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims):
        raise ProtocolError(f"malformed {what} request: {name} {dims!r} has a dimension that is not an integer")
    dims = tuple(int(d) for d in dims)
    if any(d < 0 for d in dims):
        raise ProtocolError(f"malformed {what} request: negative dimension in {dims}")
    _check_elements(dims, what)
    object.__setattr__(request, name, dims)


def _parse_shape(values: list[int], what: str) -> tuple[tuple[int, ...], list[int]]:
    """A shape ``ndim, *dims`` from the front of ``values``, and the rest (dimensions checked by the request)."""
    if not values or not 0 <= values[0] <= MAX_NDIM or len(values) < 1 + values[0]:
        raise ProtocolError(f"malformed shape in {what} request")
    return tuple(values[1 : 1 + values[0]]), values[1 + values[0] :]


def _check_elements(shape: tuple[int, ...], what: str) -> None:
    count = 1
    for dim in shape:
        count *= dim
    if count > MAX_ELEMENTS:
        raise ProtocolError(f"dealer request for {count} elements ({what}) exceeds the limit of {MAX_ELEMENTS}")


def _expect_end(rest: list[int], what: str) -> None:
    if rest:
        raise ProtocolError(f"malformed {what} request: {len(rest)} trailing values")


# the shape helpers, for the request families of other protocols (smpc.mpc.spdz2k's authenticated material)
shape_values = _shape_values
set_shape = _set_shape
parse_shape = _parse_shape
check_elements = _check_elements
expect_end = _expect_end
