"""Autodiff: every rule against central finite differences in plaintext, and shared gradients against plaintext."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from protocol_matrix import protocol_parties
import smpc
from smpc.nn import Variable, functional as F
from smpc.nn.autograd import as_variable
from tests.conftest import assert_close

EPS = 1e-6


def numeric_grad(fn, x: np.ndarray) -> np.ndarray:
    """d sum(fn(x)) / dx by central differences."""
    grad = np.zeros_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + EPS
        up = np.sum(_value(fn(x)))
        flat[i] = keep - EPS
        down = np.sum(_value(fn(x)))
        flat[i] = keep
        out[i] = (up - down) / (2 * EPS)
    return grad


def _value(v):
    return v.data if isinstance(v, Variable) else v


def check_grads(fn, *inputs, weights=None, atol=1e-5):
    """Compare fn's tape gradients for every input with finite differences of sum(w * fn(...))."""
    rng = np.random.default_rng(0)
    out = fn(*[Variable(a, requires_grad=True) for a in inputs])
    w = rng.standard_normal(out.shape) if weights is None else weights
    leaves = [Variable(a.copy(), requires_grad=True) for a in inputs]
    fn(*leaves).backward(w)
    for k, leaf in enumerate(leaves):
        def scalar(arg, k=k):
            args = [a if j != k else arg for j, a in enumerate(inputs)]
            return np.asarray(_value(fn(*args))) * w
        expected = numeric_grad(scalar, inputs[k].copy())
        assert leaf.grad is not None, f"input {k} got no gradient"
        assert_close(leaf.grad, expected, atol)


dims = st.integers(1, 4)


@given(st.integers(1, 3), dims, dims, st.integers(0, 2**31))
def test_linear_matmul_and_broadcast_add(batch, fan_in, fan_out, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((batch, fan_in)), rng.standard_normal((fan_out, fan_in)), rng.standard_normal(fan_out)
    check_grads(lambda x, w, b: F.linear(x, w, b), x, w, b)


def test_matmul_with_vectors_and_batches():
    rng = np.random.default_rng(1)
    check_grads(lambda a, b: as_variable(a) @ b, rng.standard_normal(3), rng.standard_normal(3))
    check_grads(lambda a, b: as_variable(a) @ b, rng.standard_normal((2, 4, 3)), rng.standard_normal(3))
    check_grads(lambda a, b: as_variable(a) @ b, rng.standard_normal(3), rng.standard_normal((2, 3, 5)))
    check_grads(lambda a, b: as_variable(a) @ b, rng.standard_normal((2, 4, 3)), rng.standard_normal((3, 2)))


def test_elementwise_shape_and_reduction_rules():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    check_grads(lambda a, b: as_variable(a) * b - b / 2.0 + 1.0, a, b)
    check_grads(lambda a: (-as_variable(a)).T.reshape(2, 6).sum(axis=0), a)
    check_grads(lambda a: as_variable(a).mean(axis=1, keepdims=True) * 3, a)
    check_grads(lambda a: as_variable(a)[1:, ::2].transpose(1, 0), a)
    check_grads(lambda a: as_variable(a)[[0, 0, 2]], a)  # repeated rows add up
    check_grads(lambda a: 2.0 - as_variable(a).flatten(0), a)


@given(st.integers(0, 2**31), st.sampled_from([
    # (n, c, h, w, o, k, stride, padding, dilation, groups)
    (1, 2, 5, 5, 3, 3, 1, 0, 1, 1), (2, 4, 6, 5, 4, 3, 2, 1, 1, 2), (1, 3, 7, 7, 3, 3, 1, 2, 2, 3),
    (1, 1, 4, 6, 2, 2, (1, 2), (1, 0), 1, 1),
]))
def test_conv2d_gradients(seed, config):
    n, c, h, w, o, k, stride, padding, dilation, groups = config
    rng = np.random.default_rng(seed)
    x, weight, bias = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c // groups, k, k)), \
        rng.standard_normal(o)
    check_grads(lambda x, weight, bias: F.conv2d(x, weight, bias, stride, padding, dilation, groups), x, weight, bias)


def test_conv2d_matches_a_direct_loop():
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((2, 4, 6, 7)), rng.standard_normal((6, 2, 3, 2))
    got = F.conv2d(x, weight, None, stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros(got.shape)
    for n_, o_, i, j in np.ndindex(*got.shape):
        g = o_ // 3
        patch = xp[n_, 2 * g:2 * g + 2, 2 * i:2 * i + 3, j:j + 3:2]
        expected[n_, o_, i, j] = np.sum(patch * weight[o_])
    assert_close(got, expected, 1e-12)


@given(st.integers(0, 2**31), st.sampled_from([(2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 1), (2, 1, 0, 2)]))
def test_pooling_gradients(seed, config):
    kernel, stride, padding, dilation = config
    x = np.random.default_rng(seed).permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) / 7.0  # distinct: no ties
    check_grads(lambda x: F.max_pool2d(x, kernel, stride, padding, dilation), x)
    if dilation == 1:
        check_grads(lambda x: F.avg_pool2d(x, kernel, stride, padding), x)
    check_grads(lambda x: F.adaptive_avg_pool2d(x, 1), x)
    check_grads(lambda x: F.adaptive_avg_pool2d(x, (3, 2)), x)


def test_activation_and_loss_gradients():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((5, 4)) * 3
    z[np.abs(z) < 1e-3] = 0.5  # keep relu away from its kink
    check_grads(F.relu, z)
    check_grads(F.sigmoid, z)
    labels = rng.integers(0, 4, 5)
    probs = rng.dirichlet(np.ones(4), 5)
    check_grads(lambda z: F.cross_entropy(z, labels), z, weights=np.array(1.0))
    check_grads(lambda z: F.cross_entropy(z, probs), z, weights=np.array(1.0))
    y = rng.integers(0, 2, (5, 4)).astype(float)
    check_grads(lambda z: F.binary_cross_entropy_with_logits(z, y), z, weights=np.array(1.0))
    target = rng.standard_normal((5, 4))
    check_grads(lambda z: F.mse_loss(z, target), z, weights=np.array(1.0))


def test_loss_values_match_their_definitions():
    rng = np.random.default_rng(5)
    z, labels = rng.standard_normal((6, 3)) * 4, rng.integers(0, 3, 6)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert np.isclose(F.cross_entropy(z, labels), -log_p[np.arange(6), labels].mean())
    y = rng.integers(0, 2, (6, 3)).astype(float)
    p = 1 / (1 + np.exp(-z))
    assert np.isclose(F.binary_cross_entropy_with_logits(z, y), -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def test_batch_norm_training_gradient_and_running_statistics():
    rng = np.random.default_rng(6)
    x, gamma, beta = rng.standard_normal((4, 3, 2, 2)) * 2 + 1, rng.standard_normal(3), rng.standard_normal(3)
    check_grads(lambda x, gamma, beta: F.batch_norm(x, None, None, gamma, beta, training=True), x, gamma, beta,
                atol=1e-4)
    mean, var = np.zeros(3), np.ones(3)
    F.batch_norm(x, mean, var, training=True, momentum=0.5)
    assert_close(mean, 0.5 * x.mean(axis=(0, 2, 3)), 1e-12)
    assert_close(var, 0.5 + 0.5 * x.var(axis=(0, 2, 3), ddof=1), 1e-12)


def test_backward_accumulates_and_checks_its_seed():
    a = Variable(np.array([1.0, 2.0]), requires_grad=True)
    y = a * a + a  # a used twice
    y.backward(np.ones(2))
    assert_close(a.grad, 2 * a.data + 1, 0)
    y.backward(np.ones(2))  # a second pass adds up, as in torch
    assert_close(a.grad, 2 * (2 * a.data + 1), 0)
    with pytest.raises(ValueError, match="gradient of shape"):
        y.backward(np.ones(3))
    with pytest.raises(RuntimeError, match="requiring grad"):
        Variable(np.ones(2)).sum().backward()


# --- shared tensors: the gradients of the plaintext computation, within fixed-point error ----------------------
def _grads_plain(fn, inputs):
    leaves = [Variable(a, requires_grad=True) for a in inputs]
    fn(*leaves).backward()
    return [leaf.grad for leaf in leaves]


def _grads_shared(fn, inputs, protocol, parties):
    def program(party):
        leaves = [Variable(party.share(a if party.rank == 0 else None, src=0), requires_grad=True) for a in inputs]
        fn(*leaves).backward()
        return [leaf.grad.reveal() for leaf in leaves]

    return smpc.run(program, parties=parties, protocol=protocol)[0]


def _mlp_loss(x, w1, b1, w2, labels):
    hidden = F.relu(F.linear(x, w1, b1))
    return F.cross_entropy(F.linear(hidden, w2), labels)


SETTINGS = protocol_parties("nn")


@pytest.mark.parametrize("protocol,parties", SETTINGS)
@given(seed=st.integers(0, 2**31), batch=st.integers(1, 4))
def test_shared_mlp_gradients_match_plaintext(protocol, parties, seed, batch):
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal((batch, 5)), rng.standard_normal((4, 5)) / 2, rng.standard_normal(4) / 2,
              rng.standard_normal((3, 4)) / 2]
    labels = np.eye(3)[rng.integers(0, 3, batch)]

    def fn(x, w1, b1, w2):
        return _mlp_loss(x, w1, b1, w2, labels)

    expected = _grads_plain(fn, inputs)
    for got, want in zip(_grads_shared(fn, inputs, protocol, parties), expected):
        assert_close(got, want, 2e-3)


@pytest.mark.parametrize("protocol,parties", SETTINGS)
def test_shared_cnn_gradients_match_plaintext(protocol, parties):
    rng = np.random.default_rng(7)
    x = rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) / 40.0
    weight, bias = rng.standard_normal((3, 2, 3, 3)) / 3, rng.standard_normal(3) / 3

    def fn(x, weight, bias):
        h = F.max_pool2d(F.relu(F.conv2d(x, weight, bias, stride=1, padding=1)), 2)
        return F.mse_loss(F.avg_pool2d(h, 3, 1, 1), np.full(h.shape, 0.25))

    expected = _grads_plain(fn, [x, weight, bias])
    for got, want in zip(_grads_shared(fn, [x, weight, bias], protocol, parties), expected):
        assert_close(got, want, 2e-3)


def test_shared_binary_cross_entropy_and_sigmoid_gradients():
    rng = np.random.default_rng(8)
    z, y = rng.standard_normal((6, 1)) * 3, rng.integers(0, 2, (6, 1)).astype(float)

    def fn(z):
        return F.binary_cross_entropy_with_logits(z, y) + F.sigmoid(z).sum()

    (expected,) = _grads_plain(fn, [z])
    (got,) = _grads_shared(fn, [z], "additive", 2)
    assert_close(got, expected, 1e-3)
