"""The shared-tensor interface, written once for every protocol: what the non-linear functions
(:mod:`smpc.mpc.functions`, :mod:`smpc.mpc.selection`, ...) are written against.

A shared tensor holds this party's *components* of a secret-shared Z_2^64 array (one
for additive sharing, two for replicated sharing) and a scale (``frac_bits``: 0 for an
integer tensor, the party's ``frac_bits`` for fixed point). Everything that is local
and linear (shape ops, sums, additions, products with public values) lives here;
a protocol subclass supplies what needs its own structure or communication:
``_public_components`` (how a public value sits in the components), ``_shared_bilinear``
(products of two shared operands), ``_truncate_ring`` and ``reveal_ring``.
Users meet :class:`smpc.mpc.tensor.SharedTensor`, this class with the functions as methods
(``x.exp()``, ``x.max()``, ``x / y``); protocol tensors subclass that one.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np

from smpc.exceptions import FixedPointPrecisionWarning, ProtocolError
from smpc.mpc.bilinear import MATMUL, MUL, Bilinear
from smpc.mpc.precision import warn_if_shared_data_vanishes
from smpc.ring import decode, encode, sum_pool2d, to_ring
from smpc.ring.arith import wrapping
from smpc.ring.lookup import rotate_rows, rotated_dot

#: Largest number of elements one sign-bit protocol run takes. A larger comparison (exp or
#: reciprocal compare every element with dozens of breakpoints) runs in batches of at most this
#: many, one after the other: the bit-sliced circuit's planes, triples and corrections then stay
#: within a few GiB for three parties and the dealer, at the price of its rounds per batch.
SIGN_BATCH = 1 << 22  # a multiple of 64 (whole words of the bit-sliced circuit)


class SharedTensorCore:
    """This party's view of a secret-shared tensor: the interface functions are written against (module docstring)."""

    __array_priority__ = 1000  # numpy defers `ndarray op tensor` to us

    def __init__(self, party, components: tuple[np.ndarray, ...], frac_bits: int):
        self.party = party
        self.components = tuple(components)
        self.frac_bits = frac_bits

    # --- what a protocol provides -----------------------------------------------------------
    def _public_components(self, ring: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """Where a public ring value goes: one entry per component (None: nothing)."""
        raise NotImplementedError

    def _shared_bilinear(self, left: "SharedTensorCore", right: "SharedTensorCore", op: Bilinear) -> "SharedTensorCore":
        """``op(left, right)`` for two shared operands, rescaled to at most ``frac_bits``."""
        raise NotImplementedError

    def _truncate_ring(self, bits: int) -> tuple[np.ndarray, ...]:
        """Components of this value divided by 2^bits (error below one unit)."""
        raise NotImplementedError

    def reveal_ring(self, to: int | None = None) -> np.ndarray | None:
        """The raw ring elements (uint64), to every party or to party ``to`` only."""
        raise NotImplementedError

    def _is_negative(self) -> "SharedTensorCore":
        """A shared integer bit (0/1): 1 where the value is negative (its top bit)."""
        raise NotImplementedError(f"comparisons are not available for {type(self).__name__} yet")

    def _bits_to_arithmetic(self, bits: list) -> "SharedTensorCore":
        """Bits in this protocol's binary sharing (words 0/1, of this tensor's shape) as one stacked shared
        integer tensor of shape (len(bits), *shape)."""
        raise NotImplementedError(f"binary-to-arithmetic conversion is not available for {type(self).__name__}")

    def _random_one_hot(self, count: int, bits: int) -> tuple["SharedTensorCore", Callable[[], "SharedTensorCore"]]:
        """Shared integers r (``count``, uniform mod 2^bits) unknown to every party, and a call that gives their
        one-hot rows (``count``, 2^bits) once x - r is open (see :mod:`smpc.mpc.one_hot`)."""
        raise NotImplementedError(f"one_hot is not available for {type(self).__name__} yet")

    # --- basic attributes -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.components[0].shape

    @property
    def ndim(self) -> int:
        return self.components[0].ndim

    @property
    def size(self) -> int:
        return self.components[0].size

    @property
    def is_fixed_point(self) -> bool:
        return self.frac_bits > 0

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d shared tensor")
        return self.shape[0]

    def __bool__(self):
        raise TypeError("a shared value has no truth value; reveal it first")

    def __repr__(self) -> str:
        kind = "fixed" if self.is_fixed_point else "int"
        return f"{type(self).__name__}(shape={self.shape}, {kind}, party={self.party.rank})"

    def _new(self, components, frac_bits: int | None = None) -> "SharedTensorCore":
        return type(self)(self.party, tuple(components), self.frac_bits if frac_bits is None else frac_bits)

    def _local(self, fn: Callable[[np.ndarray], np.ndarray]) -> "SharedTensorCore":
        """Apply a local linear map to every component."""
        return self._new(tuple(fn(c) for c in self.components))

    def _offset_own_share(self, ring: np.ndarray) -> "SharedTensorCore":
        """This party's shares with ``ring`` added to its first component and nothing else changed: a model of a
        cheating party (:func:`smpc.testing.tamper`). A protocol with MACs leaves them alone."""
        first = self.components[0] + np.broadcast_to(ring, self.shape).astype(np.uint64)
        return self._new((first, *self.components[1:]))

    # --- one-hot rows (smpc.mpc.one_hot) ---------------------------------------------------------------------------
    def _masked_for_opening(self, bits: int) -> "SharedTensorCore":
        """x - r made ready to open only (x - r) mod 2^bits: each share reduced mod 2^bits (local, as 2^bits
        divides the ring). A protocol whose offsets already hide the upper bits returns the value as it is."""
        mask = np.uint64((1 << bits) - 1)
        return self._local(lambda c: c & mask)

    def _rotated_rows(self, shifts: np.ndarray, size: int) -> "SharedTensorCore":
        """One-hot rows (n, 2^m) rotated by the opened ``shifts``, the first ``size`` columns (local)."""
        return self._local(lambda c: rotate_rows(c, shifts)[:, :size])

    def _rotated_dot(self, shifts: np.ndarray, table: np.ndarray) -> "SharedTensorCore":
        """One-hot rows rotated by ``shifts`` times a public ring ``table`` (2^m or fewer rows, k columns): (n, k)."""
        return self._local(lambda c: rotated_dot(c, shifts, table))

    def _open_partially(self) -> np.ndarray:
        """The ring value opened inside a protocol step (a one-hot's masked difference): what :meth:`reveal_ring`
        gives; a protocol with MACs logs it for a later check instead of checking it now."""
        return self.reveal_ring()

    # --- reveal ---------------------------------------------------------------------------------
    def reveal(self, to: int | None = None) -> np.ndarray | None:
        """The plain value at every party (``to=None``) or at party ``to`` only (others: None).

        Fixed-point tensors decode to float64, integer tensors to int64.
        """
        ring = self.reveal_ring(to)
        if ring is None:
            return None
        return decode(ring, self.frac_bits) if self.is_fixed_point else ring.view(np.int64)

    # --- operands ---------------------------------------------------------------------------------
    def _coerce(self, other) -> "SharedTensorCore | tuple[np.ndarray, int]":
        """A shared operand as-is (same protocol and run), a public one as (ring, frac bits)."""
        if isinstance(other, SharedTensorCore):
            if type(other) is not type(self):
                raise ProtocolError(f"cannot combine a {type(self).__name__} with a {type(other).__name__}")
            if other.party is not self.party:
                raise ProtocolError("operands belong to different parties or runs")
            return other
        return public_to_ring(other, self.party.frac_bits, operand=True)

    @staticmethod
    @wrapping
    def _aligned(ring: np.ndarray, frac: int, target: int) -> np.ndarray:
        return ring if frac == target else ring * np.uint64(1 << (target - frac))

    # --- linear operations (local) --------------------------------------------------------------
    @wrapping
    def __add__(self, other):
        other = self._coerce(other)
        frac = max(self.frac_bits, _frac(other))
        mine = [self._aligned(c, self.frac_bits, frac) for c in self.components]
        if isinstance(other, SharedTensorCore):
            theirs = [self._aligned(c, other.frac_bits, frac) for c in other.components]
            return self._new([m + t for m, t in zip(mine, theirs)], frac)
        value = self._aligned(other[0], other[1], frac)
        shape = np.broadcast_shapes(self.shape, value.shape)
        placed = self._public_components(value)
        out = [np.broadcast_to(m, shape).copy() if p is None else m + p for m, p in zip(mine, placed)]
        return self._new(out, frac)

    __radd__ = __add__

    @wrapping
    def __neg__(self):
        return self._local(lambda c: np.uint64(0) - c)

    def __sub__(self, other):
        return self + (-other if isinstance(other, SharedTensorCore) else _negate_public(other))

    def __rsub__(self, other):
        return (-self) + other

    # --- products ---------------------------------------------------------------------------------
    def __mul__(self, other):
        return self._bilinear(other, Bilinear(MUL), reverse=False)

    def __rmul__(self, other):
        return self._bilinear(other, Bilinear(MUL), reverse=True)

    def __matmul__(self, other):
        return self._bilinear(other, Bilinear(MATMUL), reverse=False)

    def __rmatmul__(self, other):
        return self._bilinear(other, Bilinear(MATMUL), reverse=True)

    def matmul(self, other):
        """Matrix product (numpy semantics: 1-D, batched, broadcast)."""
        return self @ other

    def conv2d(self, weight, stride=1, padding=0, dilation=1, groups=1):
        """2-D convolution of this NCHW tensor with an OIHW ``weight`` (shared or public)."""
        return self._bilinear(weight, Bilinear.conv2d(stride, padding, dilation, groups), reverse=False)

    @wrapping
    def _bilinear(self, other, op: Bilinear, reverse: bool):
        other = self._coerce(other)
        if isinstance(other, SharedTensorCore):
            left, right = (other, self) if reverse else (self, other)
            op.output_shape(left.shape, right.shape)  # validate before any traffic
            return self._shared_bilinear(left, right, op)
        value, value_frac = other
        return self._public_bilinear(value, value_frac, op, reverse)._rescaled()

    @wrapping
    def _public_bilinear(self, value: np.ndarray, frac: int, op: Bilinear, reverse: bool) -> "SharedTensorCore":
        """``op`` of this value and public ring elements of scale ``frac`` (local; not rescaled)."""
        if reverse:
            parts = [op.apply(value, c) for c in self.components]
        else:
            parts = [op.apply(c, value) for c in self.components]
        return self._new(parts, self.frac_bits + frac)

    def _rescaled(self) -> "SharedTensorCore":
        """Truncate a product that carries more than ``party.frac_bits`` fraction bits."""
        excess = self.frac_bits - self.party.frac_bits
        if excess <= 0:
            return self
        return self._new(self._truncate_ring(excess), self.party.frac_bits)

    def truncate(self, bits: int) -> "SharedTensorCore":
        """Divide the underlying ring value by 2^bits (error below one unit)."""
        if not 0 <= bits < 63:
            raise ValueError(f"truncation bits must be in [0, 62], got {bits}")
        return self if bits == 0 else self._new(self._truncate_ring(bits))

    def integer_part(self) -> "SharedTensorCore":
        """floor(x) of a fixed-point tensor as an integer tensor, or floor(x) + 1 with the probability of x's
        fraction (the truncation's stochastic rounding; exact where x is an integer). One truncation."""
        if not self.is_fixed_point:
            return self
        return self._new(self._truncate_ring(self.frac_bits), 0)

    def __truediv__(self, other):
        """Division by a public value: multiply by 2^s / d rounded, then truncate by s.

        ``s = frac_bits + ceil(log2 max|d|)`` keeps frac_bits significant bits in the
        reciprocal, so the error is below one unit plus |x / d| * 2^-(frac_bits+1), for
        |x| < 2^(61 - 2 * frac_bits) (2^29 with 16 fraction bits). One truncation.
        A shared divisor is :func:`smpc.mpc.functions.divide` (:class:`smpc.mpc.tensor.SharedTensor`'s ``/``).
        """
        if isinstance(other, SharedTensorCore):
            raise TypeError("division by a shared tensor is smpc.mpc.functions.divide(x, y) (a SharedTensor's `/`)")
        divisor = np.asarray(other, dtype=np.float64)
        if np.any(divisor == 0) or not np.all(np.isfinite(divisor)):
            raise ZeroDivisionError("division of a shared tensor by zero or a non-finite value")
        return self._divide_public(divisor)

    @wrapping
    def _divide_public(self, divisor: np.ndarray) -> "SharedTensorCore":
        target = self.party.frac_bits
        extra = max(0, int(np.ceil(np.log2(np.max(np.abs(divisor))))))
        scale_bits = target + extra
        reciprocal = np.rint(float(2**scale_bits) / divisor).astype(np.int64).view(np.uint64)
        return self._times_public_ring(reciprocal, scale_bits)._rescaled()

    @wrapping
    def _times_public_ring(self, ring: np.ndarray, frac: int) -> "SharedTensorCore":
        """This value times public ring elements of scale ``frac`` (element-wise, local; not rescaled)."""
        return self._new([c * ring for c in self.components], self.frac_bits + frac)

    # --- comparisons (shared bits: integer tensors of 0/1) -------------------------------------------
    # x < y is the sign bit of x - y, exact while |x - y| < 2^63 ring units: every pair of
    # encodable values (|x|, |y| < 2^(62 - frac_bits)).
    def __lt__(self, other) -> "SharedTensorCore":
        return (self - other)._negative_bits()

    def __gt__(self, other) -> "SharedTensorCore":
        return (-(self - other))._negative_bits()

    def __le__(self, other) -> "SharedTensorCore":
        return 1 - (self > other)

    def __ge__(self, other) -> "SharedTensorCore":
        return 1 - (self < other)

    def __eq__(self, other) -> "SharedTensorCore":  # type: ignore[override]
        below, above = self._below_above(other)
        return 1 - below - above

    def __ne__(self, other) -> "SharedTensorCore":  # type: ignore[override]
        below, above = self._below_above(other)
        return below + above

    def _below_above(self, other) -> tuple["SharedTensorCore", "SharedTensorCore"]:
        """(x < y, x > y) from one batched sign-bit call on [x - y, y - x]: one comparison's rounds."""
        difference = self - other
        signs = stack([difference, -difference])._negative_bits()
        return signs[0], signs[1]

    __hash__ = None  # like numpy arrays: == is element-wise

    def sign(self) -> "SharedTensorCore":
        """-1, 0 or 1 per element, as numpy.sign (a shared integer tensor); one comparison's rounds."""
        below, above = self._below_above(0)
        return above - below

    def _times_negative(self) -> "SharedTensorCore":
        """x * msb(x); a protocol may fuse the product into its sign-bit protocol."""
        return self * self._is_negative()

    def _negative_bits(self) -> "SharedTensorCore":
        """msb(x) as shared 0/1, in batches of at most :data:`SIGN_BATCH` elements."""
        return self._in_sign_batches(lambda part: part._is_negative())

    def _negative_times_self(self) -> "SharedTensorCore":
        """x * msb(x), in batches of at most :data:`SIGN_BATCH` elements."""
        return self._in_sign_batches(lambda part: part._times_negative())

    def _in_sign_batches(self, step: Callable[["SharedTensorCore"], "SharedTensorCore"]) -> "SharedTensorCore":
        """``step`` on the whole tensor, or on consecutive slices of its flattened elements (multiples
        of 64, as equal as that allows) when it has more than SIGN_BATCH: memory stays bounded, and
        the rounds are the sign bit's rounds times the number of batches."""
        if self.size <= SIGN_BATCH:
            return step(self)
        batches = -(-self.size // SIGN_BATCH)
        length = -(-self.size // (64 * batches)) * 64
        flat = self.reshape(-1)
        parts = [step(flat[start : start + length]) for start in range(0, self.size, length)]
        return concatenate(parts).reshape(self.shape)

    def _maximum(self, other: "SharedTensorCore") -> "SharedTensorCore":
        """The element-wise larger of two shared tensors of one shape (a level of :func:`smpc.mpc.selection.max`):
        a comparison and a selection, or ``other + relu(self - other)`` where the protocol makes x msb(x) with the
        sign bit at no extra cost (:meth:`_max_by_relu`). Either is exact while |self - other| < 2^63 ring units."""
        if self._max_by_relu():
            return other + (self - other).relu()
        return where(self >= other, self, other)

    def _max_by_relu(self) -> bool:
        """Whether x * msb(x) costs this protocol no more than msb(x) (spdz2k's FSS comparisons); no by default."""
        return False

    def relu(self) -> "SharedTensorCore":
        """max(x, 0) = x - x * msb(x), exact."""
        return self - self._negative_times_self()

    def abs(self) -> "SharedTensorCore":
        """|x| = x - 2 x * msb(x), exact."""
        return self - 2 * self._negative_times_self()

    # --- reductions and shape ---------------------------------------------------------------------
    @wrapping
    def sum(self, axis=None, keepdims: bool = False) -> "SharedTensorCore":
        """Sum over ``axis`` (local, exact in the ring)."""
        return self._local(lambda c: np.sum(c, axis=axis, keepdims=keepdims, dtype=np.uint64))

    def mean(self, axis=None, keepdims: bool = False) -> "SharedTensorCore":
        """Mean over ``axis``: a local sum, then division by the count (one truncation)."""
        count = self.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        if count == 0:
            raise ValueError("mean of an empty shared tensor")
        return self.sum(axis=axis, keepdims=keepdims) / count

    def reshape(self, *shape) -> "SharedTensorCore":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self._local(lambda c: c.reshape(shape))

    def flatten(self) -> "SharedTensorCore":
        return self._local(lambda c: c.reshape(-1))

    def transpose(self, *axes) -> "SharedTensorCore":
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return self._local(lambda c: np.ascontiguousarray(c.transpose(*axes) if axes else c.T))

    @property
    def T(self) -> "SharedTensorCore":
        return self.transpose()

    def __getitem__(self, index) -> "SharedTensorCore":
        if isinstance(index, SharedTensorCore):
            raise TypeError("indexing with a shared index is not supported")
        return self._local(lambda c: np.array(c[index], dtype=np.uint64, copy=True))

    @wrapping
    def __setitem__(self, index, value) -> None:
        if isinstance(value, SharedTensorCore):
            value = self._coerce(value)
            if value.frac_bits != self.frac_bits:
                raise ValueError(
                    f"cannot assign a tensor with frac_bits={value.frac_bits} into one with {self.frac_bits}"
                )
            for mine, theirs in zip(self.components, value.components):
                mine[index] = theirs
            return
        ring, frac = public_to_ring(value, self.party.frac_bits)
        if frac > self.frac_bits:
            raise ValueError("cannot assign fixed-point values into an integer shared tensor")
        ring = self._aligned(ring, frac, self.frac_bits)
        for mine, placed in zip(self.components, self._public_components(ring)):
            mine[index] = np.uint64(0) if placed is None else placed

    @wrapping
    def sum_pool2d(self, kernel_size, stride=None, padding=0) -> "SharedTensorCore":
        """Window sums over an NCHW tensor (local, exact)."""
        return self._local(lambda c: sum_pool2d(c, kernel_size, stride, padding))

    def avg_pool2d(self, kernel_size, stride=None, padding=0) -> "SharedTensorCore":
        """Window averages: window sums divided by kh*kw (one truncation)."""
        kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else kernel_size
        return self.sum_pool2d(kernel_size, stride, padding) / (kh * kw)


def public_to_ring(value, frac_bits: int, operand: bool = False) -> tuple[np.ndarray, int]:
    """A public value as ring elements: integers exactly (scale 0), floats in fixed point.

    An ``operand`` (of ``+ - * @`` or a comparison) that is a nonzero float scalar (0-d) below the resolution
    2^-frac_bits raises :class:`~smpc.exceptions.FixedPointPrecisionWarning`: ``x * 1e-6`` would be ``x * 0``.
    """
    if hasattr(value, "reveal") or hasattr(value, "components"):
        raise TypeError(f"cannot combine a shared tensor with {type(value).__name__}")
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        return to_ring(arr), 0
    if arr.dtype.kind == "f":
        ring = encode(arr, frac_bits)
        if operand and arr.ndim == 0 and arr.item() != 0 and not ring.any():
            warnings.warn(f"public value {arr.item()!r} is below the fixed-point resolution 2^-{frac_bits} and "
                          "encodes to 0; rescale it or raise frac_bits", FixedPointPrecisionWarning, stacklevel=4)
        return ring, frac_bits
    raise TypeError(f"cannot use a public operand of dtype {arr.dtype}")


def source_value(party, x, src: int) -> tuple[np.ndarray, int] | None:
    """Check a ``share(x, src)`` call; the source gets its value as (ring, frac bits), others None.

    At the source, float data most of whose nonzero elements encode to 0 warns (:mod:`smpc.mpc.precision`)."""
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < party.world_size:
        raise ValueError(f"src must be a party rank in 0..{party.world_size - 1}, got {src!r}")
    if party.rank != src:
        if x is not None:
            raise ValueError(
                f"party {party.rank} passed data to share(src={src}); only the source passes data, the others pass None"
            )
        return None
    if x is None:
        raise ValueError(f"party {src} is the source of share() and must pass data, not None")
    if isinstance(x, SharedTensorCore):
        raise TypeError("x is already shared")
    ring, frac = public_to_ring(x, party.frac_bits)
    if frac:
        warn_if_shared_data_vanishes(x, ring, frac)
    return ring, frac


def _frac(operand) -> int:
    return operand.frac_bits if isinstance(operand, SharedTensorCore) else operand[1]


def _negate_public(value):
    arr = np.asarray(value)
    if arr.dtype == np.uint64:
        return (np.uint64(0) - arr).view(np.int64)
    return -arr


def where(condition, a, b):
    """``a`` where the shared bit ``condition`` is 1, else ``b`` (a or b may be public): b + c * (a - b)."""
    if not isinstance(condition, SharedTensorCore):
        raise TypeError("where() needs a shared condition (a comparison's result)")
    if condition.is_fixed_point:
        raise TypeError("where() needs a condition of shared bits (an integer tensor), not fixed point")
    difference = a - b
    return condition * difference + b


def concatenate(tensors: Sequence[SharedTensorCore], axis: int = 0) -> SharedTensorCore:
    """Join shared tensors along an existing axis (local)."""
    return _join(tensors, lambda parts: np.concatenate(parts, axis=axis))


def stack(tensors: Sequence[SharedTensorCore], axis: int = 0) -> SharedTensorCore:
    """Join shared tensors along a new axis (local)."""
    return _join(tensors, lambda parts: np.stack(parts, axis=axis))


def _join(tensors: Sequence[SharedTensorCore], join) -> SharedTensorCore:
    if not tensors:
        raise ValueError("need at least one tensor")
    if not all(isinstance(t, SharedTensorCore) for t in tensors):
        raise TypeError("concatenate/stack take shared tensors only")
    first = tensors[0]
    for t in tensors[1:]:
        first._coerce(t)  # same protocol and run
    frac = max(t.frac_bits for t in tensors)
    count = len(first.components)
    components = [
        join([first._aligned(t.components[i], t.frac_bits, frac) for t in tensors]) for i in range(count)
    ]
    return first._new(components, frac)
