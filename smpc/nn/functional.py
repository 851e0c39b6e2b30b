"""Network operations on numpy arrays, shared tensors and :class:`~smpc.nn.autograd.Variable` alike.

Each function looks at its inputs: with a Variable among them it records its gradient rule on the tape,
otherwise it just computes. Plain arrays use exact float math (np.exp, ...); shared tensors use the
protocols' operations and :mod:`smpc.mpc.functions` (sigmoid, softmax, log-softmax approximations with
the errors quoted there). Only the shared-tensor interface is used, never a protocol's internals.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc import arrays, transformer_functions as mpc_transformer
from smpc.nn import pooling
from smpc.nn.autograd import LazyValue, Variable, as_variable
from smpc.nn.conv import ConvGeometry, conv2d as _conv2d, conv2d_grads

__all__ = [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy_with_logits", "clamp", "conv2d",
    "cross_entropy", "dropout", "embedding", "flatten", "gelu", "hardsigmoid", "hardswish", "hardtanh", "layer_norm",
    "linear", "log_softmax", "max_pool2d", "mse_loss", "relu", "relu6", "scaled_dot_product_attention", "sigmoid",
    "silu", "softmax", "tanh",
]


def _taped(*values) -> bool:
    return any(isinstance(v, Variable) for v in values)


def _data(value):
    return value.data if isinstance(value, Variable) else value


# --- affine layers ------------------------------------------------------------------------------------------
def linear(x, weight, bias=None):
    """x @ weight.T + bias, with weight (out, in) as torch.nn.Linear stores it."""
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features but the weight {tuple(weight.shape)} "
                         f"expects {weight.shape[-1]}")
    if _taped(x, weight, bias):
        out = as_variable(x) @ as_variable(weight).T
        return out if bias is None else out + bias
    out = x @ arrays.matching_dtype(arrays.swap_last(weight), x)
    return out if bias is None else out + bias


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution of x (N, C, H, W) with weight (O, C/groups, kh, kw), as torch.nn.functional.conv2d."""
    if not _taped(x, weight, bias):
        return _conv2d(x, weight, bias, stride, padding, dilation, groups)
    x, weight = as_variable(x), as_variable(weight)
    geo = ConvGeometry.of(x.shape, weight.shape, stride, padding, dilation, groups)
    out_data = _conv2d(x.data, weight.data, None, stride, padding, dilation, groups)

    def grad_fn(g):
        return conv2d_grads(x.data, weight.data, g, geo, need_x=x.requires_grad, need_w=weight.requires_grad)

    out = Variable.from_op(out_data, (x, weight), grad_fn)
    return out if bias is None else out + as_variable(bias).reshape(1, -1, 1, 1)


# --- activations ----------------------------------------------------------------------------------------------
def relu(x):
    """max(x, 0). Shared: one comparison and one product with the resulting bits (the bits are kept for
    the gradient, which costs one more product)."""
    data = _data(x)
    if not _taped(x):
        return np.maximum(data, 0)
    positive = data > 0
    return Variable.from_op(data * positive, (x,), lambda g: (g * positive,))


def sigmoid(x):
    """1 / (1 + e^-x); shared: :func:`smpc.mpc.functions.sigmoid` (error 2.3e-5)."""
    data = _data(x)
    out = arrays.sigmoid(data)
    if not _taped(x):
        return out
    return Variable.from_op(out, (x,), lambda g: (g * (out - out * out),))


def tanh(x):
    """Hyperbolic tangent; shared: :func:`smpc.mpc.functions.tanh` (error in its table)."""
    data = _data(x)
    out = np.tanh(data)
    if not _taped(x):
        return out
    return Variable.from_op(out, (x,), lambda g: (g - g * (out * out),))


def clamp(x, low=None, high=None):
    """min(max(x, low), high) with public bounds (either may be None), as torch.clamp.

    Shared: low + relu(x - low) - relu(x - high), exact; with both bounds the two ReLUs run as one
    batched comparison, so a clamp costs the rounds of one ReLU. Gradients follow from relu's.
    """
    if low is not None and high is not None and low > high:
        raise ValueError(f"clamp: low {low} is above high {high}")
    if low is None and high is None:
        return x
    if not _taped(x):
        return np.clip(x, low, high)
    if low is None:
        return high - relu(high - x)
    if high is None:
        return relu(x - low) + low
    return relu(x - low) - relu(x - high) + low


def hardtanh(x, low: float = -1.0, high: float = 1.0):
    """x clamped to [low, high] (torch.nn.Hardtanh)."""
    return clamp(x, low, high)


def relu6(x):
    """min(max(x, 0), 6) (torch.nn.ReLU6)."""
    return clamp(x, 0.0, 6.0)


def hardsigmoid(x):
    """relu6(x + 3) / 6 (torch.nn.Hardsigmoid); shared: one clamp and one public division."""
    return clamp(x + 3.0, 0.0, 6.0) / 6.0


def hardswish(x):
    """x * relu6(x + 3) / 6 (torch.nn.Hardswish, MobileNetV3); shared: one clamp, one product of shared
    values and one public division."""
    return x * clamp(x + 3.0, 0.0, 6.0) / 6.0


def gelu(x, approximate: str = "none"):
    """torch's GELU, x Phi(x) or its tanh form (``approximate="tanh"``); shared:
    :func:`smpc.mpc.transformer_functions.gelu` (errors there). Differentiable (shared: the derivative costs an
    erf and an exp, or a tanh)."""
    out = mpc_transformer.gelu(_data(x), approximate)
    if not _taped(x):
        return out
    return Variable.from_op(out, (x,), lambda g: (g * _gelu_slope(x.data, approximate),))


def _gelu_slope(z, approximate: str):
    """d gelu / dz: Phi(z) + z phi(z), or the derivative of the tanh form."""
    if approximate == "tanh":
        inner = (z + z * z * z * mpc_transformer.GELU_TANH_CUBE) * mpc_transformer.GELU_TANH
        t = np.tanh(inner)
        rate = (z * z * (3 * mpc_transformer.GELU_TANH_CUBE) + 1.0) * mpc_transformer.GELU_TANH
        return (t + 1.0) * 0.5 + z * (1.0 - t * t) * rate * 0.5
    half_square = z * z * -0.5
    density = np.exp(half_square) * (1 / np.sqrt(2 * np.pi))
    return (mpc_transformer.erf(z * (1 / np.sqrt(2.0))) + 1.0) * 0.5 + z * density


def silu(x):
    """x sigmoid(x) (torch's SiLU); shared: :func:`smpc.mpc.transformer_functions.silu`. Differentiable."""
    data = _data(x)
    out = mpc_transformer.silu(data)
    if not _taped(x):
        return out

    def grad_fn(g):
        s = arrays.sigmoid(data)
        return (g * (s + data * (s - s * s)),)

    return Variable.from_op(out, (x,), grad_fn)


def softmax(x, axis: int = -1):
    """exp(x) / sum(exp(x)) along ``axis`` (not differentiated; the losses carry their own gradients)."""
    return arrays.softmax(_data(x), axis=axis)


def log_softmax(x, axis: int = -1):
    """x - log(sum(exp(x))) along ``axis`` (not differentiated)."""
    return arrays.log_softmax(_data(x), axis=axis)


def dropout(x, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) while training.

    The mask is public (it depends on ``rng`` only, never on the data): parties that train a shared
    model together must pass generators seeded alike.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
    if not training or p == 0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    mask = (rng.random(x.shape) >= p) / (1.0 - p)
    return x * mask


# --- pooling and reshaping -----------------------------------------------------------------------------------
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """Window maxima of an NCHW (or CHW) tensor, as torch's max_pool2d (ceil_mode False)."""
    if not _taped(x):
        return pooling.max_pool2d(x, kernel_size, stride, padding, dilation)
    _check_4d(x, "max_pool2d")
    out = pooling.max_pool2d(x.data, kernel_size, stride, padding, dilation)
    return Variable.from_op(out, (x,), lambda g: (pooling.max_pool2d_grad(
        x.data, g, kernel_size, stride, padding, dilation),))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Window means of an NCHW (or CHW) tensor, padding counted as zeros (torch's default)."""
    if not _taped(x):
        return pooling.avg_pool2d(x, kernel_size, stride, padding)
    _check_4d(x, "avg_pool2d")
    out = pooling.avg_pool2d(x.data, kernel_size, stride, padding)
    shape = x.shape
    return Variable.from_op(out, (x,), lambda g: (pooling.avg_pool2d_grad(g, shape, kernel_size, stride,
                                                                          padding),))


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to an (oh, ow) grid; the input size must be a multiple of it (1x1: global mean)."""
    oh, ow = (output_size, output_size) if np.isscalar(output_size) else tuple(output_size)
    _check_4d(x, "adaptive_avg_pool2d")
    h, w = x.shape[2:]
    if oh < 1 or ow < 1 or h % oh or w % ow:
        raise ValueError(f"adaptive_avg_pool2d: output size {(oh, ow)} must divide the input size {(h, w)}")
    if (oh, ow) == (1, 1):
        if _taped(x):
            return as_variable(x).mean(axis=(2, 3), keepdims=True)
        return x.mean(axis=(2, 3), keepdims=True)  # shared: a local sum and one public division
    return avg_pool2d(x, (h // oh, w // ow))


def flatten(x, start: int = 1):
    """Collapse the axes from ``start`` on (``start=1`` keeps the batch axis)."""
    return x.reshape(*x.shape[:start], -1)


def _check_4d(x, name: str) -> None:
    if len(x.shape) != 4:
        raise ValueError(f"{name}: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")


# --- normalisation -----------------------------------------------------------------------------------------
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalisation over (N, H, W) per channel, as torch's batch_norm (running statistics updated
    in place while training). Training needs plaintext values; a shared input is normalised with the
    running statistics (a model shared for inference has them folded into its convolutions instead).
    """
    if len(x.shape) not in (2, 3, 4):
        raise ValueError(f"batch_norm: input must be (N, C), (N, C, L) or (N, C, H, W), got shape {tuple(x.shape)}")
    channels = x.shape[1]
    if running_mean is not None and np.shape(running_mean) != (channels,):
        raise ValueError(f"batch_norm: input has {channels} channels but the statistics have shape "
                         f"{np.shape(running_mean)}")
    view = (1, channels) + (1,) * (len(x.shape) - 2)
    if not training:
        scale = 1.0 / np.sqrt(np.asarray(_data(running_var), dtype=np.float64) + eps)
        shift = -np.asarray(_data(running_mean), dtype=np.float64) * scale
        out = x * scale.reshape(view) + shift.reshape(view)
        if weight is not None:
            out = out * weight.reshape(view) if isinstance(weight, Variable) else out * _data(weight).reshape(view)
        return out if bias is None else out + bias.reshape(view)
    if arrays.is_shared(_data(x)):  # refused: batch statistics of a shared input would need var and inv_sqrt
        raise NotImplementedError("batch_norm: training statistics need plaintext inputs; put the model in "
                                  "eval() mode (or share it for inference, which folds BatchNorm away)")
    axes = (0,) + tuple(range(2, len(x.shape)))
    data = _data(x)
    mean = data.mean(axis=axes)
    var = data.var(axis=axes)
    count = data.size // channels
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * count / max(count - 1, 1)
    inv_std = 1.0 / np.sqrt(var + eps)
    normalised = (data - mean.reshape(view)) * inv_std.reshape(view)

    def grad_fn(g):
        mean_g = g.mean(axis=axes, keepdims=True)
        mean_gn = (g * normalised).mean(axis=axes, keepdims=True)
        return ((g - mean_g - normalised * mean_gn) * inv_std.reshape(view),)

    out = Variable.from_op(normalised.astype(data.dtype, copy=False), (as_variable(x),), grad_fn) \
        if _taped(x) else normalised
    if weight is not None:
        out = out * weight.reshape(view)
    return out if bias is None else out + bias.reshape(view)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """torch's layer_norm over the trailing ``normalized_shape`` axes; shared:
    :func:`smpc.mpc.transformer_functions.layer_norm` (exact variance in the ring). Differentiable in x, weight and
    bias (on shared values the backward pass recomputes 1 / std with :func:`smpc.mpc.functions.inv_sqrt`)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if tuple(x.shape[len(x.shape) - len(shape):]) != shape or len(x.shape) < len(shape):
        raise ValueError(f"layer_norm: input of shape {tuple(x.shape)} does not end with the normalized shape "
                         f"{shape}")
    if not _taped(x, weight, bias):
        return mpc_transformer.layer_norm(x, len(shape), weight, bias, eps)
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != shape:
            raise ValueError(f"layer_norm: {name} of shape {tuple(value.shape)} does not match the normalized "
                             f"shape {shape}")
    data = _data(x)
    normalised = mpc_transformer.layer_norm(data, len(shape), eps=eps)
    out = normalised
    if _taped(x):
        axes = tuple(range(len(data.shape) - len(shape), len(data.shape)))

        def grad_fn(g):
            centred = data - data.mean(axis=axes, keepdims=True)
            variance = (centred * centred).mean(axis=axes, keepdims=True) + eps
            inv_std = arrays.inv_sqrt(variance)
            mean_g = g.mean(axis=axes, keepdims=True)
            mean_gn = (g * normalised).mean(axis=axes, keepdims=True)
            return ((g - mean_g - normalised * mean_gn) * inv_std,)

        out = Variable.from_op(normalised, (x,), grad_fn)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


# --- attention ----------------------------------------------------------------------------------------------
def scaled_dot_product_attention(q, k, v, mask=None, is_causal: bool = False, scale=None):
    """softmax(q k^T scale + mask) v, as torch's scaled_dot_product_attention (``mask``: public, boolean keep-mask
    or additive floats); shared: :func:`smpc.mpc.transformer_functions.scaled_dot_product_attention`. Not
    differentiated: Variables are refused."""
    if _taped(q, k, v, mask):
        raise NotImplementedError("scaled_dot_product_attention: gradients through attention are not supported; "
                                  "pass arrays or shared tensors (a Module in eval() mode)")
    return mpc_transformer.scaled_dot_product_attention(q, k, v, mask, is_causal, scale)


# --- losses ------------------------------------------------------------------------------------------------
def embedding(ids, weight):
    """Rows ``ids`` of ``weight`` (torch.nn.functional.embedding; note the argument order).

    Public integer ids select rows (of a shared weight too: locally in every share, exact, no round). Shared
    ids are an integer tensor (:func:`smpc.nn.share_tokens`): their one-hot is made inside the private run from
    a random-offset one-hot (:func:`smpc.mpc.one_hot.one_hot`, one round), then multiplied by the weight (an
    integer times fixed-point product: one round, no truncation). Not differentiated.
    """
    weight = _data(weight)
    vocabulary = weight.shape[0]
    if arrays.is_shared(ids):  # shared ids cannot index: a one-hot (one round) times the weight
        if ids.is_fixed_point:
            raise TypeError("embedding: shared token ids must be an integer tensor (smpc.nn.share_tokens), "
                            "not fixed point")
        return ids.one_hot(vocabulary) @ weight
    ids = np.asarray(_data(ids))
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: token ids must be integers, got a {ids.dtype} array")
    if ids.size and (ids.min() < 0 or ids.max() >= vocabulary):
        raise ValueError(f"embedding: token ids must lie in [0, {vocabulary}), got {ids.min()}..{ids.max()}")
    return weight[ids]  # a shared weight's rows are selected locally in every share: exact, no round


def mse_loss(prediction, target):
    """mean((prediction - target)^2) over every element."""
    _same_shape(prediction, target, "mse_loss")
    difference = prediction - target
    return (difference * difference).mean()


def cross_entropy(logits, target):
    """Mean over the batch of -log softmax(logits)[target] for (N, C) logits.

    ``target`` is (N,) integer class labels or (N, C) class probabilities (one-hot or soft; may be
    shared). The gradient (softmax - target) / N is exact in plaintext; on shared logits it uses the
    softmax approximation (error 6.1e-5), and the value (a log-softmax) is computed only when read.
    """
    z = _data(logits)
    if len(z.shape) != 2:
        raise ValueError(f"cross_entropy: logits must be (N, C), got shape {tuple(z.shape)}")
    probs = _target_probabilities(_data(target), z.shape)
    n = z.shape[0]

    def value():
        return -(log_softmax(z, axis=1) * probs).sum() / n

    if not _taped(logits):
        return value()
    p = softmax(z, axis=1)
    return _loss(value, logits, lambda g: ((p - probs) * (g / n),))


def binary_cross_entropy_with_logits(logits, target):
    """Mean of softplus(z) - y z, the binary cross-entropy of sigmoid(z) against y in [0, 1].

    The gradient is (sigmoid(z) - y) / count. On shared logits the value uses log(1 + e^z) and the
    gradient the sigmoid approximation (error 2.3e-5); the value is computed only when read.
    """
    _same_shape(logits, target, "binary_cross_entropy_with_logits")
    z, y = _data(logits), _data(target)
    count = int(np.prod(z.shape))

    def value():
        if arrays.is_shared(z):  # floats: the stable form; shared: log(e^z + 1), sparing |z|'s and max's comparisons
            softplus = np.log(np.exp(z) + 1.0)
        else:
            softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
        return (softplus - z * y).sum() / count

    if not _taped(logits):
        return value()
    s = sigmoid(z)
    return _loss(value, logits, lambda g: ((s - y) * (g / count),))


def _loss(value, logits: Variable, grad_fn) -> Variable:
    """A loss on the tape: its value at once in plaintext, on first read of ``.data`` for shared logits
    (every party must then read it, since computing it communicates)."""
    if arrays.is_shared(logits.data):  # computing a shared value communicates: only when every party reads it
        return LazyValue(value, (logits,), grad_fn)
    return Variable.from_op(value(), (logits,), grad_fn)


def _same_shape(a, b, name: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name}: prediction shape {tuple(a.shape)} differs from target shape {tuple(b.shape)}")


def _target_probabilities(target, shape):
    """(N, C) class probabilities from labels (N,) or probabilities (N, C)."""
    n, classes = shape
    if np.ndim(target) == 2:
        if tuple(target.shape) != (n, classes):
            raise ValueError(f"cross_entropy: target probabilities have shape {tuple(target.shape)}, "
                             f"expected {(n, classes)}")
        return target
    labels = np.asarray(target)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: target must be {n} integer labels or ({n}, {classes}) probabilities, "
                         f"got {labels.dtype} array of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"cross_entropy: labels must lie in 0..{classes - 1}")
    return np.eye(classes)[labels]
