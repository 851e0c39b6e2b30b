"""smpc.dp: RDP accounting against Google's dp_accounting, calibration, CSPRNG noise, clipping, bad input."""

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import integrate, stats

from smpc import dp
from smpc.dp import accountant as accountant_module
from smpc.dp.rdp import log_a_fractional, log_a_integer
from smpc.ring.prg import PRG

RTOL = 1e-6

sigmas = st.floats(0.5, 10.0)
rates = st.one_of(st.just(1.0), st.floats(-4.0, 0.0).map(lambda e: 10.0**e))
step_counts = st.floats(0.0, 5.0).map(lambda e: int(round(10.0**e)))
deltas = st.floats(-10.0, -3.0).map(lambda e: 10.0**e)


@pytest.fixture(scope="module")
def oracle():
    """Google's dp_accounting (the reference implementation), quiet about orders it drops."""
    dpa = pytest.importorskip("dp_accounting")
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)

    def compose(events):
        acc = dpa.rdp.RdpAccountant()
        for sigma, q, steps in events:
            event = dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma))
            acc.compose(dpa.SelfComposedDpEvent(event, steps))
        return acc

    return compose


def ours(events):
    acc = dp.RDPAccountant()
    for sigma, q, steps in events:
        acc.step(noise_multiplier=sigma, sample_rate=q, steps=steps)
    return acc


def assert_same_accounting(mine, ref, delta):
    """Same orders dropped, same RDP up to rounding, same epsilon and delta to RTOL."""
    assert np.array_equal(mine.orders, ref.orders)
    rdp, ref_rdp = mine.get_rdp(), ref.rdp
    assert np.array_equal(np.isinf(rdp), np.isinf(ref_rdp)), "different orders dropped as divergent"
    finite = np.isfinite(ref_rdp)
    # log A_alpha ~ 1e-12 at small q sits on 1 + tiny: both sides carry ~1e-16 absolute rounding per step
    rounding = 1e-14 * sum(steps for _, _, steps in mine.history)
    np.testing.assert_allclose(rdp[finite], ref_rdp[finite], rtol=RTOL, atol=rounding)
    assert mine.get_epsilon(delta) == pytest.approx(ref.get_epsilon(delta), rel=RTOL, abs=1e-12)
    eps = ref.get_epsilon(delta)
    if math.isfinite(eps) and eps > 0:
        assert mine.get_delta(eps) == pytest.approx(ref.get_delta(eps), rel=RTOL, abs=1e-300)


# --- accounting against dp_accounting -------------------------------------------------------------


@settings(max_examples=4 * settings.default.max_examples)
@given(sigma=sigmas, q=rates, steps=step_counts.filter(lambda k: k >= 1), delta=deltas)
def test_epsilon_matches_dp_accounting(oracle, sigma, q, steps, delta):
    events = [(sigma, q, steps)]
    assert_same_accounting(ours(events), oracle(events), delta)


@pytest.mark.parametrize(
    "sigma, q, steps, delta",
    [
        (1.1, 256 / 60000, 14062, 1e-5),  # DP-SGD on MNIST-sized data
        (0.5, 0.5, 10, 1e-5),  # fractional orders diverge and are dropped by both
        (0.5, 1e-4, 100000, 1e-10),
        (10.0, 1.0, 100000, 1e-3),
        (4.0, 0.3, 1000, 1e-6),
        (0.7, 0.99, 3, 1e-8),
    ],
)
def test_epsilon_matches_dp_accounting_at_corners(oracle, sigma, q, steps, delta):
    events = [(sigma, q, steps)]
    assert_same_accounting(ours(events), oracle(events), delta)


@settings(max_examples=10)
@given(events=st.lists(st.tuples(sigmas, rates, step_counts), min_size=2, max_size=4), delta=deltas)
def test_mixed_compositions_match_dp_accounting(oracle, events, delta):
    assert_same_accounting(ours(events), oracle(events), delta)


def test_composition_is_additive_and_order_free():
    a = ours([(1.0, 0.01, 300), (2.0, 0.1, 50)])
    b = ours([(2.0, 0.1, 20), (1.0, 0.01, 300), (2.0, 0.1, 30)])
    np.testing.assert_allclose(a.get_rdp(), b.get_rdp(), rtol=1e-12)
    assert len(b.history) == 3


def test_doctest_example_runs():
    assert doctest.testmod(accountant_module).failed == 0


# --- the RDP formulas on their own ----------------------------------------------------------------


@pytest.mark.parametrize("sigma, steps", [(0.5, 1), (1.3, 7), (10.0, 100000)])
def test_full_batch_is_the_plain_gaussian(sigma, steps):
    acc = ours([(sigma, 1.0, steps)])
    np.testing.assert_allclose(acc.get_rdp(), steps * acc.orders / (2 * sigma**2), rtol=1e-15)


@pytest.mark.parametrize("q, steps", [(0.0, 10), (0.3, 0), (0.0, 0)])
def test_no_sampling_or_no_steps_costs_nothing(q, steps):
    acc = ours([(1.0, q, steps)])
    assert not acc.get_rdp().any()
    assert acc.get_epsilon(1e-5) == 0.0
    assert acc.get_delta(0.0) == 0.0
    assert dp.noise_multiplier_for(1.0, 1e-5, q, steps) == 0.0


def test_zero_noise_is_infinite_loss():
    acc = ours([(0.0, 0.01, 5)])
    assert np.isinf(acc.get_rdp()).all()
    assert acc.get_epsilon(1e-5) == math.inf
    assert acc.get_delta(10.0) == 1.0


def _log_a_by_quadrature(q, sigma, alpha):
    """log E_{z ~ N(0, sigma^2)} [((1 - q) + q exp((2z - 1) / (2 sigma^2)))^alpha] (MTZ 2019, Sec. 3)."""

    def integrand(z):
        ratio = math.exp((2 * z - 1) / (2 * sigma**2))
        return stats.norm.pdf(z, scale=sigma) * ((1 - q) + q * ratio) ** alpha

    value, _ = integrate.quad(
        integrand, -40 * sigma, alpha + 40 * sigma, points=[0.0, 1.0, alpha], epsabs=0, epsrel=1e-13, limit=500
    )
    return math.log(value)


@pytest.mark.parametrize("q, sigma, alpha", [(0.01, 1.0, 2), (0.2, 1.0, 8), (0.001, 3.0, 32), (0.5, 0.7, 5)])
def test_integer_orders_equal_the_integral(q, sigma, alpha):
    assert log_a_integer(q, sigma, alpha) == pytest.approx(_log_a_by_quadrature(q, sigma, alpha), rel=1e-8)


@pytest.mark.parametrize(
    "q, sigma, alpha, rel",
    [(0.001, 1.5, 10.9, 1e-9), (0.01, 1.0, 2.5, 2e-3), (0.1, 2.0, 5.5, 1e-4), (0.3, 4.0, 1.7, 3)],
)
def test_fractional_orders_bound_the_integral(q, sigma, alpha, rel):
    """|C(alpha, i)| in the series (as dp_accounting does) over-estimates A_alpha: a bound, loose for large q."""
    exact = _log_a_by_quadrature(q, sigma, alpha)
    series = log_a_fractional(q, sigma, alpha)
    assert exact * (1 - 1e-9) <= series <= exact * (1 + rel)


def test_custom_orders():
    acc = dp.RDPAccountant(orders=[2, 4.5, 32])
    acc.step(noise_multiplier=1.0, sample_rate=1.0, steps=2)
    np.testing.assert_allclose(acc.get_rdp(), [2.0, 4.5, 32.0])
    eps, order = acc.get_epsilon_and_order(1e-5)
    assert order in (2.0, 4.5, 32.0) and eps > 0


# --- noise_multiplier_for -------------------------------------------------------------------------


@settings(max_examples=6)
@given(
    epsilon=st.floats(0.5, 10.0),
    delta=deltas,
    q=st.floats(-3.0, -1.0).map(lambda e: 10.0**e),
    steps=st.integers(10, 5000),
)
def test_noise_multiplier_is_the_smallest_that_meets_epsilon(oracle, epsilon, delta, q, steps):
    sigma = dp.noise_multiplier_for(epsilon, delta, q, steps)
    assert oracle([(sigma, q, steps)]).get_epsilon(delta) <= epsilon * (1 + 1e-9)
    assert oracle([(sigma * (1 - 1e-6), q, steps)]).get_epsilon(delta) > epsilon


@pytest.mark.parametrize(
    "sigma, q, steps, delta", [(1.1, 0.01, 1000, 1e-5), (3.0, 1.0, 50, 1e-8), (0.8, 0.002, 20000, 1e-6)]
)
def test_noise_multiplier_round_trip(sigma, q, steps, delta):
    epsilon = ours([(sigma, q, steps)]).get_epsilon(delta)
    assert dp.noise_multiplier_for(epsilon, delta, q, steps) == pytest.approx(sigma, rel=1e-6)


def test_unreachable_epsilon_is_reported():
    with pytest.raises(ValueError, match="out of reach"):
        dp.noise_multiplier_for(1e-3, 1e-10, 1.0, 100000)


# --- mechanisms and noise -------------------------------------------------------------------------


def _classic_delta(sigma, sensitivity, epsilon):
    """Balle & Wang 2018, Thm. 8, written with scipy's normal CDF."""
    a, b = sensitivity / (2 * sigma), epsilon * sigma / sensitivity
    return stats.norm.cdf(a - b) - math.exp(epsilon) * stats.norm.cdf(-a - b)


@pytest.mark.parametrize(
    "sensitivity, epsilon, delta", [(1.0, 0.5, 1e-5), (2.5, 1.0, 1e-6), (0.1, 4.0, 1e-9), (1.0, 0.05, 1e-3)]
)
def test_analytic_gaussian_sigma_is_tight(sensitivity, epsilon, delta):
    sigma = dp.gaussian_sigma(sensitivity, epsilon, delta)
    assert _classic_delta(sigma, sensitivity, epsilon) <= delta * (1 + 1e-9)
    assert _classic_delta(sigma * (1 - 1e-8), sensitivity, epsilon) > delta
    assert dp.analytic_gaussian_delta(sigma, sensitivity, epsilon) == pytest.approx(delta, rel=1e-6)
    if epsilon < 1:
        assert sigma < math.sqrt(2 * math.log(1.25 / delta)) * sensitivity / epsilon


def test_gaussian_mechanism_noise_has_the_calibrated_std():
    n = 200_000
    noisy = dp.gaussian_mechanism(np.full(n, 3.0), 1.0, 0.5, 1e-5, rng=1234)
    sigma = dp.gaussian_sigma(1.0, 0.5, 1e-5)
    assert np.std(noisy) == pytest.approx(sigma, rel=0.01)
    assert abs(np.mean(noisy) - 3.0) < 5 * sigma / math.sqrt(n)
    assert stats.kstest((noisy - 3.0) / sigma, "norm").pvalue > 1e-4
    direct = dp.gaussian_mechanism(np.zeros(n), 1.0, sigma=2.0, rng=1234)
    assert np.std(direct) == pytest.approx(2.0, rel=0.01)


def test_laplace_mechanism_noise_has_the_calibrated_scale():
    n = 200_000
    noisy = dp.laplace_mechanism(np.zeros(n), 2.0, 0.5, rng=99)
    scale = 2.0 / 0.5
    assert np.std(noisy) == pytest.approx(math.sqrt(2) * scale, rel=0.02)
    assert stats.kstest(noisy / scale, "laplace").pvalue > 1e-4


def test_scalar_in_scalar_out():
    assert isinstance(dp.gaussian_mechanism(1.0, 1.0, 1.0, 1e-5), float)
    assert isinstance(dp.laplace_mechanism(1.0, 1.0, 1.0), float)
    assert dp.gaussian_mechanism(np.ones((2, 3)), 1.0, 1.0, 1e-5).shape == (2, 3)


def test_noise_comes_from_the_csprng_by_default(monkeypatch):
    made = []
    fresh = PRG.fresh.__func__

    def counting_fresh(cls):
        made.append(1)
        return fresh(cls)

    monkeypatch.setattr(PRG, "fresh", classmethod(counting_fresh))
    first, second = dp.gaussian_noise(64, 1.0), dp.gaussian_noise(64, 1.0)
    dp.laplace_mechanism(np.zeros(4), 1.0, 1.0)
    assert len(made) == 3
    assert not np.array_equal(first, second)


def test_seeds_and_generators():
    assert np.array_equal(dp.gaussian_noise((3, 4), 1.0, rng=7), dp.gaussian_noise((3, 4), 1.0, rng=7))
    assert not np.array_equal(dp.gaussian_noise(8, 1.0, rng=7), dp.gaussian_noise(8, 1.0, rng=8))
    assert np.array_equal(dp.laplace_noise(5, 1.0, rng=b"seed"), dp.laplace_noise(5, 1.0, rng=b"seed"))
    prg = PRG(bytes(16))
    assert not np.array_equal(dp.gaussian_noise(8, 1.0, rng=prg), dp.gaussian_noise(8, 1.0, rng=prg))
    words = PRG(bytes(16)).random_ring(1000) >> np.uint64(11)
    np.testing.assert_array_equal(dp.uniform(1000, rng=PRG(bytes(16))), words.astype(np.float64) * 2.0**-53)
    gen = dp.gaussian_noise(4, 1.0, rng=np.random.default_rng(0))
    assert gen.shape == (4,)
    assert dp.gaussian_noise((2, 0), 1.0).shape == (2, 0)
    assert not dp.gaussian_noise(5, 0.0).any()


def test_poisson_sample_rate():
    picked = dp.poisson_sample(100_000, 0.01, rng=5)
    assert abs(picked.size - 1000) < 5 * math.sqrt(1000)
    assert np.all(np.diff(picked) > 0)
    assert dp.poisson_sample(10, 0.0).size == 0 and dp.poisson_sample(10, 1.0).size == 10


# --- clipping and DP-SGD --------------------------------------------------------------------------


@given(
    vec=st.lists(st.floats(-100, 100), min_size=1, max_size=20),
    max_norm=st.floats(0.01, 50.0),
)
def test_clip_by_l2_norm(vec, max_norm):
    update = np.array(vec)
    norm = float(np.sqrt(np.sum(update * update)))
    clipped = dp.clip_by_l2_norm(update, max_norm)
    if norm <= max_norm:
        assert np.array_equal(clipped, update)
    else:
        np.testing.assert_array_equal(clipped, update * (max_norm / norm))
        assert dp.l2_norm(clipped) == pytest.approx(max_norm, rel=1e-12)


def test_clip_list_as_one_vector():
    layers = [np.full(3, 2.0), np.full((2, 2), 2.0)]  # norm sqrt(7 * 4)
    clipped = dp.clip_by_l2_norm(layers, 1.0)
    assert isinstance(clipped, list) and [c.shape for c in clipped] == [(3,), (2, 2)]
    np.testing.assert_allclose(clipped[0], 2.0 / math.sqrt(28))
    assert dp.l2_norm(clipped) == pytest.approx(1.0, rel=1e-14)
    assert np.all(layers[0] == 2.0)  # input untouched
    unchanged = dp.clip_by_l2_norm(layers, 100.0)
    assert all(np.array_equal(a, b) for a, b in zip(unchanged, layers))


def test_clip_per_example():
    grads = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-6.0, 8.0]])
    clipped = dp.clip_per_example(grads, 1.0)
    np.testing.assert_allclose(clipped, [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0], [-0.6, 0.8]], rtol=1e-15)
    layered = dp.clip_per_example([grads[:, :1], grads[:, 1:].reshape(4, 1, 1)], 1.0)
    np.testing.assert_allclose(layered[0][:, 0], clipped[:, 0], rtol=1e-15)
    np.testing.assert_allclose(layered[1][:, 0, 0], clipped[:, 1], rtol=1e-15)
    rows = np.random.default_rng(0).normal(size=(50, 3, 4)) * 5
    norms = np.linalg.norm(dp.clip_per_example(rows, 2.0).reshape(50, -1), axis=1)
    assert np.all(norms <= 2.0 * (1 + 1e-12))


def test_dpsgd_step_and_accounting():
    grads = np.random.default_rng(1).normal(size=(32, 5)) * 3
    exact = dp.clip_per_example(grads, 1.0).sum(axis=0) / 32
    np.testing.assert_allclose(dp.noisy_clipped_mean(grads, 1.0, 0.0, 32), exact, rtol=1e-15)
    opt = dp.DPSGD(noise_multiplier=1.1, max_grad_norm=1.0, batch_size=32, dataset_size=3200, rng=3)
    for _ in range(5):
        batch = opt.sample_batch()
        assert batch.size < 3200
        noisy = opt.privatize([grads, grads[:, :2]])
        assert [a.shape for a in noisy] == [(5,), (2,)]
    reference = ours([(1.1, 0.01, 5)])
    assert opt.epsilon(1e-5) == pytest.approx(reference.get_epsilon(1e-5), rel=1e-12)
    assert np.std(dp.noisy_clipped_mean(np.zeros((1, 20000)), 1.0, 2.0, 4.0, rng=0)) == pytest.approx(0.5, rel=0.03)


# --- bad input ------------------------------------------------------------------------------------


def _step(**kwargs):
    params = {"noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 10} | kwargs
    dp.RDPAccountant().step(**params)


def _calibrate(**kwargs):
    params = {"epsilon": 1.0, "delta": 1e-5, "sample_rate": 0.01, "steps": 100} | kwargs
    dp.noise_multiplier_for(**params)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: _step(noise_multiplier=-1.0), "noise_multiplier"),
        (lambda: _step(noise_multiplier=math.inf), "noise_multiplier"),
        (lambda: _step(noise_multiplier=math.nan), "noise_multiplier"),
        (lambda: _step(noise_multiplier="1"), "noise_multiplier"),
        (lambda: _step(sample_rate=-0.1), "sample_rate"),
        (lambda: _step(sample_rate=1.5), "sample_rate"),
        (lambda: _step(sample_rate=math.nan), "sample_rate"),
        (lambda: _step(steps=2.5), "steps"),
        (lambda: _step(steps=-1), "steps"),
        (lambda: _step(steps="3"), "steps"),
        (lambda: _step(steps=True), "steps"),
        (lambda: dp.RDPAccountant().get_epsilon(0.0), "delta"),
        (lambda: dp.RDPAccountant().get_epsilon(1.0), "delta"),
        (lambda: dp.RDPAccountant().get_epsilon(-1e-5), "delta"),
        (lambda: dp.RDPAccountant().get_delta(-1.0), "epsilon"),
        (lambda: dp.RDPAccountant(orders=[0.5, 2]), "order"),
        (lambda: dp.RDPAccountant(orders=[]), "orders"),
        (lambda: _calibrate(epsilon=0.0), "epsilon"),
        (lambda: _calibrate(epsilon=-1.0), "epsilon"),
        (lambda: _calibrate(epsilon=math.inf), "epsilon"),
        (lambda: _calibrate(delta=0.0), "delta"),
        (lambda: _calibrate(delta=1.5), "delta"),
        (lambda: _calibrate(sample_rate=2.0), "sample_rate"),
        (lambda: _calibrate(steps=10.5), "steps"),
        (lambda: dp.gaussian_mechanism(1.0, 1.0, 0.0, 1e-5), "epsilon"),
        (lambda: dp.gaussian_mechanism(1.0, 1.0, 1.0, 0.0), "delta"),
        (lambda: dp.gaussian_mechanism(1.0, -1.0, 1.0, 1e-5), "sensitivity"),
        (lambda: dp.gaussian_mechanism(1.0, 1.0), "epsilon and delta"),
        (lambda: dp.gaussian_mechanism(1.0, 1.0, 1.0, 1e-5, sigma=1.0), "not both"),
        (lambda: dp.gaussian_mechanism(math.nan, 1.0, 1.0, 1e-5), "value"),
        (lambda: dp.laplace_mechanism(1.0, 1.0, -1.0), "epsilon"),
        (lambda: dp.laplace_mechanism(1.0, 0.0, 1.0), "sensitivity"),
        (lambda: dp.gaussian_noise(3, -1.0), "std"),
        (lambda: dp.gaussian_noise((2, -1), 1.0), "shape"),
        (lambda: dp.clip_by_l2_norm(np.ones(3), 0.0), "max_norm"),
        (lambda: dp.clip_by_l2_norm(np.array([1.0, math.nan]), 1.0), "NaN"),
        (lambda: dp.clip_by_l2_norm([], 1.0), "empty"),
        (lambda: dp.clip_per_example([np.ones((3, 2)), np.ones((4, 2))], 1.0), "batch size"),
        (lambda: dp.clip_per_example(np.float64(1.0), 1.0), "batch axis"),
        (lambda: dp.DPSGD(1.0, 1.0, batch_size=20, dataset_size=10), "batch_size"),
        (lambda: dp.poisson_sample(-1, 0.5), "population"),
    ],
)
def test_bad_input_names_the_problem(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_bad_rng_is_a_type_error():
    with pytest.raises(TypeError, match="rng"):
        dp.gaussian_noise(3, 1.0, rng=1.5)
    with pytest.raises(ValueError, match="seed"):
        dp.gaussian_noise(3, 1.0, rng=-2)
