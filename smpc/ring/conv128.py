"""Exact 2-D convolution and sum pooling mod 2^128 on two uint64 limbs (NCHW, a trailing limb axis).

The same im2col as :mod:`smpc.ring.conv` (the patches of each limb plane gathered into rows) onto the Z_2^128
matrix product of :mod:`smpc.ring.ring128`; sum pooling adds each window's elements with carries.
"""

from __future__ import annotations

import numpy as np

from smpc.ring import ring128
from smpc.ring.conv import _im2col_serial, _windows, check_hyper, conv2d_output_shape, sum_pool2d_output_shape


def conv2d(x: np.ndarray, w: np.ndarray, stride=1, padding=0, dilation=1, groups: int = 1) -> np.ndarray:
    """Cross-correlation of x (N, C, H, W, 2) with w (O, C/groups, kh, kw, 2) mod 2^128 (PyTorch's semantics:
    zero padding; stride, padding and dilation an int or an (h, w) pair). Returns (N, O, Ho, Wo, 2)."""
    n, o, ho, wo = conv2d_output_shape(x.shape[:-1], w.shape[:-1], stride, padding, dilation, groups)
    stride, padding, dilation = check_hyper(stride, padding, dilation)
    c, kh, kw = x.shape[1], w.shape[2], w.shape[3]
    cg, og = c // groups, o // groups
    kdim, npix = cg * kh * kw, ho * wo
    if n * o * npix == 0:
        return np.zeros((n, o, ho, wo, 2), np.uint64)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    rows = []  # per limb, the patches as rows (N G, L, K): the layout the Z_2^128 kernel reads b in
    for limb in (0, 1):
        padded = np.pad(x[..., limb], ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # a new C-contiguous plane
        patches = np.empty((n, groups, npix, kdim), np.uint64)
        _im2col_serial(padded, patches, kh, kw, sh, sw, dh, dw, wo)
        rows.append(patches.reshape(n * groups, npix, kdim))
    weights = [np.ascontiguousarray(w[..., limb].reshape(groups, og, kdim)) for limb in (0, 1)]
    batch = np.arange(n * groups, dtype=np.int64)
    out = ring128.planes_product(*weights, *rows, batch % groups, batch)  # (N G, og, L, 2)
    return out.reshape(n, o, ho, wo, 2)


def sum_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0) -> np.ndarray:
    """The sum of each window of x (N, C, H, W, 2) mod 2^128, zero padding (stride defaults to the kernel)."""
    ho, wo, (kh, kw), stride, padding = sum_pool2d_output_shape(x.shape[:-1], kernel_size, stride, padding)
    if x.size == 0:
        return np.zeros(x.shape[:2] + (ho, wo, 2), np.uint64)
    limbs = [_windows(np.ascontiguousarray(x[..., limb]), (kh, kw), stride, padding, (1, 1)) for limb in (0, 1)]
    stacked = np.stack([limb.reshape(*limb.shape[:4], kh * kw) for limb in limbs], axis=-1)  # (N, C, Ho, Wo, K, 2)
    return ring128.sum_axes(stacked, (4,))
