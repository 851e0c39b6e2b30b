"""smpc.ring.matmul: exact Z_2^64 products, compared with numpy.matmul on uint64."""

import importlib
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpc.ring.jit import warmup
from smpc.ring.kernel_choice import choose_kernel
from smpc.ring.matmul import _matmul, matmul

# Every kernel the dispatcher can pick, as (method, parallel).
METHODS = [("numpy", False), ("axpy", False), ("axpy", True), ("dot", False), ("dot", True)]


def rand(rng, shape):
    return rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False)


def reference(a, b):
    return np.asarray(np.matmul(a.astype(np.uint64), b.astype(np.uint64)))


def check(a, b, method=None, parallel=None):
    expected = reference(a, b)
    got = matmul(a, b) if method is None else _matmul(a, b, method, parallel)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.uint64
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


dim = st.integers(0, 9)
pos = st.integers(1, 9)


@st.composite
def matmul_shapes(draw):
    """Shapes numpy.matmul accepts: 1-D/2-D mixes, broadcast batches, empty and skinny dims."""
    kind = draw(st.sampled_from(["1x1", "1x2", "2x1", "2x2", "batch", "skinny", "medium"]))
    if kind == "medium":
        return draw(st.sampled_from([((70, 130), (130, 50)), ((33, 65), (65, 17)),
                                     ((3, 40, 20), (3, 20, 30)), ((200, 9), (9, 300))]))
    if kind == "skinny":
        m, k, n = draw(st.sampled_from([
            (1, 300, 200), (200, 300, 1), (150, 1, 170), (2, 500, 3), (5, 3000, 2), (300, 2, 300),
        ]))
        return (m, k), (k, n)
    m, k, n = draw(dim), draw(dim), draw(dim)
    if kind == "1x1":
        return (k,), (k,)
    if kind == "1x2":
        return (k,), (k, n)
    if kind == "2x1":
        return (m, k), (k,)
    if kind == "2x2":
        return (m, k), (k, n)
    # Batched: batch dims that broadcast (1 against anything), a or b possibly 1-D.
    nd = draw(st.integers(1, 3))
    full = [draw(st.integers(0, 3)) for _ in range(nd)]
    bat_a = [s if draw(st.booleans()) else 1 for s in full]
    bat_b = [s if draw(st.booleans()) else 1 for s in full]
    bat_b = bat_b[draw(st.integers(0, nd)):]  # b may have fewer batch dims
    sa = tuple(bat_a) + (m, k)
    sb = tuple(bat_b) + (k, n)
    if draw(st.booleans()):
        sa, sb = (sb[:-2] + (m, k), sa[:-2] + (k, n))  # a with fewer batch dims
    if draw(st.integers(0, 4)) == 0:
        sb = (k,)
    return sa, sb


@settings(max_examples=60, deadline=None)
@given(matmul_shapes(), st.integers(0, 2**32 - 1))
def test_matches_numpy(shapes, seed):
    rng = np.random.default_rng(seed)
    check(rand(rng, shapes[0]), rand(rng, shapes[1]))


@pytest.mark.parametrize("method,parallel", METHODS)
@settings(max_examples=25, deadline=None)
@given(shapes=matmul_shapes(), seed=st.integers(0, 2**32 - 1))
def test_every_kernel_directly(method, parallel, shapes, seed):
    rng = np.random.default_rng(seed)
    check(rand(rng, shapes[0]), rand(rng, shapes[1]), method, parallel)


@pytest.mark.parametrize("method,parallel", METHODS)
@pytest.mark.parametrize(
    "sa,sb",
    [
        ((5, 7), (7, 3)),
        ((4, 8), (8, 4)),
        ((13, 29), (29, 11)),  # every tile edge case of the 4 x 4 dot tile
        ((2, 1, 3, 40), (5, 40, 6)),
        ((6, 1, 7), (6, 7, 9)),
        ((3, 1100, 5), (1, 5, 130)),  # axpy column chunks
        ((3, 5000), (5000, 5)),  # long k, tiny output: split k
        ((9, 4099), (4099, 2)),
        ((2, 3, 2100), (2, 2100, 3)),
    ],
)
def test_kernels_on_edge_shapes(method, parallel, sa, sb):
    rng = np.random.default_rng(sum(sa) * 1000 + sum(sb))
    check(rand(rng, sa), rand(rng, sb), method, parallel)


def test_1000x1000_exact():
    rng = np.random.default_rng(1000)
    check(rand(rng, (1000, 1000)), rand(rng, (1000, 1000)))


def test_vector_vector_gives_0d_array():
    rng = np.random.default_rng(1)
    a, b = rand(rng, 17), rand(rng, 17)
    got = matmul(a, b)
    assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == np.uint64
    assert int(got) == sum(int(x) * int(y) for x, y in zip(a, b)) % 2**64


def test_wraps_like_python_ints():
    rng = np.random.default_rng(2)
    a, b = rand(rng, (6, 20)), rand(rng, (20, 5))
    got = matmul(a, b)
    for i in range(6):
        for j in range(5):
            assert int(got[i, j]) == sum(int(a[i, p]) * int(b[p, j]) for p in range(20)) % 2**64


def test_empty_dims():
    for sa, sb in [((3, 0), (0, 4)), ((0, 5), (5, 2)), ((4, 5), (5, 0)), ((0,), (0,)),
                   ((2, 0, 3, 0), (0, 4)), ((0, 2, 3), (1, 3, 4)), ((5, 0), (0,))]:
        got = matmul(np.ones(sa, np.uint64), np.ones(sb, np.uint64))
        expected = reference(np.ones(sa, np.uint64), np.ones(sb, np.uint64))
        assert got.shape == expected.shape
        assert not got.any()


@pytest.mark.parametrize("method,parallel", METHODS)
def test_non_contiguous_inputs(method, parallel):
    rng = np.random.default_rng(3)
    big_a = rand(rng, (40, 90))
    big_b = rand(rng, (60, 50))
    check(big_a[::2, ::3], big_b[::2, 1::2], method, parallel)  # strided views
    check(big_a[::-1, :60], big_b, method, parallel)  # negative stride
    check(np.asfortranarray(big_a[:, :60]), np.asfortranarray(big_b), method, parallel)
    check(big_b.T[:, :60], big_b, method, parallel)  # transposed views (b.T is free)
    check(rand(rng, (3, 20, 7)).transpose(2, 0, 1), rand(rng, (5, 20)).T, method, parallel)


@pytest.mark.parametrize("method,parallel", METHODS)
def test_read_only_and_byte_swapped_inputs(method, parallel):
    rng = np.random.default_rng(6)
    a, b = rand(rng, (2, 30, 50)), rand(rng, (50, 40))
    ro_a = np.frombuffer(a.tobytes(), dtype=np.uint64).reshape(a.shape)  # like a received frame
    ro_b = np.frombuffer(b.tobytes(), dtype=np.uint64).reshape(b.shape)
    check(ro_a, ro_b, method, parallel)
    check(a.astype(">u8"), b.astype(">i8"), method, parallel)


def test_int64_is_twos_complement():
    rng = np.random.default_rng(4)
    a = rng.integers(-(2**63), 2**63, size=(9, 14), dtype=np.int64)
    b = rng.integers(-(2**63), 2**63, size=(14, 6), dtype=np.int64)
    expected = reference(a.view(np.uint64), b.view(np.uint64))
    np.testing.assert_array_equal(matmul(a, b), expected)
    np.testing.assert_array_equal(matmul(a, b.view(np.uint64)), expected)
    small = np.array([[-1, 2]], dtype=np.int64) @ np.array([[3], [-4]], dtype=np.int64)
    assert matmul(np.array([[-1, 2]]), np.array([[3], [-4]])).view(np.int64)[0, 0] == small[0, 0]


def test_concurrent_threads():
    rng = np.random.default_rng(5)
    jobs = [(rand(rng, (300, 200)), rand(rng, (200, 250))) for _ in range(4)]
    jobs += [(rand(rng, (4, 3, 20)), rand(rng, (20, 6))) for _ in range(4)]
    jobs += [(rand(rng, (2, 3000)), rand(rng, (3000, 3))) for _ in range(4)]
    expected = [reference(a, b) for a, b in jobs]
    results = {}
    errors = []
    barrier = threading.Barrier(4)

    def worker(w):
        try:
            barrier.wait()
            for rep in range(3):
                for idx in range(w, len(jobs), 4):
                    results[(idx, rep)] = matmul(*jobs[idx])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for (idx, _), got in results.items():
        np.testing.assert_array_equal(got, expected[idx])
    assert len(results) == 3 * len(jobs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.bool_, object, np.int32, np.uint32])
def test_bad_dtype(dtype):
    good = np.ones((2, 2), np.uint64)
    bad = np.ones((2, 2), dtype=dtype)
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        matmul(bad, good)
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        matmul(good, bad)


@pytest.mark.parametrize(
    "sa,sb",
    [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((5,), (4, 5)), ((2, 4, 3), (3, 3, 2))],
)
def test_bad_shapes(sa, sb):
    with pytest.raises(ValueError) as info:
        matmul(np.ones(sa, np.uint64), np.ones(sb, np.uint64))
    with pytest.raises(ValueError):
        np.matmul(np.ones(sa, np.uint64), np.ones(sb, np.uint64))  # numpy agrees
    assert str(sa) in str(info.value) and str(sb) in str(info.value)


def test_zero_dim_operand():
    with pytest.raises(ValueError, match="at least one dimension"):
        matmul(np.uint64(3), np.ones(3, np.uint64))


def test_dispatcher_picks_known_methods():
    for shape in [(1, 2, 2, 2), (1, 1000, 1000, 1000), (1, 1, 5000, 300), (100, 8, 8, 8),
                  (1, 3000, 1, 3000), (1, 4, 100000, 4), (1, 200, 200, 1)]:
        assert choose_kernel(*shape) in METHODS


def test_warmup_runs():
    warmup()


def test_large_operands_are_transposed_by_tiles_exactly():
    matmul_module = importlib.import_module("smpc.ring.matmul")
    rng = np.random.default_rng(4)
    b = rng.integers(0, 2**64, size=(2, 2100, 2101), dtype=np.uint64)  # above the scratch buffer's size
    assert b[0].size > matmul_module._SCRATCH_MAX
    np.testing.assert_array_equal(matmul_module._transposed(b), np.ascontiguousarray(b.swapaxes(1, 2)))
    a = rng.integers(0, 2**64, size=(3, 2100), dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(matmul(a, b[1]), np.matmul(a, b[1]))  # numpy's uint64 product wraps exactly
