"""2-D convolution (PyTorch's cross-correlation, NCHW, OIHW weights) and its gradients, for every array kind.

Plaintext runs as im2col (one strided copy per kernel offset) and a batched BLAS product in the input's
float type. A shared input with a shared or public weight uses the protocol's own convolution (one
conv-shaped Beaver triple). The gradients are written with indexing, ``stack`` and ``@`` only, so they
run on shared tensors too (each costs one shared matrix product, like the forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc.mpc import arrays
from smpc.ring.conv import check_hyper, conv2d_output_shape


@dataclass(frozen=True)
class ConvGeometry:
    """The shapes and hyper-parameters of one convolution, checked once."""

    n: int
    c: int
    h: int
    w: int
    o: int
    kh: int
    kw: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    ho: int
    wo: int

    @classmethod
    def of(cls, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1) -> "ConvGeometry":
        """Validate a convolution of an (N, C, H, W) input with an (O, C/groups, kh, kw) weight (the ring
        kernel's checks, so plaintext and shared convolutions refuse the same arguments alike)."""
        n, o, ho, wo = conv2d_output_shape(x_shape, w_shape, stride, padding, dilation, groups)
        stride, padding, dilation = check_hyper(stride, padding, dilation)
        _, c, h, w = (int(v) for v in x_shape)
        _, _, kh, kw = (int(v) for v in w_shape)
        return cls(n, c, h, w, o, kh, kw, stride, padding, dilation, int(groups), ho, wo)

    @property
    def kernel_dim(self) -> int:
        return self.c // self.groups * self.kh * self.kw

    def offsets(self):
        """(row slice, column slice) into the padded input for every kernel cell, row-major."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        for i in range(self.kh):
            rows = slice(i * dh, i * dh + sh * (self.ho - 1) + 1, sh)
            for j in range(self.kw):
                yield rows, slice(j * dw, j * dw + sw * (self.wo - 1) + 1, sw)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolution of x (N, C, H, W) with weight (O, C/groups, kh, kw), plus ``bias`` (O,) if given."""
    geo = ConvGeometry.of(x.shape, weight.shape, stride, padding, dilation, groups)
    # shared: the protocol's convolution (its triple is the size of x, w and the output; im2col's matmul triple
    # would hold every patch); floats: im2col and one matmul per group
    if arrays.is_shared(x) or arrays.is_shared(weight):
        out = arrays.lift(x, weight).conv2d(weight, geo.stride, geo.padding, geo.dilation, geo.groups)
    else:
        x, weight = _same_float(x, weight)
        cols = im2col(x, geo)
        out = (weight.reshape(geo.groups, geo.o // geo.groups, -1) @ cols).reshape(geo.n, geo.o, geo.ho, geo.wo)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out


def conv2d_grads(x, weight, grad, geo: ConvGeometry, need_x: bool = True, need_w: bool = True):
    """(d/dx, d/dweight) of ``sum(grad * conv2d(x, weight))``; either may be skipped (None)."""
    g = grad.reshape(geo.n, geo.groups, geo.o // geo.groups, geo.ho * geo.wo)
    grad_w = grad_x = None
    if need_w:
        cols = im2col(x, geo)  # (N, G, K, L)
        grad_w = (g @ arrays.swap_last(cols)).sum(axis=0).reshape(geo.o, geo.c // geo.groups, geo.kh, geo.kw)
    if need_x:
        w = weight.reshape(geo.groups, geo.o // geo.groups, geo.kernel_dim)
        grad_x = col2im(arrays.swap_last(w) @ g, geo)
    return grad_x, grad_w


def im2col(x, geo: ConvGeometry):
    """Patches of x as (N, G, C/G * kh * kw, Ho * Wo), channel-major then kernel cell, as weights flatten."""
    xp = arrays.pad2d(x, *geo.padding)
    cells = [xp[:, :, rows, cols] for rows, cols in geo.offsets()]
    patches = arrays.stack(cells, axis=2)  # (N, C, kh*kw, Ho, Wo)
    return patches.reshape(geo.n, geo.groups, geo.kernel_dim, geo.ho * geo.wo)


def col2im(cols, geo: ConvGeometry):
    """The adjoint of :func:`im2col`: add every patch entry back onto the input cell it came from."""
    (ph, pw) = geo.padding
    cells = cols.reshape(geo.n, geo.c, geo.kh * geo.kw, geo.ho, geo.wo)
    padded = arrays.zeros(cols, (geo.n, geo.c, geo.h + 2 * ph, geo.w + 2 * pw))
    for k, (rows, columns) in enumerate(geo.offsets()):
        padded[:, :, rows, columns] = padded[:, :, rows, columns] + cells[:, :, k]
    return padded[:, :, ph:ph + geo.h, pw:pw + geo.w]


def _same_float(x: np.ndarray, w: np.ndarray):
    """Both operands in the input's float type (float32 stays float32, anything else float64)."""
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False)
