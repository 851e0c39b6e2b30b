"""The int8-digit matrix products (smpc.ring.int8_gemm): exact in Z_2^64 and Z_2^128 against Python integers and
the numba kernels, at the extremes, with a long k cut into pieces, over batches; and when they are used."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpc.ring import int8_gemm, ring128
from smpc.ring.matmul import matmul as ring_matmul

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="the int8 product is torch's (the test extra installs it)")

EDGES = [0, 1, 2**7, 2**8 - 1, 2**63, 2**64 - 1, 2**64, 2**127, 2**127 + 2**63 - 1, 2**128 - 1]


def _limbs(values: np.ndarray) -> np.ndarray:
    """Python ints (object array) -> (..., 2) uint64 limbs."""
    lo = np.vectorize(lambda v: v & (2**64 - 1), otypes=[np.uint64])(values)
    hi = np.vectorize(lambda v: (v >> 64) & (2**64 - 1), otypes=[np.uint64])(values)
    return np.stack([lo, hi], axis=-1)


def _ints(limbs: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda lo, hi: int(lo) + (int(hi) << 64), otypes=[object])(limbs[..., 0], limbs[..., 1])


def _words(draw, shape, bits: int):
    count = int(np.prod(shape))
    edges = [e % 2**bits for e in EDGES]
    element = st.one_of(st.sampled_from(edges), st.integers(0, 2**bits - 1))
    return np.array(draw(st.lists(element, min_size=count, max_size=count)), dtype=object).reshape(shape)


@st.composite
def _operands(draw, bits: int):
    m, k, n = (draw(st.integers(1, 9)) for _ in range(3))
    return _words(draw, (m, k), bits), _words(draw, (k, n), bits)


def _product128(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b mod 2^128 on the int8 path, from (m, k) and (k, n) Python ints; (m, n) Python ints."""
    al, bl = _limbs(a), _limbs(b)
    bt = np.ascontiguousarray(bl.swapaxes(0, 1))
    index = np.zeros(1, np.int64)
    out = int8_gemm.planes_product128(np.ascontiguousarray(al[None, ..., 0]), np.ascontiguousarray(al[None, ..., 1]),
                                      bt[None, ..., 0].copy(), bt[None, ..., 1].copy(), index, index)
    return _ints(out[0])


@needs_torch
def test_torch_here_has_an_exact_int8_product():
    assert int8_gemm.available()


@needs_torch
@settings(max_examples=60, deadline=None)
@given(_operands(128))
def test_z2_128_product_equals_python_integers(operands):
    a, b = operands
    expected = np.vectorize(lambda v: v % 2**128, otypes=[object])(a.dot(b))
    assert (_product128(a, b) == expected).all()


@needs_torch
@settings(max_examples=60, deadline=None)
@given(_operands(64))
def test_z2_64_product_equals_the_numba_kernel(operands):
    a, b = (x.astype(np.uint64) for x in operands)
    index = np.zeros(1, np.int64)
    got = int8_gemm.matmul64(a[None], np.ascontiguousarray(b.T)[None], index, index)[0]
    assert np.array_equal(got, ring_matmul(a, b))


@needs_torch
def test_every_digit_at_its_extreme_and_the_largest_exact_k():
    """Words whose digits are all -128 (0x80 bytes then 0x7f... with carries) or all 127, at the longest k one
    int8 product takes: the int32 sums reach their bound and stay exact."""
    k = int8_gemm.max_k(16)
    minus = sum(0x80 << (8 * i) for i in range(16))  # digits: -128, then -127 (0x80 + carry), ...
    plus = sum(0x7F << (8 * i) for i in range(16))
    for value in (minus, plus, 2**128 - 1):
        a = np.full((2, k), value, dtype=object)
        b = np.full((k, 3), value, dtype=object)
        assert (_product128(a, b) == (value * value * k) % 2**128).all()


def test_digit_planes_are_balanced_base_256_digits():
    rng = np.random.default_rng(3)
    words = rng.integers(0, 2**64, (5, 7, 2), dtype=np.uint64)
    words[0, :3] = [[0x8080808080808080, 0x8080808080808080], [2**64 - 1, 2**64 - 1], [0, 0]]
    k = 7
    for reverse in (False, True):
        planes = int8_gemm.digit_planes(words[..., 0], words[..., 1], reverse=reverse)
        for r in range(5):
            for p in range(k):
                ds = [int(planes[r, ((15 - d) if reverse else d) * k + p]) for d in range(16)]
                assert all(-128 <= d <= 127 for d in ds)
                value = sum(d << (8 * i) for i, d in enumerate(ds)) % 2**128
                assert value == int(words[r, p, 0]) + (int(words[r, p, 1]) << 64)
    planes64 = int8_gemm.digit_planes(words[..., 0], None, reverse=False)
    value = sum(int(planes64[1, d * k + 2]) << (8 * d) for d in range(8)) % 2**64
    assert value == int(words[1, 2, 0])


@needs_torch
def test_a_long_k_is_cut_into_pieces(monkeypatch):
    monkeypatch.setattr(int8_gemm, "max_k", lambda digits: 5)
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2**64, (4, 23, 2), dtype=np.uint64)
    b = rng.integers(0, 2**64, (23, 6, 2), dtype=np.uint64)
    got = _product128(_ints(a), _ints(b))
    assert (got == _ints(ring128.matmul(a, b))).all()
    x = a[..., 0]
    index = np.zeros(1, np.int64)
    assert np.array_equal(int8_gemm.matmul64(x[None], np.ascontiguousarray(b[..., 0].T)[None], index, index)[0],
                          ring_matmul(x, b[..., 0]))


@needs_torch
def test_batches_follow_their_indices():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 2**64, (2, 3, 4), dtype=np.uint64), rng.integers(0, 2**64, (2, 3, 4), dtype=np.uint64)
    bt = rng.integers(0, 2**64, (3, 5, 4), dtype=np.uint64), rng.integers(0, 2**64, (3, 5, 4), dtype=np.uint64)
    ia, ib = np.array([0, 1, 1, 0]), np.array([2, 0, 1, 1])
    got = int8_gemm.planes_product128(*a, *bt, ia, ib)
    out = np.empty_like(got)
    ring128._matmul_serial(*a, *bt, ia, ib, out)
    assert np.array_equal(got, out)
    got64 = int8_gemm.matmul64(a[0], bt[0], ia, ib)
    for t in range(4):
        assert np.array_equal(got64[t], ring_matmul(a[0][ia[t]], bt[0][ib[t]].T))


@pytest.fixture
def int8_enabled(monkeypatch):
    """The int8 path turned on whatever the CPU (SMPC_INT8_GEMM=1); the setting is read afresh after the test."""
    monkeypatch.setenv(int8_gemm.ENV, "1")
    int8_gemm.enabled.cache_clear()
    yield
    int8_gemm.enabled.cache_clear()


def _count_calls(monkeypatch, name: str) -> list:
    """A list that grows by one at each call of int8_gemm's ``name`` (which still runs)."""
    calls, real = [], getattr(int8_gemm, name)
    monkeypatch.setattr(int8_gemm, name, lambda *args: calls.append(1) or real(*args))
    return calls


@needs_torch
def test_the_z2_128_front_end_takes_the_int8_path_when_enabled(monkeypatch, int8_enabled):
    calls = _count_calls(monkeypatch, "planes_product128")
    rng = np.random.default_rng(6)
    a = rng.integers(0, 2**64, (400, 128, 2), dtype=np.uint64)
    b = rng.integers(0, 2**64, (128, 1000, 2), dtype=np.uint64)
    got = ring128.matmul(a, b)
    assert calls, "a 400 x 128 @ 128 x 1000 product should run on the int8 path"
    ring128.matmul(a[:127], b)
    assert len(calls) == 1, "a product with fewer than 128 rows should not"
    monkeypatch.setenv(int8_gemm.ENV, "0")
    int8_gemm.enabled.cache_clear()
    assert np.array_equal(got, ring128.matmul(a, b))
    assert len(calls) == 1


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(int8_gemm.ENV, "0")
    int8_gemm.enabled.cache_clear()
    try:
        assert not int8_gemm.enabled()
        assert not int8_gemm.preferred(2000, 2000, 2000, 2)
    finally:
        int8_gemm.enabled.cache_clear()


@needs_torch
def test_a_saturating_int8_product_fails_the_self_test():
    """A kernel that adds pairs of products in int16 with saturation (old AVX2 u8 x s8 kernels) is caught."""
    import torch

    class Saturating:
        @staticmethod
        def _int_mm(a, b):
            products = a.to(torch.int32)[:, :, None] * b.to(torch.int32)[None, :, :]
            k = products.shape[1] - products.shape[1] % 2
            pairs = (products[:, :k:2] + products[:, 1:k:2]).clamp(-(2**15), 2**15 - 1)
            return pairs.sum(dim=1) + products[:, k:].sum(dim=1)

        full = staticmethod(torch.full)
        int8 = torch.int8
        from_numpy = staticmethod(torch.from_numpy)

    assert not int8_gemm._self_test(Saturating)
    assert int8_gemm._self_test(torch) == int8_gemm.available()

    class WithoutOut:  # exact, but no out= argument (as an older torch might be): refused, not a crash later
        _int_mm = staticmethod(lambda a, b: torch._int_mm(a, b))
        full = staticmethod(torch.full)
        int8 = torch.int8
        from_numpy = staticmethod(torch.from_numpy)

    assert not int8_gemm._self_test(WithoutOut)


@needs_torch
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 40), st.integers(1, 30), st.integers(1, 40), st.booleans())
def test_the_z2_64_front_end_forced_onto_the_int8_path(batch, m, k, n, broadcast_b):
    """smpc.ring.matmul's int8 method on numpy.matmul's shapes: batches, broadcasting, a 1-D operand."""
    from smpc.ring.matmul import _matmul

    rng = np.random.default_rng(batch * 1000 + m * 100 + k * 10 + n)
    a = rng.integers(0, 2**64, (batch, m, k), dtype=np.uint64)
    b = rng.integers(0, 2**64, (k, n) if broadcast_b else (batch, k, n), dtype=np.uint64)
    assert np.array_equal(_matmul(a, b, method="int8"), _matmul(a, b, method="dot"))
    assert np.array_equal(_matmul(a[0, 0], b, method="int8"), _matmul(a[0, 0], b, method="dot"))


@needs_torch
def test_the_z2_64_front_end_takes_the_int8_path_for_large_products(monkeypatch, int8_enabled):
    from smpc.ring.matmul import _matmul

    calls = _count_calls(monkeypatch, "matmul64")
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**64, (800, 700), dtype=np.uint64)
    b = rng.integers(0, 2**64, (700, 800), dtype=np.uint64)
    got = ring_matmul(a, b)
    assert calls
    assert np.array_equal(got, _matmul(a, b, method="dot"))
    ring_matmul(a[:700], b)
    assert len(calls) == 1, "a product with a side below 768 should stay on numba"
