"""Conversions between numpy integer arrays and Z_2^64 (uint64 with wrap-around)."""

from __future__ import annotations

import functools

import numpy as np

_INTEGER_KINDS = "iu"


def to_ring(x) -> np.ndarray:
    """View or convert an integer array as uint64 modulo 2^64 (negative values wrap)."""
    arr = np.asarray(x)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype.kind not in _INTEGER_KINDS:
        raise TypeError(f"ring elements must have an integer dtype, got {arr.dtype}")
    return arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else arr.astype(np.uint64)


def as_ring_operand(x, what: str) -> np.ndarray:
    """A kernel operand as uint64 without copying: uint64 or int64 (two's complement) only.

    Stricter than :func:`to_ring`: a kernel refuses narrower integers rather than guess.
    ``what`` names the operand in the ``TypeError``.
    """
    arr = np.asarray(x)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype == np.int64:
        return arr.view(np.uint64)
    if arr.dtype.kind in "iu" and arr.dtype.itemsize == 8:  # non-native byte order
        return arr.astype(arr.dtype.newbyteorder("=")).view(np.uint64)
    raise TypeError(f"{what} must have dtype uint64 or int64, got {arr.dtype}")


def signed(u) -> np.ndarray:
    """The two's complement (int64) view of ring elements."""
    return np.asarray(u, dtype=np.uint64).view(np.int64)


def arithmetic_shift(u, bits: int) -> np.ndarray:
    """Signed (arithmetic) right shift of ring elements by ``bits``, returned as uint64."""
    return (signed(u) >> np.int64(bits)).view(np.uint64)


def wrapping(fn):
    """Decorator: run ``fn`` with numpy's integer-overflow warnings off.

    Ring arithmetic wraps modulo 2^64 by design; numpy warns only when an operation
    yields a scalar (0-d shares), which would be noise here.
    """

    @functools.wraps(fn)
    def ring_op(*args, **kwargs):
        with np.errstate(over="ignore"):
            return fn(*args, **kwargs)

    return ring_op


@wrapping
def ring_add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x + y mod 2^64 (a new array)."""
    return x + y


@wrapping
def ring_sub(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x - y mod 2^64 (a new array)."""
    return x - y
