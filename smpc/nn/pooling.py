"""Max and average pooling of NCHW tensors (shared or numpy), as torch.nn.functional's (ceil_mode False).

Uses the shared-tensor interface only (indexing, ``concatenate``, selection), never a protocol's internals.
Windows are gathered with one precomputed index array into the flattened H*W plane.
"""

from __future__ import annotations

import operator

import numpy as np

from smpc.mpc import arrays, selection


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """Window maxima of an NCHW (or CHW) tensor, as torch.nn.functional.max_pool2d (ceil_mode False).

    ``stride`` defaults to ``kernel_size``; padded cells never win (a shared tensor pads with
    -2^62 in the ring, below every encodable value, so inputs need |x| < 2^(62 - frac_bits)).
    Windows are gathered with one precomputed index array and all reduce in one tree.
    Rounds: ceil(log2(kh * kw)) * (C + M), as :func:`smpc.mpc.selection.max`.
    """
    batched, x = _as_nchw(x, "max_pool2d")
    index, needs_pad = _window_index(x.shape, kernel_size, stride, padding, dilation)
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    if needs_pad:
        flat = _join([flat, _lowest_like(flat[:, :, :1])])
    pooled = np.max(flat[:, :, index], axis=-1)
    return pooled if batched else pooled.reshape(pooled.shape[1:])


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Window means of an NCHW (or CHW) tensor, padding counted as zeros (torch's default).

    Rounds: one truncation for a shared tensor (a local window sum, then a public division).
    """
    batched, x = _as_nchw(x, "avg_pool2d")
    x = arrays.as_float(x)
    index, needs_pad = _window_index(x.shape, kernel_size, stride, padding, 1)
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    if needs_pad:
        flat = np.concatenate([flat, arrays.zeros(flat, (n, c, 1))], axis=2)
    pooled = flat[:, :, index].sum(axis=-1) / index.shape[-1]  # shared: a local sum, one public division
    return pooled if batched else pooled.reshape(pooled.shape[1:])


def _as_nchw(x, name: str):
    """(whether x was batched, x as NCHW); numpy-like inputs become arrays."""
    x = arrays.asarray(x)  # integer and boolean arrays kept (max_pool2d takes them)
    if x.ndim == 4:
        return True, x
    if x.ndim == 3:
        return False, x.reshape(1, *x.shape)
    raise ValueError(f"{name}: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {tuple(x.shape)}")


def _pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints as (h, w)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(item, (bool, np.bool_)) for item in items):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    try:
        return operator.index(items[0]), operator.index(items[1])
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None


def _window_index(shape, kernel_size, stride, padding, dilation) -> tuple[np.ndarray, bool]:
    """Indices (Ho, Wo, kh*kw) of every window's cells in the flattened H*W plane, H*W for a padded cell.

    Also whether any padded cell is used. Checks the arguments as torch does, and refuses
    windows with no input cell (torch's -inf has no fixed-point value).
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    dh, dw = _pair(dilation, "dilation")
    if min(kh, kw) < 1 or min(sh, sw) < 1 or min(dh, dw) < 1:
        raise ValueError(f"kernel_size, stride and dilation must be positive, got {(kh, kw)}, {(sh, sw)}, {(dh, dw)}")
    if not (0 <= ph <= kh // 2 and 0 <= pw <= kw // 2):
        raise ValueError(f"padding must be non-negative and at most half the kernel size {(kh, kw)}, got {(ph, pw)}")
    _, _, h, w = shape
    rows = _cells(h, kh, sh, ph, dh, "height")  # (Ho, kh)
    cols = _cells(w, kw, sw, pw, dw, "width")  # (Wo, kw)
    r, c = rows[:, None, :, None], cols[None, :, None, :]
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    if not inside.any(axis=(2, 3)).all():  # torch would give -inf there; a fixed-point value cannot
        raise ValueError(f"a window lies wholly in the padding: input {h}x{w}, kernel {(kh, kw)}, "
                         f"padding {(ph, pw)}, dilation {(dh, dw)}")
    index = np.where(inside, r * w + c, h * w).reshape(len(rows), len(cols), kh * kw)
    return index, not inside.all()


def _cells(size: int, kernel: int, stride: int, pad: int, dilation: int, axis: str) -> np.ndarray:
    """Input coordinates (outputs, kernel) of each window along one axis (negative or >= size: padding)."""
    span = dilation * (kernel - 1) + 1
    if size + 2 * pad < span:
        raise ValueError(
            f"kernel (extent {span} with dilation) is larger than the padded input ({size} + 2*{pad}) along {axis}"
        )
    outputs = (size + 2 * pad - span) // stride + 1
    return np.arange(outputs)[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation


def _lowest_like(column):
    """A constant column that loses every comparison: -2^62 in the ring, or the dtype's minimum for numpy."""
    # the lowest value differs in kind: numpy's -inf (or the dtype's minimum) has no fixed-point encoding
    if not arrays.is_shared(column):
        kind = column.dtype.kind
        lowest = -np.inf if kind == "f" else False if kind == "b" else np.iinfo(column.dtype).min
        return np.full(column.shape, lowest, dtype=column.dtype)
    # two public halves of -2^61 each: -2^62 itself is not an encodable public value
    half = 2.0 ** (61 - column.party.frac_bits) if column.is_fixed_point else 2**61
    return column * 0 - half - half


def _join(parts):
    """Concatenate along the last axis (shared or numpy)."""
    return np.concatenate(parts, axis=-1)


def max_pool2d_grad(x, grad, kernel_size, stride=None, padding=0, dilation=1):
    """d/dx of ``sum(grad * max_pool2d(x))`` for a 4-D x: each window's gradient goes to its first maximum.

    A shared x pays one one-hot argmax over the windows and one product of the gradient with its bits.
    """
    n, c, h, w = x.shape
    index, needs_pad = _window_index(x.shape, kernel_size, stride, padding, dilation)
    flat = x.reshape(n, c, h * w)
    if needs_pad:
        flat = _join([flat, _lowest_like(flat[:, :, :1])])
    windows = flat[:, :, index]  # (N, C, Ho, Wo, k)
    onehot = selection.argmax_onehot(windows, axis=-1)
    pieces = onehot * grad.reshape(*grad.shape, 1)
    return _scatter_windows(pieces, index, x.shape)


def avg_pool2d_grad(grad, x_shape, kernel_size, stride=None, padding=0):
    """d/dx of ``sum(grad * avg_pool2d(x))``: every window cell receives its window's gradient / (kh kw)."""
    index, _ = _window_index(x_shape, kernel_size, stride, padding, 1)
    share = grad / index.shape[-1]
    pieces = [share] * index.shape[-1]
    return _scatter_windows(pieces, index, x_shape)


def _scatter_windows(pieces, index: np.ndarray, x_shape) -> object:
    """Add window-cell values back onto their input cells; ``pieces[..., k]`` belongs to window cell k.

    ``pieces`` is an array (N, C, Ho, Wo, k) or a list of k (N, C, Ho, Wo) parts. Within one cell k
    the windows touch distinct input cells (only the padding cell repeats, and it is dropped), so each
    cell is one indexed read-add-write.
    """
    n, c, h, w = x_shape
    first = pieces[0] if isinstance(pieces, list) else pieces
    out = arrays.zeros(arrays.as_float(first), (n, c, h * w + 1))
    for k in range(index.shape[-1]):
        cells = index[:, :, k]
        part = pieces[k] if isinstance(pieces, list) else pieces[..., k]
        out[:, :, cells] = out[:, :, cells] + part
    return out[:, :, : h * w].reshape(n, c, h, w)
