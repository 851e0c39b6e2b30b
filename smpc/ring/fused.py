"""Fused element-wise ring kernels (mod 2^64) for the protocols' hottest passes: one pass over memory where numpy
would make five to ten (Beaver products, truncations, the dealer's corrections, random one-hot rows).

Each function takes and returns uint64 arrays and computes exactly what its numpy form in the docstring says;
nothing here knows about parties. The kernels run single-threaded without the GIL: the parties and the dealer
are threads of their own.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_LOW = np.uint64((1 << 63) - 1)


def _flat(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.uint64).reshape(-1)


def masked_sum(x: np.ndarray, r: np.ndarray, bias: int = 0) -> np.ndarray:
    """x + r + bias (a new array of x's shape; x and r of one shape)."""
    out = np.empty(x.shape, np.uint64)
    _masked_sum(_flat(x), _flat(r), np.uint64(bias & ((1 << 64) - 1)), out.reshape(-1))
    return out


def truncation_finish(c: np.ndarray, r_msb: np.ndarray, r_low_shifted: np.ndarray, bits: int, bias_bits: int,
                      leader: bool) -> np.ndarray:
    """A truncation pair's last step on the opened c (one shape for all): with w = r_msb - 2 (c >> 63) r_msb,
    w 2^(63 - bits) - r_low_shifted, and at the ``leader`` also + (c >> 63) 2^(63 - bits) + ((c mod 2^63) >> bits)
    - 2^(bias_bits - bits)."""
    out = np.empty(c.shape, np.uint64)
    _truncation_finish(_flat(c), _flat(r_msb), _flat(r_low_shifted), np.uint64(bits), np.uint64(bias_bits),
                       leader, out.reshape(-1))
    return out


def truncation_correction(r: np.ndarray, msb_others: np.ndarray, low_others: np.ndarray, bits: int) -> np.ndarray:
    """The dealer's correction of a truncation pair, stacked: [(r >> 63) - msb_others, ((r mod 2^63) >> bits) -
    low_others], shape (2, *r.shape)."""
    out = np.empty((2, *r.shape), np.uint64)
    _truncation_correction(_flat(r), _flat(msb_others), _flat(low_others), np.uint64(bits), out.reshape(2, -1))
    return out


def beaver_mul_finish(e: np.ndarray, f: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                      leader: bool) -> np.ndarray:
    """An element-wise Beaver product's share (one shape for all): c + e b + a f, and + e f at the ``leader``."""
    out = np.empty(c.shape, np.uint64)
    _beaver_mul_finish(_flat(e), _flat(f), _flat(a), _flat(b), _flat(c), leader, out.reshape(-1))
    return out


def product_minus(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a b - c, written into c (a C-contiguous uint64 array of a's shape), which is returned."""
    _product_minus(_flat(a), _flat(b), c.reshape(-1))
    return c


def negated_one_hot(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """e_r - rows in place for (n, 2^m) rows (C-contiguous uint64) and offsets r (taken mod 2^m); returns rows."""
    _negated_one_hot(rows, _flat(offsets))
    return rows


@njit(cache=True, nogil=True)
def _masked_sum(x, r, bias, out):  # pragma: no cover (compiled)
    for i in range(out.size):
        out[i] = x[i] + r[i] + bias


@njit(cache=True, nogil=True)
def _truncation_finish(c, r_msb, r_low, bits, bias_bits, leader, out):  # pragma: no cover (compiled)
    one = np.uint64(1)
    scale = one << (np.uint64(63) - bits)
    low = np.uint64((1 << 63) - 1)
    bias = one << (bias_bits - bits)
    for i in range(out.size):
        top = c[i] >> np.uint64(63)
        y = (r_msb[i] - np.uint64(2) * top * r_msb[i]) * scale - r_low[i]
        if leader:
            y += top * scale + ((c[i] & low) >> bits) - bias
        out[i] = y


@njit(cache=True, nogil=True)
def _truncation_correction(r, msb_others, low_others, bits, out):  # pragma: no cover (compiled)
    low = np.uint64((1 << 63) - 1)
    for i in range(r.size):
        out[0, i] = (r[i] >> np.uint64(63)) - msb_others[i]
        out[1, i] = ((r[i] & low) >> bits) - low_others[i]


@njit(cache=True, nogil=True)
def _beaver_mul_finish(e, f, a, b, c, leader, out):  # pragma: no cover (compiled)
    for i in range(out.size):
        z = c[i] + e[i] * b[i] + a[i] * f[i]
        if leader:
            z += e[i] * f[i]
        out[i] = z


@njit(cache=True, nogil=True)
def _product_minus(a, b, c):  # pragma: no cover (compiled)
    for i in range(c.size):
        c[i] = a[i] * b[i] - c[i]


@njit(cache=True, nogil=True)
def _negated_one_hot(rows, offsets):  # pragma: no cover (compiled)
    width = rows.shape[1]
    mask = np.uint64(width - 1)
    for i in range(rows.shape[0]):
        for j in range(width):
            rows[i, j] = np.uint64(0) - rows[i, j]
        rows[i, offsets[i] & mask] += np.uint64(1)


def warmup() -> None:
    """Compile (or load from numba's cache) every kernel here on tiny inputs."""
    one = np.ones(2, np.uint64)
    masked_sum(one, one, 1)
    truncation_finish(one, one, one, 3, 62, True)
    truncation_correction(one, one, one, 3)
    beaver_mul_finish(one, one, one, one, one, True)
    product_minus(one, one, one.copy())
    negated_one_hot(np.ones((2, 4), np.uint64), one)
