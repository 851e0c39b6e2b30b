"""ATen operations of a torch.export graph as steps of a converted model: the table of what is supported.

Each converter reads one graph node and asks the builder (:mod:`smpc.nn.importers.torch_export`) for a
step, an alias (clone, dropout at inference, getitem, ...) or a layer call; :class:`Unsupported` says
why a supported op's particular form is not (a transposed convolution, ceil_mode pooling, ...). The
table is keyed by op objects (``torch.ops.aten.relu``), never by strings.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import torch
from torch.fx import Node

from smpc.nn import functional as F
from smpc.nn.importers import ops
from smpc.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear, skip_init

aten = torch.ops.aten


class Unsupported(Exception):
    """This node's form is not supported; the message is the reason shown next to the op's name."""


CONVERTERS: dict[object, Callable] = {}


def converts(*targets):
    def register(fn):
        for target in targets:
            CONVERTERS[target] = fn
        return fn

    return register


def target_key(target):
    """The table key of a node's target: an ATen overload's packet (aten.add for add.Tensor), else itself."""
    return getattr(target, "overloadpacket", target)


def op_name(target) -> str:
    key = target_key(target)
    return str(key) if isinstance(key, torch._ops.OpOverloadPacket) else getattr(key, "__name__", str(key))


def _arg(node: Node, index: int, name: str, default=None):
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _pair(value) -> tuple[int, int]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(items) == 1:
        items = items * 2
    if len(items) != 2:
        raise Unsupported(f"{len(items)}-D window or stride (2-D only)")
    return int(items[0]), int(items[1])


def _axis(axis: int, ndim: int) -> int:
    return axis + ndim if axis < 0 else axis


# --- no computation -----------------------------------------------------------------------------------------
@converts(aten.clone, aten.contiguous, aten.alias, aten.detach, aten.lift_fresh, aten.lift_fresh_copy)
def _same(b, node):
    b.alias(node, node.args[0])


@converts(aten.dropout, aten.feature_dropout, aten.alpha_dropout, aten.native_dropout)
def _dropout(b, node):
    if _arg(node, 2, "train", False):
        raise Unsupported("in training mode")
    if target_key(node.target) is aten.native_dropout:
        b.multi_outputs(node, {0: b.arg(node.args[0])})
    else:
        b.alias(node, node.args[0])


@converts(aten._assert_tensor_metadata, aten._assert_scalar, aten.sym_constrain_range_for_size)
def _check_only(b, node):
    """Checks torch.export adds; the converted model checks its inputs itself."""


@converts(aten._to_copy, aten.to)
def _cast(b, node):
    source, target = b.dtype(node.args[0]), b.dtype(node)
    if source == target:
        b.alias(node, node.args[0])
    elif target.is_floating_point:
        b.call(node, ops.as_float, node.args[0], label="to_float")
    else:
        raise Unsupported(f"cast from {source} to {target}")


@converts(operator.getitem)
def _getitem(b, node):
    source, index = node.args
    outputs = b.outputs_of(source)
    if outputs is not None:
        if index not in outputs:
            raise Unsupported(f"output {index} of {op_name(source.target)} (its indices or statistics)")
        b.alias(node, outputs[index])
        return
    b.alias(node, b.item(source, index))


# --- shapes ---------------------------------------------------------------------------------------------------
@converts(aten.view, aten.reshape, aten._unsafe_view, aten.flatten, aten.unflatten, aten.squeeze, aten.unsqueeze,
          aten.view_copy, aten.squeeze_copy, aten.unsqueeze_copy)
def _reshape(b, node):
    b.call(node, ops.reshape, node.args[0], list(b.shape(node)), label="reshape")


@converts(aten.expand, aten.expand_copy)
def _expand(b, node):
    b.call(node, ops.expand, node.args[0], list(b.shape(node)), label="expand")


@converts(aten.permute, aten.permute_copy)
def _permute(b, node):
    ndim = len(b.shape(node))
    b.call(node, ops.permute, node.args[0], [_axis(a, ndim) for a in node.args[1]], label="permute")


@converts(aten.transpose, aten.swapaxes, aten.swapdims, aten.t, aten.numpy_T)
def _transpose(b, node):
    ndim = len(b.shape(node))
    axes = list(range(ndim))
    if len(node.args) >= 3:
        first, second = _axis(node.args[1], ndim), _axis(node.args[2], ndim)
        axes[first], axes[second] = axes[second], axes[first]
    else:
        axes.reverse()
    b.call(node, ops.permute, node.args[0], axes, label="permute")


@converts(aten.slice)
def _slice(b, node):
    ndim = len(b.shape(node.args[0]))
    axis = _axis(_arg(node, 1, "dim", 0), ndim)
    cut = slice(_arg(node, 2, "start"), _arg(node, 3, "end"), _arg(node, 4, "step", 1))
    b.call(node, ops.take, node.args[0], axis, cut, label="slice")


@converts(aten.narrow)
def _narrow(b, node):
    ndim = len(b.shape(node.args[0]))
    axis, start, length = _axis(node.args[1], ndim), b.constant(node.args[2]), node.args[3]
    b.call(node, ops.take, node.args[0], axis, slice(start, start + length), label="slice")


@converts(aten.select)
def _select(b, node):
    ndim = len(b.shape(node.args[0]))
    b.call(node, ops.take, node.args[0], _axis(node.args[1], ndim), node.args[2], label="select")


@converts(aten.split, aten.split_with_sizes, aten.chunk, aten.tensor_split, aten.unsafe_split)
def _split(b, node):
    ndim = len(b.shape(node.args[0]))
    axis = _axis(_arg(node, 2, "dim", 0), ndim)
    sizes = [shape[axis] for shape in b.shape(node)]
    b.call(node, ops.split, node.args[0], axis, sizes, label="split")


@converts(aten.unbind)
def _unbind(b, node):
    ndim = len(b.shape(node.args[0]))
    b.call(node, ops.unbind, node.args[0], _axis(_arg(node, 1, "dim", 0), ndim), label="unbind")


@converts(aten.cat, aten.concat, aten.concatenate)
def _cat(b, node):
    ndim = len(b.shape(node))
    b.call(node, ops.cat, list(node.args[0]), _axis(_arg(node, 1, "dim", 0), ndim), label="cat")


@converts(aten.stack)
def _stack(b, node):
    ndim = len(b.shape(node))
    b.call(node, ops.stack, list(node.args[0]), _axis(_arg(node, 1, "dim", 0), ndim), label="stack")


@converts(aten.constant_pad_nd, aten.pad)
def _pad(b, node):
    mode = _arg(node, 2, "mode", "constant") if target_key(node.target) is aten.pad else "constant"
    if mode != "constant":
        raise Unsupported(f"{mode} padding")
    value_index = 3 if target_key(node.target) is aten.pad else 2
    value = _arg(node, value_index, "value", 0.0) or 0.0
    b.call(node, ops.pad, node.args[0], list(node.args[1]), float(value), label="pad")


@converts(aten.channel_shuffle, aten.native_channel_shuffle)
def _channel_shuffle(b, node):
    b.call(node, ops.channel_shuffle, node.args[0], int(node.args[1]), label="channel_shuffle")


@converts(aten.zeros_like, aten.ones_like, aten.full_like, aten.new_zeros, aten.new_ones, aten.new_full)
def _filled(b, node):
    key = target_key(node.target)
    fill = {aten.zeros_like: 0.0, aten.new_zeros: 0.0, aten.ones_like: 1.0, aten.new_ones: 1.0}.get(key)
    if fill is None:
        fill = b.constant(node.args[2] if key is aten.new_full else node.args[1])
    b.call(node, ops.full, list(b.shape(node)), float(fill), label="full")


# --- arithmetic -----------------------------------------------------------------------------------------------
def _binary(run: Callable, label: str, alpha: bool = False):
    def convert(b, node):
        scale = _arg(node, 2, "alpha", 1) if alpha else 1
        kwargs = {"alpha": scale} if scale != 1 else {}
        if node.kwargs.get("rounding_mode") is not None:
            raise Unsupported(f"rounding_mode={node.kwargs['rounding_mode']!r}")
        b.call(node, run, node.args[0], node.args[1], label=label, **kwargs)

    return convert


converts(aten.add)(_binary(ops.add, "add", alpha=True))
converts(aten.sub)(_binary(ops.sub, "sub", alpha=True))
converts(aten.rsub)(_binary(ops.rsub, "rsub", alpha=True))
converts(aten.mul)(_binary(ops.mul, "mul"))
converts(aten.div)(_binary(ops.div, "div"))
converts(aten.mm, aten.bmm, aten.matmul)(_binary(ops.matmul, "matmul"))
converts(aten.maximum)(_binary(ops.maximum, "maximum"))
converts(aten.minimum)(_binary(ops.minimum, "minimum"))
converts(aten.gt)(_binary(ops.greater, "gt"))
converts(aten.ge)(_binary(ops.greater_equal, "ge"))
converts(aten.lt)(_binary(ops.less, "lt"))
converts(aten.le)(_binary(ops.less_equal, "le"))
converts(aten.eq)(_binary(ops.equal, "eq"))
converts(aten.ne)(_binary(ops.not_equal, "ne"))


@converts(aten.neg)
def _neg(b, node):
    b.call(node, ops.neg, node.args[0], label="neg")


@converts(aten.pow)
def _pow(b, node):
    """x ** e for a constant e: integers 0..8 by repeated squaring (shared: a product per step, one truncation
    each), 0.5 as sqrt, -0.5 as rsqrt, -1 as reciprocal (their shared ranges)."""
    exponent = node.args[1]
    if isinstance(exponent, Node) or isinstance(node.args[0], (int, float)):
        raise Unsupported("a tensor exponent")
    exponent = float(exponent)
    special = {0.5: (ops.sqrt, "sqrt"), -0.5: (ops.rsqrt, "rsqrt"), -1.0: (ops.reciprocal, "reciprocal")}
    if exponent == 1:
        b.alias(node, node.args[0])
    elif exponent in special:
        run, label = special[exponent]
        b.call(node, run, node.args[0], label=label)
    elif exponent.is_integer() and 0 <= exponent <= 8:
        b.call(node, ops.power, node.args[0], int(exponent), label="square" if exponent == 2 else "pow")
    else:
        raise Unsupported(f"exponent {exponent:g} (integers 0 to 8, 0.5, -0.5 and -1)")


@converts(aten.where)
def _where(b, node):
    if len(node.args) != 3:
        raise Unsupported("the one-argument form (indices)")
    b.call(node, ops.where, *node.args, label="where")


@converts(aten.addmm)
def _addmm(b, node):
    beta, alpha = node.kwargs.get("beta", 1), node.kwargs.get("alpha", 1)
    b.call(node, ops.addmm, *node.args[:3], beta=beta, alpha=alpha, label="addmm")


# --- activations ----------------------------------------------------------------------------------------------
def _unary(run: Callable, label: str):
    def convert(b, node):
        b.call(node, run, node.args[0], label=label)

    return convert


converts(aten.relu)(_unary(F.relu, "relu"))
converts(aten.relu6)(_unary(F.relu6, "relu6"))
converts(aten.sigmoid)(_unary(F.sigmoid, "sigmoid"))
converts(aten.tanh)(_unary(F.tanh, "tanh"))
converts(aten.hardswish)(_unary(F.hardswish, "hardswish"))
converts(aten.hardsigmoid)(_unary(F.hardsigmoid, "hardsigmoid"))
converts(aten.reciprocal)(_unary(ops.reciprocal, "reciprocal"))
converts(aten.exp)(_unary(ops.exp, "exp"))
converts(aten.log)(_unary(ops.log, "log"))
converts(aten.sqrt)(_unary(ops.sqrt, "sqrt"))
converts(aten.rsqrt)(_unary(ops.rsqrt, "rsqrt"))


@converts(aten.hardtanh, aten.clamp, aten.clamp_min, aten.clamp_max)
def _clamp(b, node):
    key = target_key(node.target)
    if key is aten.hardtanh:
        low, high = _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)
    elif key is aten.clamp:
        low, high = _arg(node, 1, "min"), _arg(node, 2, "max")
    elif key is aten.clamp_min:
        low, high = node.args[1], None
    else:
        low, high = None, node.args[1]
    if isinstance(low, Node) or isinstance(high, Node):
        raise Unsupported("tensor bounds (use maximum/minimum)")
    label = "relu6" if (low, high) == (0, 6) else "hardtanh" if key is aten.hardtanh else "clamp"
    b.call(node, F.clamp, node.args[0], low, high, label=label)


@converts(aten.softmax, aten._softmax, aten.log_softmax, aten._log_softmax)
def _softmax(b, node):
    run = F.softmax if target_key(node.target) in (aten.softmax, aten._softmax) else F.log_softmax
    ndim = len(b.shape(node))
    b.call(node, run, node.args[0], _axis(node.args[1], ndim), label=run.__name__)


# --- reductions -------------------------------------------------------------------------------------------------
def _reduction(run: Callable, label: str):
    def convert(b, node):
        axes = _arg(node, 1, "dim")
        axes = [axes] if isinstance(axes, int) else axes
        keepdim = bool(_arg(node, 2, "keepdim", False))
        b.call(node, run, node.args[0], axes, keepdim, label=label)

    return convert


converts(aten.mean)(_reduction(ops.mean, "mean"))
converts(aten.sum)(_reduction(ops.total, "sum"))
converts(aten.amax)(_reduction(ops.amax, "amax"))


@converts(aten.max)
def _max(b, node):
    if len(node.args) > 1 and isinstance(node.args[1], Node):
        b.call(node, ops.maximum, node.args[0], node.args[1], label="maximum")
        return
    _reduction(ops.amax, "amax")(b, node)
    if len(node.args) > 1:  # max.dim returns (values, indices): only the values are available
        b.multi_outputs(node, {0: b.arg(node)})


# --- layers -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvForm:
    """A 2-D convolution node's operands and hyper-parameters, normalised."""

    x: object
    weight: object
    bias: object
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int


def conv_form(b, node: Node) -> ConvForm:
    key = target_key(node.target)
    x, weight, bias = node.args[0], node.args[1], _arg(node, 2, "bias")
    if key is aten.conv2d:
        stride, padding = _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0)
        dilation, groups = _arg(node, 5, "dilation", 1), _arg(node, 6, "groups", 1)
    else:  # convolution / _convolution: (x, w, b, stride, padding, dilation, transposed, output_padding, groups)
        stride, padding, dilation = node.args[3], node.args[4], node.args[5]
        if node.args[6]:
            raise Unsupported("transposed convolution")
        groups = node.args[8]
    if len(b.shape(x)) != 4 or len(b.shape(weight)) != 4:
        raise Unsupported(f"convolution of a {len(b.shape(x))}-D input (2-D convolutions of NCHW inputs only)")
    dilation = _pair(dilation)
    if isinstance(padding, str):
        padding = _same_padding(padding, b.shape(weight)[2:], dilation)
    return ConvForm(x, weight, bias, _pair(stride), _pair(padding), dilation, int(groups))


def _same_padding(mode: str, kernel, dilation) -> tuple[int, int]:
    if mode == "valid":
        return 0, 0
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    if any(t % 2 for t in totals):
        raise Unsupported("padding='same' that pads one side more than the other")
    return totals[0] // 2, totals[1] // 2


@converts(aten.conv2d, aten.convolution, aten._convolution)
def _conv(b, node):
    form = conv_form(b, node)
    if b.layer_step(node, form.x, "conv2d"):
        return
    b.call(node, F.conv2d, form.x, form.weight, form.bias, form.stride, form.padding, form.dilation, form.groups,
           label="conv2d")


@converts(aten.linear)
def _linear(b, node):
    if b.layer_step(node, node.args[0], "linear"):
        return
    b.call(node, F.linear, node.args[0], node.args[1], _arg(node, 2, "bias"), label="linear")


BATCH_NORMS = (aten.batch_norm, aten.native_batch_norm, aten._native_batch_norm_legit,
               aten._native_batch_norm_legit_no_training)


@converts(*BATCH_NORMS)
def _batch_norm(b, node):
    if node.target is aten._native_batch_norm_legit.no_stats or node.args[3] is None:
        raise Unsupported("batch statistics at inference (track_running_stats=False)")
    if _bn_training(node):
        raise Unsupported("in training mode")
    if not b.layer_step(node, node.args[0], "batch_norm"):
        raise Unsupported("statistics that are not one torch.nn.BatchNorm layer's own buffers")
    if target_key(node.target) is not aten.batch_norm:  # (output, saved mean, saved inverse std)
        b.multi_outputs(node, {0: b.arg(node)})


def _bn_training(node: Node) -> bool:
    if target_key(node.target) is aten._native_batch_norm_legit_no_training:
        return False
    if node.target is aten._native_batch_norm_legit.no_stats:
        return True
    return bool(node.args[5])


def _bn_eps(node: Node) -> float:
    index = 6 if target_key(node.target) is aten._native_batch_norm_legit_no_training else 7
    return float(_arg(node, index, "eps", 1e-5))


@converts(aten.max_pool2d, aten.max_pool2d_with_indices)
def _max_pool(b, node):
    kernel = _pair(node.args[1])
    stride = _pair(_arg(node, 2, "stride") or kernel)
    padding, dilation = _pair(_arg(node, 3, "padding", 0)), _pair(_arg(node, 4, "dilation", 1))
    _check_floor(b, node, kernel, stride, padding, dilation)
    b.call(node, F.max_pool2d, node.args[0], kernel, stride, padding, dilation, label="max_pool2d")
    if target_key(node.target) is aten.max_pool2d_with_indices:
        b.multi_outputs(node, {0: b.arg(node)})


@converts(aten.avg_pool2d)
def _avg_pool(b, node):
    kernel = _pair(node.args[1])
    stride = _pair(_arg(node, 2, "stride") or kernel)
    padding = _pair(_arg(node, 3, "padding", 0))
    _check_floor(b, node, kernel, stride, padding, (1, 1))
    if not _arg(node, 5, "count_include_pad", True) and any(padding):
        raise Unsupported("count_include_pad=False with padding")
    if _arg(node, 6, "divisor_override") is not None:
        raise Unsupported("divisor_override")
    b.call(node, F.avg_pool2d, node.args[0], kernel, stride, padding, label="avg_pool2d")


def _check_floor(b, node, kernel, stride, padding, dilation) -> None:
    """ceil_mode is fine where it gives the floor's shape anyway."""
    h, w = b.shape(node.args[0])[-2:]
    floor = tuple((size + 2 * p - d * (k - 1) - 1) // s + 1
                  for size, k, s, p, d in zip((h, w), kernel, stride, padding, dilation))
    out = b.shape(node)
    out = out[0] if isinstance(out, list) else out
    if tuple(out[-2:]) != floor:
        raise Unsupported("ceil_mode=True where it adds a partial window")


@converts(aten.adaptive_avg_pool2d, aten._adaptive_avg_pool2d)
def _adaptive_avg_pool(b, node):
    h, w = b.shape(node.args[0])[-2:]
    oh, ow = _pair(node.args[1])
    if len(b.shape(node.args[0])) != 4 or h % oh or w % ow:
        raise Unsupported(f"output size {(oh, ow)} that does not divide the input size {(h, w)}")
    b.call(node, F.adaptive_avg_pool2d, node.args[0], (oh, ow), label="adaptive_avg_pool2d")


# --- which torch modules become smpc layers -------------------------------------------------------------------
@dataclass
class LayerPlan:
    """A torch module whose state is used only by calls of one layer kind: ``build()`` makes the smpc layer."""

    build: Callable
    nodes: tuple


def plan_layer(b, module: torch.nn.Module, path: str, nodes: list[Node]) -> LayerPlan | None:
    """The smpc layer for ``module`` if every node using its state is the layer's own call, else None
    (then its parameters are used by functional steps)."""
    own = {name for name, _ in module.named_parameters(recurse=False)} | \
        {name for name, _ in module.named_buffers(recurse=False)}
    keys = {name: f"{path}.{name}" for name in own}
    try:
        if isinstance(module, torch.nn.Conv2d):
            return _plan_conv(b, module, keys, nodes)
        if isinstance(module, torch.nn.Linear):
            return _plan_linear(b, module, keys, nodes)
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            return _plan_batch_norm(b, module, keys, nodes)
    except Unsupported:
        return None
    return None


def _plan_conv(b, module, keys, nodes):
    forms = set()
    for node in nodes:
        if target_key(node.target) not in (aten.conv2d, aten.convolution, aten._convolution):
            return None
        form = conv_form(b, node)
        if b.state_key(form.weight) != keys.get("weight") or b.state_key(form.bias) != keys.get("bias"):
            return None
        forms.add((form.stride, form.padding, form.dilation, form.groups))
    if len(forms) != 1 or set(keys) - {"weight", "bias"}:
        return None
    stride, padding, dilation, groups = forms.pop()
    out, _, kh, kw = module.weight.shape

    def build():
        return skip_init(Conv2d, module.in_channels, out, (kh, kw), stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=module.bias is not None)

    return LayerPlan(build, tuple(nodes))


def _plan_linear(b, module, keys, nodes):
    for node in nodes:
        if target_key(node.target) is not aten.linear:
            return None
        if b.state_key(node.args[1]) != keys.get("weight") or b.state_key(_arg(node, 2, "bias")) != keys.get("bias"):
            return None
    if set(keys) - {"weight", "bias"}:
        return None
    out, features = module.weight.shape

    def build():
        return skip_init(Linear, features, out, bias=module.bias is not None)

    return LayerPlan(build, tuple(nodes))


def _plan_batch_norm(b, module, keys, nodes):
    forms = set()
    for node in nodes:
        if target_key(node.target) not in BATCH_NORMS or _bn_training(node):
            return None
        names = ("weight", "bias", "running_mean", "running_var")
        if any(b.state_key(arg) != keys.get(name) for arg, name in zip(node.args[1:5], names)):
            return None
        if keys.get("running_mean") is None:
            return None
        forms.add((_bn_eps(node), len(b.shape(node.args[0]))))
    if len(forms) != 1:
        return None
    eps, ndim = forms.pop()
    if ndim not in (2, 3, 4):
        return None
    layer = BatchNorm2d if ndim == 4 else BatchNorm1d

    def build():
        return layer(module.num_features, eps=eps, momentum=module.momentum or 0.1, affine=module.affine)

    return LayerPlan(build, tuple(nodes))


# --- transformers -----------------------------------------------------------------------------------------------
@converts(aten.layer_norm, aten.native_layer_norm)
def _layer_norm(b, node):
    """LayerNorm: mean, variance and :func:`smpc.mpc.functions.inv_sqrt` (var + eps in [2^-16, 2^32), clamped
    there; see :func:`smpc.nn.importers.ops.layer_norm`); weight and bias are (shared) parameters."""
    axes = len(node.args[1])
    weight, bias = _arg(node, 2, "weight"), _arg(node, 3, "bias")
    eps = float(_arg(node, 4, "eps", 1e-5))
    b.call(node, ops.layer_norm, node.args[0], axes, weight, bias, eps, label="layer_norm")
    if target_key(node.target) is aten.native_layer_norm:  # (output, mean, 1 / std): only the output
        b.multi_outputs(node, {0: b.arg(node)})


converts(aten.silu)(_unary(ops.silu, "silu"))


@converts(aten.gelu)
def _gelu(b, node):
    """GELU, either form (approximate="none" or "tanh"): exact in plaintext; on shared values x times Phi (or its
    tanh form) by looked-up pieces (:func:`smpc.mpc.transformer_functions.gelu`)."""
    approximate = _arg(node, 1, "approximate", "none")
    if approximate not in ("none", "tanh"):
        raise Unsupported(f"approximate={approximate!r}")
    b.call(node, ops.gelu, node.args[0], approximate=approximate, label="gelu")


@converts(aten.masked_fill)
def _masked_fill(b, node):
    value = node.args[2]
    if isinstance(value, Node):
        value = b.constant(value)
    b.call(node, ops.masked_fill, node.args[0], node.args[1], float(value), label="masked_fill")


@converts(aten.scaled_dot_product_attention, aten._scaled_dot_product_flash_attention_for_cpu)
def _attention(b, node):
    """softmax(q k^T scale + mask) v with a public boolean or additive mask, or is_causal (see ops.attention)."""
    flash = target_key(node.target) is aten._scaled_dot_product_flash_attention_for_cpu
    if flash:  # (q, k, v, dropout_p, is_causal, *, attn_mask, scale)
        dropout, causal = _arg(node, 3, "dropout_p", 0.0), _arg(node, 4, "is_causal", False)
        mask, scale = node.kwargs.get("attn_mask"), node.kwargs.get("scale")
    else:  # (q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa)
        mask, dropout = _arg(node, 3, "attn_mask"), _arg(node, 4, "dropout_p", 0.0)
        causal, scale = _arg(node, 5, "is_causal", False), _arg(node, 6, "scale")
        if _arg(node, 7, "enable_gqa", False):
            raise Unsupported("enable_gqa=True")
    if dropout:
        raise Unsupported(f"dropout_p={dropout} (attention dropout at inference)")
    if causal and mask is not None:
        raise Unsupported("is_causal together with attn_mask")
    b.call(node, ops.attention, *node.args[:3], mask, bool(causal), scale, label="attention")
    if flash:  # (output, logsumexp)
        b.multi_outputs(node, {0: b.arg(node)})


@converts(aten.embedding)
def _embedding(b, node):
    """weight[ids]: public ids (constants) select rows; a token input may be shared as integers by its owner
    (smpc.nn.share_tokens), then the lookup is a private one-hot of the ids times the weight."""
    if _arg(node, 4, "sparse", False):
        raise Unsupported("sparse=True")
    b.call(node, ops.embedding, node.args[0], node.args[1], label="embedding")
    b.note_embedding(node.args[1], b.shape(node.args[0])[0])
