"""Z_2^128 arrays as the spdz2k tensor holds them: one numpy element of 16 bytes per value (:data:`U128`, fields
``lo`` and ``hi``), so shape operations (reshape, transpose, indexing, concatenation) work on them as on any array,
and views as two uint64 limbs (a trailing axis, :mod:`smpc.ring.ring128`'s layout) for the arithmetic.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from smpc.mpc.bilinear import CONV2D, MATMUL, MUL, Bilinear
from smpc.ring import conv128, ring128
from smpc.ring.arith import wrapping
from smpc.ring.rings import RING128

#: one Z_2^128 element: the low and the high 64 bits, little-endian (a uint128's bytes)
U128 = np.dtype([("lo", "<u8"), ("hi", "<u8")])


def limbs(words: np.ndarray) -> np.ndarray:
    """The uint64 limbs (shape + (2,)) of a :data:`U128` array: a view where it is contiguous, else a copy."""
    flat = np.ascontiguousarray(words).reshape(-1)
    return flat.view(np.uint64).reshape(words.shape + (2,))


def words(limb_array: np.ndarray) -> np.ndarray:
    """The :data:`U128` array (shape without the limb axis) of uint64 limbs: a view where they are contiguous."""
    flat = np.ascontiguousarray(limb_array, dtype=np.uint64).reshape(-1)
    return flat.view(U128).reshape(limb_array.shape[:-1])


def zeros(shape) -> np.ndarray:
    """Zeros of ``shape`` as :data:`U128`."""
    return np.zeros(shape, U128)


def lift(ring: np.ndarray) -> np.ndarray:
    """Z_2^64 values (uint64, two's complement) sign-extended to Z_2^128 limbs: the same integer."""
    return RING128.lift(np.asarray(ring, dtype=np.uint64), signed=True)


def low_limb(limb_array: np.ndarray) -> np.ndarray:
    """The value mod 2^64 (uint64) of Z_2^128 limbs: what a spdz2k share means with k = 64."""
    return np.array(limb_array[..., 0], dtype=np.uint64, copy=True)


@wrapping
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b mod 2^128 on limbs (broadcasting)."""
    return ring128.add(a, b)


@wrapping
def sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b mod 2^128 on limbs (broadcasting)."""
    return ring128.sub(a, b)


@wrapping
def neg(a: np.ndarray) -> np.ndarray:
    """-a mod 2^128 on limbs."""
    return ring128.neg(a)


@wrapping
def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b mod 2^128 on limbs (broadcasting)."""
    return ring128.mul(a, b)


def shift_left(a: np.ndarray, bits: int) -> np.ndarray:
    """a * 2^bits mod 2^128 on limbs."""
    return RING128.shift_left(a, bits)


@wrapping
def sum_axes(a: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
    """The sum mod 2^128 over ``axis`` (numpy's meaning, the limb axis excluded) on limbs."""
    ndim = a.ndim - 1
    axes = tuple(range(ndim)) if axis is None else tuple(normalize_axis_tuple(axis, ndim))
    total = ring128.sum_axes(a, axes)
    if keepdims:
        for ax in sorted(axes):
            total = np.expand_dims(total, ax)
    return total


@wrapping
def apply(op: Bilinear, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``op(x, y)`` mod 2^128 on limbs: the element-wise product, the matrix product or the convolution."""
    if op.code == MUL:
        return ring128.mul(x, y)
    if op.code == MATMUL:
        return ring128.matmul(x, y)
    if op.code == CONV2D:
        return conv128.conv2d(x, y, **op._conv_kwargs())
    raise ValueError(f"unknown bilinear op {op!r}")
