"""Exact Z_2^128 kernels on two uint64 limbs: add, sub, neg, sum, the element-wise and the matrix product.

An element array is uint64 with a trailing axis of 2 limbs, ``x[..., 0]`` the low and ``x[..., 1]`` the high 64
bits (value = lo + 2^64 hi): in memory each element is its 16 bytes, little-endian, as a native uint128 would be.
These functions take arrays already checked by :class:`smpc.ring.rings.Ring128` (which is what callers use) and
wrap modulo 2^128 exactly.

Products come from 32 x 32 -> 64-bit limb products (what the CPU's vector multiply does well). For one element,
with x = x0 + 2^64 x1, y = y0 + 2^64 y1 and x0 = xl + 2^32 xh, y0 = yl + 2^32 yh::

    x * y mod 2^128 = xl*yl + 2^32 (xl*yh + xh*yl) + 2^64 (xh*yh + x0*y1 + x1*y0 mod 2^64)

The matrix product sums these over k. A sum of full 64-bit products overflows, so the kernel keeps, per output,
the raw sums mod 2^64 of xl*yl and of xl*yh + xh*yl together with the exact sums of their high halves; the exact
low halves follow by subtraction (``sum(q & M) = sum(q) - 2^32 sum(q >> 32)``, exact because it is below 2^64),
and the carries into the high limb are added once per block of k (:data:`_KC` terms). Every accumulation is a
plain sum, so numba (LLVM) vectorizes the loop over k.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from smpc.ring import int8_gemm
from smpc.ring.kernel_choice import PARALLEL_LOCK, nthreads

_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)

# A k-block of this many terms keeps every exact partial sum below 3 * 2^32 * _KC < 2^64.
_KC = 512
# Output blocks of _MC x _NC elements are the parallel tasks.
_MC = 64
_NC = 64
# Multiply-adds from which the matrix product runs on numba's threads (as smpc.ring.kernel_choice's).
_PARALLEL_MIN_MACS = 1_000_000


# ------------------------------------------------------------------------------ element-wise
@njit(nogil=True, cache=True)
def _add_flat(a, b, out):  # pragma: no cover (compiled)
    for i in range(a.shape[0]):
        lo = a[i, 0] + b[i, 0]
        out[i, 1] = a[i, 1] + b[i, 1] + (lo < a[i, 0])
        out[i, 0] = lo


@njit(nogil=True, cache=True)
def _sub_flat(a, b, out):  # pragma: no cover (compiled)
    for i in range(a.shape[0]):
        out[i, 1] = a[i, 1] - b[i, 1] - (a[i, 0] < b[i, 0])
        out[i, 0] = a[i, 0] - b[i, 0]


@njit(nogil=True, cache=True)
def _neg_flat(a, out):  # pragma: no cover (compiled)
    for i in range(a.shape[0]):
        out[i, 1] = ~a[i, 1] + (a[i, 0] == 0)
        out[i, 0] = ~a[i, 0] + _ONE


@njit(nogil=True, cache=True)
def _add_one(a, b0, b1, out):  # pragma: no cover (compiled)
    for i in range(a.shape[0]):
        lo = a[i, 0] + b0
        out[i, 1] = a[i, 1] + b1 + (lo < b0)
        out[i, 0] = lo


def _single(b: np.ndarray) -> tuple | None:
    """The two limbs of ``b`` if it holds one element (a broadcast scalar), else None."""
    if b.size != 2:
        return None
    flat = b.reshape(2)
    return np.uint64(flat[0]), np.uint64(flat[1])


def _flat_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Both operands broadcast against each other, as contiguous (count, 2) limb arrays, and the result's shape."""
    if a.shape != b.shape:
        a, b = np.broadcast_arrays(a, b)
    shape = a.shape
    return (np.ascontiguousarray(a, dtype=np.uint64).reshape(-1, 2),
            np.ascontiguousarray(b, dtype=np.uint64).reshape(-1, 2), shape)


def _commutative(a: np.ndarray, b: np.ndarray, pairwise, with_one) -> np.ndarray:
    """A commutative element-wise kernel on broadcast operands: ``pairwise(a, b, out)`` on (count, 2) limb arrays,
    or ``with_one(other, lo, hi, out)`` where one operand holds a single element (never broadcast into a copy)."""
    if a.size < b.size:
        a, b = b, a
    one = _single(b)
    if one is not None and a.ndim >= b.ndim:
        flat = np.ascontiguousarray(a, dtype=np.uint64).reshape(-1, 2)
        out = np.empty_like(flat)
        with_one(flat, *one, out)
        return out.reshape(a.shape)
    flat_a, flat_b, shape = _flat_pair(a, b)
    out = np.empty_like(flat_a)
    pairwise(flat_a, flat_b, out)
    return out.reshape(shape)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b mod 2^128 (numpy broadcasting over the leading axes)."""
    return _commutative(a, b, _add_flat, _add_one)


def sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b mod 2^128."""
    flat_a, flat_b, shape = _flat_pair(a, b)
    out = np.empty_like(flat_a)
    _sub_flat(flat_a, flat_b, out)
    return out.reshape(shape)


def neg(a: np.ndarray) -> np.ndarray:
    """-a mod 2^128 (two's complement: ~a + 1)."""
    flat = np.ascontiguousarray(a, dtype=np.uint64).reshape(-1, 2)
    out = np.empty_like(flat)
    _neg_flat(flat, out)
    return out.reshape(a.shape)


def sum_axes(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The sum mod 2^128 over ``axes`` (axes of the element array, never the limb axis).

    The low limb is summed as two exact 32-bit halves (exact while fewer than 2^32 terms are added).
    """
    count = math.prod(a.shape[i] for i in axes)
    if count >= 1 << 32:
        raise ValueError(f"sum: {count} terms are more than the 2^32 this kernel adds exactly")
    lo = a[..., 0]
    low_halves = np.sum(lo & _M32, axis=axes, dtype=np.uint64)
    high_halves = np.sum(lo >> _S32, axis=axes, dtype=np.uint64)
    hi = np.sum(a[..., 1], axis=axes, dtype=np.uint64)
    out_lo = low_halves + (high_halves << _S32)
    out_hi = hi + (high_halves >> _S32) + (out_lo < low_halves)
    return np.stack((np.asarray(out_lo), np.asarray(out_hi)), axis=-1)


@njit(inline="always")
def _mul_words(x0, x1, y0, y1):  # pragma: no cover (compiled)
    """(lo, hi) of (x0 + 2^64 x1) * (y0 + 2^64 y1) mod 2^128."""
    xl = x0 & _M32
    xh = x0 >> _S32
    yl = y0 & _M32
    yh = y0 >> _S32
    q00 = xl * yl
    q01 = xl * yh
    q10 = xh * yl
    mid = (q00 >> _S32) + (q01 & _M32) + (q10 & _M32)
    lo = (q00 & _M32) | (mid << _S32)
    hi = xh * yh + (q01 >> _S32) + (q10 >> _S32) + (mid >> _S32) + x0 * y1 + x1 * y0
    return lo, hi


@njit(nogil=True, cache=True)
def _mul_flat(a, b, out):  # pragma: no cover (compiled)
    for i in range(a.shape[0]):
        lo, hi = _mul_words(a[i, 0], a[i, 1], b[i, 0], b[i, 1])
        out[i, 0] = lo
        out[i, 1] = hi


@njit(nogil=True, cache=True)
def _mul_one(a, b0, b1, out):  # pragma: no cover (compiled)
    for i in range(a.shape[0]):
        lo, hi = _mul_words(a[i, 0], a[i, 1], b0, b1)
        out[i, 0] = lo
        out[i, 1] = hi


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b mod 2^128, element by element (numpy broadcasting over the leading axes)."""
    return _commutative(a, b, _mul_flat, _mul_one)


@njit(nogil=True, cache=True)
def _choose_difference(own, c, s, rs, e, out):  # pragma: no cover (compiled)
    for i in range(out.shape[0]):
        lo, hi = _mul_words(c[i, 0], c[i, 1], s[i, 0], s[i, 1])
        low = lo - rs[i, 0]
        high = hi - rs[i, 1] - (lo < rs[i, 0])
        if e[i] & _ONE:  # e is public: the branch reveals nothing
            out[i, 1] = own[i, 1] - high - (own[i, 0] < low)
            out[i, 0] = own[i, 0] - low
        else:
            out[i, 0] = low
            out[i, 1] = high


def choose_difference(own: np.ndarray, c: np.ndarray, s: np.ndarray, rs: np.ndarray, e: np.ndarray) -> np.ndarray:
    """own - (c s - rs) where the public bit e is 1, c s - rs where it is 0, mod 2^128, in one pass: the last step
    of x msb(x) from an opened c = x + r and shares of s and r s (all (n, 2) limbs; e (n,) words 0/1)."""
    flat = [np.ascontiguousarray(a, dtype=np.uint64).reshape(-1, 2) for a in (own, c, s, rs)]
    if len({a.shape for a in flat}) != 1 or e.shape != (flat[0].shape[0],):
        raise ValueError("choose_difference: own, c, s and rs need one shape (n, 2), e the shape (n,)")
    out = np.empty_like(flat[0])
    _choose_difference(*flat, np.ascontiguousarray(e, dtype=np.uint64), out)
    return out


# ------------------------------------------------------------------------------ matmul kernel
@njit(inline="always")
def _mac(x0, x1, xh, y0, y1, yh, u, v, w, x, h):  # pragma: no cover (compiled)
    """One product x * y added to the accumulators (u, v, w, x, h) described in _block_value."""
    xl = x0 & _M32  # the masks fold into the 32 x 32 -> 64 vector multiply
    yl = y0 & _M32
    q00 = xl * yl
    q01 = xl * yh
    q10 = xh * yl
    u += q00
    v += q01 + q10
    w += q00 >> _S32
    x += (q01 >> _S32) + (q10 >> _S32)
    h += xh * yh + x0 * y1 + x1 * y0
    return u, v, w, x, h


@njit(inline="always")
def _block_value(u, v, w, x, h):  # pragma: no cover (compiled)
    """(lo, hi) of a block's sum from its accumulators.

    u = sum q00 and v = sum (q01 + q10), both mod 2^64; w = sum (q00 >> 32) and x = sum (q01 >> 32) + (q10 >> 32),
    exact; h = sum (q11 + x0*y1 + x1*y0) mod 2^64.
    """
    low00 = u - (w << _S32)  # sum (q00 & M), exact: below 2^32 * _KC
    col32 = w + v - (x << _S32)  # the sum of everything of weight 2^32, exact: below 3 * 2^32 * _KC
    lo = low00 + (col32 << _S32)
    hi = h + x + (col32 >> _S32) + np.uint64(lo < low00)
    return lo, hi


@njit(inline="always")
def _store(out, i, j, value, first):  # pragma: no cover (compiled)
    lo, hi = value
    if first:
        out[i, j, 0] = lo
        out[i, j, 1] = hi
    else:
        s = out[i, j, 0] + lo
        out[i, j, 1] = out[i, j, 1] + hi + np.uint64(s < lo)
        out[i, j, 0] = s


@njit(nogil=True, cache=True)
def _tile(a0, a1, b0, b1, out, i0, j0, p0, p1):  # pragma: no cover (compiled)
    """out[i0:i0+2, j0:j0+2] (+)= a[i0:i0+2, p0:p1] @ b^T[j0:j0+2, p0:p1].T; past an edge a row or column is
    recomputed but not stored."""
    m = a0.shape[0]
    n = b0.shape[0]
    i1 = min(i0 + 1, m - 1)
    j1 = min(j0 + 1, n - 1)
    ra0 = a0[i0, p0:p1]
    ra1 = a1[i0, p0:p1]
    rb0 = a0[i1, p0:p1]
    rb1 = a1[i1, p0:p1]
    ca0 = b0[j0, p0:p1]
    ca1 = b1[j0, p0:p1]
    cb0 = b0[j1, p0:p1]
    cb1 = b1[j1, p0:p1]
    z = np.uint64(0)
    u00 = v00 = w00 = x00 = h00 = z
    u01 = v01 = w01 = x01 = h01 = z
    u10 = v10 = w10 = x10 = h10 = z
    u11 = v11 = w11 = x11 = h11 = z
    for p in range(p1 - p0):
        r0 = ra0[p]
        r1 = ra1[p]
        rh = r0 >> _S32
        s0 = rb0[p]
        s1 = rb1[p]
        sh = s0 >> _S32
        c0 = ca0[p]
        c1 = ca1[p]
        ch = c0 >> _S32
        d0 = cb0[p]
        d1 = cb1[p]
        dh = d0 >> _S32
        u00, v00, w00, x00, h00 = _mac(r0, r1, rh, c0, c1, ch, u00, v00, w00, x00, h00)
        u01, v01, w01, x01, h01 = _mac(r0, r1, rh, d0, d1, dh, u01, v01, w01, x01, h01)
        u10, v10, w10, x10, h10 = _mac(s0, s1, sh, c0, c1, ch, u10, v10, w10, x10, h10)
        u11, v11, w11, x11, h11 = _mac(s0, s1, sh, d0, d1, dh, u11, v11, w11, x11, h11)
    first = p0 == 0
    _store(out, i0, j0, _block_value(u00, v00, w00, x00, h00), first)
    if j0 + 1 < n:
        _store(out, i0, j0 + 1, _block_value(u01, v01, w01, x01, h01), first)
    if i0 + 1 < m:
        _store(out, i0 + 1, j0, _block_value(u10, v10, w10, x10, h10), first)
        if j0 + 1 < n:
            _store(out, i0 + 1, j0 + 1, _block_value(u11, v11, w11, x11, h11), first)


@njit(nogil=True, cache=True)
def _task(t, a0, a1, b0, b1, ia, ib, out):  # pragma: no cover (compiled)
    """Output block t: batch index, then row block, then column block (C order)."""
    m = a0.shape[1]
    k = a0.shape[2]
    n = b0.shape[1]
    nic = (m + _MC - 1) // _MC
    njc = (n + _NC - 1) // _NC
    jc = t % njc
    t //= njc
    ic = t % nic
    bi = t // nic
    x0 = a0[ia[bi]]
    x1 = a1[ia[bi]]
    y0 = b0[ib[bi]]
    y1 = b1[ib[bi]]
    c = out[bi]
    for p0 in range(0, k, _KC):
        p1 = min(p0 + _KC, k)
        for i0 in range(ic * _MC, min(ic * _MC + _MC, m), 2):
            for j0 in range(jc * _NC, min(jc * _NC + _NC, n), 2):
                _tile(x0, x1, y0, y1, c, i0, j0, p0, p1)


@njit(nogil=True, cache=True)
def _ntasks(nb, m, n):  # pragma: no cover (compiled)
    return nb * ((m + _MC - 1) // _MC) * ((n + _NC - 1) // _NC)


@njit(nogil=True, cache=True)
def _matmul_serial(a0, a1, b0, b1, ia, ib, out):  # pragma: no cover (compiled)
    for t in range(_ntasks(ia.shape[0], a0.shape[1], b0.shape[1])):
        _task(t, a0, a1, b0, b1, ia, ib, out)


@njit(parallel=True, nogil=True, cache=True)
def _matmul_parallel(a0, a1, b0, b1, ia, ib, out):  # pragma: no cover (compiled)
    for t in prange(_ntasks(ia.shape[0], a0.shape[1], b0.shape[1])):
        _task(t, a0, a1, b0, b1, ia, ib, out)


# ------------------------------------------------------------------------------ matmul front end
def matmul_shape(a_shape: tuple, b_shape: tuple) -> tuple[tuple, tuple, int, int, int]:
    """(output shape, broadcast batch shape, m, k, n) of ``np.matmul`` on tensors of these shapes; ValueError
    naming both shapes when they do not align or broadcast."""
    if not a_shape or not b_shape:
        raise ValueError(f"matmul: operands must have at least one dimension, got shapes {a_shape} and {b_shape}")
    a2 = (1,) + a_shape if len(a_shape) == 1 else a_shape
    b2 = b_shape + (1,) if len(b_shape) == 1 else b_shape
    m, k = a2[-2:]
    k_b, n = b2[-2:]
    if k != k_b:
        which = "only" if len(b_shape) == 1 else "second-to-last"
        raise ValueError(f"matmul: shapes {a_shape} and {b_shape} do not align: "
                         f"{k} (last dim of a) != {k_b} ({which} dim of b)")
    try:
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {a_shape} and {b_shape} do not broadcast") from None
    out_shape = batch + ((m,) if len(a_shape) > 1 else ()) + ((n,) if len(b_shape) > 1 else ())
    return out_shape, batch, m, k, n


def _batch_index(own: tuple, batch: tuple) -> np.ndarray:
    """For each matrix of the broadcast batch (C order), the index of the operand's own matrix."""
    index = np.arange(math.prod(own), dtype=np.int64).reshape(own)
    return np.broadcast_to(index, batch).flatten()


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul`` of two element arrays mod 2^128 (trailing limb axis on both and on the result)."""
    a_shape, b_shape = a.shape[:-1], b.shape[:-1]
    out_shape, batch, m, k, n = matmul_shape(a_shape, b_shape)
    if math.prod(out_shape) == 0 or k == 0:
        return np.zeros(out_shape + (2,), np.uint64)
    a4 = a.reshape((-1, m, k, 2))  # a 1-D a is one row
    b4 = b.reshape((-1, k, n, 2))  # a 1-D b is one column
    a_batch = a_shape[:-2] if len(a_shape) > 1 else ()
    b_batch = b_shape[:-2] if len(b_shape) > 1 else ()
    if math.prod(b_batch) == 1:  # b is one matrix: a's matrices stacked into one tall product
        a4 = a4.reshape((1, -1, k, 2))
        ia = ib = np.zeros(1, np.int64)
    else:
        ia = _batch_index(a_batch, batch)
        ib = _batch_index(b_batch, batch)
    # Limb planes, b's transposed so that both run along k (one copy each, O(size) against the O(m k n) product).
    a0 = np.ascontiguousarray(a4[..., 0])
    a1 = np.ascontiguousarray(a4[..., 1])
    b0 = np.ascontiguousarray(b4[..., 0].swapaxes(1, 2))
    b1 = np.ascontiguousarray(b4[..., 1].swapaxes(1, 2))
    return planes_product(a0, a1, b0, b1, ia, ib).reshape(out_shape + (2,))


def planes_product(a0: np.ndarray, a1: np.ndarray, bt0: np.ndarray, bt1: np.ndarray, ia: np.ndarray,
                   ib: np.ndarray) -> np.ndarray:
    """The products a[ia[t]] @ b[ib[t]] mod 2^128 for t over the batch, from C-contiguous uint64 limb planes:
    a0, a1 (A, m, k) (low and high words) and b's transposes bt0, bt1 (B, n, k); returns (len(ia), m, n, 2).
    :func:`matmul` makes the planes; a caller that has them already (the convolution's patch rows) skips that copy.
    Large products run on :mod:`smpc.ring.int8_gemm` where that is faster.
    """
    nb, rows, k, n = ia.shape[0], a0.shape[1], a0.shape[2], bt0.shape[1]
    if int8_gemm.preferred(rows, k, n, nwords=2):
        return int8_gemm.planes_product128(a0, a1, bt0, bt1, ia, ib)
    out = np.empty((nb, rows, n, 2), np.uint64)
    if nb * rows * k * n >= _PARALLEL_MIN_MACS and nthreads() > 1:
        with PARALLEL_LOCK:
            _matmul_parallel(a0, a1, bt0, bt1, ia, ib, out)
    else:
        _matmul_serial(a0, a1, bt0, bt1, ia, ib, out)
    return out


def warmup() -> None:
    """Compile (or load from numba's cache) the Z_2^128 kernels on tiny inputs."""
    x = np.arange(1, 13, dtype=np.uint64).reshape(1, 2, 3, 2)
    planes = np.ascontiguousarray(x[..., 0]), np.ascontiguousarray(x[..., 1])
    index = np.zeros(1, np.int64)
    out = np.empty((1, 2, 2, 2), np.uint64)
    with PARALLEL_LOCK:
        _matmul_parallel(*planes, *planes, index, index, out)
    _matmul_serial(*planes, *planes, index, index, out)
    flat = x.reshape(-1, 2)
    for kernel in (_mul_flat, _add_flat, _sub_flat):
        kernel(flat, flat, np.empty((6, 2), np.uint64))
    _choose_difference(flat, flat, flat, flat, np.ones(6, np.uint64), np.empty((6, 2), np.uint64))
    for kernel in (_mul_one, _add_one):
        kernel(flat, np.uint64(3), np.uint64(4), np.empty((6, 2), np.uint64))
    _neg_flat(flat, np.empty((6, 2), np.uint64))
