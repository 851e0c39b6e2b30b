"""The ring Z_2^k as a parameter: one :class:`Ring` interface, implemented for k = 64 (:data:`RING64`, the kernels
every protocol uses today) and k = 128 (:data:`RING128`, two uint64 limbs); :func:`ring_of` maps a width to it.

**Layout.** A Z_2^64 element array is uint64 of the tensor's shape. A Z_2^128 element array is uint64 of the
tensor's shape plus a trailing axis of 2 limbs, ``x[..., 0]`` the low and ``x[..., 1]`` the high 64 bits. The
trailing axis keeps each element's 16 bytes together, in the order of a little-endian uint128: the PRG's bytes, a
frame on the wire and a file all read as 128-bit integers with no shuffling, and indexing, reshaping and slicing
the leading (tensor) axes work as numpy's do. The matrix kernel splits the limbs into contiguous planes itself,
which costs one pass over each operand against the product's m*k*n (:mod:`smpc.ring.ring128`).

**Operations.** ``zeros``, ``random`` (AES :class:`smpc.ring.prg.PRG`), ``add``, ``sub``, ``neg``, ``mul``,
``matmul``, ``sum``, the shifts, ``msb``, ``equal`` are exact mod 2^k with numpy's broadcasting and matmul shapes
over the tensor axes. ``from_int``/``to_int`` convert exact integers (two's complement), ``encode``/``decode`` fixed
point; ``reduce`` takes a value to a narrower supported ring (mod 2^k'), ``low_bits`` keeps it mod 2^b in this
ring, and ``lift`` brings a Z_2^64 array in (zero- or sign-extended). Operands must be element arrays of this ring
(uint64 in its layout): anything else raises ``TypeError`` or ``ValueError`` naming the operand and the problem,
and a Python int or an int64 array becomes one through ``from_int``.

**How a protocol uses it.** SPDZ2k (Cramer, Damgard, Escudero, Scholl, Xing, "SPDZ2k: Efficient MPC mod 2^k with
Dishonest Majority", CRYPTO 2018, https://eprint.iacr.org/2018/482) computes on values in Z_2^k while the shares,
the MAC key and the MACs live in Z_2^(k+s); with k = s = 64 that is :data:`RING128`. A protocol holds its ring
(``ring = spec.ring``, from :attr:`smpc.mpc.registry.ProtocolSpec.ring_bits`) and does all share arithmetic
through it (``ring.add``, ``ring.matmul``, ``ring.random(prg, shape)``), lifts public Z_2^64 values with
``ring.lift``, and reads the value of an opened element as ``ring.reduce(x, 64)``; the MAC check works mod 2^(k+s)
(after multiplying by 2^s, ``shift_left``). The additive and aby3 protocols stay on uint64 arrays and
:data:`RING64`, which runs the very kernels they call today.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from smpc.ring import fixed_point, ring128
from smpc.ring.arith import wrapping
from smpc.ring.matmul import matmul as matmul64
from smpc.ring.prg import PRG

_WORD = 64
_WORD_MASK = (1 << _WORD) - 1


class Ring(ABC):
    """Z_2^bits with element arrays in a fixed uint64 layout (see the module's docstring).

    ``limbs`` uint64 words per element (the last axis when more than one); ``modulus`` = 2^bits. Fixed point keeps
    at most ``max_frac_bits`` = bits/2 - 2 fraction bits (a product of two encodings has twice as many) and values
    below 2^(bits - 2 - frac_bits) in magnitude.
    """

    bits: int
    limbs: int

    # --- description -----------------------------------------------------------------------------------------------
    @property
    def modulus(self) -> int:
        return 1 << self.bits

    @property
    def nbytes_per_element(self) -> int:
        """Bytes one element takes in memory and on the wire."""
        return 8 * self.limbs

    @property
    def max_frac_bits(self) -> int:
        return self.bits // 2 - 2

    def __repr__(self) -> str:
        return f"RING{self.bits}"

    def element_shape(self, shape) -> tuple[int, ...]:
        """The array shape that holds a tensor of ``shape``."""
        shape = _shape_tuple(shape)
        return shape if self.limbs == 1 else shape + (self.limbs,)

    def shape(self, x: np.ndarray) -> tuple[int, ...]:
        """The tensor shape of element array ``x`` (checked)."""
        x = self.check(x)
        return x.shape if self.limbs == 1 else x.shape[:-1]

    def check(self, x, what: str = "operand") -> np.ndarray:
        """``x`` as an element array of this ring; TypeError for another dtype, ValueError for another layout."""
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.dtype != np.uint64:
            raise TypeError(f"{self!r}: {what} must be a uint64 element array, got dtype {x.dtype} "
                            f"(convert integers with {self!r}.from_int, reals with {self!r}.encode)")
        if self.limbs > 1 and (x.ndim == 0 or x.shape[-1] != self.limbs):
            raise ValueError(f"{self!r}: {what} must have a trailing axis of {self.limbs} limbs (lo, hi), "
                             f"got shape {x.shape}")
        return x

    # --- creation --------------------------------------------------------------------------------------------------
    def zeros(self, shape) -> np.ndarray:
        return np.zeros(self.element_shape(shape), np.uint64)

    def random(self, prg: PRG, shape) -> np.ndarray:
        """Uniform elements of the ring from ``prg``'s key stream (the same key gives the same elements)."""
        if not isinstance(prg, PRG):
            raise TypeError(f"{self!r}.random needs an smpc.ring.prg.PRG, got {type(prg).__name__}")
        full = self.element_shape(shape)
        count = int(np.prod(full, dtype=np.int64))
        return prg.random_bytes(8 * count).view(np.uint64).reshape(full)

    # --- arithmetic ------------------------------------------------------------------------------------------------
    def add(self, a, b) -> np.ndarray:
        a, b = self._pair(a, b, "add")
        return np.asarray(self._add(a, b))

    def sub(self, a, b) -> np.ndarray:
        a, b = self._pair(a, b, "sub")
        return np.asarray(self._sub(a, b))

    def mul(self, a, b) -> np.ndarray:
        """The element-wise product."""
        a, b = self._pair(a, b, "mul")
        return np.asarray(self._mul(a, b))

    def neg(self, a) -> np.ndarray:
        return np.asarray(self._neg(self.check(a)))

    def matmul(self, a, b) -> np.ndarray:
        """``np.matmul`` over the tensor axes (1-D, 2-D, batched with broadcasting, empty dimensions)."""
        a = self.check(a, "matmul: operand a")
        b = self.check(b, "matmul: operand b")
        return np.asarray(self._matmul(a, b))

    def sum(self, a, axis=None) -> np.ndarray:
        """The sum over ``axis`` (None: every axis; an int or a tuple of tensor axes, negative ones counted from
        the last tensor axis)."""
        a = self.check(a)
        ndim = a.ndim - (self.limbs > 1)
        axes = tuple(range(ndim)) if axis is None else normalize_axis_tuple(axis, ndim)
        return np.asarray(self._sum(a, axes))

    def equal(self, a, b) -> np.ndarray:
        """Element-wise equality (a bool array of the broadcast tensor shape)."""
        a, b = self._pair(a, b, "equal")
        same = a == b
        return np.asarray(same if self.limbs == 1 else same.all(axis=-1))

    # --- bits ------------------------------------------------------------------------------------------------------
    def shift_left(self, a, shift: int) -> np.ndarray:
        """a * 2^shift mod 2^bits, for 0 <= shift <= bits."""
        return np.asarray(self._shift_left(self.check(a), self._check_shift(shift)))

    def shift_right_logical(self, a, shift: int) -> np.ndarray:
        """floor(a / 2^shift) with a read as unsigned, for 0 <= shift <= bits."""
        return np.asarray(self._shift_right(self.check(a), self._check_shift(shift), signed=False))

    def shift_right_arithmetic(self, a, shift: int) -> np.ndarray:
        """floor(a / 2^shift) with a read as signed (two's complement), for 0 <= shift <= bits."""
        return np.asarray(self._shift_right(self.check(a), self._check_shift(shift), signed=True))

    def msb(self, a) -> np.ndarray:
        """The top bit (the sign in two's complement) as uint64 0 or 1, of the tensor's shape."""
        a = self.check(a)
        top = a if self.limbs == 1 else a[..., -1]
        return np.asarray(top >> np.uint64(_WORD - 1))

    # --- conversions -----------------------------------------------------------------------------------------------
    def from_int(self, values) -> np.ndarray:
        """Integers (Python ints, nested lists, numpy integer arrays, object arrays of ints) reduced mod 2^bits:
        negative values in two's complement, int64 arrays sign-extended, unsigned arrays zero-extended."""
        # Python ints go through exact ints (numpy would read [-1, 2**63] as floats)
        arr = values if isinstance(values, np.ndarray) else np.array(values, dtype=object)
        if arr.dtype.kind in "iu":
            return self._from_numpy_int(arr)
        if arr.dtype == object:
            flat = arr.reshape(-1)
            for item in flat:
                if not isinstance(item, (int, np.integer)) or isinstance(item, (bool, np.bool_)):
                    raise TypeError(f"{self!r}.from_int takes integers, got {type(item).__name__} {item!r}")
            words = [[(int(v) >> (_WORD * limb)) & _WORD_MASK for limb in range(self.limbs)] for v in flat]
            return np.array(words, dtype=np.uint64).reshape(self.element_shape(arr.shape))
        raise TypeError(f"{self!r}.from_int takes integers, got dtype {arr.dtype} "
                        f"(fixed-point reals go through {self!r}.encode)")

    def to_int(self, a, signed: bool = True) -> np.ndarray:
        """Exact integers: ``signed`` reads two's complement (values in [-2^(bits-1), 2^(bits-1))), otherwise
        [0, 2^bits). RING64 gives int64 (signed) or uint64 arrays, RING128 object arrays of Python ints."""
        a = self.check(a)
        if self.limbs == 1:
            return a.view(np.int64).copy() if signed else a.copy()
        out = np.empty(a.shape[:-1], dtype=object)
        flat = out.reshape(-1)
        words = a.reshape(-1, self.limbs)
        half = 1 << (self.bits - 1)
        for i, row in enumerate(words.tolist()):
            value = sum(int(word) << (_WORD * limb) for limb, word in enumerate(row))
            flat[i] = value - self.modulus if signed and value >= half else value
        return out

    def encode(self, x, frac_bits: int = fixed_point.DEFAULT_FRAC_BITS) -> np.ndarray:
        """Reals as round(x * 2^frac_bits) (half to even) in two's complement. ValueError naming the first value that
        is not finite or has |x| >= 2^(bits - 2 - frac_bits); nothing wraps silently."""
        self._check_frac_bits(frac_bits)
        return self._encode(x, frac_bits)

    def decode(self, a, frac_bits: int = fixed_point.DEFAULT_FRAC_BITS) -> np.ndarray:
        """Signed elements / 2^frac_bits as float64 (exact for anything ``encode`` produced; otherwise rounded to
        within one unit in the last place)."""
        self._check_frac_bits(frac_bits)
        return self._decode(self.check(a), frac_bits)

    def reduce(self, a, bits: int) -> np.ndarray:
        """a mod 2^bits as an element of the narrower (or same) supported ring ``ring_of(bits)``: the low 64 bits of
        a Z_2^128 element are ``RING128.reduce(x, 64)``."""
        a = self.check(a)
        target = ring_of(bits)
        if target.bits > self.bits:
            raise ValueError(f"{self!r}.reduce: Z_2^{bits} is wider than Z_2^{self.bits}; use {target!r}.lift")
        if target is self:
            return a.copy()
        return a[..., 0].copy()  # Z_2^128 to Z_2^64: the low limb

    def low_bits(self, a, bits: int) -> np.ndarray:
        """a mod 2^bits kept in this ring (the bits from ``bits`` up cleared), for 0 <= bits <= self.bits."""
        a = self.check(a)
        bits = self._check_shift(bits, "bits")
        return self._shift_right(self._shift_left(a, self.bits - bits), self.bits - bits, signed=False)

    def lift(self, a, *, signed: bool = False) -> np.ndarray:
        """A Z_2^64 element array (uint64) as elements of this ring: zero-extended by default (the representative in
        [0, 2^64)), sign-extended with ``signed=True`` (a two's complement value keeps its signed value)."""
        a = RING64.check(a, "lift: operand")
        if self.limbs == 1:
            return a.copy()
        fill = (a.view(np.int64) >> np.int64(_WORD - 1)).view(np.uint64) if signed else np.zeros_like(a)
        return np.stack([a] + [fill] * (self.limbs - 1), axis=-1)

    # --- checks ----------------------------------------------------------------------------------------------------
    def _pair(self, a, b, op: str) -> tuple[np.ndarray, np.ndarray]:
        a = self.check(a, f"{op}: operand a")
        b = self.check(b, f"{op}: operand b")
        a_shape, b_shape = self.shape(a), self.shape(b)
        try:
            np.broadcast_shapes(a_shape, b_shape)
        except ValueError:
            raise ValueError(f"{self!r}.{op}: tensor shapes {a_shape} and {b_shape} do not broadcast") from None
        return a, b

    def _check_shift(self, shift, what: str = "shift") -> int:
        if isinstance(shift, (bool, np.bool_)):
            raise TypeError(f"{self!r}: {what} must be an int, got {shift!r}")
        try:
            shift = operator.index(shift)
        except TypeError:
            raise TypeError(f"{self!r}: {what} must be an int, got {shift!r}") from None
        if not 0 <= shift <= self.bits:
            raise ValueError(f"{self!r}: {what} must be in [0, {self.bits}], got {shift}")
        return shift

    def _check_frac_bits(self, frac_bits) -> None:
        if isinstance(frac_bits, (bool, np.bool_)) or not isinstance(frac_bits, (int, np.integer)) \
                or not 0 <= frac_bits <= self.max_frac_bits:
            raise ValueError(f"{self!r}: frac_bits must be an integer in [0, {self.max_frac_bits}], got {frac_bits!r}")

    # --- per width -------------------------------------------------------------------------------------------------
    @abstractmethod
    def _add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _neg(self, a: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _sum(self, a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray: ...

    @abstractmethod
    def _shift_left(self, a: np.ndarray, shift: int) -> np.ndarray: ...

    @abstractmethod
    def _shift_right(self, a: np.ndarray, shift: int, signed: bool) -> np.ndarray: ...

    @abstractmethod
    def _from_numpy_int(self, arr: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _encode(self, x, frac_bits: int) -> np.ndarray: ...

    @abstractmethod
    def _decode(self, a: np.ndarray, frac_bits: int) -> np.ndarray: ...


class Ring64(Ring):
    """Z_2^64 on uint64 arrays: numpy's wrapping arithmetic and smpc's existing matmul and fixed-point code."""

    bits = 64
    limbs = 1

    @wrapping
    def _add(self, a, b):
        return np.add(a, b)

    @wrapping
    def _sub(self, a, b):
        return np.subtract(a, b)

    @wrapping
    def _mul(self, a, b):
        return np.multiply(a, b)

    @wrapping
    def _neg(self, a):
        return np.subtract(np.uint64(0), a)

    def _matmul(self, a, b):
        return matmul64(a, b)

    @wrapping
    def _sum(self, a, axes):
        return np.asarray(np.sum(a, axis=axes, dtype=np.uint64))

    def _shift_left(self, a, shift):
        return np.zeros_like(a) if shift == _WORD else a << np.uint64(shift)

    def _shift_right(self, a, shift, signed):
        if signed:
            return (a.view(np.int64) >> np.int64(min(shift, _WORD - 1))).view(np.uint64)
        return np.zeros_like(a) if shift == _WORD else a >> np.uint64(shift)

    def _from_numpy_int(self, arr):
        return arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else arr.astype(np.uint64)

    def _encode(self, x, frac_bits):
        return fixed_point.encode(x, frac_bits)

    def _decode(self, a, frac_bits):
        return fixed_point.decode(a, frac_bits)


class Ring128(Ring):
    """Z_2^128 on two uint64 limbs (a trailing axis (lo, hi)): the kernels of :mod:`smpc.ring.ring128`."""

    bits = 128
    limbs = 2

    @wrapping
    def _add(self, a, b):
        return ring128.add(a, b)

    @wrapping
    def _sub(self, a, b):
        return ring128.sub(a, b)

    @wrapping
    def _mul(self, a, b):
        return ring128.mul(a, b)

    @wrapping
    def _neg(self, a):
        return ring128.neg(a)

    def _matmul(self, a, b):
        return ring128.matmul(a, b)

    @wrapping
    def _sum(self, a, axes):
        return ring128.sum_axes(a, axes)

    def _shift_left(self, a, shift):
        lo, hi = a[..., 0], a[..., 1]
        if shift == 0:
            return a.copy()
        if shift >= _WORD:
            new_hi = np.zeros_like(lo) if shift == 2 * _WORD else lo << np.uint64(shift - _WORD)
            return np.stack((np.zeros_like(lo), new_hi), axis=-1)
        new_hi = (hi << np.uint64(shift)) | (lo >> np.uint64(_WORD - shift))
        return np.stack((lo << np.uint64(shift), new_hi), axis=-1)

    def _shift_right(self, a, shift, signed):
        lo, hi = a[..., 0], a[..., 1]
        if shift == 0:
            return a.copy()
        fill = (hi.view(np.int64) >> np.int64(_WORD - 1)).view(np.uint64) if signed else np.zeros_like(hi)
        if shift >= _WORD:
            rest = shift - _WORD
            if rest == _WORD:
                new_lo = fill.copy()
            elif signed:
                new_lo = (hi.view(np.int64) >> np.int64(rest)).view(np.uint64)
            else:
                new_lo = hi >> np.uint64(rest)
            return np.stack((new_lo, fill), axis=-1)
        new_lo = (lo >> np.uint64(shift)) | (hi << np.uint64(_WORD - shift))
        new_hi = (hi.view(np.int64) >> np.int64(shift)).view(np.uint64) if signed else hi >> np.uint64(shift)
        return np.stack((new_lo, new_hi), axis=-1)

    def _from_numpy_int(self, arr):
        if arr.dtype.kind == "u":
            return RING128.lift(arr.astype(np.uint64), signed=False)
        return RING128.lift(arr.astype(np.int64).view(np.uint64), signed=True)

    def _encode(self, x, frac_bits):
        values = np.asarray(x, dtype=np.float64)
        limit = float(2 ** (self.bits - 2 - frac_bits))
        bad = ~np.isfinite(values) | (np.abs(values) >= limit)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"cannot fixed-point encode {float(values[index])!r} at index {index}: values must be "
                             f"finite with |x| < 2^{self.bits - 2 - frac_bits} for frac_bits={frac_bits} in {self!r}")
        # The magnitude m of an integer-valued float splits exactly: hi = floor(m / 2^64) and m - hi * 2^64 (in
        # [0, 2^64), its bits a subset of m's) are exact, the latter then cut into two exact 32-bit halves; a
        # negative value is the two's complement of its magnitude.
        scaled = np.rint(values * float(2**frac_bits))
        magnitude = np.abs(scaled)
        hi = np.floor(magnitude / 2.0**64)
        low = magnitude - hi * 2.0**64
        low_hi = np.floor(low / 2.0**32)
        low_lo = low - low_hi * 2.0**32
        lo = (low_hi.astype(np.uint64) << np.uint64(32)) | low_lo.astype(np.uint64)
        limbs = np.stack((lo, hi.astype(np.uint64)), axis=-1)
        return np.where((scaled < 0)[..., None], self._neg(limbs), limbs)

    def _decode(self, a, frac_bits):
        negative = self.msb(a).astype(bool)
        magnitude = np.where(negative[..., None], self._neg(a), a)
        # both limbs of the magnitude are non-negative: no cancellation; exact when the value has <= 53 bits
        value = magnitude[..., 1].astype(np.float64) * 2.0**64 + magnitude[..., 0].astype(np.float64)
        return np.where(negative, -value, value) / float(2**frac_bits)


def _shape_tuple(shape) -> tuple[int, ...]:
    items = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise TypeError(f"a shape holds ints, got {shape!r}")
        try:
            size = operator.index(item)
        except TypeError:
            raise TypeError(f"a shape holds ints, got {shape!r}") from None
        if size < 0:
            raise ValueError(f"a shape holds non-negative sizes, got {shape!r}")
        out.append(size)
    return tuple(out)


RING64 = Ring64()
RING128 = Ring128()
_RINGS = {ring.bits: ring for ring in (RING64, RING128)}


def ring_of(bits: int) -> Ring:
    """The ring Z_2^bits; ValueError naming the supported widths for any other."""
    if isinstance(bits, (int, np.integer)) and not isinstance(bits, (bool, np.bool_)) and int(bits) in _RINGS:
        return _RINGS[int(bits)]
    raise ValueError(f"unsupported ring width {bits!r}: smpc has rings of {sorted(_RINGS)} bits")
