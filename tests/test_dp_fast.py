"""smpc.dp's numba kernels: Box-Muller, Laplace and uniforms from CSPRNG words against the numpy formulas, and
clipped_sum against clip_by_l2_norm, with huge, zero and boundary norms and bad input."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

from smpc import dp
from smpc.dp import _kernels, clipping
from smpc.ring.prg import PRG

EPS = np.finfo(np.float64).eps
# Kernel and numpy each evaluate log1p, sin and cos to within ~1 ulp, then radius * cos and std * (...)
# round: outputs agree to a few ulps (3 seen in 10^6 draws); 8 eps (8 to 16 ulps) leaves room for other libms.
NOISE_RTOL = 8 * EPS


@pytest.fixture(scope="module", autouse=True)
def compiled():
    _kernels.warmup()


# --- reference implementations: the numpy formulas smpc.dp.noise used before the kernels ----------------------


def ref_uniform(words):
    return (words >> np.uint64(11)).astype(np.float64) * 2.0**-53


def ref_gaussian(words, count, std):
    pairs = (count + 1) // 2
    u = ref_uniform(words)
    radius = np.sqrt(-2.0 * np.log1p(-u[:pairs]))
    angle = 2.0 * math.pi * u[pairs:]
    return std * np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:count]


def ref_exponentials(words):
    return -np.log1p(-ref_uniform(words))


def words_for(uniforms, rng):
    """Words whose top 53 bits give exactly ``uniforms`` (multiples of 2^-53), random low bits."""
    top = (np.asarray(uniforms) * 2.0**53).astype(np.uint64) << np.uint64(11)
    return top | rng.integers(0, 2**11, top.size, dtype=np.uint64)


# --- constants -------------------------------------------------------------------------------------------------


def _pi_fraction(bits=260):
    """pi to ~2^-bits by Machin's formula in integers: pi = 16 atan(1/5) - 4 atan(1/239)."""
    one = 1 << (bits + 16)

    def atan_inv(x):
        total, term, k, sign = 0, one // x, 1, 1
        while term:
            total += sign * (term // k)
            term //= x * x
            k += 2
            sign = -sign
        return total

    return Fraction(16 * atan_inv(5) - 4 * atan_inv(239), one)


def _ln2_fraction(bits=260):
    """ln 2 = sum_{k >= 1} 1 / (k 2^k), to ~2^-bits."""
    one = 1 << (bits + 16)
    return Fraction(sum(one // (k << k) for k in range(1, bits + 20)), one)


def _significant_bits(x):
    m = Fraction(x)
    while m.denominator != 1:
        m *= 2
    n = m.numerator
    while n % 2 == 0:
        n //= 2
    return n.bit_length()


def test_kernel_constants():
    half_pi = _pi_fraction() / 2
    p1, p2, p3 = (Fraction(p) for p in (_kernels._P1, _kernels._P2, _kernels._P3))
    assert _significant_bits(_kernels._P1) <= 33 and _significant_bits(_kernels._P2) <= 33
    assert abs(half_pi - p1 - p2 - p3) < Fraction(1, 2**120)
    assert abs(half_pi - p1) < Fraction(1, 2**33) and abs(half_pi - p1 - p2) < Fraction(1, 2**66)
    ln2 = _ln2_fraction()
    assert _significant_bits(_kernels._LN2_HI) <= 40
    assert abs(ln2 - Fraction(_kernels._LN2_HI) - Fraction(_kernels._LN2_LO)) < Fraction(1, 2**95)
    assert _kernels._TWO_PI == 2.0 * math.pi


# --- Gaussian ----------------------------------------------------------------------------------------------------


@given(
    count=st.one_of(st.integers(0, 40), st.integers(41, 5000)),
    seed=st.integers(0, 2**32 - 1),
    std=st.one_of(st.just(1.0), st.just(0.0), st.floats(1e-6, 1e6)),
)
def test_gaussian_kernel_matches_numpy(count, seed, std):
    words = PRG(seed.to_bytes(16, "big")).random_ring(2 * ((count + 1) // 2))
    got = _kernels.gaussian_from_words(words, count, std)
    np.testing.assert_allclose(got, ref_gaussian(words, count, std), rtol=NOISE_RTOL, atol=0)


@given(seed=st.integers(0, 2**32 - 1), shape=st.lists(st.integers(0, 7), min_size=0, max_size=3).map(tuple))
def test_gaussian_noise_same_draws_and_stream_as_before(seed, shape):
    key = seed.to_bytes(16, "big")
    mine, theirs = PRG(key), PRG(key)
    got = dp.gaussian_noise(shape, 2.5, rng=mine)
    count = math.prod(shape)
    want = ref_gaussian(theirs.random_ring(2 * ((count + 1) // 2)), count, 2.5).reshape(shape)
    assert got.shape == shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=NOISE_RTOL, atol=0)
    assert mine.bytes_drawn == theirs.bytes_drawn
    assert np.array_equal(mine.random_ring(4), theirs.random_ring(4))  # the stream continues alike


def test_gaussian_at_the_angles_that_need_exact_reduction():
    """Angles 2 pi u next to multiples of pi/2, where cos or sin is ~1e-16: relative accuracy must hold."""
    rng = np.random.default_rng(7)
    quarter = 2.0**-2
    special = [0.0, 2.0**-53, quarter, 2 * quarter, 3 * quarter, 1.0 - 2.0**-53]
    u2 = np.array([x + d for x in special for d in (-(2.0**-53), 0.0, 2.0**-53) if 0.0 <= x + d < 1.0])
    u1 = np.full(u2.size, 0.5)
    u1[:3] = [0.0, 2.0**-53, 1.0 - 2.0**-53]  # radius 0, the smallest, the largest (sqrt(106 ln 2))
    words = words_for(np.concatenate([u1, u2]), rng)
    got = _kernels.gaussian_from_words(words, 2 * u2.size, 1.0)
    want = ref_gaussian(words, 2 * u2.size, 1.0)
    np.testing.assert_allclose(got, want, rtol=NOISE_RTOL, atol=0)
    half = int(np.flatnonzero(u2 == 0.5)[0])  # angle fl(2 pi) / 2 = fl(pi): sin is 1.22e-16
    radius = math.sqrt(-2.0 * math.log1p(-0.5))
    assert got[u2.size + half] == pytest.approx(radius * math.sin(math.pi), rel=1e-15)
    assert abs(got[u2.size + half]) < 1e-15
    assert np.max(np.abs(got)) == pytest.approx(math.sqrt(-2.0 * math.log(2.0**-53)), rel=1e-15)


@pytest.mark.parametrize("count", [1, 2, 3, 2 * 4096 + 1, 100_001])
def test_gaussian_parallel_equals_serial(count):
    words = PRG(bytes(16)).random_ring(2 * ((count + 1) // 2))
    serial = _kernels.gaussian_from_words(words, count, 1.5, parallel=False)
    assert np.array_equal(_kernels.gaussian_from_words(words, count, 1.5, parallel=True), serial)
    np.testing.assert_allclose(serial, ref_gaussian(words, count, 1.5), rtol=NOISE_RTOL, atol=0)


def test_gaussian_moments_of_a_million_draws():
    n = 10**6
    x = dp.gaussian_noise(n, 3.0, rng=11)
    assert abs(np.mean(x)) < 5 * 3.0 / math.sqrt(n)
    assert np.std(x) == pytest.approx(3.0, rel=5 * math.sqrt(0.5 / n))
    assert stats.skew(x) == pytest.approx(0.0, abs=5 * math.sqrt(6 / n))
    assert stats.kurtosis(x) == pytest.approx(0.0, abs=5 * math.sqrt(24 / n))
    assert stats.kstest(x[:100_000] / 3.0, "norm").pvalue > 1e-4
    # first half cosines, second half sines of the same angles: also uncorrelated
    assert abs(np.corrcoef(x[: n // 2], x[n // 2 :])[0, 1]) < 5 / math.sqrt(n / 2)


def test_gaussian_noise_edge_shapes_and_zero_std():
    assert dp.gaussian_noise(0, 1.0, rng=1).shape == (0,)
    assert dp.gaussian_noise((), 1.0, rng=1).shape == ()
    assert dp.gaussian_noise((3, 0, 2), 1.0, rng=1).shape == (3, 0, 2)
    odd = dp.gaussian_noise((3, 5, 7), 1.0, rng=1)
    assert odd.shape == (3, 5, 7) and np.all(np.isfinite(odd))
    zero = dp.gaussian_noise((4, 5), 0.0, rng=1)
    assert zero.shape == (4, 5) and not zero.any()
    generator = dp.gaussian_noise(5, 1.0, rng=np.random.default_rng(3))  # numpy path unchanged
    u = np.random.default_rng(3).random(6)
    radius = np.sqrt(-2.0 * np.log1p(-u[:3]))
    want = np.concatenate([radius * np.cos(2.0 * math.pi * u[3:]), radius * np.sin(2.0 * math.pi * u[3:])])[:5]
    assert np.array_equal(generator, want)


# --- Laplace and uniform --------------------------------------------------------------------------------------------


@given(count=st.integers(0, 3000), seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3))
def test_laplace_kernel_matches_numpy(count, seed, scale):
    words = PRG(seed.to_bytes(16, "big")).random_ring(2 * count)
    e = ref_exponentials(words)
    want = scale * (e[:count] - e[count:])
    got = dp.laplace_noise(count, scale, rng=PRG(seed.to_bytes(16, "big")))
    # e1 - e2 may cancel: bound the error by the size of the terms, not of the difference
    tolerance = 4 * EPS * scale * (np.abs(e[:count]) + np.abs(e[count:])) + np.abs(want) * 2 * EPS
    assert np.all(np.abs(got - want) <= tolerance)


def test_laplace_parallel_equals_serial_and_moments():
    count = 200_001
    words = PRG(bytes(16)).random_ring(2 * count)
    serial = _kernels.laplace_from_words(words, count, 2.0, parallel=False)
    assert np.array_equal(_kernels.laplace_from_words(words, count, 2.0, parallel=True), serial)
    assert np.mean(np.abs(serial)) == pytest.approx(2.0, rel=0.02)
    assert stats.kstest(serial[:50_000] / 2.0, "laplace").pvalue > 1e-4
    assert dp.laplace_noise((2, 3), 1.0, rng=5).shape == (2, 3)


@given(seed=st.integers(0, 2**32 - 1), shape=st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple))
def test_uniform_is_bit_for_bit_as_before(seed, shape):
    key = seed.to_bytes(16, "big")
    got = dp.uniform(shape, rng=PRG(key))
    assert got.shape == shape
    assert np.array_equal(got, ref_uniform(PRG(key).random_ring(shape)))


# --- clipping -----------------------------------------------------------------------------------------------------

# update sizes on both sides of clipping._KERNEL_MIN_SIZE (numpy below, the numba sum of squares above)
shapes = st.one_of(
    st.lists(st.integers(1, 6), min_size=0, max_size=3).map(tuple),
    st.sampled_from([(4095,), (4096,), (70, 80), (10_001,)]),
)
# norm of each update relative to C: far below, just below, at, just above, far above; 0; huge finite entries
norm_kinds = st.sampled_from(["small", "below", "at", "above", "large", "zero", "huge"])


def make_update(kind, shape, max_norm, rng):
    v = rng.standard_normal(shape)
    if kind == "zero" or v.size == 0:
        return np.zeros(shape)
    v /= np.sqrt(np.sum(v * v))
    factor = {"small": 1e-3, "below": 1 - 1e-9, "at": 1.0, "above": 1 + 1e-9, "large": 1e4}.get(kind)
    if factor is None:
        return v * 1e300  # squares overflow: a naive norm is inf
    return v * (max_norm * factor)


@given(
    k=st.integers(1, 12),
    shape=shapes,
    kinds=st.lists(norm_kinds, min_size=12, max_size=12),
    max_norm=st.one_of(st.just(1.0), st.floats(1e-3, 1e3)),
    seed=st.integers(0, 2**32 - 1),
)
def test_clipped_sum_equals_the_sum_of_clipped_updates(k, shape, kinds, max_norm, seed):
    rng = np.random.default_rng(seed)
    updates = [make_update(kinds[i], shape, max_norm, rng) for i in range(k)]
    before = [u.copy() for u in updates]
    total, norms = dp.clipped_sum(updates, max_norm, return_norms=True)
    want = sum(dp.clip_by_l2_norm(u, max_norm) for u in updates)
    assert total.shape == shape and total.dtype == np.float64
    np.testing.assert_allclose(total, want, rtol=1e-12, atol=1e-12 * max_norm)
    assert all(np.array_equal(u, b) for u, b in zip(updates, before))  # inputs untouched
    assert np.array_equal(dp.clipped_sum(updates, max_norm), total)
    # independent check: every clipped update has norm min(||u||, C), so the sum has norm <= k C
    assert dp.l2_norm(total) <= k * max_norm * (1 + 1e-12)
    for u, norm in zip(updates, norms):
        scaled = u / np.max(np.abs(u)) if u.size and np.any(u) else u
        expect = (np.max(np.abs(u)) if u.size and np.any(u) else 1.0) * np.linalg.norm(scaled.ravel())
        assert norm == pytest.approx(expect, rel=1e-12, abs=0.0)


def test_clipped_sum_huge_and_boundary_norms():
    v = np.array([3.0, 4.0] * 3000)  # norm 5 sqrt(3000), 6000 elements: the kernel path
    unit = v / (5.0 * math.sqrt(3000))
    # finite entries whose squares overflow clip like any others (a naive norm gives inf and zeros)
    np.testing.assert_allclose(dp.clipped_sum([v * 1e300], 2.0), 2.0 * unit, rtol=1e-12)
    np.testing.assert_allclose(dp.clip_by_l2_norm(v * 1e300, 2.0), 2.0 * unit, rtol=1e-12)
    assert dp.l2_norm(v * 1e300) == pytest.approx(5.0 * math.sqrt(3000) * 1e300, rel=1e-12)
    # a norm beyond the largest double: still scaled correctly
    far = np.full(10_000, 1e307)
    assert dp.l2_norm(far) == math.inf
    np.testing.assert_allclose(dp.clipped_sum([far, far], 1.0), np.full(10_000, 2 * 0.01), rtol=1e-12)
    np.testing.assert_allclose(dp.clip_by_l2_norm(far, 1.0), np.full(10_000, 0.01), rtol=1e-12)
    # a norm exactly at the bound is not scaled; zeros stay zeros
    at = np.zeros(5000)
    at[7] = 3.0
    assert np.array_equal(dp.clipped_sum([at, np.zeros(5000)], 3.0), at)
    small = dp.clipped_sum([np.zeros((2, 3))], 1.0)
    assert small.shape == (2, 3) and not small.any()
    _, norms = dp.clipped_sum([at, 2 * at, np.zeros(5000)], 3.0, return_norms=True)
    assert np.array_equal(norms, [3.0, 6.0, 0.0]) and np.count_nonzero(norms > 3.0) == 1


def test_clipped_sum_accepts_any_layout_and_dtype():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 5000))
    strided = [base[:, i] for i in range(3)]  # non-contiguous columns
    fortran = [np.asfortranarray(rng.standard_normal((40, 30))) for _ in range(2)]
    ints = [np.arange(12, dtype=np.int32).reshape(3, 4), np.ones((3, 4), dtype=np.uint8)]
    readonly = rng.standard_normal(5000)
    readonly.setflags(write=False)
    for updates in (strided, fortran, ints, [readonly, readonly], base[:4], [np.float32(2.0), np.float64(-1.0)]):
        want = sum(dp.clip_by_l2_norm(np.asarray(u), 0.7) for u in updates)
        np.testing.assert_allclose(dp.clipped_sum(updates, 0.7), want, rtol=1e-12, atol=1e-15)


def test_weighted_sum_parallel_equals_serial():
    rng = np.random.default_rng(1)
    n = 2 * _kernels._SUM_BLOCK + 12_345  # chunks split at block boundaries, the last one ragged
    vectors = [rng.standard_normal(n) for _ in range(3)]
    scales = np.array([0.5, 1.0, 1e-3])
    serial = _kernels.weighted_sum(vectors, scales, parallel=False)
    assert np.array_equal(_kernels.weighted_sum(vectors, scales, parallel=True), serial)
    assert np.array_equal(serial, (0.5 * vectors[0] + vectors[1]) + 1e-3 * vectors[2])


def test_norms_on_the_kernel_path():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(100_003)
    assert clipping._sum_squares(x) == pytest.approx(float(np.sum(x * x)), rel=1e-13)
    assert dp.l2_norm([x, x[::3]]) == pytest.approx(math.sqrt(np.sum(x * x) + np.sum(x[::3] ** 2)), rel=1e-13)
    np.testing.assert_allclose(dp.clip_by_l2_norm(x, 1.0), x / np.linalg.norm(x), rtol=1e-13)


@pytest.mark.parametrize(
    "bad",
    [np.array([1.0, math.nan]), np.full(5000, math.inf), np.concatenate([np.ones(5000), [-math.inf]])],
)
def test_non_finite_updates_are_refused(bad):
    with pytest.raises(ValueError, match="NaN or infinity"):
        dp.clip_by_l2_norm(bad, 1.0)
    with pytest.raises(ValueError, match="NaN or infinity"):
        dp.l2_norm(bad)
    with pytest.raises(ValueError, match=r"updates\[1\] contains NaN or infinity"):
        dp.clipped_sum([np.zeros(bad.shape), bad], 1.0)


def test_clip_per_example_with_huge_and_non_finite_rows():
    grads = np.array([[3e300, 4e300], [0.3, 0.4], [0.0, 0.0]])
    np.testing.assert_allclose(dp.clip_per_example(grads, 1.0), [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]], rtol=1e-15)
    with pytest.raises(ValueError, match="NaN"):
        dp.clip_per_example(np.array([[1.0, math.nan]]), 1.0)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: dp.clipped_sum([], 1.0), ValueError, "empty"),
        (
            lambda: dp.clipped_sum([np.ones(3), np.ones(4)], 1.0),
            ValueError,
            r"updates\[0\] has shape \(3,\), updates\[1\] \(4,\)",
        ),
        (lambda: dp.clipped_sum([np.ones((2, 2)), np.ones(4)], 1.0), ValueError, "same shape"),
        (lambda: dp.clipped_sum([np.ones(3)], 0.0), ValueError, "max_norm"),
        (lambda: dp.clipped_sum([np.ones(3)], -1.0), ValueError, "max_norm"),
        (lambda: dp.clipped_sum([np.ones(3)], math.inf), ValueError, "max_norm"),
        (lambda: dp.clipped_sum([np.ones(3)], "1"), ValueError, "max_norm"),
        (lambda: dp.clipped_sum([np.ones(2), np.array(["a", "b"])], 1.0), TypeError, r"updates\[1\] has dtype <U1"),
        (lambda: dp.clipped_sum([np.array([1, None])], 1.0), TypeError, "dtype object"),
        (lambda: dp.clipped_sum([np.ones(2, dtype=complex)], 1.0), TypeError, "real numbers"),
        (lambda: dp.clipped_sum(np.ones(3), 1.0), ValueError, "sequence of arrays"),
        (lambda: dp.clipped_sum(b"abc", 1.0), TypeError, "sequence of arrays"),
    ],
)
def test_clipped_sum_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_clipped_sum_is_exported():
    assert "clipped_sum" in dp.__all__ and dp.clipped_sum is clipping.clipped_sum
