"""The tensor operations of converted graphs (shape, slicing, joins, arithmetic, comparisons, reductions).

Each runs on numpy arrays and on shared tensors through the shared-tensor interface only, with public
operands (constants, Python numbers) mixed in freely. Shapes are static: the importer passes every
target shape and section size it read from the traced graph.
"""

from __future__ import annotations

import math

import numpy as np

from smpc.mpc import functions as mpc_functions
from smpc.mpc.transformer_functions import MASK_FLOOR
from smpc.mpc import arrays
from smpc.nn import functional as F


# --- shape and slicing (local on shared tensors) ----------------------------------------------------------
def reshape(x, shape):
    return x.reshape(tuple(shape))


def permute(x, axes):
    return x.transpose(tuple(axes))


def expand(x, shape):
    return arrays.broadcast_to(x, tuple(shape))


def take(x, axis: int, index):
    """``x[..., index, ...]`` with ``index`` (an int or a slice) on ``axis``."""
    return x[(slice(None),) * axis + (index,)]


def split(x, axis: int, sizes):
    """Consecutive sections of ``sizes`` along ``axis`` (torch.split, chunk, unbind with the sizes resolved)."""
    bounds = np.cumsum([0, *sizes])
    return [take(x, axis, slice(int(a), int(b))) for a, b in zip(bounds[:-1], bounds[1:])]


def unbind(x, axis: int):
    return [take(x, axis, i) for i in range(x.shape[axis])]


def cat(parts, axis: int):
    """torch.cat: as torch, empty 1-D parts (an empty key/value cache) are skipped."""
    kept = [p for p in parts if np.ndim(p) != 1 or np.size(p) != 0]
    return arrays.concatenate(_floats(kept or parts[:1]), axis=axis)


def stack(parts, axis: int):
    return arrays.stack(_floats(parts), axis=axis)


def _floats(parts):
    """Shared parts as they are, public ones as float arrays (float32 kept): the array layer lifts them into the
    shared parts' run at no cost."""
    return [arrays.as_array(p) for p in parts]


def pad(x, pads, value: float = 0.0):
    """Constant padding as torch's ``F.pad(x, pads)``: (left, right) pairs from the last axis backwards;
    negative amounts crop."""
    for i in range(0, len(pads), 2):
        axis = x.ndim - 1 - i // 2
        before, after = int(pads[i]), int(pads[i + 1])
        if before < 0 or after < 0:
            stop = x.shape[axis] + min(after, 0)
            x = take(x, axis, slice(max(-before, 0), stop))
            before, after = max(before, 0), max(after, 0)
        pieces = []
        for amount in (before, after):
            shape = list(x.shape)
            shape[axis] = amount
            pieces.append(_filled(x, tuple(shape), value) if amount else None)
        x = arrays.concatenate([p for p in (pieces[0], x, pieces[1]) if p is not None], axis=axis)
    return x


def _filled(like, shape, value):
    return arrays.constant(like, shape, value)


def channel_shuffle(x, groups: int):
    """ShuffleNet's channel shuffle: (N, g, C/g, ...) -> (N, C/g, g, ...), flattened back."""
    n, c, *rest = x.shape
    grouped = x.reshape(n, groups, c // groups, *rest)
    axes = (0, 2, 1) + tuple(range(3, 3 + len(rest)))
    return grouped.transpose(axes).reshape(n, c, *rest)


# --- arithmetic ------------------------------------------------------------------------------------------------
def add(a, b, alpha=1):
    return a + (b if alpha == 1 else b * alpha)


def sub(a, b, alpha=1):
    return a - (b if alpha == 1 else b * alpha)


def rsub(a, b, alpha=1):
    return b - (a if alpha == 1 else a * alpha)


def mul(a, b):
    return a * b


def div(a, b):
    """a / b; a shared divisor uses :func:`smpc.mpc.functions.divide` (|b| in [2^-16, 2^16))."""
    if arrays.is_shared(b):  # a public numerator has no reflected shared division (np.divide refuses it)
        return mpc_functions.divide(a, b)
    return a / b


def neg(x):
    return -x


def square(x):
    return x * x


def power(x, exponent: int):
    """x ** exponent for an integer exponent in [0, 8] by repeated squaring (x * x for 2, as before)."""
    if exponent == 0:
        return x * 0.0 + 1.0
    result, base = None, x
    while exponent:
        if exponent & 1:
            result = base if result is None else result * base
        exponent >>= 1
        if exponent:
            base = base * base
    return result


def reciprocal(x):
    """1 / x; shared: :func:`smpc.mpc.functions.reciprocal` (|x| in [2^-16, 2^16))."""
    return np.reciprocal(arrays.as_array(x))


def exp(x):
    """e^x; shared: :func:`smpc.mpc.functions.exp` (x in [-12, 16])."""
    return np.exp(x)


def log(x):
    """ln x; shared: :func:`smpc.mpc.functions.log` (x in [2^-16, 2^32))."""
    return np.log(x)


def sqrt(x):
    """sqrt(x); shared: :func:`smpc.mpc.functions.sqrt` (x in [0, 2^32))."""
    return np.sqrt(x)


def rsqrt(x):
    """1 / sqrt(x); shared: :func:`smpc.mpc.functions.inv_sqrt` (x in [2^-16, 2^32))."""
    return arrays.inv_sqrt(x)


def matmul(a, b):
    return a @ b


def addmm(bias, a, b, beta=1, alpha=1):
    product = a @ b
    product = product if alpha == 1 else product * alpha
    return product + (bias if beta == 1 else bias * beta)


def as_float(x):
    """A cast to a float dtype: numpy values become float64; shared values already are numbers (bits stay 0/1)."""
    return arrays.asarray(x, dtype=np.float64)


def full(shape, value):
    return np.full(tuple(shape), value, dtype=np.float64)


# --- comparisons and selections -------------------------------------------------------------------------------
def greater(a, b):
    return a > b


def greater_equal(a, b):
    return a >= b


def less(a, b):
    return a < b


def less_equal(a, b):
    return a <= b


def equal(a, b):
    return a == b


def not_equal(a, b):
    return a != b


def where(condition, a, b):
    """``a`` where ``condition`` else ``b``: b + c (a - b), a product with the 0/1 condition (no truncation)."""
    return np.where(condition, a, b)


def maximum(a, b):
    """max(a, b) element-wise: b + relu(a - b) (one comparison)."""
    return np.maximum(a, b)


def minimum(a, b):
    return np.minimum(a, b)


# --- reductions ------------------------------------------------------------------------------------------------
def mean(x, axes=None, keepdim: bool = False):
    return x.mean(axis=_axes(axes), keepdims=keepdim)


def total(x, axes=None, keepdim: bool = False):
    return x.sum(axis=_axes(axes), keepdims=keepdim)


def amax(x, axes=None, keepdim: bool = False):
    """The largest values over ``axes`` (shared: a tree of comparisons, :func:`smpc.mpc.selection.max`)."""
    return x.max(axis=_axes(axes), keepdims=keepdim)


def _axes(axes):
    if axes is None or isinstance(axes, int):
        return axes
    axes = tuple(int(a) for a in axes)
    return axes if axes else None


# --- forms other importers need ----------------------------------------------------------------------------------
def index(x, cuts):
    """``x[cuts]`` with a tuple of slices (one per leading axis), as ONNX Slice over several axes."""
    return x[tuple(cuts)]


def hard_sigmoid(x, alpha: float, beta: float):
    """clamp(alpha x + beta, 0, 1) (ONNX HardSigmoid; alpha 1/6, beta 1/2 is torch's hardsigmoid)."""
    return F.clamp(x * alpha + beta, 0.0, 1.0)


# --- transformer operations ---------------------------------------------------------------------------------------
# Masked attention scores and masked_fill values below MASK_FLOOR (torch writes -inf or finfo.min) become it (the
# transformer functions' constant): after softmax's max subtraction a masked score lies far below where the shared
# exp gives exactly 0, so masked weights are exactly 0 as in torch, while -inf or -3.4e38 would not fit the
# fixed-point ring. Differs from torch only on a row that masks every position (torch gives NaN there).


def layer_norm(x, axes: int, weight=None, bias=None, eps: float = 1e-5):
    """torch.nn.LayerNorm over the last ``axes`` axes (biased variance): :func:`smpc.nn.functional.layer_norm`
    (shared: the variance exact in the ring, then inv_sqrt; see :func:`smpc.mpc.transformer_functions.layer_norm`).
    """
    return F.layer_norm(x, tuple(x.shape[len(x.shape) - axes:]), weight, bias, eps)


def silu(x):
    """x * sigmoid(x) (torch.nn.SiLU): :func:`smpc.nn.functional.silu`."""
    return F.silu(x)


def gelu(x, approximate: str = "none"):
    """torch.nn.GELU, either form: :func:`smpc.nn.functional.gelu` (shared: x times Phi by pieces looked up,
    :func:`smpc.mpc.transformer_functions.gelu`)."""
    return F.gelu(x, approximate)


def masked_fill(x, mask, value: float):
    """x with ``value`` where the public boolean ``mask`` is true (values below :data:`MASK_FLOOR` become it).

    A public mask: x * keep + mask * value with the 0/1 masks as integers (exact, local on shared tensors);
    a shared mask: :func:`where`.
    """
    value = max(float(value), MASK_FLOOR)
    return np.where(mask, value, x)  # shared mask: one product; public: exact and local


def attention(q, k, v, mask=None, causal: bool = False, scale: float | None = None):
    """torch's scaled_dot_product_attention: softmax(q k^T scale + mask) v, scale 1 / sqrt(head size).

    ``mask`` is boolean (True: may attend) or additive floats; ``causal`` masks the upper triangle (torch's
    ``tril`` of the (L, S) scores). Public masks cost nothing: masked scores become :data:`MASK_FLOOR` by an
    exact product with the 0/1 mask, additive masks are floored at it, and the shared softmax
    (:func:`smpc.mpc.functions.softmax`, 4 units) gives those positions exactly 0.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    axes = tuple(range(k.ndim - 2)) + (k.ndim - 1, k.ndim - 2)
    scores = (q @ k.transpose(axes)) * scale
    length, source = scores.shape[-2:]
    if causal:
        scores = masked_fill(scores, ~np.tril(np.ones((length, source), dtype=bool)), MASK_FLOOR)
    if mask is not None:
        if arrays.is_shared(mask):  # a shared additive mask is added as it is (flooring it would cost a comparison)
            scores = scores + mask
        elif np.asarray(mask).dtype == bool:
            scores = masked_fill(scores, np.broadcast_to(~np.asarray(mask), scores.shape), MASK_FLOOR)
        else:
            scores = scores + np.maximum(np.asarray(mask, dtype=np.float64), MASK_FLOOR)
    return F.softmax(scores, axis=-1) @ v


def embedding(weight, ids):
    """Rows ``ids`` of ``weight`` (torch.nn.Embedding): :func:`smpc.nn.functional.embedding` (public ids, or
    private ids shared as integers by :func:`smpc.nn.share_tokens`, looked up inside the private run)."""
    return F.embedding(ids, weight)
