"""from_torch: PyTorch models converted to smpc.nn, against torch in plaintext and on shared tensors."""

import functools
import subprocess
import sys

import numpy as np
import pytest

from protocol_matrix import one_per_protocol_pairs
import smpc
from importer_helpers import as_list, assert_relative, private_program
from smpc import nn

torch = pytest.importorskip("torch")
from tests import torch_models as tm  # noqa: E402  (imports torch)

SETTINGS = one_per_protocol_pairs("nn", min_parties=2)  # party 0 owns the model, party 1 the data
FAMILIES = [tm.ResidualCNN, tm.MobileSE, tm.TinyDenseNet, tm.TinyShuffleNet]
IMAGE = (1, 3, 16, 16)


def image(shape=IMAGE, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@functools.lru_cache(maxsize=None)
def converted(cls, seed: int, shape=IMAGE):
    """(torch model, converted model) for a family, random weights from ``seed``; callers copy before changing."""
    model = tm.randomize(cls(), seed)
    return model, nn.from_torch(model, (torch.from_numpy(image(shape)),))


def torch_outputs(model, *inputs) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(*[torch.from_numpy(x) for x in inputs])
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


# --- plaintext -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", FAMILIES + [tm.OpsZoo], ids=lambda c: c.__name__)
def test_plaintext_forward_matches_torch(cls):
    model, converted_model = converted(cls, 1)
    for seed in (0, 1):
        x = image(seed=seed)
        for got, want in zip(as_list(converted_model(x)), torch_outputs(model, x), strict=True):
            assert got.dtype == np.float64
            assert_relative(got, want, 1e-5)
    assert list(converted_model.state_dict()) == list(model.state_dict())  # torch's keys, torch's order


def test_state_dict_round_trip_with_torch_weights():
    model, converted_model = converted(tm.ResidualCNN, 1)
    other = tm.randomize(tm.ResidualCNN(), 7)
    copy = converted_model.copy()
    copy.load_state_dict({k: v.numpy() for k, v in other.state_dict().items()})
    assert_relative(copy(image()), torch_outputs(other, image())[0], 1e-5)
    for key, value in copy.state_dict().items():
        np.testing.assert_allclose(value, other.state_dict()[key].numpy(), rtol=1e-6)


def test_print_shows_layers_paths_and_shapes():
    _, converted_model = converted(tm.ResidualCNN, 1)
    text = repr(converted_model)
    assert text.startswith("GraphModule(from ResidualCNN; x: (1, 3, 16, 16) float32")
    assert "= layer1.0.conv1: Conv2d(8, 8, kernel_size=(3, 3)" in text
    assert "= layer2.0.downsample.1: BatchNorm2d(16" in text
    assert "max_pool2d(relu, [3, 3], [2, 2], [1, 1], [1, 1])  [maxpool (MaxPool2d)]  -> (1, 8, 8, 8)" in text
    assert text.rstrip().endswith("return linear\n)")


def test_two_inputs_and_two_outputs():
    model = tm.randomize(tm.TwoInputs(), 3)
    x, features = image(), np.random.default_rng(1).standard_normal((1, 5)).astype(np.float32)
    converted_model = nn.from_torch(model, (torch.from_numpy(x), torch.from_numpy(features)))
    got = converted_model(x, features)
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, torch_outputs(model, x, features), strict=True):
        assert_relative(g, w, 1e-5)
    with pytest.raises(TypeError, match=r"takes 2 input\(s\) \(image, features\), got 1"):
        converted_model(x)


def test_batch_norm_folds_only_where_the_convolution_feeds_it_alone():
    _, resnet = converted(tm.ResidualCNN, 1)
    folded = nn.fold_batchnorm(resnet.copy())
    kinds = {type(folded.layer(s.module)).__name__ for s in folded.steps if s.module and "bn" in s.module}
    assert kinds == {"Identity"}
    assert_relative(folded(image()), resnet(image()), 1e-9)
    _, dense = converted(tm.TinyDenseNet, 1)  # its BatchNorms mostly follow a concatenation
    folded = nn.fold_batchnorm(dense.copy())
    assert type(folded.layer("features.3.layers.0.norm1")).__name__ == "ChannelAffine"
    assert type(folded.layer("features.3.layers.0.norm2")).__name__ == "Identity"  # after conv1
    assert_relative(folded(image()), dense(image()), 1e-9)
    model = tm.randomize(tm.SharedConvOutput(), 2)
    shared_output = nn.from_torch(model, (torch.from_numpy(image()),))
    folded = nn.fold_batchnorm(shared_output.copy())
    assert type(folded.layer("bn")).__name__ == "ChannelAffine"
    assert_relative(folded(image()), torch_outputs(model, image())[0], 1e-5)


def test_fixed_point_range_check_runs_on_converted_models():
    _, converted_model = converted(tm.MobileSE, 1)
    seen = nn.check_fixed_point_range(converted_model, image())
    assert "features.0.0" in seen and all(v < 2**30 for v in seen.values())


# --- private inference -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol,parties", SETTINGS)
@pytest.mark.parametrize("cls", FAMILIES + [tm.OpsZoo], ids=lambda c: c.__name__)
def test_private_inference_matches_torch(cls, protocol, parties):
    model, owner = converted(cls, 1)
    _, other = converted(cls, 2)  # only party 0's weights may count
    x = image(seed=3)
    program = functools.partial(private_program, owner, other, x)
    results = smpc.run(program, parties=parties, protocol=protocol, timeout=300)
    assert results[0] == [None] * len(results[1])  # only the input owner learns the outputs
    for got, want in zip(results[1], torch_outputs(model, x), strict=True):
        assert_relative(got, want, 2e-2)
        assert np.array_equal(got.argmax(axis=-1), want.argmax(axis=-1))


def test_every_party_converts_its_own_torch_model():
    """The documented flow: each party converts the architecture it has; party 0's weights are used."""
    x = image(seed=4)
    models = [tm.randomize(tm.TinyShuffleNet(), 10 + rank) for rank in range(3)]  # torch's seed is global

    def program(party):
        converted_model = nn.from_torch(models[party.rank], (torch.from_numpy(x),))
        shared_x = party.share(x if party.rank == 1 else None, src=1)
        return converted_model.share(party, src=0)(shared_x).reveal(to=1)

    got = smpc.run(program, parties=3, protocol="aby3", timeout=300)[1]
    assert_relative(got, torch_outputs(models[0], x)[0], 2e-2)


def test_a_shared_input_of_the_wrong_shape_fails_before_any_protocol_step():
    _, converted_model = converted(tm.ResidualCNN, 1)

    def program(party):
        shared_model = converted_model.share(party, src=0)
        return shared_model(party.share(image((2, 3, 16, 16)) if party.rank == 1 else None, src=1))

    with pytest.raises(smpc.PartyFailedError, match=r"expected shape \(1, 3, 16, 16\).*got \(2, 3, 16, 16\)"):
        smpc.run(program, parties=2)


def test_parties_with_different_conversions_are_refused_before_sharing():
    _, small = converted(tm.ResidualCNN, 1, (1, 3, 8, 8))  # same parameters, another traced graph
    _, large = converted(tm.ResidualCNN, 1)

    def program(party):
        return (large if party.rank == 0 else small).share(party, src=0)

    with pytest.raises(smpc.PartyFailedError, match=r"parameter names or shapes \(or converted graph\) differ"):
        smpc.run(program, parties=2)


# --- refusals -------------------------------------------------------------------------------------------------
class StillUnsupported(torch.nn.Module):
    """Upsampling, a transposed convolution and count_include_pad=False pooling: not converted yet."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.blocks = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(4, 4, 1),
                                          torch.nn.Upsample(scale_factor=2))
        self.up = torch.nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.pool = torch.nn.AvgPool2d(3, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.up(self.pool(self.blocks(self.conv(x)))).mean((2, 3))


def test_unsupported_ops_are_all_listed_with_counts_and_paths():
    with pytest.raises(nn.UnsupportedModelError) as caught:
        nn.from_torch(StillUnsupported().eval(), (torch.randn(1, 3, 8, 8),))
    error = caught.value
    assert isinstance(error, ValueError)
    message = str(error)
    assert "4 unsupported operation(s) of 3 kind(s)" in message
    assert "aten.upsample_nearest2d: 2x at blocks.0 (Upsample), blocks.2 (Upsample)" in message
    assert "aten.conv_transpose2d: 1x at up (ConvTranspose2d)" in message
    assert "aten.avg_pool2d (count_include_pad=False with padding): 1x at pool (AvgPool2d)" in message
    assert error.unsupported["aten.upsample_nearest2d"] == ["blocks.0 (Upsample)", "blocks.2 (Upsample)"]


def test_gelu_layer_norm_and_silu_now_convert():
    model = tm.WithGelu().eval()
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(nn.UnsupportedModelError) as caught:  # only its count_include_pad=False pooling is left
        nn.from_torch(model, (x,))
    assert list(caught.value.unsupported) == ["aten.avg_pool2d (count_include_pad=False with padding)"]


def test_data_dependent_control_flow_is_named():
    with pytest.raises(nn.UnsupportedModelError, match=r"data-dependent control flow at .*torch_models\.py:\d+ "
                                                       r"\(if y\.sum\(\) > 0:\)") as caught:
        nn.from_torch(tm.DataDependent().eval(), (torch.randn(2, 4),))
    assert list(caught.value.unsupported) == ["data-dependent control flow"]


def test_models_in_training_mode_are_refused():
    with pytest.raises(ValueError, match=r"in training mode; call model\.eval\(\) first"):
        nn.from_torch(tm.ResidualCNN(), (torch.randn(*IMAGE),))
    model = tm.ResidualCNN().eval()
    model.layer1[1].bn2.train()
    with pytest.raises(ValueError, match=r"layer1\.1\.bn2 in training mode"):
        nn.from_torch(model, (torch.randn(*IMAGE),))


def test_bad_example_inputs_and_bad_call_inputs():
    model = tm.randomize(tm.ResidualCNN(), 0)
    with pytest.raises(TypeError, match="tuple of tensors"):
        nn.from_torch(model, torch.randn(*IMAGE))
    with pytest.raises(TypeError, match=r"non-empty tuple of tensors, got \(ndarray\)"):
        nn.from_torch(model, (image(),))
    with pytest.raises(TypeError, match="needs a torch.nn.Module"):
        nn.from_torch(lambda x: x, (torch.randn(*IMAGE),))
    _, converted_model = converted(tm.ResidualCNN, 1)
    with pytest.raises(ValueError, match=r"expected shape \(1, 3, 16, 16\) \(the example input's"):
        converted_model(image((2, 3, 16, 16)))
    with pytest.raises(TypeError, match="expected float32 values as in the example, got a int64 array"):
        converted_model(np.zeros(IMAGE, dtype=np.int64))
    with pytest.raises(TypeError, match=r"pass a numpy array \(tensor.numpy\(\)\)"):
        converted_model(torch.zeros(IMAGE))
    with pytest.raises(RuntimeError, match="inference only"):
        converted_model.copy().train()(image())


def test_a_state_dict_that_does_not_fit_lists_every_problem():
    _, converted_model = converted(tm.ResidualCNN, 1)
    state = dict(converted_model.state_dict())
    del state["fc.bias"]
    state["conv1.weight"] = np.zeros((8, 3, 5, 5))
    state["head.weight"] = np.zeros(3)
    with pytest.raises(nn.StateDictError) as caught:
        converted_model.copy().load_state_dict(state)
    message = str(caught.value)
    assert "missing keys: fc.bias" in message and "unexpected keys: head.weight" in message
    assert "conv1.weight: expected (8, 3, 3, 3), got (8, 3, 5, 5)" in message


# --- torch stays optional -----------------------------------------------------------------------------------
def test_importing_smpc_never_imports_torch():
    code = "import sys, smpc, smpc.nn, smpc.nn.importers; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"


def test_from_torch_without_torch_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "smpc-numpy\[torch\]"'):
        nn.from_torch(object(), ())


# --- smpc.nn.Parameter in hand-written layers -----------------------------------------------------------------
class Affine(nn.Module):
    """A custom layer: y = x * weight + bias per feature, with its parameters assigned as torch does."""

    def __init__(self, features: int):
        super().__init__()
        self.weight = nn.Parameter(np.linspace(0.5, 1.5, features))
        self.bias = nn.Parameter(np.zeros(features))
        self.note = np.ones(features)  # a plain array: not a parameter

    def forward(self, x):
        return x * self.param("weight", x) + self.param("bias", x)


def _custom_model(seed=None):
    model = nn.Sequential(nn.Linear(4, 3, rng=0), Affine(3), nn.ReLU())
    if seed is not None:
        model.load_state_dict({k: np.random.default_rng(seed).standard_normal(np.shape(v))
                               for k, v in model.state_dict().items()})
    return model.eval()


def test_parameter_registers_like_torch():
    model = _custom_model()
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())  # register_parameter makes them too
    layer = model[1]
    with pytest.raises(TypeError, match=r"cannot assign a ndarray to parameter 'weight' of Affine: assign "
                                        r"smpc.nn.Parameter\(value\)"):
        layer.weight = np.zeros(3)
    layer.weight = nn.Parameter(np.full(3, 2.0))
    np.testing.assert_array_equal(model.state_dict()["1.weight"], np.full(3, 2.0))
    with pytest.raises(TypeError, match=r"Affine.note is a ndarray, not a parameter: assign smpc.nn.Parameter"):
        layer.param("note", np.zeros(3))
    with pytest.raises(nn.StateDictError, match=r"1.bias: expected \(3,\), got \(4,\)"):
        model.load_state_dict({**model.state_dict(), "1.bias": np.zeros(4)})


@pytest.mark.parametrize("protocol,parties", SETTINGS)
def test_custom_parameter_layer_shares_and_runs_privately(protocol, parties):
    owner = _custom_model(seed=5)
    x = np.random.default_rng(6).standard_normal((5, 4))

    def program(party):
        model = owner if party.rank == 0 else _custom_model()
        shared = model.share(party, src=0)
        assert type(shared[1].weight.data).__name__ != "ndarray"
        return shared(party.share(x if party.rank == 1 else None, src=1)).reveal(to=1)

    got = smpc.run(program, parties=parties, protocol=protocol, timeout=120)[1]
    np.testing.assert_allclose(got, owner(x), atol=1e-3)


# --- the activations added for this increment, against torch's (values and gradients) -------------------------
@pytest.mark.parametrize("name", ["relu6", "hardtanh", "hardsigmoid", "hardswish", "tanh", "clamp"])
def test_new_activations_match_torch_with_gradients(name):
    ours = {"relu6": nn.functional.relu6, "hardtanh": lambda v: nn.functional.hardtanh(v, -0.5, 2.0),
            "hardsigmoid": nn.functional.hardsigmoid, "hardswish": nn.functional.hardswish,
            "tanh": nn.functional.tanh, "clamp": lambda v: nn.functional.clamp(v, -1.0, 0.25)}[name]
    theirs = {"relu6": torch.nn.functional.relu6, "hardtanh": lambda v: torch.nn.functional.hardtanh(v, -0.5, 2.0),
              "hardsigmoid": torch.nn.functional.hardsigmoid, "hardswish": torch.nn.functional.hardswish,
              "tanh": torch.tanh, "clamp": lambda v: torch.clamp(v, -1.0, 0.25)}[name]
    x = np.linspace(-8, 8, 161) + 0.013  # off the kinks, where gradients are defined
    reference = torch.tensor(x, requires_grad=True)
    theirs(reference).sum().backward()
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).numpy(), atol=1e-12)
    leaf = nn.Variable(x, requires_grad=True)
    ours(leaf).sum().backward()
    np.testing.assert_allclose(leaf.grad, reference.grad.numpy(), atol=1e-12)

    def program(party):
        shared = party.share(x if party.rank == 0 else None, src=0)
        return ours(shared).reveal()

    np.testing.assert_allclose(smpc.run(program, parties=2)[0], ours(x), atol=2e-4)


class StochasticDepth(torch.nn.Module):
    """Drops the whole residual branch per sample with probability p while training; identity in eval."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = (torch.rand(x.shape[0], 1, 1, 1) >= self.p).to(x.dtype)
        return x * keep / (1.0 - self.p)


class ResidualWithStochasticDepth(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.branch = torch.nn.Sequential(torch.nn.Conv2d(6, 6, 3, padding=1), torch.nn.BatchNorm2d(6),
                                          torch.nn.ReLU(), StochasticDepth(0.3))
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 4))

    def forward(self, x):
        x = self.stem(x)
        return self.head(x + self.branch(x))


def test_stochastic_depth_is_the_identity_in_eval():
    torch.manual_seed(0)
    model = ResidualWithStochasticDepth().eval()
    converted_model = nn.from_torch(model, (torch.zeros(1, 3, 16, 16),))
    x = image(seed=3)
    want = torch_outputs(model, x)[0]
    assert_relative(converted_model(x), want, 1e-5)
    assert "rand" not in repr(converted_model)
    for protocol, parties in (param.values for param in SETTINGS):
        program = functools.partial(private_program, converted_model, converted_model, x)
        got = smpc.run(program, parties=parties, protocol=protocol, timeout=300)[1][0]
        assert_relative(got, want, 2e-2)
