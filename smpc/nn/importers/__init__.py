"""Bring your own model: convert a trained PyTorch model into an :class:`smpc.nn.Module` (ONNX: later).

Nothing here imports torch until :func:`from_torch` is called; ``pip install "smpc[torch]"`` provides it.
"""

from __future__ import annotations

from smpc.nn.importers.graph import GraphModule, UnsupportedModelError

__all__ = ["GraphModule", "UnsupportedModelError", "from_torch"]


def from_torch(module, example_inputs, *, verify: bool = True) -> GraphModule:
    """The model ``module`` (a ``torch.nn.Module`` in eval mode) as an :class:`smpc.nn.Module`.

    ``example_inputs`` is a tuple of tensors as for ``torch.export.export``; the converted model takes
    inputs of exactly those shapes (numpy arrays, computed in float64, or shared tensors) and returns
    numpy arrays or shared tensors. Its ``state_dict`` keys are the torch model's, and
    ``model.share(party, src)`` works as for the built-in models: every party converts the same
    architecture and only party ``src``'s weights are used (BatchNorm after a convolution is folded).
    With ``verify`` (the default) the converted model is run once on the example inputs against torch.

    Supported (vision models): 2-D convolutions (strided, padded, dilated, grouped, depthwise), linear and
    matrix products, BatchNorm (eval), ReLU, ReLU6/hardtanh/clamp, hardswish, hardsigmoid, sigmoid, tanh,
    softmax, log-softmax, max/avg/adaptive-avg pooling, mean/sum/max, element-wise arithmetic and
    comparisons with torch.where, and shape ops (reshape, flatten, permute, transpose, squeeze, expand,
    slicing, cat, split, chunk, channel shuffle, constant padding); dropout is the identity; exp, log,
    sqrt and reciprocal on the ranges of :mod:`smpc.mpc.functions`. Values computed from constants only
    are computed once, by torch, while converting. Not yet: GELU, SiLU, LayerNorm, attention, embeddings,
    transposed or 1-D convolutions, upsampling, inputs of another batch size than the example's.

    Raises :class:`UnsupportedModelError` listing every unsupported op with its count and layer paths
    (or naming data-dependent control flow); ValueError for a model in training mode; ImportError
    without PyTorch.
    """
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise ImportError('from_torch needs PyTorch: pip install "smpc[torch]"') from err
    from smpc.nn.importers.torch_export import convert

    return convert(module, example_inputs, verify=verify)
