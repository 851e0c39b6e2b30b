"""Private inference and private training: shared models against the plaintext forward pass and training."""

import copy
import functools
import warnings

import numpy as np
import pytest

from protocol_matrix import one_per_protocol, one_per_protocol_pairs, protocol_parties
import smpc
from smpc import nn
from smpc.nn import Variable, models
from tests import programs
from tests.conftest import assert_close
from tests.test_nn_modules import random_state

SETTINGS = one_per_protocol_pairs("nn")
RESNET_SETTINGS = one_per_protocol_pairs("nn", heavy=True)  # ResNet-18 takes half a minute under spdz2k


def _private_logits(model_state, make, x, protocol, parties):
    """Party 0 owns the weights, party 1 the input; only party 1 learns the logits."""

    def program(party):
        model = make()  # every party builds the architecture; only party 0's weights count
        if party.rank == 0:
            model.load_state_dict(model_state)
        owner = party.world_size - 1  # the data owner (the model's owner is party 0)
        shared_x = party.share(x if party.rank == owner else None, src=owner)
        return model.eval().share(party, src=0)(shared_x).reveal(to=owner)

    return smpc.run(program, parties=parties, protocol=protocol, timeout=300)


@pytest.mark.parametrize("protocol,parties", RESNET_SETTINGS)
def test_private_resnet18_inference_agrees_with_plaintext(protocol, parties):
    def make():  # the architecture alone: the weights come from the state or from party 0's shares
        return nn.skip_init(models.resnet18, num_classes=10)

    state = random_state(make(), seed=11)
    x = np.random.default_rng(12).standard_normal((2, 3, 32, 32))
    expected = make()
    expected.load_state_dict(state)
    expected = expected.eval()(x)
    results = _private_logits(state, make, x, protocol, parties)
    *others, logits = results
    assert all(r is None for r in others)  # the input owner (the last party) alone learns them
    assert_close(logits, expected, 1e-2)
    assert np.array_equal(logits.argmax(axis=1), expected.argmax(axis=1))


@pytest.mark.parametrize("protocol,parties", protocol_parties("nn"))
def test_private_cnn_inference_with_batch_norm_and_max_pooling(protocol, parties):
    def make():
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 4, 3, stride=2, groups=2, rng=2), nn.ReLU(), nn.Flatten(), nn.Dropout(0.3),
                             nn.Linear(4, 3, rng=3))

    state = random_state(make(), seed=13)
    x = np.random.default_rng(14).standard_normal((3, 1, 8, 8))
    reference = make()
    reference.load_state_dict(state)
    expected = reference.eval()(x)
    got = _private_logits(state, make, x, protocol, parties)[-1]
    assert_close(got, expected, 1e-3)


@pytest.mark.parametrize("setup", one_per_protocol("nn", transport="tcp"))
def test_private_inference_and_a_training_step_over_tcp(setup):
    rng = np.random.default_rng(15)
    cnn = models.lenet(num_classes=3, input_size=8, rng=0)
    mlp = models.mlp([5, 4, 3], rng=1)
    x, features, labels = rng.standard_normal((2, 1, 8, 8)), rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    cnn_state, mlp_state = cnn.state_dict(), mlp.state_dict()
    program = functools.partial(programs.private_nn_suite, cnn_state, x, mlp_state, features, labels)
    results = setup.run(program, timeout=120)
    logits, trained = results[-1]
    assert_close(logits, cnn.eval()(x), 1e-3)
    opt = nn.SGD(mlp.parameters(), lr=0.5, momentum=0.9)
    nn.CrossEntropyLoss()(mlp(Variable(features)), labels).backward()
    opt.step()
    for key, value in mlp.state_dict().items():
        assert_close(trained[key], value, 1e-3)


def test_sharing_refuses_mismatched_architectures_and_training_batch_norm():
    def program(party):
        model = models.mlp([4, 3, 2] if party.rank == 0 else [4, 5, 2], rng=0)
        return model.eval().share(party, src=0)

    with pytest.raises(Exception, match="same model"):
        smpc.run(program, parties=2)

    def mixed_modes(party):
        model = models.mlp([4, 3, 2], rng=0)
        return (model.eval() if party.rank == 0 else model.train()).share(party, src=0)

    with pytest.raises(Exception, match=r"party 0's model is in eval\(\) mode but this party's is in train\(\)"):
        smpc.run(mixed_modes, parties=2)

    def training_bn(party):
        return nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)).train().share(party, src=0)

    with pytest.raises(Exception, match="BatchNorm2d cannot train on shared values"):
        smpc.run(training_bn, parties=2)


def test_sharing_copies_no_parameter_values_where_nothing_folds():
    # the parties' prepared copies hold placeholders; the source encodes its own arrays unless BatchNorm folds
    model = models.mlp([4, 3, 2], rng=0).eval()
    placeholders = {id(p.data): np.broadcast_to(np.zeros(()), p.data.shape) for _, p in model.named_parameters()}
    plain = copy.deepcopy(model, dict(placeholders))
    params = list(plain.named_parameters())
    assert all(p.data.base is not None and p.data.strides == (0,) * p.data.ndim for _, p in params)
    values = model._source_values(params, placeholders, training=False)
    assert all(v is p.data for v, (_, p) in zip(values, model.named_parameters()))
    folding = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)).eval()
    folding[1].running_var = np.array([4.0, 9.0])
    placeholders = {id(p.data): np.broadcast_to(np.zeros(()), p.data.shape) for _, p in folding.named_parameters()}
    plain = nn.module._prepared(copy.deepcopy(folding, dict(placeholders)), training=False)
    weight = folding._source_values(list(plain.named_parameters()), placeholders, training=False)[0]
    scale = folding[1].weight.data / np.sqrt(folding[1].running_var + folding[1].eps)
    assert np.allclose(weight, folding[0].weight.data * scale[:, None, None, None])  # folded: a new array


def test_sharing_a_model_warns_once_when_most_of_its_values_vanish():
    tiny = models.mlp([4, 3, 2], rng=0).eval()
    for _, p in tiny.named_parameters():
        p.data = p.data * 1e-7  # all below the resolution 2^-16

    def program(model, party):
        return {k: v.reveal() for k, v in model.share(party, src=0).state_dict().items()}

    with pytest.warns(smpc.FixedPointPrecisionWarning, match=r"of the \d+ nonzero elements"):
        smpc.run(functools.partial(program, tiny), parties=2)
    mostly_fine = models.mlp([4, 3, 2], rng=0).eval()
    last = list(mostly_fine.named_parameters())[-1][1]
    last.data = last.data * 1e-7  # two tiny biases among 23 values: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", smpc.FixedPointPrecisionWarning)
        revealed = smpc.run(functools.partial(program, mostly_fine), parties=2)[0]
    for name, p in mostly_fine.named_parameters():
        assert_close(revealed[name], p.data, 2.0**-16)


# --- private training (SecureML-style: data owners secret-share their rows, the model trains on shares) ----------
def _split(x, y, seed=0):
    idx = np.random.default_rng(seed).permutation(len(x))
    x, y = x[idx], y[idx]
    cut = int(0.8 * len(x))
    mean, std = x[:cut].mean(axis=0), x[:cut].std(axis=0) + 1e-8
    return (x[:cut] - mean) / std, y[:cut], (x[cut:] - mean) / std, y[cut:]


def _train(model, x, targets, loss_fn, epochs, batch, lr):
    opt = nn.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        for i in range(0, x.shape[0], batch):
            opt.zero_grad()
            loss_fn(model(Variable(x[i:i + batch])), targets[i:i + batch]).backward()
            opt.step()
    return model


def _private_training(make, x, targets, loss_fn, epochs, batch, lr, protocol, parties):
    """Each party owns a contiguous block of training rows and shares it; party 0 shares the initial model."""
    blocks = np.array_split(np.arange(x.shape[0]), parties)

    def program(party):
        xs = smpc.concatenate([party.share(x[b] if party.rank == r else None, src=r) for r, b in enumerate(blocks)])
        ts = smpc.concatenate([party.share(targets[b] if party.rank == r else None, src=r)
                                   for r, b in enumerate(blocks)])
        shared = make().share(party, src=0)
        _train(shared, xs, ts, loss_fn, epochs, batch, lr)
        return {k: v.reveal() for k, v in shared.state_dict().items()}

    trained = make()
    trained.load_state_dict(smpc.run(program, parties=parties, protocol=protocol, timeout=600)[0])
    return trained


def test_private_logistic_regression_matches_plaintext_accuracy():
    from sklearn.datasets import load_breast_cancer

    x, y, x_test, y_test = _split(*load_breast_cancer(return_X_y=True))
    targets = y.reshape(-1, 1).astype(float)

    def make():
        return models.logistic_regression(x.shape[1], rng=5)

    settings = dict(loss_fn=nn.BCEWithLogitsLoss(), epochs=2, batch=32, lr=0.1)
    plain = _train(make(), x, targets, **settings)
    private = _private_training(make, x, targets, **settings, protocol="additive", parties=2)

    def accuracy(model):
        return ((model.eval()(x_test)[:, 0] > 0) == y_test).mean()

    assert accuracy(plain) > 0.9
    assert abs(accuracy(private) - accuracy(plain)) <= 0.01


@pytest.mark.parametrize("protocol,parties", [("aby3", 3)])
def test_private_mlp_training_matches_plaintext_accuracy(protocol, parties):
    from sklearn.datasets import load_digits

    x, y, x_test, y_test = _split(*load_digits(return_X_y=True))
    targets = np.eye(10)[y]

    def make():
        return models.mlp([64, 32, 10], rng=6)

    settings = dict(loss_fn=nn.CrossEntropyLoss(), epochs=2, batch=32, lr=0.1)
    plain = _train(make(), x, targets, **settings)
    private = _private_training(make, x, targets, **settings, protocol=protocol, parties=parties)

    def accuracy(model):
        return (model.eval()(x_test).argmax(axis=1) == y_test).mean()

    assert accuracy(plain) > 0.9
    assert abs(accuracy(private) - accuracy(plain)) <= 0.01


def test_shared_loss_values_are_computed_only_when_read():
    rng = np.random.default_rng(16)
    z, labels = rng.standard_normal((4, 3)), np.eye(3)[rng.integers(0, 3, 4)]

    def program(party, read: bool):
        logits = Variable(party.share(z if party.rank == 0 else None, src=0), requires_grad=True)
        party.reset_stats()
        loss = nn.CrossEntropyLoss()(logits, labels)
        value = loss.data.reveal() if read else None
        loss.backward()
        return value, logits.grad.reveal(), party.stats["rounds"]

    lazy = smpc.run(lambda party: program(party, False), parties=2)[0]
    eager = smpc.run(lambda party: program(party, True), parties=2)[0]
    assert eager[2] > lazy[2]  # the value's log-softmax costs rounds only when asked for
    assert_close(lazy[1], eager[1], 2.0**-14)  # truncation rounds stochastically: a unit or two apart
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert_close(lazy[1], (p - labels) / 4, 1e-3)
    assert abs(eager[0] - (-(np.log(p) * labels).sum() / 4)) < 1e-3
