"""smpc.mpc.transformer_functions and the transformer layers: documented errors and rounds on every protocol,
torch's results (GELU, SiLU, LayerNorm, attention, MultiheadAttention with torch's state dict), bad input."""

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from protocol_matrix import one_per_protocol, one_per_protocol_pairs, protocol_parties, skip_without_rounds
import smpc
from smpc import nn
from smpc.mpc import functions, transformer_functions as tf
from smpc.mpc.transformer_functions import ERRORS, MASK_FLOOR, ROUNDS
from smpc.nn import Variable, functional as F
from conftest import TCP_PHASES, only

SETUPS = protocol_parties("functions")
ULP = 2.0**-16
ELEMENTWISE = ["erf", "gelu", "gelu_tanh", "silu"]

_erf = np.vectorize(math.erf, otypes=[np.float64])


def fixed(values):
    """Values as the fixed-point grid holds them: errors are measured against f of these."""
    return np.rint(np.asarray(values, dtype=np.float64) * 2**16) / 2**16


def exact_layer_norm(x, ndim=1, eps=1e-5):
    axes = tuple(range(x.ndim - ndim, x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    return centred / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)


EXACT = {
    "erf": _erf,
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "silu": lambda x: x / (1 + np.exp(-np.clip(x, -700, 700))),
}
CALLS = {
    "erf": tf.erf,
    "gelu": tf.gelu,
    "gelu_tanh": lambda x: tf.gelu(x, approximate="tanh"),
    "silu": tf.silu,
    "layer_norm": tf.layer_norm,
}


def check(name, got, exact, magnitude):
    got, exact = np.asarray(got), np.asarray(exact)
    assert got.shape == exact.shape, (name, got.shape, exact.shape)
    error, allowed = np.abs(got - exact), ERRORS[name].allowed(magnitude)
    if error.size:
        worst = np.unravel_index(np.argmax(error - allowed), error.shape)
        allowed = np.broadcast_to(allowed, error.shape)
        assert np.all(error <= allowed), f"{name}: error {error[worst]:.3g} > {allowed[worst]:.3g} at {worst}"


def check_all(inputs: dict, got: dict) -> None:
    for name in ELEMENTWISE:
        check(name, got[name], EXACT[name](inputs[name]), inputs[name])
    for i, rows in enumerate(inputs["layer_norm"]):
        want = exact_layer_norm(rows)
        check("layer_norm", got["layer_norm"][i], want, want)


def transformer_suite(inputs: dict, party) -> dict:
    """Every element-wise function and layer norm on party 0's inputs (module level: the TCP tests spawn it)."""
    def shared(value):
        return party.share(only(value, party, 0), src=0)

    out = {name: CALLS[name](shared(inputs[name])).reveal() for name in ELEMENTWISE}
    out["layer_norm"] = [tf.layer_norm(shared(rows)).reveal() for rows in inputs["layer_norm"]]
    return out


def run_all(inputs: dict, protocol: str, parties: int) -> list:
    return smpc.run(functools.partial(transformer_suite, inputs), parties=parties, protocol=protocol)


# --- dense grids: where the ERRORS constants were measured ------------------------------------------------------------
def dense_inputs() -> dict:
    rng = np.random.default_rng(3)
    line = fixed(np.concatenate([np.linspace(-8, 8, 2001), np.linspace(-40, 40, 401)]))
    rows = [fixed(rng.normal(rng.normal() * 3, std, (8, n))) for n in (1, 2, 5, 16, 96)
            for std in (0.0, 1e-3, 0.02, 0.3, 1.0, 6.0, 30.0) if n * std < 20000]
    inputs = {name: line for name in ELEMENTWISE}
    inputs["gelu_tanh"] = np.concatenate([line, [-1000.0, -300.5, 1000.0]])  # the tanh form's range: |x| < 2^10
    inputs["layer_norm"] = rows
    return inputs


@pytest.mark.parametrize("protocol, parties", protocol_parties("functions", heavy=True))  # spdz2k's: extended
def test_documented_errors_hold_on_dense_grids(protocol, parties):
    inputs = dense_inputs()
    for result in run_all(inputs, protocol, parties)[:1]:
        check_all(inputs, result)


# --- hypothesis: shapes and values ----------------------------------------------------------------------------------
@st.composite
def function_inputs(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=5))
    values = st.floats(-12, 12) | st.floats(-60, 60) | st.sampled_from([0.0, ULP, -ULP, 4.0, -6.0, 12.0])
    x = fixed(draw(hnp.arrays(np.float64, shape, elements=values)))
    rows_shape = draw(st.tuples(st.integers(1, 3), st.integers(1, 12)))
    std = draw(st.sampled_from([0.0, 1e-3, 0.05, 1.0, 20.0]))
    offset = draw(st.floats(-50, 50))
    noise = draw(hnp.arrays(np.float64, rows_shape, elements=st.floats(-2, 2)))
    inputs = {name: x for name in ELEMENTWISE}
    inputs["layer_norm"] = [fixed(offset + std * noise)]
    return inputs


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=4)
@given(inputs=function_inputs())
def test_functions_match_float64_within_the_documented_errors(protocol, parties, inputs):
    for result in run_all(inputs, protocol, parties)[:1]:
        check_all(inputs, result)


@pytest.mark.parametrize("setup", one_per_protocol("functions", transport="tcp"))
@settings(max_examples=1, phases=TCP_PHASES)
@given(inputs=function_inputs())
def test_functions_over_tcp(setup, inputs):
    for result in setup.run(functools.partial(transformer_suite, inputs)):
        check_all(inputs, result)


@given(x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4), elements=st.floats(-50, 50)))
def test_numpy_path_is_exact(x):
    for name in ELEMENTWISE:
        got = CALLS[name](x)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        np.testing.assert_allclose(got, EXACT[name](x), rtol=1e-12, atol=1e-15, err_msg=name)
    if x.ndim:
        np.testing.assert_allclose(tf.layer_norm(x), exact_layer_norm(x), rtol=1e-10, atol=1e-12)


def test_layer_norm_is_exactly_zero_on_constant_rows_and_handles_weight_bias_and_several_axes():
    rng = np.random.default_rng(4)
    x = fixed(np.concatenate([np.full((1, 2, 3), 5.25), rng.normal(2, 3, (2, 2, 3))]))
    weight, bias = rng.normal(0, 2, (2, 3)), rng.normal(0, 1, (2, 3))

    def program(party):
        shared = party.share(only(x, party, 0), src=0)
        shared_weight = party.share(only(weight, party, party.world_size - 1), src=party.world_size - 1)
        return (tf.layer_norm(shared, 2).reveal(), tf.layer_norm(shared, 2, weight, bias).reveal(),
                tf.layer_norm(shared, 2, shared_weight, bias).reveal())

    plain, affine, shared_affine = smpc.run(program, parties=2)[0]
    want = exact_layer_norm(x, 2)
    assert np.all(plain[0] == 0.0)
    check("layer_norm", plain, want, want)
    bound = ERRORS["layer_norm"].allowed(want) * np.abs(weight) + 2 * ULP
    assert np.all(np.abs(affine - (want * weight + bias)) <= bound)
    assert np.all(np.abs(shared_affine - (want * weight + bias)) <= bound + 2 * ULP)
    np.testing.assert_allclose(tf.layer_norm(x, 2, weight, bias), want * weight + bias, atol=1e-12)


@pytest.mark.filterwarnings("error")
def test_layer_norm_keeps_a_tiny_eps_and_zero_eps():
    x = fixed(np.concatenate([np.random.default_rng(9).normal(0, 0.5, (3, 4)), np.full((1, 4), -2.0)]))

    def program(party):
        shared = party.share(only(x, party, 0), src=0)
        return tf.layer_norm(shared, eps=1e-12).reveal(), tf.layer_norm(shared, eps=0.0).reveal()

    tiny, zero = smpc.run(program, parties=2)[0]
    for got, eps in ((tiny, 1e-12), (zero, 0.0)):
        want = exact_layer_norm(x[:3], eps=eps)
        check("layer_norm", got[:3], want, want)
        assert np.all(got[3] == 0.0)  # a constant row: exactly 0 even without eps


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_rounds_match_the_documented_formulas(protocol, parties):
    skip_without_rounds(protocol, parties)
    x = np.linspace(-3, 3, 12).reshape(3, 4)

    def rounds_of(party, operation):
        party.reset_stats()
        operation()
        return party.stats["rounds"]

    def program(party):
        a = party.share(only(x, party, 0), src=0)
        measured = {"C": rounds_of(party, lambda: a < 1.0), "M": rounds_of(party, lambda: a * a),
                    "T": rounds_of(party, lambda: a.truncate(1))}
        for base in ("sigmoid", "tanh", "inv_sqrt"):
            measured[base] = rounds_of(party, lambda base=base: getattr(functions, base)(a + 4.0))
        for name, call in CALLS.items():
            measured[name] = rounds_of(party, lambda call=call: call(a))
        return measured

    results = smpc.run(program, parties=parties, protocol=protocol)
    measured = {key: max(result[key] for result in results) for key in results[0]}
    for name in CALLS:
        cost = ROUNDS[name]
        want = cost.count(measured[cost.base], measured["C"], measured["M"], measured["T"])
        if smpc.protocols()[protocol].rounds_add_up:
            assert measured[name] == want, (name, measured)
        else:  # aby3: a sign bit after another step saves a round, so the parts measured alone bound the whole
            assert measured[name] <= want, (name, measured)


def test_docstrings_quote_the_asserted_errors_and_rounds():
    docs = {"erf": tf.erf.__doc__, "gelu": tf.gelu.__doc__, "gelu_tanh": tf.gelu.__doc__, "silu": tf.silu.__doc__,
            "layer_norm": tf.layer_norm.__doc__}
    for name, doc in docs.items():
        text = " ".join(doc.split())
        assert ERRORS[name].describe() in text, name
        assert ROUNDS[name].describe() in text, name
        assert ROUNDS[name].describe() in tf.__doc__, name


# --- masked softmax and attention ----------------------------------------------------------------------------------
def torch_attention(q, k, v, mask=None, is_causal=False, scale=None):
    tensors = [torch.tensor(t) for t in (q, k, v)]
    mask = None if mask is None else torch.tensor(mask)
    out = torch.nn.functional.scaled_dot_product_attention(*tensors, attn_mask=mask, is_causal=is_causal,
                                                           scale=scale)
    return out.numpy()


@st.composite
def attention_inputs(draw):
    batch, length, source, features = (draw(st.integers(1, n)) for n in (2, 4, 5, 4))
    values = st.floats(-2, 2)
    q, k, v = (fixed(draw(hnp.arrays(np.float64, (batch, n, features), elements=values)))
               for n in (length, source, source))
    kind = draw(st.sampled_from(["none", "bool", "float", "causal"]))
    mask, causal = None, kind == "causal"
    if kind == "bool":
        mask = draw(hnp.arrays(np.bool_, (length, source)))
        mask[:, 0] = True  # torch gives NaN on a row that masks everything
    elif kind == "float":
        mask = draw(hnp.arrays(np.float64, (batch, length, source), elements=st.floats(-3, 3)
                               | st.just(-np.inf)))
        mask[..., 0] = 0.0
    return q, k, v, mask, causal


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=3)
@given(inputs=attention_inputs())
def test_attention_matches_torch(protocol, parties, inputs):
    q, k, v, mask, causal = inputs
    want = torch_attention(q, k, v, mask, causal)
    np.testing.assert_allclose(tf.scaled_dot_product_attention(q, k, v, mask, causal), want, atol=1e-12)

    def program(party):
        sq, sk, sv = (party.share(only(t, party, 0), src=0) for t in (q, k, v))
        scores = sq @ sk.transpose((0, 2, 1))
        return (tf.scaled_dot_product_attention(sq, sk, sv, mask, causal).reveal(),
                tf.masked_softmax(scores, mask, is_causal=causal).reveal())

    out, weights = smpc.run(program, parties=parties, protocol=protocol)[0]
    assert np.max(np.abs(out - want)) <= 1e-3
    blocked = np.zeros(weights.shape, bool)
    if causal:
        blocked |= ~np.tril(np.ones(weights.shape[-2:], bool))
    if mask is not None:
        blocked |= (~mask if mask.dtype == np.bool_ else np.isinf(mask))
    assert np.all(weights[np.broadcast_to(blocked, weights.shape)] == 0.0)


def test_masked_softmax_public_paths():
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    keep = np.array([True, False, True])
    got = tf.masked_softmax(x, keep)
    assert np.all(got[:, 1] == 0.0)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0)
    additive = tf.masked_softmax(x, np.array([0.0, -np.inf, 0.0]))
    np.testing.assert_allclose(additive, got)
    causal = tf.masked_softmax(np.zeros((3, 3)), is_causal=True)
    np.testing.assert_allclose(causal, np.tril(np.ones((3, 3))) / np.arange(1, 4)[:, None])
    everything = tf.masked_softmax(x, np.zeros(3, bool))  # a row that masks all: equal weights, not NaN
    np.testing.assert_allclose(everything, 1 / 3)
    assert MASK_FLOOR == -1e4


# --- modules against torch ------------------------------------------------------------------------------------------
def torch_state(module) -> dict:
    return {k: v.detach().numpy().astype(np.float64) for k, v in module.state_dict().items()}


def layers_and_torch():
    torch.manual_seed(5)
    norm = torch.nn.LayerNorm((2, 6)).double()
    with torch.no_grad():
        norm.weight.uniform_(-2, 2)
        norm.bias.uniform_(-1, 1)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_bias.uniform_(-0.2, 0.2)
        mha.out_proj.bias.uniform_(-0.2, 0.2)
    pairs = {
        "gelu": (nn.GELU(), torch.nn.GELU()),
        "gelu_tanh": (nn.GELU(approximate="tanh"), torch.nn.GELU(approximate="tanh")),
        "silu": (nn.SiLU(), torch.nn.SiLU()),
        "norm": (nn.LayerNorm((2, 6)), norm),
        "plain_norm": (nn.LayerNorm(6, elementwise_affine=False), torch.nn.LayerNorm(6, elementwise_affine=False)),
        "mha": (nn.MultiheadAttention(8, 2, batch_first=True), mha),
    }
    for ours, theirs in pairs.values():
        ours.load_state_dict(torch_state(theirs))
        ours.eval()
        theirs.eval()
    return pairs


def module_inputs():
    rng = np.random.default_rng(6)
    return {"gelu": fixed(rng.normal(0, 3, (3, 5))), "gelu_tanh": fixed(rng.normal(0, 3, (3, 5))),
            "silu": fixed(rng.normal(0, 3, (3, 5))), "norm": fixed(rng.normal(1, 2, (3, 2, 6))),
            "plain_norm": fixed(rng.normal(0, 0.01, (4, 6))), "mha": fixed(rng.normal(0, 1, (2, 5, 8)))}


def torch_outputs(pairs, inputs):
    out = {}
    with torch.no_grad():
        for name, (_, theirs) in pairs.items():
            x = torch.tensor(inputs[name])
            out[name] = theirs(x, x, x, attn_mask=_CAUSAL)[0].numpy() if name == "mha" else theirs(x).numpy()
    return out


_CAUSAL = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)  # torch's MultiheadAttention: True = blocked
TOLERANCE = {"norm": 5e-4, "plain_norm": 5e-4, "mha": 2e-3}


def test_modules_match_torch_in_plaintext():
    pairs, inputs = layers_and_torch(), module_inputs()
    want = torch_outputs(pairs, inputs)
    for name, (ours, _) in pairs.items():
        got = ours(inputs[name], attn_mask=_CAUSAL.numpy())[0] if name == "mha" else ours(inputs[name])
        np.testing.assert_allclose(got, want[name], atol=1e-10, err_msg=name)
    assert list(pairs["mha"][0].state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                  "out_proj.bias"]


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_shared_modules_match_torch(protocol, parties):
    pairs, inputs = layers_and_torch(), module_inputs()
    want = torch_outputs(pairs, inputs)

    def program(party):
        out = {}
        for name, (ours, _) in pairs.items():
            model = ours.share(party, src=0)
            x = party.share(only(inputs[name], party, party.world_size - 1), src=party.world_size - 1)
            if name == "mha":
                result, weights = model(x, attn_mask=_CAUSAL.numpy())
                out["mha_weights"] = weights.reveal()
            else:
                result = model(x)
            out[name] = result.reveal()
        return out

    got = smpc.run(program, parties=parties, protocol=protocol)[0]
    for name in pairs:
        if name in ELEMENTWISE:  # torch's float64 values against the documented bound
            check(name, got[name], want[name], inputs[name])
        else:
            assert np.max(np.abs(got[name] - want[name])) <= TOLERANCE[name], name
    assert np.all(got["mha_weights"][:, np.triu(np.ones((5, 5), bool), 1)] == 0.0)


def test_training_gradients_match_torch():
    rng = np.random.default_rng(7)
    x = rng.normal(0, 2, (3, 4))
    upstream = rng.normal(size=(3, 4))
    for ours, theirs in [(nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU(approximate="tanh")),
                         (nn.SiLU(), torch.nn.SiLU()), (nn.LayerNorm(4), torch.nn.LayerNorm(4).double())]:
        if isinstance(ours, nn.LayerNorm):
            with torch.no_grad():
                theirs.weight.uniform_(-2, 2)
                theirs.bias.uniform_(-1, 1)
            ours.load_state_dict(torch_state(theirs))
        tx = torch.tensor(x, requires_grad=True)
        theirs(tx).backward(torch.tensor(upstream))
        vx = Variable(x, requires_grad=True)
        ours.train()(vx).backward(upstream)
        np.testing.assert_allclose(vx.grad, tx.grad.numpy(), atol=1e-9, err_msg=type(ours).__name__)
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, getattr(theirs, name).grad.numpy(), atol=1e-9)


def test_shared_training_gradients_of_layer_norm_and_silu():
    rng = np.random.default_rng(8)
    x, upstream = fixed(rng.normal(0, 2, (3, 4))), rng.normal(size=(3, 4))
    want = {}
    for name, layer in (("norm", torch.nn.LayerNorm(4).double()), ("silu", torch.nn.SiLU()),
                        ("gelu", torch.nn.GELU())):
        tx = torch.tensor(x, requires_grad=True)
        layer(tx).backward(torch.tensor(upstream))
        want[name] = tx.grad.numpy()

    def program(party):
        out = {}
        for name, layer in (("norm", nn.LayerNorm(4)), ("silu", nn.SiLU()), ("gelu", nn.GELU())):
            vx = Variable(party.share(only(x, party, 0), src=0), requires_grad=True)
            layer.share(party, src=0)(vx).backward(upstream)
            out[name] = vx.grad.reveal()
        return out

    got = smpc.run(program, parties=2)[0]
    for name, value in want.items():
        assert np.max(np.abs(got[name] - value)) <= 2e-3, name


# --- bad input ---------------------------------------------------------------------------------------------------
def test_bad_input_is_refused_with_a_clear_message():
    x = np.ones((2, 4))
    cases = [
        (lambda: tf.gelu(x, approximate="fast"), ValueError, "approximate must be 'none' or 'tanh'"),
        (lambda: nn.GELU(approximate="exact"), ValueError, "approximate must be 'none' or 'tanh'"),
        (lambda: F.gelu(x, "erf"), ValueError, "approximate must be"),
        (lambda: nn.LayerNorm(5)(x), ValueError, r"does not end with the normalized shape"),
        (lambda: F.layer_norm(x, (3, 4)), ValueError, "does not end with the normalized shape"),
        (lambda: tf.layer_norm(x, 1, np.ones(3)), ValueError, r"weight of shape \(3,\) does not match"),
        (lambda: tf.layer_norm(x, 3), ValueError, "fewer than 3 axes"),
        (lambda: nn.LayerNorm(()), ValueError, "at least one axis"),
        (lambda: nn.MultiheadAttention(10, 3), ValueError, "embed_dim 10 must be divisible by num_heads 3"),
        (lambda: nn.MultiheadAttention(8, 0), ValueError, "num_heads must be a positive integer"),
        (lambda: tf.masked_softmax(x, np.ones(3, bool)), ValueError, r"mask of shape \(3,\) does not broadcast"),
        (lambda: tf.masked_softmax(x, np.array(["a"] * 4)), TypeError, "boolean or float"),
        (lambda: tf.masked_softmax(x, is_causal=True, axis=0), ValueError, "use axis=-1"),
        (lambda: tf.scaled_dot_product_attention(x, np.ones((2, 3)), x), ValueError, "equal features"),
        (lambda: tf.scaled_dot_product_attention(x, x, x, np.ones((2, 3), bool)), ValueError, "does not broadcast"),
        (lambda: tf.scaled_dot_product_attention(x, x, x, np.ones((2, 2), bool), True), ValueError, "not both"),
        (lambda: F.scaled_dot_product_attention(Variable(x), x, x), NotImplementedError, "not supported"),
        (lambda: nn.MultiheadAttention(4, 2)(np.ones((1, 3, 4)), attn_mask=np.ones((2, 2), bool)), ValueError,
         r"attn_mask must be \(3, 3\)"),
        (lambda: nn.MultiheadAttention(4, 2)(np.ones((1, 3, 4)), key_padding_mask=np.ones((1, 2), bool)),
         ValueError, r"key_padding_mask must be \(1, 3\)"),
        (lambda: nn.MultiheadAttention(4, 2)(np.ones((1, 3, 5))), ValueError, "do not fit"),
        (lambda: nn.MultiheadAttention(4, 2, dropout=0.1)(np.ones((1, 3, 4))), NotImplementedError, "dropout"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


def test_bad_input_is_refused_inside_a_run():
    def wrong_mask(party):
        a = party.share(only(np.ones((2, 3)), party, 0), src=0)
        return tf.masked_softmax(a, np.ones((3, 3), bool))

    def shared_mask(party):
        a = party.share(only(np.ones((2, 3)), party, 0), src=0)
        return tf.masked_softmax(a, a)

    for program, message in [(wrong_mask, "does not broadcast"), (shared_mask, "must be a public array")]:
        with pytest.raises(smpc.PartyFailedError, match=message):
            smpc.run(program, parties=2)


# --- embedding ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol, parties", one_per_protocol_pairs("functions"))
def test_embedding_matches_torch_plaintext_and_with_private_ids(protocol, parties):
    torch.manual_seed(0)
    reference = torch.nn.Embedding(50, 6)
    ours = nn.Embedding(50, 6)
    ours.load_state_dict({k: v.detach().numpy().astype(np.float64) for k, v in reference.state_dict().items()})
    ids = np.random.default_rng(2).integers(0, 50, size=(2, 5))
    want = reference(torch.from_numpy(ids)).detach().numpy()
    np.testing.assert_allclose(ours(ids), want, rtol=1e-6)
    assert repr(ours) == "Embedding(50, 6)"

    def program(party):
        shared = ours.share(party, src=0)
        tokens = nn.share_tokens(party, only(ids, party, parties - 1), parties - 1, 50)
        public_ids = shared(ids)  # public ids, shared weight
        return shared(tokens).reveal(), public_ids.reveal()

    for private, public in smpc.run(program, parties=parties, protocol=protocol):
        np.testing.assert_allclose(private, want, atol=2.0**-16)
        np.testing.assert_allclose(public, want, atol=2.0**-15)


def test_embedding_bad_input():
    table = nn.Embedding(4, 2)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 4\)"):
        table(np.array([0, 4]))
    with pytest.raises(TypeError, match="token ids must be integers"):
        table(np.array([0.5]))
    with pytest.raises(ValueError, match="num_embeddings"):
        nn.Embedding(0, 2)

    def fixed_point_ids(party):
        shared = table.share(party, src=0)
        return shared(party.share(only(np.array([1.0]), party, 0), src=0))

    with pytest.raises(smpc.PartyFailedError, match="must be an integer tensor"):
        smpc.run(fixed_point_ids, parties=2)
