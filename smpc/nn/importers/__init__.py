"""Bring your own model: convert a trained PyTorch or ONNX model into an :class:`smpc.nn.Module`.

Nothing here imports torch until :func:`from_torch` is called, nor onnx until :func:`from_onnx` is;
``pip install "smpc-numpy[torch]"`` / ``pip install "smpc-numpy[onnx]"`` provide them.
"""

from __future__ import annotations

from smpc.nn.importers.graph import GraphModule, UnsupportedModelError

__all__ = ["GraphModule", "UnsupportedModelError", "from_onnx", "from_torch", "share_tokens"]


def share_tokens(party, ids, src: int, vocab_size: int):
    """Token ids owned by party ``src``, shared as an integer tensor for a converted model's integer input: the
    owner passes its ids (integers in [0, vocab_size), checked here), the others None
    (``pm(share_tokens(party, ids, src, V))``; ``party.share(ids, src)`` does the same without the check).
    The embedding lookup then happens inside the private run: a random-offset one-hot rotated by the opened
    difference (:func:`smpc.mpc.one_hot.one_hot`, one round), times the embedding weight. The plaintext model
    takes the numpy ids themselves.
    """
    import numpy as np

    if party.rank == src:
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"share_tokens: token ids must be integers, got a {ids.dtype} array")
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"share_tokens: token ids must lie in [0, {vocab_size}), got {ids.min()}..{ids.max()}")
        ids = ids.astype(np.int64)
    return party.share(ids if party.rank == src else None, src=src)


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
    are computed once, by torch, while converting.

    Transformers: LayerNorm, SiLU, GELU (both forms; :mod:`smpc.mpc.transformer_functions` on shared values:
    the variance exact in the ring, Phi by looked-up pieces), scaled_dot_product_attention and
    nn.MultiheadAttention (public boolean/additive masks and is_causal; masked scores become -1e4, which the
    shared softmax maps to exactly 0), masked_fill with a public mask, embeddings (public ids, or private token
    ids shared as integers with :func:`share_tokens`).
    Not yet: transposed or 1-D convolutions, upsampling, inputs of another batch size than the example's.

    Raises :class:`UnsupportedModelError` listing every unsupported op with its count and layer paths
    (or naming data-dependent control flow); ValueError for a model in training mode; ImportError
    without PyTorch.
    """
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise ImportError('from_torch needs PyTorch: pip install "smpc-numpy[torch]"') from err
    from smpc.nn.importers.torch_export import convert

    return convert(module, example_inputs, verify=verify)


def from_onnx(model, *, input_shapes=None, verify: bool = True) -> GraphModule:
    """The ONNX model ``model`` (a path to a ``.onnx`` file, its bytes, or an ``onnx.ModelProto``) as an
    :class:`smpc.nn.Module` that runs on numpy arrays (float64) and on shared tensors.

    Inputs need static shapes: the graph's own, or ``input_shapes`` (a dict of input name to shape, or the
    shapes in input order) where the graph leaves a dimension dynamic; the converted model takes inputs of
    exactly those shapes. Conv, Gemm and BatchNormalization with weights of their own become the smpc layers
    (so ``model.eval().share(party, src)`` shares party src's weights and folds BatchNorm into the convolution
    before it); other float initializers are parameters named after them. Values computed from constants only
    (``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape`` chains, ``Constant`` nodes) are computed while
    converting. With ``verify`` the result is checked against ``onnx.reference.ReferenceEvaluator`` once.

    Supported (opsets 7 to 21, default domain): Conv (2-D; group, dilations, strides, pads, auto_pad), Gemm,
    MatMul, BatchNormalization (inference), Relu, Clip, HardSwish, HardSigmoid, Sigmoid, Tanh, Softmax,
    LogSoftmax, MaxPool, AveragePool, GlobalAveragePool, Add, Sub, Mul, Div, Max/Min of two, comparisons and
    Where, Neg, Exp, Log, Sqrt, Reciprocal, Concat, Split, Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
    Expand, Slice (positive steps), constant Pad, ReduceMean/Sum/Max, Identity, Dropout (inference), Cast to
    float, Constant, Shape, Size.

    Raises FileNotFoundError for a missing file, ValueError for something that is not a (valid) ONNX model or
    has dynamic input dimensions without ``input_shapes``, :class:`UnsupportedModelError` listing every
    unsupported op type with its count and node names (nothing is run), ImportError without onnx.
    """
    try:
        import onnx  # noqa: F401
    except ImportError as err:
        raise ImportError('from_onnx needs the onnx package: pip install "smpc-numpy[onnx]"') from err
    from smpc.nn.importers.onnx_import import convert

    return convert(model, input_shapes=input_shapes, verify=verify)
