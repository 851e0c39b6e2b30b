"""Modules, state dicts, layers, SGD and the ready-made models (plaintext)."""

import numpy as np
import pytest

from smpc import nn
from smpc.nn import Variable, functional as F, models
from tests.conftest import assert_close


def torchvision_resnet18_keys(num_classes: int) -> dict:
    """torchvision's resnet18 state_dict: names and shapes, written out from its architecture."""
    keys = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix, c):
        keys.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                     f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()})

    bn("bn1", 64)
    cin = 64
    for stage, c in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{stage}.{block}"
            keys[f"{p}.conv1.weight"] = (c, cin if block == 0 else c, 3, 3)
            bn(f"{p}.bn1", c)
            keys[f"{p}.conv2.weight"] = (c, c, 3, 3)
            bn(f"{p}.bn2", c)
            if block == 0 and stage > 1:
                keys[f"{p}.downsample.0.weight"] = (c, cin, 1, 1)
                bn(f"{p}.downsample.1", c)
        cin = c
    keys.update({"fc.weight": (num_classes, 512), "fc.bias": (num_classes,)})
    return keys


def random_state(model, seed=0) -> dict:
    """A state dict of the model's shapes with non-trivial BatchNorm statistics."""
    rng = np.random.default_rng(seed)
    state = {}
    for k, v in model.state_dict().items():
        shape = np.shape(v)
        if k.endswith("num_batches_tracked"):
            state[k] = np.array(7)
        elif k.endswith("running_var"):
            state[k] = rng.uniform(0.5, 1.5, shape)
        elif k.endswith(("running_mean", "bias")):
            state[k] = rng.normal(0, 0.1, shape)
        elif k.endswith("weight") and len(shape) == 1:
            state[k] = rng.uniform(0.8, 1.2, shape)
        else:
            state[k] = np.asarray(v)
    return state


def test_resnet18_state_dict_is_torchvisions():
    model = models.resnet18(num_classes=10, rng=0)
    state = model.state_dict()
    expected = torchvision_resnet18_keys(10)
    assert list(state) == list(expected)  # same names in torch's order
    assert {k: tuple(np.shape(v)) for k, v in state.items()} == expected
    assert len(state) == 122
    assert sum(np.size(v) for k, v in state.items() if "running" not in k and "tracked" not in k) == 11_181_642


def test_state_dict_round_trip_through_npz(tmp_path):
    a, b = models.resnet18(num_classes=3, rng=1), models.resnet18(num_classes=3, rng=2)
    a.load_state_dict(random_state(a))
    a.save(tmp_path / "m.npz")
    b.load(tmp_path / "m.npz")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va, vb)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32))
    assert np.array_equal(a.eval()(x), b.eval()(x))


def test_load_state_dict_lists_every_problem():
    model = models.mlp([4, 3, 2], rng=0)
    state = dict(model.state_dict())
    del state["0.bias"]
    state["2.weight"] = np.zeros((2, 4))
    state["9.weight"] = np.zeros(1)
    with pytest.raises(nn.StateDictError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys: 0.bias" in message and "unexpected keys: 9.weight" in message
    assert "2.weight: expected (2, 3), got (2, 4)" in message
    state["2.weight"] = np.zeros((2, 3))
    model.load_state_dict(state, strict=False)  # missing and extra allowed, shapes fit
    assert np.array_equal(model.state_dict()["2.weight"], np.zeros((2, 3)))


def test_layers_refuse_inputs_that_do_not_fit():
    with pytest.raises(ValueError, match="input has 5 features"):
        nn.Linear(4, 2)(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"input must be \(N, 3, H, W\)"):
        nn.Conv2d(3, 4, 3)(np.ones((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        nn.Conv2d(1, 1, 5)(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="BatchNorm2d"):
        nn.BatchNorm2d(3)(np.ones((1, 4, 2, 2)))
    with pytest.raises(ValueError, match=r"ResNet: input must be \(N, 3, H, W\)"):
        models.resnet18()(np.ones((1, 1, 32, 32)))
    with pytest.raises(ValueError, match="must divide"):
        nn.AdaptiveAvgPool2d(3)(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="labels must lie"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="differs from target shape"):
        F.mse_loss(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout(1.0)


def test_train_eval_and_batch_norm_modes():
    bn = nn.BatchNorm2d(2)
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)) * 3 + 2
    out = bn(x)  # training: batch statistics, a tape
    assert isinstance(out, Variable)
    assert_close(out.data.mean(axis=(0, 2, 3)), np.zeros(2), 1e-12)
    assert int(bn.num_batches_tracked) == 1 and not np.allclose(bn.running_mean, 0)
    bn.eval()
    plain = bn(x)
    assert isinstance(plain, np.ndarray)
    assert_close(plain, (x - bn.running_mean.reshape(1, 2, 1, 1)) / np.sqrt(bn.running_var.reshape(1, 2, 1, 1)
                                                                               + 1e-5), 1e-12)
    bn.running_var = np.full(2, 4.0)  # assigning a buffer keeps it registered, as in torch
    assert np.array_equal(bn.state_dict()["running_var"], np.full(2, 4.0))
    drop = nn.Dropout(0.5, rng=0)
    assert np.array_equal(drop.eval()(x), x)
    kept = drop.train()(np.ones((1000,)))
    assert set(np.unique(kept)) <= {0.0, 2.0} and 400 < np.count_nonzero(kept) < 600


def test_sgd_matches_torchs_update_rule():
    layer = nn.Linear(3, 2, rng=0)
    w0 = layer.weight.data.copy()
    opt = nn.SGD(layer.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    x = np.random.default_rng(1).standard_normal((4, 3))
    velocity = None
    w = w0.copy()
    for _ in range(3):
        opt.zero_grad()
        layer(Variable(x)).sum().backward()
        g = np.ones((4, 2)).T @ x + 0.01 * w
        velocity = g if velocity is None else 0.9 * velocity + g
        w = w - 0.1 * velocity
        opt.step()
        assert_close(layer.weight.data, w, 1e-12)
    with pytest.raises(ValueError, match="learning rate"):
        nn.SGD(layer.parameters(), lr=0)


class TiedLinears(nn.Module):
    """Two square layers sharing one weight (as a language model ties its token embedding and output layer)."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(3, 3, rng=0), nn.Linear(3, 3, rng=1)
        self.second.weight = self.first.weight

    def forward(self, x):
        return self.second(self.first(x))


def test_a_tied_parameter_is_listed_once_and_saved_under_each_name():
    model = TiedLinears()
    assert [name for name, _ in model.named_parameters()] == ["first.weight", "first.bias", "second.bias"]
    assert list(model.state_dict()) == ["first.weight", "first.bias", "second.weight", "second.bias"]
    copied = model.copy()
    assert copied.second.weight is copied.first.weight and copied.first.weight is not model.first.weight
    w = model.first.weight.data.copy()
    opt = nn.SGD(model.parameters(), lr=0.1)
    x = np.random.default_rng(0).standard_normal((4, 3))
    model(Variable(x)).sum().backward()
    grad = model.first.weight.grad.copy()  # both uses' gradients, added up
    opt.step()  # one step, not one per name
    assert_close(model.second.weight.data, w - 0.1 * grad, 1e-12)


def _digits_images():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return ((x - x.mean()) / x.std()).reshape(-1, 1, 8, 8), y


def test_training_a_small_cnn_learns_digits():
    x, y = _digits_images()
    model = models.lenet(num_classes=10, input_size=8, rng=0)
    opt = nn.SGD(model.parameters(), lr=0.03, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(6):
        for i in range(0, 1400, 16):
            opt.zero_grad()
            loss_fn(model(Variable(x[i:i + 16])), y[i:i + 16]).backward()
            opt.step()
    accuracy = (model.eval()(x[1400:]).argmax(axis=1) == y[1400:]).mean()
    assert accuracy > 0.75  # chance is 0.1; this small CNN on 8x8 images learns slowly


def test_cnn_training_steps_match_pytorch_when_installed():
    """An extra check against PyTorch itself: the same LeNet, initialisation and batches give the same weights."""
    torch = pytest.importorskip("torch")
    x, y = _digits_images()
    model = models.lenet(num_classes=10, input_size=8, rng=0)
    T = torch.nn
    reference = T.Sequential(T.Conv2d(1, 6, 5, padding=2), T.ReLU(), T.AvgPool2d(2), T.Conv2d(6, 16, 5, padding=2),
                             T.ReLU(), T.AvgPool2d(2), T.Flatten(), T.Linear(64, 120), T.ReLU(), T.Linear(120, 84),
                             T.ReLU(), T.Linear(84, 10)).double()
    reference.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    ours = nn.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    theirs = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for i in range(0, 320, 32):
        ours.zero_grad()
        nn.CrossEntropyLoss()(model(Variable(x[i:i + 32])), y[i:i + 32]).backward()
        ours.step()
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(reference(torch.tensor(x[i:i + 32])), torch.tensor(y[i:i + 32])).backward()
        theirs.step()
    for key, value in reference.state_dict().items():
        assert_close(model.state_dict()[key], value.numpy(), 1e-10)


def test_batch_norm_folding_keeps_the_function():
    model = models.resnet18(num_classes=5, rng=3)
    model.load_state_dict(random_state(model, seed=4))
    model.eval()
    x = np.random.default_rng(5).standard_normal((2, 3, 32, 32))
    folded = nn.fold_batchnorm(model.copy())
    assert not any(isinstance(m, nn.BatchNorm2d) for _, m in folded.named_modules())
    assert_close(folded(x), model(x), 1e-9)
    lone = nn.Sequential(nn.ReLU(), nn.BatchNorm2d(3))  # no convolution before it: a channel affine
    lone.load_state_dict({"1.weight": np.array([1.0, 2, 3]), "1.bias": np.zeros(3), "1.running_mean": np.ones(3),
                          "1.running_var": np.full(3, 4.0), "1.num_batches_tracked": np.array(1)})
    lone.eval()
    assert isinstance(nn.fold_batchnorm(lone.copy())[1], nn.ChannelAffine)
    assert_close(nn.fold_batchnorm(lone.copy())(x[:, :, :3, :3]), lone(x[:, :, :3, :3]), 1e-12)


def test_resnet18_forward_matches_pytorch_when_installed():
    """An extra check against PyTorch itself (the structural checks above do not need it)."""
    torch = pytest.importorskip("torch")
    from smpc_bench.torch_reference import torch_resnet18

    model = models.resnet18(num_classes=10, rng=0)
    state = random_state(model, seed=1)
    model.load_state_dict(state)
    reference = torch_resnet18(10).double()
    reference.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in state.items()})
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64))
    with torch.no_grad():
        expected = reference.eval()(torch.tensor(x)).numpy()
    assert_close(model.eval()(x), expected, 1e-9)


def test_fixed_point_range_check_names_the_layer():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1)).eval()
    x = np.random.default_rng(0).standard_normal((5, 3))
    ranges = nn.check_fixed_point_range(model, x)
    assert set(ranges) == {"0", "1", "2"} and ranges["1"] <= ranges["0"]
    model[2].weight.data = model[2].weight.data * 2.0**40
    with pytest.raises(ValueError, match="layer '2' produces values up to"):
        nn.check_fixed_point_range(model, x)
    assert "forward" not in model[2].__dict__  # the recording wrappers are gone


def test_skip_init_builds_the_same_architecture_with_zero_weights():
    built = models.resnet18(num_classes=7, rng=0)
    skipped = nn.skip_init(models.resnet18, num_classes=7)
    reference, zeros = built.state_dict(), skipped.state_dict()
    assert list(zeros) == list(reference) and all(zeros[k].shape == reference[k].shape for k in reference)
    assert not np.any(zeros["conv1.weight"]) and not np.any(zeros["fc.weight"]) and not np.any(zeros["fc.bias"])
    np.testing.assert_array_equal(zeros["bn1.weight"], 1.0)  # BatchNorm's defaults are not random: kept
    skipped.load_state_dict(reference)
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32))
    np.testing.assert_array_equal(skipped.eval()(x), built.eval()(x))
    assert not np.any(nn.skip_init(nn.Linear, 3, 2).weight.data)
    with pytest.raises(TypeError, match="do not pass rng"):
        nn.skip_init(models.mlp, [3, 2], rng=0)
    dropout = nn.skip_init(nn.Dropout, 0.5).train()
    with pytest.raises(RuntimeError, match="built by skip_init .* set its .rng"):
        dropout(np.ones(4))
    dropout.rng = np.random.default_rng(0)
    assert dropout(np.ones(4)).shape == (4,)
