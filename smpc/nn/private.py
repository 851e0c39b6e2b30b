"""Models on shared tensors: fold BatchNorm into convolutions, then secret-share one party's weights.

Every party builds the same architecture and calls ``model.share(party, src=r)``; only party r's values
are used. All parameters travel as ONE shared vector (one header message; additive shares are expanded
from pairwise PRG seeds, so no weight bytes cross the wire there), then are cut back into tensors.
"""

from __future__ import annotations

import hashlib

import numpy as np

from smpc.nn.layers import BatchNorm2d, ChannelAffine, Conv2d, Identity, Sequential
from smpc.nn.module import Module


def fold_batchnorm(model: Module) -> Module:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d into that convolution (in place).

    Pairs are the neighbours in a Sequential and the ``fold_pairs`` a module declares (ResNet's conv1/bn1,
    a BasicBlock's conv1/bn1 and conv2/bn2). conv'(x) = conv(x) * s + t with s = gamma / sqrt(var + eps),
    t = beta - mean * s: weight rows scaled by s, bias b * s + t. Any other BatchNorm2d becomes a
    :class:`ChannelAffine` (one multiplication on shared inputs). Returns the model.
    """
    for _, module in list(model.named_modules()):
        for conv_name, bn_name in _pairs(module):
            conv, bn = module._modules[conv_name], module._modules[bn_name]
            _fold_into(conv, bn)
            setattr(module, bn_name, Identity().train(bn.training))
    for _, module in list(model.named_modules()):
        for name, child in list(module._modules.items()):
            if isinstance(child, BatchNorm2d):
                setattr(module, name, ChannelAffine(*child.folded()).train(child.training))
    return model


def _pairs(module: Module) -> list[tuple[str, str]]:
    children = module._modules
    if isinstance(module, Sequential):
        names = list(children)
        pairs = zip(names[:-1], names[1:])
    else:
        pairs = getattr(module, "fold_pairs", ())
    return [(a, b) for a, b in pairs
            if isinstance(children.get(a), Conv2d) and isinstance(children.get(b), BatchNorm2d)]


def _fold_into(conv: Conv2d, bn: BatchNorm2d) -> None:
    if conv.out_channels != bn.num_features:
        raise ValueError(f"cannot fold BatchNorm2d({bn.num_features}) into a Conv2d with {conv.out_channels} outputs")
    scale, shift = bn.folded()
    conv.weight.data = np.asarray(conv.weight.data) * scale.reshape(-1, 1, 1, 1)
    bias = shift if conv.bias is None else np.asarray(conv.bias.data) * scale + shift
    conv.register_parameter("bias", bias)


def share_model(model: Module, party, src: int = 0) -> Module:
    """A copy of ``model`` whose parameters are shared tensors holding party ``src``'s values.

    Eval mode: BatchNorm is folded first and the copy is for inference (no gradients kept).
    Training mode: the copy's parameters require gradients, for private training; BatchNorm cannot
    train on shared values, so a training-mode model with BatchNorm2d is refused.
    """
    training = model.training
    plain = model.copy()
    if training:
        if any(isinstance(m, BatchNorm2d) for _, m in plain.named_modules()):
            raise NotImplementedError("share(): a training-mode model with BatchNorm2d cannot train on shared "
                                      "values; call eval() to share it for inference (BatchNorm gets folded)")
    else:
        fold_batchnorm(plain)
    params = list(plain.named_parameters())
    if any(type(p.data).__name__ != "ndarray" for _, p in params):
        raise TypeError("share(): the model is already shared")
    _agree_on_architecture(party, src, training, params, plain.architecture())
    if not params:  # nothing to share (a model of activations and pooling only)
        return plain
    flat = np.concatenate([np.asarray(p.data, dtype=np.float64).ravel() for _, p in params]) \
        if party.rank == src else None
    shared = party.share(flat, src=src)
    offset = 0
    for _, p in params:
        size = int(np.prod(p.shape))
        p.data = shared[offset:offset + size].reshape(p.shape)
        p.requires_grad = training
        offset += size
    return plain


def _agree_on_architecture(party, src: int, training: bool, params, graph: str = "") -> None:
    """The source tells the others its mode and a digest of its parameter shapes and graph (one small message);
    a mismatch fails clearly at every party instead of as a confusing wire error later."""
    shapes = ";".join(f"{name}:{tuple(p.shape)}" for name, p in params) + graph
    digest = int.from_bytes(hashlib.sha256(shapes.encode()).digest()[:7], "big")
    mine = np.array([int(training), len(params), digest], dtype=np.int64)
    if party.rank == src:
        for peer in party.others:
            party.send(peer, mine)
        return
    theirs = party.recv(src)
    if theirs.dtype != np.int64 or theirs.shape != (3,):
        raise ValueError(f"share(): party {src} sent a malformed model description")
    if theirs[0] != mine[0]:
        modes = {1: "train()", 0: "eval()"}
        raise ValueError(f"share(): party {src}'s model is in {modes[int(theirs[0])]} mode but this party's is in "
                         f"{modes[int(mine[0])]} mode; every party must build the same model in the same mode")
    if theirs[1] != mine[1] or theirs[2] != mine[2]:
        raise ValueError(f"share(): party {src}'s parameter names or shapes (or converted graph) differ from this "
                         "party's; every party must build the same model")


def check_fixed_point_range(model: Module, x: np.ndarray, frac_bits: int = 16) -> dict[str, float]:
    """Run ``model`` in plaintext on sample inputs ``x`` and check that a shared run would stay in range.

    Shared values cannot be inspected without revealing them, so the model owner checks beforehand: every
    layer's output must stay below 2^(62 - 2 frac_bits) in magnitude (2^30 with 16 fraction bits), the
    bound under which a fixed-point product keeps its 2 frac_bits-scaled value below 2^62 before truncation
    and every comparison is exact. Returns the largest magnitude per layer; raises ValueError naming the
    first layer that leaves the range. Inputs outside it never go through: encoding refuses them.
    """
    limit = 2.0 ** (62 - 2 * frac_bits)
    seen: dict[str, float] = {}
    leaves = [(name, m) for name, m in model.named_modules() if not m._modules]
    try:
        for name, module in leaves:
            object.__setattr__(module, "forward", _recording(module, name or type(module).__name__, seen))
        model(np.asarray(x, dtype=np.float64))
    finally:
        for _, module in leaves:
            module.__dict__.pop("forward", None)
    for name, magnitude in seen.items():
        if not magnitude < limit:
            raise ValueError(f"layer {name!r} produces values up to {magnitude:.3g}, beyond the fixed-point range "
                             f"|x| < 2^{62 - 2 * frac_bits} for frac_bits={frac_bits}; rescale its inputs or weights")
    return seen


def _recording(module: Module, name: str, seen: dict):
    forward = type(module).forward

    def record(x):
        out = forward(module, x)
        value = out.data if hasattr(out, "data") and not isinstance(out, np.ndarray) else out
        seen[name] = max(seen.get(name, 0.0), float(np.max(np.abs(value))) if np.size(value) else 0.0)
        return out

    return record
