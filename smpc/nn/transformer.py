"""Transformer layers with torch.nn's names, arguments and state-dict keys: Embedding, GELU, SiLU, LayerNorm,
MultiheadAttention.

They run on numpy arrays (exact float64), on shared tensors (:mod:`smpc.mpc.transformer_functions`) and, for
GELU, SiLU and LayerNorm, on Variables for training.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc import arrays
from smpc.nn import functional as F
from smpc.nn.autograd import Variable
from smpc.nn.layers import Linear, _generator, _positive_int
from smpc.nn.module import Module
from smpc.mpc.transformer_functions import MASK_FLOOR, attention_with_weights


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of ``embedding_dim`` (torch.nn.Embedding; its ``weight`` drawn from
    N(0, 1) as torch's): public integer ids or private ids shared as integers (:func:`smpc.nn.share_tokens`)
    select rows; the private lookup is one round (:func:`smpc.nn.functional.embedding`)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, rng: np.random.Generator | None = None):
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
        self.register_parameter("weight", _generator(rng).normal(size=(self.num_embeddings, self.embedding_dim)))

    def forward(self, ids):
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class GELU(Module):
    """x Phi(x) (``approximate="none"``) or torch's tanh form (``approximate="tanh"``)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x sigmoid(x)."""

    def forward(self, x):
        return F.silu(x)


class LayerNorm(Module):
    """Normalisation over the trailing ``normalized_shape`` axes with learned ``weight`` (ones) and ``bias`` (zeros)
    of that shape, as torch.nn.LayerNorm (``elementwise_affine=False``: neither)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shape:
            raise ValueError("LayerNorm: normalized_shape must name at least one axis")
        self.normalized_shape = tuple(_positive_int(n, "normalized_shape") for n in shape)
        if not eps >= 0:
            raise ValueError(f"LayerNorm: eps must be non-negative, got {eps!r}")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        self.register_parameter("weight", np.ones(self.normalized_shape) if elementwise_affine else None)
        self.register_parameter("bias", np.zeros(self.normalized_shape) if elementwise_affine else None)

    def forward(self, x):
        tail = tuple(x.shape[len(x.shape) - len(self.normalized_shape):])
        if len(x.shape) < len(self.normalized_shape) or tail != self.normalized_shape:
            raise ValueError(f"LayerNorm({self.normalized_shape}): input of shape {tuple(x.shape)} does not end "
                             f"with the normalized shape")
        return F.layer_norm(x, self.normalized_shape, self.param("weight", x), self.param("bias", x), self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention (same parameters: ``in_proj_weight`` (3E, E), ``in_proj_bias``, ``out_proj``),
    for inference: ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns (output, weights or None) as torch's.

    ``batch_first`` defaults to True here (torch: False). Masks are public, with torch's meanings: a boolean
    ``attn_mask`` (L, S) or (N * heads, L, S) and ``key_padding_mask`` (N, S) are True where attention is NOT
    allowed; float masks are added to the scores. ``is_causal`` masks the upper triangle. Parameters are never
    taped (attention has no gradients here); dropout is applied by torch only in training and is refused here
    then. Unsupported: kdim/vdim different from embed_dim, add_bias_kv, add_zero_attn.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = True, rng=None):
        super().__init__()
        self.embed_dim = _positive_int(embed_dim, "embed_dim")
        self.num_heads = _positive_int(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout!r}")
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        gen = _generator(rng)
        bound = np.sqrt(6.0 / (embed_dim + 3 * embed_dim))  # xavier_uniform_ of the (3E, E) weight, as torch
        self.register_parameter("in_proj_weight", gen.uniform(-bound, bound, (3 * embed_dim, embed_dim)))
        self.register_parameter("in_proj_bias", np.zeros(3 * embed_dim) if bias else None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, rng=gen)
        if bias:
            self.out_proj.bias.data = np.zeros(embed_dim)

    def __call__(self, query, key=None, value=None, **options):
        return self.forward(query, key, value, **options)

    def forward(self, query, key=None, value=None, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """(attention output, attention weights averaged over heads (or per head), or None)."""
        key = query if key is None else key
        value = key if value is None else value
        if any(isinstance(t, Variable) for t in (query, key, value)):
            raise NotImplementedError("MultiheadAttention: gradients through attention are not supported; pass "
                                      "arrays or shared tensors")
        if self.training and self.dropout > 0:
            raise NotImplementedError("MultiheadAttention: attention dropout is not supported; call eval()")
        batched = len(query.shape) == 3
        q, k, v = (self._batch_first(t, batched) for t in (query, key, value))
        batch, length, source = q.shape[0], q.shape[1], k.shape[1]
        if k.shape[:2] != v.shape[:2] or k.shape[0] != batch or q.shape[-1] != self.embed_dim \
                or k.shape[-1] != self.embed_dim or v.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiheadAttention(embed_dim={self.embed_dim}): query {tuple(query.shape)}, key "
                             f"{tuple(key.shape)} and value {tuple(value.shape)} do not fit")
        q, k, v = self._project(q, k, v, query is key and key is value)
        mask = self._mask(attn_mask, key_padding_mask, is_causal, batch, length, source, batched)
        heads = [self._heads(t) for t in (q, k, v)]
        out, weights = attention_with_weights(*heads, mask, False, None)  # (N, H, L, hd), (N, H, L, S)
        out = out.transpose((0, 2, 1, 3)).reshape(batch, length, self.embed_dim)
        out = F.linear(out, self.out_proj.weight.data, _data_or_none(self.out_proj.bias))
        out = out if batched else out.reshape(length, self.embed_dim)
        if not self.batch_first and batched:
            out = out.transpose((1, 0, 2))
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(axis=1)  # shared: a local sum and one public division
        return out, (weights if batched else weights[0])

    def _batch_first(self, t, batched: bool):
        if not batched:
            if len(t.shape) != 2:
                raise ValueError(f"MultiheadAttention: inputs must be (L, E) or 3-D, got shape {tuple(t.shape)}")
            return t.reshape(1, *t.shape)
        if len(t.shape) != 3:
            raise ValueError(f"MultiheadAttention: query, key and value must all be 3-D, got shape {tuple(t.shape)}")
        return t if self.batch_first else t.transpose((1, 0, 2))

    def _value(self, name: str):
        p = getattr(self, name)
        return None if p is None else p.data

    def _project(self, q, k, v, same: bool):
        weight, bias = self._value("in_proj_weight"), self._value("in_proj_bias")
        if same:  # self-attention: one product with the whole (3E, E) weight
            both = F.linear(q, weight, bias)
            e = self.embed_dim
            return both[..., :e], both[..., e:2 * e], both[..., 2 * e:]
        parts = []
        for i, t in enumerate((q, k, v)):
            rows = slice(i * self.embed_dim, (i + 1) * self.embed_dim)
            parts.append(F.linear(t, weight[rows], None if bias is None else bias[rows]))
        return parts

    def _heads(self, t):
        batch, length = t.shape[0], t.shape[1]
        return t.reshape(batch, length, self.num_heads, self.head_dim).transpose((0, 2, 1, 3))

    def _mask(self, attn_mask, key_padding_mask, is_causal, batch, length, source, batched):
        """One public mask for the (N, H, L, S) scores: boolean keep-mask when every part is boolean, else additive."""
        parts = []
        if attn_mask is not None:
            mask = _public(attn_mask, "attn_mask")
            if mask.shape == (length, source):
                mask = mask.reshape(1, 1, length, source)
            elif mask.shape == (batch * self.num_heads, length, source):
                mask = mask.reshape(batch, self.num_heads, length, source)
            else:
                raise ValueError(f"MultiheadAttention: attn_mask must be ({length}, {source}) or "
                                 f"({batch * self.num_heads}, {length}, {source}), got {mask.shape}")
            parts.append(mask)
        if key_padding_mask is not None:
            mask = _public(key_padding_mask, "key_padding_mask")
            expected = (batch, source) if batched else (source,)
            if mask.shape != expected:
                raise ValueError(f"MultiheadAttention: key_padding_mask must be {expected}, got {mask.shape}")
            parts.append(mask.reshape(batch, 1, 1, source))
        if is_causal:
            parts.append(~np.tril(np.ones((length, source), dtype=bool)).reshape(1, 1, length, source))
        if not parts:
            return None
        if all(p.dtype == np.bool_ for p in parts):  # torch: True = not allowed
            blocked = np.zeros((1, 1, 1, 1), dtype=bool)
            for p in parts:
                blocked = blocked | p
            return ~blocked
        total = np.zeros((1, 1, 1, 1))
        for p in parts:
            total = total + (np.where(p, MASK_FLOOR, 0.0) if p.dtype == np.bool_ else np.maximum(p, MASK_FLOOR))
        return total

    def extra_repr(self) -> str:
        bias = self.in_proj_bias is not None
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, bias={bias}, batch_first={self.batch_first}"


def _public(mask, name: str) -> np.ndarray:
    if not arrays.is_public(mask):  # a shared value or a Variable
        raise TypeError(f"MultiheadAttention: {name} must be a public array")
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ and mask.dtype.kind not in "fiu":
        raise TypeError(f"MultiheadAttention: {name} must be boolean or float, got dtype {mask.dtype}")
    return mask if mask.dtype == np.bool_ else mask.astype(np.float64)


def _data_or_none(p):
    return None if p is None else p.data
