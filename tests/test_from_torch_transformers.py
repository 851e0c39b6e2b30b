"""from_torch on transformers: LayerNorm, GELU, SiLU, attention (SDPA, nn.MultiheadAttention, hand-written with a
masked_fill), embeddings of private token ids; small ViT, BERT-style and GPT-style models written with torch.nn,
against torch in plaintext and on shared tensors (2-party additive, 3-party aby3)."""

import functools

import numpy as np
import pytest

from protocol_matrix import one_per_protocol_pairs
import smpc
from importer_helpers import assert_relative
from smpc import nn
from smpc.nn.importers import ops

torch = pytest.importorskip("torch")
from torch import nn as tnn  # noqa: E402
from torch.nn import functional as TF  # noqa: E402

SETTINGS = one_per_protocol_pairs("nn", min_parties=2)  # party 0 owns the model, party 1 the data


# --- models ----------------------------------------------------------------------------------------------------
class EncoderBlock(tnn.Module):
    """Pre-norm transformer block with torch's nn.MultiheadAttention (it exports into scaled_dot_product_attention)."""

    def __init__(self, d, heads, act):
        super().__init__()
        self.norm1 = tnn.LayerNorm(d)
        self.attn = tnn.MultiheadAttention(d, heads, batch_first=True)
        self.norm2 = tnn.LayerNorm(d)
        self.mlp = tnn.Sequential(tnn.Linear(d, 2 * d), act, tnn.Linear(2 * d, d))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyViT(tnn.Module):
    """Patch-embedding convolution, class token, learned positions, two encoder blocks, LayerNorm, linear head."""

    def __init__(self, d=16, patch=4, image=8, classes=5):
        super().__init__()
        self.patch = tnn.Conv2d(3, d, patch, stride=patch)
        self.cls = tnn.Parameter(torch.zeros(1, 1, d))
        self.pos = tnn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, d))
        self.blocks = tnn.Sequential(EncoderBlock(d, 2, tnn.GELU()), EncoderBlock(d, 2, tnn.GELU()))
        self.norm = tnn.LayerNorm(d)
        self.head = tnn.Linear(d, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


class SelfAttention(tnn.Module):
    """Hand-written multi-head attention as BERT writes it: matmul, scale, masked_fill with finfo.min, softmax."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (tnn.Linear(d, d) for _ in range(4))

    def split(self, t):
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.dh).permute(0, 2, 1, 3)

    def forward(self, x, keep):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / self.dh ** 0.5
        scores = scores.masked_fill(keep == 0, torch.finfo(scores.dtype).min)
        out = torch.softmax(scores, dim=-1) @ v
        b, h, n, dh = out.shape
        return self.o(out.permute(0, 2, 1, 3).contiguous().view(b, n, h * dh))


class TinyBert(tnn.Module):
    """Token and position embeddings, LayerNorm, masked self-attention, erf-GELU feed-forward, mean-pooled head."""

    def __init__(self, vocab=64, d=16, heads=2, seq=6, classes=4):
        super().__init__()
        self.tokens = tnn.Embedding(vocab, d)
        self.positions = tnn.Embedding(seq, d)
        self.norm0 = tnn.LayerNorm(d)
        self.attn = SelfAttention(d, heads)
        self.norm1 = tnn.LayerNorm(d)
        self.ff = tnn.Sequential(tnn.Linear(d, 2 * d), tnn.GELU(), tnn.Linear(2 * d, d))
        self.norm2 = tnn.LayerNorm(d)
        self.head = tnn.Linear(d, classes)
        keep = torch.ones(1, 1, seq, seq)
        keep[..., -1] = 0  # the last position is padding: no one attends to it
        self.register_buffer("keep", keep, persistent=False)

    def forward(self, ids):
        x = self.norm0(self.tokens(ids) + self.positions(torch.arange(ids.shape[1])))
        x = self.norm1(x + self.attn(x, self.keep))
        x = self.norm2(x + self.ff(x))
        return self.head(x.mean(1))


class GPTBlock(tnn.Module):
    """GPT-style decoder: causal SDPA (is_causal=True), fused qkv split, SiLU or tanh-GELU MLP, tied output."""

    def __init__(self, vocab=48, d=16, heads=2, act=None):
        super().__init__()
        self.heads = heads
        self.embed = tnn.Embedding(vocab, d)
        self.pos = tnn.Parameter(torch.zeros(8, d))
        self.ln1 = tnn.LayerNorm(d)
        self.qkv = tnn.Linear(d, 3 * d)
        self.proj = tnn.Linear(d, d)
        self.ln2 = tnn.LayerNorm(d)
        self.fc = tnn.Linear(d, 4 * d)
        self.act = act or tnn.SiLU()
        self.out = tnn.Linear(4 * d, d)
        self.lnf = tnn.LayerNorm(d)

    def forward(self, ids):
        b, t = ids.shape
        x = self.embed(ids) + self.pos[:t]
        q, k, v = self.qkv(self.ln1(x)).split(x.shape[-1], dim=2)
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        y = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, -1))
        x = x + self.out(self.act(self.fc(self.ln2(x))))
        return self.lnf(x) @ self.embed.weight.T  # logits over the vocabulary (tied weights)


def randomize(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (tnn.Conv2d, tnn.Linear)):
                bound = (3 / module.weight[0].numel()) ** 0.5
                module.weight.uniform_(-bound, bound)
                module.bias.uniform_(-0.2, 0.2)
            elif isinstance(module, tnn.LayerNorm):
                module.weight.uniform_(0.7, 1.3)
                module.bias.uniform_(-0.2, 0.2)
            elif isinstance(module, tnn.MultiheadAttention):
                bound = (3 / module.embed_dim) ** 0.5
                module.in_proj_weight.uniform_(-bound, bound)
                module.in_proj_bias.uniform_(-0.2, 0.2)
        for name, p in model.named_parameters(recurse=True):
            if name in ("cls", "pos") or "tokens" in name or "positions" in name or name == "embed.weight":
                p.normal_(0, 0.7)
    return model.eval()


CASES = {
    "vit": (TinyViT, {}, "image"),
    "bert": (TinyBert, {}, 64),
    "gpt_silu": (GPTBlock, {}, 48),
    "gpt_gelu_tanh": (GPTBlock, {"act": "tanh"}, 48),
}


def example(case, seed):
    kind = CASES[case][2]
    rng = np.random.default_rng(seed)
    if kind == "image":
        return rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    return rng.integers(0, kind, size=(1, 6)).astype(np.int64)


@functools.lru_cache(maxsize=None)
def converted(case, seed):
    cls, kwargs, _ = CASES[case]
    kwargs = {"act": tnn.GELU(approximate="tanh")} if kwargs else {}
    model = randomize(cls(**kwargs), seed)
    return model, nn.from_torch(model, (torch.from_numpy(example(case, 0)),))


def torch_output(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


# --- plaintext -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_plaintext_matches_torch(case):
    model, converted_model = converted(case, 1)
    for seed in (0, 1, 2):
        x = example(case, seed)
        got = converted_model(x)
        assert got.dtype == np.float64
        assert_relative(got, torch_output(model, x), 1e-5)
    assert list(converted_model.state_dict()) == list(model.state_dict())


def test_ops_appear_in_the_converted_graph():
    labels = {case: {s.label for s in converted(case, 1)[1].steps} for case in CASES}
    assert {"layer_norm", "gelu", "attention"} <= labels["vit"]
    assert {"embedding", "masked_fill", "softmax", "gelu"} <= labels["bert"]
    assert {"embedding", "attention", "silu"} <= labels["gpt_silu"]
    spec = converted("bert", 1)[1].inputs[0]
    assert (spec.shape, spec.dtype, spec.vocabulary) == ((1, 6), "int64", 64)


# --- private inference -----------------------------------------------------------------------------------------
def _program(owner, other, case, x, party):
    """Party 0 owns the weights, party 1 the input (an image, or token ids shared as integers)."""
    shared_model = (owner if party.rank == 0 else other).share(party, src=0)
    if CASES[case][2] == "image":
        shared_x = party.share(x if party.rank == 1 else None, src=1)
    else:
        shared_x = nn.share_tokens(party, x if party.rank == 1 else None, 1, CASES[case][2])
    return shared_model(shared_x).reveal(to=1)


@pytest.mark.parametrize("protocol,parties", SETTINGS)
@pytest.mark.parametrize("case", list(CASES))
def test_private_inference_matches_torch(case, protocol, parties):
    model, owner = converted(case, 1)
    _, other = converted(case, 2)  # only party 0's weights may count
    x = example(case, 3)
    results = smpc.run(functools.partial(_program, owner, other, case, x), parties=parties, protocol=protocol,
                       timeout=300)
    assert results[0] is None
    want = torch_output(model, x)
    assert_relative(results[1], want, 2e-2)
    assert np.array_equal(results[1].argmax(axis=-1), want.argmax(axis=-1))


# --- the pieces, on shared values --------------------------------------------------------------------------------
def test_shared_activations_and_layer_norm_against_torch():
    x = np.linspace(-8, 8, 321).reshape(3, 107) + 0.01
    weight, bias = np.linspace(0.5, 1.5, 107), np.linspace(-0.3, 0.3, 107)
    tx = torch.from_numpy(x)
    want = {"gelu": TF.gelu(tx).numpy(), "gelu_tanh": TF.gelu(tx, approximate="tanh").numpy(),
            "silu": TF.silu(tx).numpy(),
            "layer_norm": TF.layer_norm(tx, (107,), torch.from_numpy(weight), torch.from_numpy(bias)).numpy()}

    def program(party):
        s = party.share(x if party.rank == 0 else None, src=0)
        return {"gelu": ops.gelu(s).reveal(), "gelu_tanh": ops.gelu(s, "tanh").reveal(), "silu": ops.silu(s).reveal(),
                "layer_norm": ops.layer_norm(s, 1, weight, bias).reveal()}

    got = smpc.run(program, parties=2)[0]
    for name in want:
        np.testing.assert_allclose(ops.gelu(x) if name == "gelu" else got[name], want[name], atol=1e-3)
    assert np.max(np.abs(got["gelu"] - want["gelu"])) < 2e-4  # 2 units + 1.5 units times |x| <= 8
    assert np.max(np.abs(got["gelu_tanh"] - want["gelu_tanh"])) < 1e-4
    assert np.max(np.abs(got["silu"] - want["silu"])) < 2e-4  # sigmoid's 1.5 units times |x| <= 8
    assert np.max(np.abs(got["layer_norm"] - want["layer_norm"])) < 1e-3


def test_masked_attention_weights_are_exactly_zero_on_shared_scores():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 5, 4)) for _ in range(3))
    keep = np.tril(np.ones((5, 5), dtype=bool))
    keep[:, 2] = keep[:, 2] & (np.arange(5) == 2)  # position 2 is seen by itself only
    value = np.eye(5)[None, None].repeat(2, axis=1)  # v = identity: the output is the attention weights
    want = TF.scaled_dot_product_attention(*(torch.from_numpy(t) for t in (q, k)), torch.from_numpy(value),
                                           attn_mask=torch.from_numpy(keep)).numpy()
    causal = TF.scaled_dot_product_attention(*(torch.from_numpy(t) for t in (q, k, v)), is_causal=True).numpy()

    def program(party):
        sq, sk, sv, sid = (party.share(t if party.rank == 0 else None, src=0) for t in (q, k, v, value))
        return ops.attention(sq, sk, sid, keep).reveal(), ops.attention(sq, sk, sv, causal=True).reveal()

    for protocol, parties in (param.values for param in SETTINGS):
        weights, out = smpc.run(program, parties=parties, protocol=protocol)[0]
        assert np.all(weights[..., ~keep] == 0)  # masked positions: exactly 0, not just small
        np.testing.assert_allclose(weights, want, atol=2e-4)
        np.testing.assert_allclose(out, causal, atol=5e-4)


class MaskedMultiheadAttention(tnn.Module):
    """nn.MultiheadAttention with an explicit boolean attn_mask (a public, non-persistent buffer)."""

    def __init__(self, d=16, seq=5):
        super().__init__()
        self.attn = tnn.MultiheadAttention(d, 2, batch_first=True)
        self.register_buffer("mask", torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1), persistent=False)

    def forward(self, x):
        return self.attn(x, x, x, attn_mask=self.mask, need_weights=False)[0]


def test_multihead_attention_with_a_boolean_mask():
    model = randomize(MaskedMultiheadAttention(), 0)
    x = np.random.default_rng(0).standard_normal((1, 5, 16)).astype(np.float32)
    converted_model = nn.from_torch(model, (torch.from_numpy(x),))
    assert "attention" in {s.label for s in converted_model.steps}
    assert_relative(converted_model(x), torch_output(model, x), 1e-5)

    def program(party):
        return converted_model.share(party, src=0)(party.share(x if party.rank == 1 else None, src=1)).reveal()

    assert_relative(smpc.run(program, parties=2)[0], torch_output(model, x), 2e-3)


class TiedLM(tnn.Module):
    """Token embedding and output layer with one weight between them (tied, as GPT-2's language-model head)."""

    def __init__(self, vocab=48, d=16):
        super().__init__()
        self.embed = tnn.Embedding(vocab, d)
        self.norm = tnn.LayerNorm(d)
        self.head = tnn.Linear(d, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids):
        return self.head(self.norm(self.embed(ids)))


def test_tied_weights_stay_one_parameter_shared_once():
    torch.manual_seed(0)
    model = TiedLM().eval()
    ids = np.random.default_rng(0).integers(0, 48, size=(1, 6))
    converted_model = nn.from_torch(model, (torch.from_numpy(ids),))
    assert list(converted_model.state_dict()) == list(model.state_dict())  # the tied key under both names
    assert [name for name, _ in converted_model.named_parameters()] == [name for name, _ in model.named_parameters()]
    assert converted_model.layer("head").weight is converted_model.layer("embed").weight
    want = torch_output(model, ids)

    def program(party):
        shared_model = converted_model.share(party, src=0)
        tied = shared_model.state_value("head.weight") is shared_model.state_value("embed.weight")
        return tied, shared_model(nn.share_tokens(party, ids if party.rank == 1 else None, 1, 48)).reveal(to=1)

    for protocol, parties in (param.values for param in SETTINGS):
        results = smpc.run(program, parties=parties, protocol=protocol)
        assert all(tied for tied, _ in results)
        assert_relative(results[1][1], want, 2e-2)
        assert np.array_equal(results[1][1].argmax(axis=-1), want.argmax(axis=-1))


# --- token inputs --------------------------------------------------------------------------------------------------
def test_token_inputs_are_checked():
    _, converted_model = converted("bert", 1)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 64\)"):
        converted_model(np.full((1, 6), 64))

    def program(party):
        shared = converted_model.share(party, src=0)
        return shared(party.share(np.zeros((1, 6)) if party.rank == 1 else None, src=1))

    with pytest.raises(smpc.PartyFailedError, match=r"token ids are shared as integers"):
        smpc.run(program, parties=2)

    def wrong_shape(party):
        shared = converted_model.share(party, src=0)
        return shared(nn.share_tokens(party, np.zeros((1, 5), np.int64) if party.rank == 1 else None, 1, 64))

    with pytest.raises(smpc.PartyFailedError, match=r"shape"):
        smpc.run(wrong_shape, parties=2)

    def bad_ids(party):
        return nn.share_tokens(party, np.full((1, 6), 99) if party.rank == 0 else None, 0, 64)

    with pytest.raises(smpc.PartyFailedError, match=r"token ids must lie in \[0, 64\)"):
        smpc.run(bad_ids, parties=2)


# --- transformers' own models ---------------------------------------------------------------------------------------
def _tiny_transformers_model(name: str, seed: int):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    if name == "bert":
        config = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=32, max_position_embeddings=16)
        model = transformers.BertModel(config)
    elif name == "gpt2":
        config = transformers.GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=16)
        model = transformers.GPT2LMHeadModel(config)
    else:  # a ViT on 224x224 images in 16x16 patches (197 tokens), narrow so that the test stays quick
        config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=64, image_size=224, patch_size=16)
        model = transformers.ViTModel(config, add_pooling_layer=False)
    model.eval()

    class Output(tnn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, inputs):
            if name == "vit":
                return self.model(pixel_values=inputs).last_hidden_state
            out = self.model(input_ids=inputs)
            return out.last_hidden_state if name == "bert" else out.logits

    return Output().eval()


@pytest.mark.parametrize("name", ["bert", "gpt2", "vit"])
def test_tiny_transformers_models_plaintext_and_private(name):
    """transformers' own BertModel, GPT2LMHeadModel (causal) and ViTModel (224x224): the input (token ids or an
    image) of party 1, the weights of party 0."""
    rng = np.random.default_rng(0)
    if name == "vit":
        ids = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    else:
        ids = rng.integers(0, 64, size=(1, 6))
    wrapper = _tiny_transformers_model(name, 0)
    example = (torch.from_numpy(ids),)
    owner = nn.from_torch(wrapper, example)
    other = nn.from_torch(_tiny_transformers_model(name, 1), example)  # only party 0's weights may count
    with torch.no_grad():
        want = wrapper(*example).numpy()
    assert_relative(owner(ids), want, 1e-5)
    # GPT-2's output layer is its token embedding (tied): one parameter, shared once
    assert sum(p.data.size for p in owner.parameters()) == sum(p.numel() for p in wrapper.parameters())

    def program(party):
        shared_model = (owner if party.rank == 0 else other).share(party, src=0)
        if name == "vit":
            shared_input = party.share(ids.astype(np.float64) if party.rank == 1 else None, src=1)
        else:
            shared_input = nn.share_tokens(party, ids if party.rank == 1 else None, 1, 64)
        return shared_model(shared_input).reveal(to=1)

    for protocol, parties in (param.values for param in SETTINGS):
        got = smpc.run(program, parties=parties, protocol=protocol, timeout=300)[1]
        assert_relative(got, want, 2e-2)
        if name == "gpt2":  # logits: the predicted tokens agree
            assert np.array_equal(got.argmax(axis=-1), want.argmax(axis=-1))
