"""Exact matrix product in Z_2^64 (uint64, wrapping), with numpy.matmul's shape semantics.

numpy's integer matmul is a slow generic loop; numba kernels picked by shape do the work, and large products run
on :mod:`smpc.ring.int8_gemm` where that is available and faster.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numba import njit, prange

from smpc.ring import int8_gemm
from smpc.ring.arith import as_ring_operand
from smpc.ring.kernel_choice import PARALLEL_LOCK, choose_kernel, nthreads

# Few output tiles and a k at least this long: the dot kernel splits k between threads.
_SPLITK_MIN_K = 2_048

# Dot kernel blocking: a KC-long slice of 4 rows of a (32 KiB) stays in L1 while the tile
# loop walks an NC x KC panel of b^T (1 MiB, L2); MC x NC output blocks are the tasks.
# 1000^3: KC=1024, MC=NC=128 ~0.025 s; 2000^3: ~0.20 s (unblocked: 0.48 s).
_KC = 1024
_MC = 128
_NC = 128
# Axpy kernel: output rows are cut into chunks of this many columns (a task each).
_AXPY_NC = 1024


_ZERO_INDEX = np.zeros(1, np.int64)  # batch index of a single product (never written)


# ------------------------------------------------------------------------------ kernels
@njit(nogil=True, cache=True)
def _dot_tile(a, bt, c, tmp, i0, j0, p0, p1, accumulate):
    """c[i0:i0+4, j0:j0+4] (+)= a[i0:i0+4, p0:p1] @ bt[j0:j0+4, p0:p1].T, 16 dot products.

    Past the edge the last row/column is recomputed but not stored.
    """
    m = a.shape[0]
    n = bt.shape[0]
    i1 = min(i0 + 1, m - 1)
    i2 = min(i0 + 2, m - 1)
    i3 = min(i0 + 3, m - 1)
    j1 = min(j0 + 1, n - 1)
    j2 = min(j0 + 2, n - 1)
    j3 = min(j0 + 3, n - 1)
    x0r = a[i0, p0:p1]
    x1r = a[i1, p0:p1]
    x2r = a[i2, p0:p1]
    x3r = a[i3, p0:p1]
    y0r = bt[j0, p0:p1]
    y1r = bt[j1, p0:p1]
    y2r = bt[j2, p0:p1]
    y3r = bt[j3, p0:p1]
    zero = np.uint64(0)
    s00 = s01 = s02 = s03 = zero
    s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = zero
    s30 = s31 = s32 = s33 = zero
    for p in range(p1 - p0):
        x0 = x0r[p]
        x1 = x1r[p]
        x2 = x2r[p]
        x3 = x3r[p]
        y0 = y0r[p]
        y1 = y1r[p]
        y2 = y2r[p]
        y3 = y3r[p]
        s00 += x0 * y0
        s01 += x0 * y1
        s02 += x0 * y2
        s03 += x0 * y3
        s10 += x1 * y0
        s11 += x1 * y1
        s12 += x1 * y2
        s13 += x1 * y3
        s20 += x2 * y0
        s21 += x2 * y1
        s22 += x2 * y2
        s23 += x2 * y3
        s30 += x3 * y0
        s31 += x3 * y1
        s32 += x3 * y2
        s33 += x3 * y3
    tmp[0, 0], tmp[0, 1], tmp[0, 2], tmp[0, 3] = s00, s01, s02, s03
    tmp[1, 0], tmp[1, 1], tmp[1, 2], tmp[1, 3] = s10, s11, s12, s13
    tmp[2, 0], tmp[2, 1], tmp[2, 2], tmp[2, 3] = s20, s21, s22, s23
    tmp[3, 0], tmp[3, 1], tmp[3, 2], tmp[3, 3] = s30, s31, s32, s33
    for r in range(min(4, m - i0)):
        for s in range(min(4, n - j0)):
            if accumulate:
                c[i0 + r, j0 + s] += tmp[r, s]
            else:
                c[i0 + r, j0 + s] = tmp[r, s]


@njit(nogil=True, cache=True)
def _dot_task(t, a3, bt3, ia, ib, out, mc, nc, kc, nsplit, tmp):
    """One task of the dot kernel: an mc x nc output block, one of nsplit slices of k."""
    nb = ia.shape[0]
    m = a3.shape[1]
    k = a3.shape[2]
    n = bt3.shape[1]
    nic = (m + mc - 1) // mc
    njc = (n + nc - 1) // nc
    jc = t % njc
    t //= njc
    ic = t % nic
    t //= nic
    bi = t % nb
    s = t // nb
    a = a3[ia[bi]]
    bt = bt3[ib[bi]]
    c = out[s, bi]
    klo = s * k // nsplit
    khi = (s + 1) * k // nsplit
    for p0 in range(klo, khi, kc):
        p1 = min(p0 + kc, khi)
        for i0 in range(ic * mc, min(ic * mc + mc, m), 4):
            for j0 in range(jc * nc, min(jc * nc + nc, n), 4):
                _dot_tile(a, bt, c, tmp, i0, j0, p0, p1, p0 != klo)


@njit(nogil=True, cache=True)
def _dot_range(lo, hi, a3, bt3, ia, ib, out, mc, nc, kc, nsplit):
    tmp = np.empty((4, 4), np.uint64)
    for t in range(lo, hi):
        _dot_task(t, a3, bt3, ia, ib, out, mc, nc, kc, nsplit, tmp)


@njit(nogil=True, cache=True)
def _dot_ntasks(nb, m, n, mc, nc, nsplit):
    return nb * nsplit * ((m + mc - 1) // mc) * ((n + nc - 1) // nc)


@njit(nogil=True, cache=True)
def _dot_serial(a3, bt3, ia, ib, out, mc, nc, kc, nsplit):
    """out[s, i] = slice s (of nsplit) of k of a3[ia[i]] @ bt3[ib[i]].T, one thread."""
    ntasks = _dot_ntasks(ia.shape[0], a3.shape[1], bt3.shape[1], mc, nc, nsplit)
    _dot_range(0, ntasks, a3, bt3, ia, ib, out, mc, nc, kc, nsplit)


@njit(parallel=True, nogil=True, cache=True)
def _dot_parallel(a3, bt3, ia, ib, out, mc, nc, kc, nsplit, nchunks):
    """Like _dot_serial, the tasks cut into nchunks runs spread over numba's threads."""
    ntasks = _dot_ntasks(ia.shape[0], a3.shape[1], bt3.shape[1], mc, nc, nsplit)
    for ch in prange(nchunks):
        lo = ch * ntasks // nchunks
        hi = (ch + 1) * ntasks // nchunks
        _dot_range(lo, hi, a3, bt3, ia, ib, out, mc, nc, kc, nsplit)


@njit(nogil=True, cache=True)
def _axpy_task(t, a3, b3, ia, ib, c3, nc):
    """Row i of one product, columns [jlo, jlo + nc): c[i, :] = sum_p a[i, p] * b[p, :]."""
    m = a3.shape[1]
    k = a3.shape[2]
    n = b3.shape[2]
    njc = (n + nc - 1) // nc
    jc = t % njc
    t //= njc
    i = t % m
    bi = t // m
    a = a3[ia[bi]]
    b = b3[ib[bi]]
    jlo = jc * nc
    w = min(nc, n - jlo)
    crow = c3[bi, i, jlo:jlo + w]
    aip = a[i, 0]
    brow = b[0, jlo:jlo + w]
    for j in range(w):
        crow[j] = aip * brow[j]
    for p in range(1, k):
        aip = a[i, p]
        brow = b[p, jlo:jlo + w]
        for j in range(w):
            crow[j] += aip * brow[j]


@njit(nogil=True, cache=True)
def _axpy_serial(a3, b3, ia, ib, c3, nc):
    """c3[i] = a3[ia[i]] @ b3[ib[i]] row by row (k >= 1), one thread."""
    ntasks = ia.shape[0] * a3.shape[1] * ((b3.shape[2] + nc - 1) // nc)
    for t in range(ntasks):
        _axpy_task(t, a3, b3, ia, ib, c3, nc)


@njit(parallel=True, nogil=True, cache=True)
def _axpy_parallel(a3, b3, ia, ib, c3, nc, nchunks):
    """Like _axpy_serial, the tasks cut into nchunks runs spread over numba's threads."""
    ntasks = ia.shape[0] * a3.shape[1] * ((b3.shape[2] + nc - 1) // nc)
    for ch in prange(nchunks):
        for t in range(ch * ntasks // nchunks, (ch + 1) * ntasks // nchunks):
            _axpy_task(t, a3, b3, ia, ib, c3, nc)


# --------------------------------------------------------------------------- front end
def _kernel_operand(x: np.ndarray) -> np.ndarray:
    """C-contiguous and writeable (numba compiles a separate variant for read-only arrays)."""
    if x.flags.c_contiguous and x.flags.writeable:
        return x
    return np.array(x, order="C")


def _batch_index(batch_shape: tuple, out_batch: tuple) -> np.ndarray:
    """For each matrix of the broadcast batch (C order), the index of the operand's matrix."""
    own = np.arange(math.prod(batch_shape), dtype=np.int64).reshape(batch_shape)
    return np.broadcast_to(own, out_batch).flatten()


# Page faults are costly (on this VM, first-touching 8 MiB takes ~15 ms, rewriting it
# 0.2 ms), so each thread keeps the buffer b^T is copied into, up to _SCRATCH_MAX elements.
_SCRATCH_MAX = 1 << 22
_scratch = threading.local()


def _transposed(b3: np.ndarray) -> np.ndarray:
    """(B, n, k) C-contiguous b3.swapaxes(1, 2): free when b3 is a transposed view."""
    bt = b3.swapaxes(1, 2)
    if bt.flags.c_contiguous and bt.flags.writeable:
        return bt
    size = bt.size
    if size > _SCRATCH_MAX:
        if b3.flags.c_contiguous:  # large: a tiled parallel transpose (numpy's strided copy is 10x slower here)
            out = np.empty(bt.shape, np.uint64)
            _tiled_transpose(b3, out)
            return out
        return np.array(bt, order="C")
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1 << 12), np.uint64)
        _scratch.buf = buf
    out = buf[:size].reshape(bt.shape)
    np.copyto(out, bt)  # numpy's strided copy is as fast as a blocked numba transpose
    return out


_TILE = 64


@njit(parallel=True, nogil=True, cache=True)
def _tiled_transpose(source, out):
    """out[b, j, i] = source[b, i, j] for C-contiguous (B, k, n) source and (B, n, k) out, by 64x64 tiles."""
    batches, rows, cols = source.shape
    row_tiles = (rows + _TILE - 1) // _TILE
    col_tiles = (cols + _TILE - 1) // _TILE
    for task in prange(batches * row_tiles * col_tiles):
        b = task // (row_tiles * col_tiles)
        rest = task % (row_tiles * col_tiles)
        r0 = (rest // col_tiles) * _TILE
        c0 = (rest % col_tiles) * _TILE
        for i in range(r0, min(r0 + _TILE, rows)):
            for j in range(c0, min(c0 + _TILE, cols)):
                out[b, j, i] = source[b, i, j]


def _run(method: str, parallel: bool, a3, b3, ia, ib) -> np.ndarray:
    """(B, m, n) products a3[ia[i]] @ b3[ib[i]] by a numba method, "axpy" or "dot" (k >= 1)."""
    nb = ia.shape[0]
    _, m, k = a3.shape
    n = b3.shape[2]
    a3 = _kernel_operand(a3)
    threads = nthreads() if parallel else 1
    if method == "axpy":
        b3 = _kernel_operand(b3)
        c3 = np.empty((nb, m, n), np.uint64)
        nc = min(n, _AXPY_NC)
        if parallel:
            ntasks = nb * m * -(-n // nc)
            with PARALLEL_LOCK:
                _axpy_parallel(a3, b3, ia, ib, c3, nc, min(ntasks, 8 * threads))
        else:
            _axpy_serial(a3, b3, ia, ib, c3, nc)
        return c3
    if method != "dot":
        raise ValueError(f"matmul: unknown method {method!r}")
    bt3 = _transposed(b3)
    # Shrink the output blocks until there are a few tasks per thread; if the output is
    # too small for that and k is long, split k and add up the partial products.
    mc, nc = _MC, _NC
    while parallel and nb * -(-m // mc) * -(-n // nc) < 4 * threads and max(mc, nc) > 16:
        if mc >= nc:
            mc //= 2
        else:
            nc //= 2
    ntasks = nb * -(-m // mc) * -(-n // nc)
    nsplit = 1
    if parallel and ntasks < 2 * threads and k >= _SPLITK_MIN_K:
        nsplit = min(-(-2 * threads // ntasks), k // (_SPLITK_MIN_K // 2))
    out = np.empty((nsplit, nb, m, n), np.uint64)
    if parallel:
        with PARALLEL_LOCK:
            nchunks = min(ntasks * nsplit, 8 * threads)
            _dot_parallel(a3, bt3, ia, ib, out, mc, nc, _KC, nsplit, nchunks)
    else:
        _dot_serial(a3, bt3, ia, ib, out, mc, nc, _KC, nsplit)
    return out[0] if nsplit == 1 else out.sum(axis=0, dtype=np.uint64)


def _matmul(a, b, method: str | None = None, parallel: bool | None = None) -> np.ndarray:
    """matmul with the kernel optionally forced (tests use this to reach every kernel)."""
    a = as_ring_operand(a, "matmul: operand a")
    b = as_ring_operand(b, "matmul: operand b")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: operands must have at least one dimension, got shapes {a.shape} "
            f"and {b.shape}"
        )
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    m, k = a2.shape[-2:]
    k_b, n = b2.shape[-2:]
    if k != k_b:
        which = "only" if b.ndim == 1 else "second-to-last"
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align: "
            f"{k} (last dim of a) != {k_b} ({which} dim of b)"
        )
    a_batch = a2.shape[:-2]
    b_batch = b2.shape[:-2]
    if not b_batch:
        batch = a_batch
    else:
        try:
            batch = np.broadcast_shapes(a_batch, b_batch)
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of shapes {a.shape} and {b.shape} do not broadcast"
            ) from None
    out_shape = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    if math.prod(batch) * m * n == 0 or k == 0:
        return np.zeros(out_shape, np.uint64)

    fold = math.prod(b_batch) == 1  # b is one matrix: stack a's into one tall product
    nb, rows = (1, math.prod(a_batch) * m) if fold else (math.prod(batch), m)
    if method is None:
        method, par = choose_kernel(nb, rows, k, n)
        parallel = par if parallel is None else parallel
        if int8_gemm.preferred(rows, k, n, nwords=1):
            method = "int8"
    if method == "numpy":
        return np.asarray(np.matmul(a, b))
    if fold:
        a3 = a2.reshape(1, rows, k)
        b3 = b2.reshape(1, k, n)
        ia = ib = _ZERO_INDEX
    else:
        a3 = a2.reshape((-1, m, k))
        b3 = b2.reshape((-1, k, n))
        ia = _batch_index(a_batch, batch)
        ib = _batch_index(b_batch, batch)
    if method == "int8":
        c3 = int8_gemm.matmul64(a3, _transposed(b3), ia, ib)
    else:
        c3 = _run(method, bool(parallel), a3, b3, ia, ib)
    return c3.reshape(out_shape)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)`` in Z_2^64: uint64 (int64 read as two's complement), wrapping.

    Every shape numpy.matmul accepts works, batch broadcasting included; 1-D @ 1-D gives
    a 0-d array. Other dtypes raise TypeError, misaligned shapes ValueError.
    """
    return _matmul(a, b)


def warmup() -> None:
    """Compile (or load from numba's cache) the matmul kernels on tiny inputs (every ring kernel:
    :func:`smpc.ring.jit.warmup`)."""
    a = np.arange(1, 7, dtype=np.uint64).reshape(1, 2, 3)
    b = np.arange(1, 7, dtype=np.uint64).reshape(1, 3, 2)
    idx = np.zeros(1, np.int64)
    bt = _transposed(b)
    out = np.empty((1, 1, 2, 2), np.uint64)
    with PARALLEL_LOCK:
        _dot_parallel(a, bt, idx, idx, out, 4, 4, 4, 1, 1)
        _axpy_parallel(a, b, idx, idx, out[0], 2, 1)
    _dot_serial(a, bt, idx, idx, out, 4, 4, 4, 1)
    _axpy_serial(a, b, idx, idx, out[0], 2)
    _tiled_transpose(b, np.empty((1, 2, 3), np.uint64))
