"""The arithmetic of :class:`EncryptedArray`: additions, negation, plain products, sums and matrix products.

Each result's public bound follows from its operands' (see :mod:`smpc.he.encoding`): an addition
adds one bit, a product adds the bounds, a sum or matrix product of ``k`` terms adds ``ceil(log2 k)``;
a result whose bound leaves the plaintext space raises :class:`PlaintextOverflowError`.
"""

from __future__ import annotations

import numpy as np

from smpc.he import raw
from smpc.he.encoding import encode_plain, native_frac_bits
from smpc.he.errors import KeyMismatchError


def check_same_key(a, b) -> None:
    """Two public keys must be the same key."""
    if a.n != b.n:
        raise KeyMismatchError(
            f"operands are encrypted under different keys ({a.fingerprint} and {b.fingerprint})"
        )


def objects(values, shape: tuple) -> np.ndarray:
    """An object array of ``shape`` holding ``values`` (a flat sequence, an mpz or an object array)."""
    out = np.empty(shape, dtype=object)
    if isinstance(values, np.ndarray):
        out[...] = values
    elif shape == ():
        out[()] = values[0] if isinstance(values, list) else values
    else:
        out.reshape(-1)[:] = list(values)
    return out


def log2_ceil(k: int) -> int:
    return max(0, int(k - 1).bit_length())


def rescale(arr, frac_bits: int):
    """The same values with more fraction bits: every plaintext times ``2^d`` (``c^(2^d)``)."""
    d = frac_bits - arr.frac_bits
    if d == 0:
        return arr
    cts = raw.mul_plain(arr.public_key, arr._cts.reshape(-1).tolist(), 1 << d)
    return arr._derive(objects(cts, arr.shape), frac_bits, arr.bound_bits + d, False)


def add_encrypted(a, b):
    """``a + b`` for two encrypted arrays (broadcasting; fraction bits aligned to the larger)."""
    check_same_key(a.public_key, b.public_key)
    frac = max(a.frac_bits, b.frac_bits)
    a, b = rescale(a, frac), rescale(b, frac)
    n2 = a.public_key.nsquare
    cts = np.asarray(a._cts * b._cts % n2, dtype=object).reshape(np.broadcast_shapes(a.shape, b.shape))
    return a._derive(cts, frac, max(a.bound_bits, b.bound_bits) + 1, a.integer and b.integer)


def add_plain(arr, plain: np.ndarray, sign: int = 1):
    """``arr + sign * plain`` for a public array (broadcasting)."""
    arr = rescale(arr, max(arr.frac_bits, native_frac_bits(plain)))
    encoded = encode_plain(plain, arr.frac_bits)
    shape = np.broadcast_shapes(arr.shape, encoded.values.shape)
    cts = np.broadcast_to(arr._cts, shape).reshape(-1).tolist()
    values = [sign * v for v in np.broadcast_to(encoded.values, shape).reshape(-1).tolist()]
    out = raw.add_plain(arr.public_key, cts, values)
    bound = max(arr.bound_bits, encoded.bound_bits) + 1
    return arr._derive(objects(out, shape), arr.frac_bits, bound, arr.integer and encoded.integer)


def negate(arr):
    """``-arr``: every ciphertext inverted mod n^2."""
    cts = raw.negate(arr.public_key, arr._cts.reshape(-1).tolist())
    return arr._derive(objects(cts, arr.shape), arr.frac_bits, arr.bound_bits, arr.integer)


def mul_plain(arr, plain: np.ndarray):
    """``arr * plain`` (broadcasting): ``c^k``; fraction bits and bounds add."""
    encoded = encode_plain(plain, native_frac_bits(plain))
    shape = np.broadcast_shapes(arr.shape, encoded.values.shape)
    cts = np.broadcast_to(arr._cts, shape).reshape(-1).tolist()
    if encoded.values.size == 1:
        out = raw.mul_plain(arr.public_key, cts, int(encoded.values.reshape(-1)[0]))
    else:
        out = raw.mul_plain(arr.public_key, cts, np.broadcast_to(encoded.values, shape).reshape(-1).tolist())
    frac = arr.frac_bits + encoded.frac_bits
    return arr._derive(objects(out, shape), frac, arr.bound_bits + encoded.bound_bits, arr.integer and encoded.integer)


def sum_axis(arr, axis):
    """The homomorphic sum along ``axis`` (None: all elements; a tuple: each of them)."""
    if axis is None:
        return sum_axis(arr.reshape(-1), 0)
    if isinstance(axis, tuple):
        axes = sorted((_normalize_axis(a, arr.ndim) for a in axis), reverse=True)
        if len(set(axes)) != len(axes):
            raise ValueError(f"duplicate axis in {axis}")
        result = arr
        for a in axes:
            result = sum_axis(result, a)
        return result
    axis = _normalize_axis(axis, arr.ndim)
    moved = np.moveaxis(arr._cts, axis, 0)
    k, n2 = moved.shape[0], arr.public_key.nsquare
    if k == 0:
        acc = np.full(moved.shape[1:], 1, dtype=object)
    else:
        acc = moved[0]
        for i in range(1, k):
            acc = acc * moved[i] % n2
    cts = objects(acc if isinstance(acc, np.ndarray) else [acc], moved.shape[1:])
    return arr._derive(cts, arr.frac_bits, arr.bound_bits + log2_ceil(k), arr.integer)


def matmul(arr, plain: np.ndarray, encrypted_left: bool):
    """``arr @ plain`` (``encrypted_left``) or ``plain @ arr``, for 1-D and 2-D operands as numpy."""
    if arr.ndim not in (1, 2) or plain.ndim not in (1, 2):
        raise ValueError(f"matmul supports 1-D and 2-D operands, got {arr.ndim}-D and {plain.ndim}-D")
    encoded = encode_plain(plain, native_frac_bits(plain))
    left, right = (arr.shape, plain.shape) if encrypted_left else (plain.shape, arr.shape)
    k = left[-1]
    if right[0] != k:
        raise ValueError(f"matmul: shapes {left} and {right} do not align ({k} != {right[0]})")
    cts = arr._cts
    shape = tuple(left[:-1]) + tuple(right[1:])
    bound = arr.bound_bits + encoded.bound_bits + log2_ceil(k)
    frac = arr.frac_bits + encoded.frac_bits
    integer = arr.integer and encoded.integer
    if k == 0:  # empty products: Enc(0)
        return arr._derive(np.full(shape, 1, dtype=object), frac, bound, integer)
    if encrypted_left:
        ints = encoded.values.reshape(k, -1)
        out = raw.matmul(arr.public_key, cts.reshape(-1, k), ints)
    else:
        ints = encoded.values.reshape(-1, k)
        out = raw.rmatmul(arr.public_key, ints, cts.reshape(k, -1))
    return arr._derive(objects(out.reshape(shape), shape), frac, bound, integer)


def _normalize_axis(axis, ndim: int) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis!r} is out of range for an array of {ndim} dimensions")
    return int(axis) % ndim
