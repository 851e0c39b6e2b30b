"""Exact 2-D convolution and sum pooling in Z_2^64 (uint64, wrapping), NCHW layout.

conv2d is im2col (one gathering copy) onto the ring matmul, batched over N and groups.
"""

from __future__ import annotations

import operator
import threading

import numba
import numpy as np
from numba import njit, prange
from numpy.lib.stride_tricks import sliding_window_view

from smpc.ring.arith import as_ring_operand
from smpc.ring.kernel_choice import PARALLEL_LOCK, choose_kernel
from smpc.ring.matmul import matmul


def _pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints as (h, w)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        try:
            out.append(operator.index(item))
        except TypeError:
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    return out[0], out[1]


def check_hyper(stride, padding, dilation):
    """stride, padding and dilation as (h, w) pairs, after checking their types and signs."""
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    dh, dw = _pair(dilation, "dilation")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride must be positive, got {(sh, sw)}")
    if dh < 1 or dw < 1:
        raise ValueError(f"dilation must be positive, got {(dh, dw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {(ph, pw)}")
    return (sh, sw), (ph, pw), (dh, dw)


def _out_size(size: int, pad: int, kernel: int, stride: int, dilation: int, axis: str) -> int:
    span = dilation * (kernel - 1) + 1
    if size + 2 * pad < span:
        raise ValueError(
            f"kernel (extent {span} with dilation) is larger than the padded input "
            f"({size} + 2*{pad}) along {axis}"
        )
    return (size + 2 * pad - span) // stride + 1


def conv2d_output_shape(
    x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1
) -> tuple[int, int, int, int]:
    """Validate conv2d's arguments (shapes only) and return the output shape (N, O, Ho, Wo)."""
    x_shape = tuple(int(s) for s in x_shape)
    w_shape = tuple(int(s) for s in w_shape)
    if len(x_shape) != 4:
        raise ValueError(f"conv2d: input must be 4-D (N, C, H, W), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"conv2d: weight must be 4-D (O, C/groups, kh, kw), got shape {w_shape}")
    try:
        if isinstance(groups, (bool, np.bool_)):
            raise TypeError
        groups = operator.index(groups)
    except TypeError:
        raise TypeError(f"groups must be an int, got {groups!r}") from None
    if groups < 1:
        raise ValueError(f"groups must be positive, got {groups}")
    (sh, sw), (ph, pw), (dh, dw) = check_hyper(stride, padding, dilation)
    n, c, h, w = x_shape
    o, cg, kh, kw = w_shape
    if c % groups:
        raise ValueError(f"conv2d: input channels {c} not divisible by groups {groups}")
    if o % groups:
        raise ValueError(f"conv2d: output channels {o} not divisible by groups {groups}")
    if cg != c // groups:
        raise ValueError(
            f"conv2d: weight in-channels {cg} != input channels / groups = {c}/{groups} "
            f"(input {x_shape}, weight {w_shape})"
        )
    if kh < 1 or kw < 1:
        raise ValueError(f"conv2d: kernel size must be positive, got weight shape {w_shape}")
    ho = _out_size(h, ph, kh, sh, dh, "H")
    wo = _out_size(w, pw, kw, sw, dw, "W")
    return n, o, ho, wo


def _windows(x, kernel, stride, padding, dilation) -> np.ndarray:
    """View (N, C, Ho, Wo, kh, kw) of the zero-padded input's windows (padding copies x)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = sliding_window_view(x, span, axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw]


@njit(nogil=True, cache=True)
def _im2col_rows(t0, t1, xp, cols, kh, kw, sh, sw, dh, dw, wo):
    """cols[b, g, oy*wo + ox, (c, i, j)] = xp[b, g*cg + c, oy*sh + i*dh, ox*sw + j*dw]
    for the output rows t = b*ho + oy in [t0, t1)."""
    ho = cols.shape[2] // wo
    groups = cols.shape[1]
    cg = xp.shape[1] // groups
    for t in range(t0, t1):
        b = t // ho
        oy = t - b * ho
        for g in range(groups):
            for ox in range(wo):
                row = cols[b, g, oy * wo + ox]
                q = 0
                for c in range(cg):
                    chan = xp[b, g * cg + c]
                    for i in range(kh):
                        src = chan[oy * sh + i * dh]
                        for j in range(kw):
                            row[q] = src[ox * sw + j * dw]
                            q += 1


@njit(nogil=True, cache=True)
def _im2col_serial(xp, cols, kh, kw, sh, sw, dh, dw, wo):
    """Patch rows of the padded input xp into cols (N, G, Ho*Wo, C/G*kh*kw), one thread."""
    _im2col_rows(0, cols.shape[0] * (cols.shape[2] // wo), xp, cols, kh, kw, sh, sw, dh, dw, wo)


@njit(parallel=True, nogil=True, cache=True)
def _im2col_parallel(xp, cols, kh, kw, sh, sw, dh, dw, wo, nchunks):
    """Like _im2col_serial, output rows cut into nchunks runs spread over numba's threads."""
    total = cols.shape[0] * (cols.shape[2] // wo)
    for ch in prange(nchunks):
        lo = ch * total // nchunks
        hi = (ch + 1) * total // nchunks
        _im2col_rows(lo, hi, xp, cols, kh, kw, sh, sw, dh, dw, wo)


# im2col writes into a per-thread buffer kept between calls (up to _SCRATCH_MAX elements):
# first-touching fresh pages costs more than the gather itself on this VM.
_SCRATCH_MAX = 1 << 23
_IM2COL_PARALLEL_MIN = 1 << 16
_scratch = threading.local()


def _scratch_array(shape: tuple) -> np.ndarray:
    size = int(np.prod(shape))
    if size > _SCRATCH_MAX:
        return np.empty(shape, np.uint64)
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1 << 12), np.uint64)
        _scratch.buf = buf
    return buf[:size].reshape(shape)


def conv2d(x, w, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Cross-correlation of x (N, C, H, W) with w (O, C/groups, kh, kw), exact mod 2^64.

    PyTorch's semantics: zero padding; stride, padding, dilation an int or (h, w) pair.
    Returns uint64 of shape (N, O, Ho, Wo); int64 inputs are read as two's complement.
    """
    x = as_ring_operand(x, "conv2d input")
    w = as_ring_operand(w, "conv2d weight")
    n, o, ho, wo = conv2d_output_shape(x.shape, w.shape, stride, padding, dilation, groups)
    (sh, sw), (ph, pw), (dh, dw) = check_hyper(stride, padding, dilation)
    c, kh, kw = x.shape[1], w.shape[2], w.shape[3]
    cg, og = c // groups, o // groups
    kdim, npix = cg * kh * kw, ho * wo
    if n * o * npix == 0:
        return np.zeros((n, o, ho, wo), np.uint64)
    wmat = w.reshape(1, groups, og, kdim)
    if choose_kernel(n * groups, og, kdim, npix)[0] == "dot":
        # The dot kernel wants both operands contiguous along K: patches as rows (L, K),
        # gathered by numba (numpy's copy of the 7-D window view is ~3x slower).
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # a new C-contiguous array
        cols = _scratch_array((n, groups, npix, kdim))
        if cols.size >= _IM2COL_PARALLEL_MIN:
            nchunks = min(n * ho, 8 * numba.get_num_threads())
            with PARALLEL_LOCK:
                _im2col_parallel(xp, cols, kh, kw, sh, sw, dh, dw, wo, nchunks)
        else:
            _im2col_serial(xp, cols, kh, kw, sh, sw, dh, dw, wo)
        out = matmul(wmat, cols.swapaxes(-1, -2))  # (N, G, og, L)
    else:
        # The row-update kernel and numpy want the (K, L) layout: a cheap copy along W.
        win = _windows(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw))  # (N, C, Ho, Wo, kh, kw)
        win = win.reshape(n, groups, cg, ho, wo, kh, kw).transpose(0, 1, 2, 5, 6, 3, 4)
        cols = _scratch_array((n, groups, cg, kh, kw, ho, wo))
        np.copyto(cols, win)
        out = matmul(wmat, cols.reshape(n, groups, kdim, npix))
    return out.reshape(n, o, ho, wo)


def sum_pool2d(x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Sum over each kh x kw window of x (NCHW only), exact mod 2^64, zero padding.

    stride defaults to kernel_size; kernel_size, stride and padding are an int or a pair.
    """
    x = as_ring_operand(x, "sum_pool2d input")
    ho, wo, kernel, stride, padding = sum_pool2d_output_shape(x.shape, kernel_size, stride, padding)
    if x.size == 0:
        return np.zeros(x.shape[:2] + (ho, wo), np.uint64)
    win = _windows(x, kernel, stride, padding, (1, 1))
    return win.sum(axis=(4, 5), dtype=np.uint64)


def sum_pool2d_output_shape(x_shape, kernel_size, stride=None, padding=0) -> tuple:
    """Validate sum pooling's arguments for an NCHW ``x_shape``; return (Ho, Wo, (kh, kw), stride, padding)."""
    if len(x_shape) != 4:
        raise ValueError(f"sum_pool2d: input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    kh, kw = _pair(kernel_size, "kernel_size")
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel_size must be positive, got {(kh, kw)}")
    stride, padding, _ = check_hyper(kernel_size if stride is None else stride, padding, 1)
    ho = _out_size(x_shape[2], padding[0], kh, stride[0], 1, "H")
    wo = _out_size(x_shape[3], padding[1], kw, stride[1], 1, "W")
    return ho, wo, (kh, kw), stride, padding


def warmup() -> None:
    """Compile (or load from numba's cache) the im2col kernels on a tiny input."""
    xp = np.zeros((1, 1, 3, 3), np.uint64)
    cols = np.empty((1, 1, 1, 9), np.uint64)
    _im2col_serial(xp, cols, 3, 3, 1, 1, 1, 1, 1)
    with PARALLEL_LOCK:
        _im2col_parallel(xp, cols, 3, 3, 1, 1, 1, 1, 1, 1)
