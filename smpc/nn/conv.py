"""2-D convolution (PyTorch's cross-correlation, NCHW, OIHW weights) and its gradients, for every array kind.

Plaintext runs as im2col (one strided copy per kernel offset) and a batched BLAS product in the input's
float type. A shared input with a shared or public weight uses the protocol's own convolution (one
conv-shaped Beaver triple). The gradients are written with indexing, ``stack`` and ``@`` only, so they
run on shared tensors too (each costs one shared matrix product, like the forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc.nn import arrays


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
        """Validate a convolution of an (N, C, H, W) input with an (O, C/groups, kh, kw) weight."""
        if len(x_shape) != 4:
            raise ValueError(f"conv2d: input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
        if len(w_shape) != 4:
            raise ValueError(f"conv2d: weight must be 4-D (O, C/groups, kh, kw), got shape {tuple(w_shape)}")
        n, c, h, w = x_shape
        o, cg, kh, kw = w_shape
        if not isinstance(groups, (int, np.integer)) or groups < 1 or c % groups or o % groups:
            raise ValueError(f"conv2d: groups={groups!r} must be a positive divisor of the input channels {c} "
                             f"and of the output channels {o}")
        if cg * groups != c:
            raise ValueError(f"conv2d: input has {c} channels but the weight {tuple(w_shape)} expects "
                             f"{cg * groups} (= {cg} per group x {groups} groups)")
        stride, padding, dilation = (_pair(v, name) for v, name in
                                     ((stride, "stride"), (padding, "padding"), (dilation, "dilation")))
        if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
            raise ValueError(f"conv2d: stride and dilation must be positive and padding non-negative, got "
                             f"{stride}, {dilation}, {padding}")
        ho = _out_size(h, padding[0], kh, stride[0], dilation[0], "height")
        wo = _out_size(w, padding[1], kw, stride[1], dilation[1], "width")
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
    if arrays.is_shared(x) or arrays.is_shared(weight):
        if not arrays.is_shared(x):
            x = arrays.lift(x, weight)
        out = x.conv2d(weight, geo.stride, geo.padding, geo.dilation, geo.groups)
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


def _pair(value, name: str) -> tuple[int, int]:
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise TypeError(f"conv2d: {name} must be an int or a pair of ints, got {value!r}")
    return int(items[0]), int(items[1])


def _out_size(size: int, pad: int, kernel: int, stride: int, dilation: int, axis: str) -> int:
    span = dilation * (kernel - 1) + 1
    if size + 2 * pad < span:
        raise ValueError(f"conv2d: kernel (extent {span}) is larger than the padded input ({size} + 2*{pad}) "
                         f"along the {axis}")
    return (size + 2 * pad - span) // stride + 1
