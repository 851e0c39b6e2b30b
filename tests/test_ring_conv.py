"""smpc.ring.conv: exact Z_2^64 conv2d and sum pooling against straightforward loops."""

from contextlib import nullcontext
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import smpc.ring.conv as conv_module
from smpc.ring.conv import conv2d, conv2d_output_shape, sum_pool2d


def rand(rng, shape):
    return rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(size, pad, k, s, d):
    return (size + 2 * pad - d * (k - 1) - 1) // s + 1


def conv_reference(x, w, stride, padding, dilation, groups):
    """Loops over kernel offsets and input channels; numpy uint64 products and sums wrap."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    ho, wo = out_size(h, ph, kh, sh, dh), out_size(wd, pw, kw, sw, dw)
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), np.uint64)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    out = np.zeros((n, o, ho, wo), np.uint64)
    for g in range(groups):
        for ci in range(cg):
            for i in range(kh):
                for j in range(kw):
                    rows = i * dh + sh * np.arange(ho)
                    cols = j * dw + sw * np.arange(wo)
                    patch = xp[:, g * cg + ci][:, rows][:, :, cols]  # (n, ho, wo)
                    wcol = w[g * og:(g + 1) * og, ci, i, j]  # (og,)
                    out[:, g * og:(g + 1) * og] += wcol[None, :, None, None] * patch[:, None]
    return out


def pool_reference(x, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    n, c, h, wd = x.shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), np.uint64)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho, wo = out_size(h, ph, kh, sh, 1), out_size(wd, pw, kw, sw, 1)
    out = np.zeros((n, c, ho, wo), np.uint64)
    for y in range(ho):
        for z in range(wo):
            for i in range(kh):
                for j in range(kw):
                    out[:, :, y, z] += xp[:, :, y * sh + i, z * sw + j]
    return out


small = st.integers(1, 3)
hyper = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
pads = st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)))
dils = st.one_of(st.integers(1, 2), st.tuples(st.integers(1, 2), st.integers(1, 2)))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 2), groups=small, cg=small, og=small,
    h=st.integers(1, 7), w=st.integers(1, 7), kh=small, kw=small,
    stride=hyper, padding=pads, dilation=dils, seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from([None, "dot", "axpy"]),
)
def test_conv2d_matches_loops(
    n, groups, cg, og, h, w, kh, kw, stride, padding, dilation, seed, layout
):
    (ph, pw), (sh, sw), (dh, dw) = pair(padding), pair(stride), pair(dilation)
    assume(out_size(h, ph, kh, sh, dh) >= 1 and out_size(w, pw, kw, sw, dw) >= 1)
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, groups * cg, h, w))
    wt = rand(rng, (groups * og, cg, kh, kw))
    expected = conv_reference(x, wt, stride, padding, dilation, groups)
    # layout forces either im2col layout (conv2d picks it from the matmul dispatcher).
    force = mock.patch.object(conv_module, "choose_kernel", lambda *shape: (layout, False))
    with force if layout else nullcontext():
        got = conv2d(x, wt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert got.dtype == np.uint64
    assert got.shape == expected.shape
    assert got.shape == conv2d_output_shape(x.shape, wt.shape, stride, padding, dilation, groups)
    np.testing.assert_array_equal(got, expected)


def test_conv2d_python_ints():
    rng = np.random.default_rng(7)
    x, w = rand(rng, (1, 2, 4, 5)), rand(rng, (3, 2, 2, 3))
    got = conv2d(x, w, stride=(1, 2), padding=1)
    xi = [[[[0] * 7 for _ in range(6)] for _ in range(2)]]
    for c in range(2):
        for y in range(4):
            for z in range(5):
                xi[0][c][y + 1][z + 1] = int(x[0, c, y, z])
    assert got.shape == (1, 3, 5, 3)
    for o in range(3):
        for y in range(5):
            for z in range(3):
                total = sum(int(w[o, c, i, j]) * xi[0][c][y + i][2 * z + j]
                            for c in range(2) for i in range(2) for j in range(3))
                assert int(got[0, o, y, z]) == total % 2**64


def test_conv2d_larger_layer():
    rng = np.random.default_rng(8)
    x, w = rand(rng, (4, 16, 16, 17)), rand(rng, (32, 16, 3, 3))  # dot layout, parallel im2col
    np.testing.assert_array_equal(conv2d(x, w, stride=(1, 2), padding=1),
                                  conv_reference(x, w, (1, 2), 1, 1, 1))
    x, w = rand(rng, (3, 32, 6, 6)), rand(rng, (64, 16, 3, 3))  # dot layout, 2 groups
    np.testing.assert_array_equal(conv2d(x, w, dilation=2, padding=2, groups=2),
                                  conv_reference(x, w, 1, 2, 2, 2))
    x, w = rand(rng, (2, 8, 20, 18)), rand(rng, (16, 4, 3, 3))
    expected = conv_reference(x, w, 1, 1, 1, 2)
    np.testing.assert_array_equal(conv2d(x, w, padding=1, groups=2), expected)
    x, w = rand(rng, (3, 16, 9, 9)), rand(rng, (32, 16, 1, 1))  # 1x1 conv
    np.testing.assert_array_equal(conv2d(x, w), conv_reference(x, w, 1, 0, 1, 1))
    x, w = rand(rng, (2, 6, 8, 8)), rand(rng, (6, 1, 3, 3))  # depthwise
    np.testing.assert_array_equal(conv2d(x, w, stride=2, padding=1, groups=6),
                                  conv_reference(x, w, 2, 1, 1, 6))


def test_conv2d_int64_and_non_contiguous():
    rng = np.random.default_rng(9)
    x = rng.integers(-(2**63), 2**63, size=(2, 3, 6, 7), dtype=np.int64)
    w = rng.integers(-(2**63), 2**63, size=(4, 3, 3, 2), dtype=np.int64)
    expected = conv_reference(x.view(np.uint64), w.view(np.uint64), 1, 1, 1, 1)
    np.testing.assert_array_equal(conv2d(x, w, padding=1), expected)
    xt = np.ascontiguousarray(x.view(np.uint64).transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(conv2d(xt, w[:, :, ::-1, :].copy()[:, :, ::-1, :], padding=1),
                                  expected)
    small = np.array([[[[-1, 2], [3, -4]]]], dtype=np.int64)
    one = np.array([[[[1, 1], [1, 1]]]], dtype=np.int64)
    assert conv2d(small, one).view(np.int64)[0, 0, 0, 0] == 0


def test_conv2d_empty_batch():
    out = conv2d(np.zeros((0, 2, 5, 5), np.uint64), np.zeros((3, 2, 3, 3), np.uint64))
    assert out.shape == (0, 3, 3, 3)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 8), w=st.integers(1, 8),
    kernel=hyper, stride=st.one_of(st.none(), hyper), padding=pads,
    seed=st.integers(0, 2**32 - 1),
)
def test_sum_pool2d_matches_loops(n, c, h, w, kernel, stride, padding, seed):
    (kh, kw), (ph, pw) = pair(kernel), pair(padding)
    (sh, sw) = pair(kernel if stride is None else stride)
    assume(out_size(h, ph, kh, sh, 1) >= 1 and out_size(w, pw, kw, sw, 1) >= 1)
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, c, h, w))
    expected = pool_reference(x, kernel, (sh, sw), padding)
    got = sum_pool2d(x, kernel, stride, padding)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, expected)


def test_sum_pool2d_int64_wraps():
    x = np.full((1, 1, 2, 2), -1, dtype=np.int64)
    assert sum_pool2d(x, 2).view(np.int64)[0, 0, 0, 0] == -4
    big = np.full((1, 1, 2, 2), 2**63, dtype=np.uint64)
    assert sum_pool2d(big, 2)[0, 0, 0, 0] == 0


X = np.zeros((1, 4, 6, 6), np.uint64)
W = np.zeros((2, 4, 3, 3), np.uint64)


@pytest.mark.parametrize(
    "x,w,kwargs,exc,match",
    [
        (X[0], W, {}, ValueError, "4-D"),
        (X, W[0], {}, ValueError, "4-D"),
        (X, np.zeros((2, 2, 3, 3), np.uint64), {"groups": 3}, ValueError, "input channels 4"),
        (np.zeros((1, 6, 6, 6), np.uint64), np.zeros((2, 2, 3, 3), np.uint64), {"groups": 3},
         ValueError, "output channels 2"),
        (X, np.zeros((2, 3, 3, 3), np.uint64), {}, ValueError, "in-channels 3"),
        (X, np.zeros((2, 4, 3, 3), np.uint64), {"groups": 2}, ValueError, "in-channels 4"),
        (X, W, {"stride": 0}, ValueError, "stride"),
        (X, W, {"stride": (1, -1)}, ValueError, "stride"),
        (X, W, {"dilation": 0}, ValueError, "dilation"),
        (X, W, {"padding": -1}, ValueError, "padding"),
        (X, W, {"groups": 0}, ValueError, "groups"),
        (X, W, {"stride": (1, 2, 3)}, ValueError, "stride"),
        (X, W, {"stride": 1.5}, TypeError, "stride"),
        (X, W, {"groups": 1.0}, TypeError, "groups"),
        (X, np.zeros((2, 4, 7, 3), np.uint64), {}, ValueError, "larger than the padded input"),
        (X, W, {"dilation": 3}, ValueError, "larger than the padded input"),
        (X.astype(np.float64), W, {}, TypeError, "float64"),
        (X, W.astype(np.float32), {}, TypeError, "float32"),
        (X.astype(np.int32), W, {}, TypeError, "int32"),
    ],
)
def test_conv2d_bad_inputs(x, w, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        conv2d(x, w, **kwargs)
    if x.dtype == np.uint64 and w.dtype == np.uint64:
        with pytest.raises(exc, match=match):
            conv2d_output_shape(x.shape, w.shape, **kwargs)


def test_conv2d_output_shape():
    assert conv2d_output_shape((2, 3, 32, 32), (8, 3, 5, 5)) == (2, 8, 28, 28)
    assert conv2d_output_shape((1, 4, 7, 9), (6, 2, 3, 3), stride=2, padding=(1, 0),
                               dilation=(1, 2), groups=2) == (1, 6, 4, 3)


@pytest.mark.parametrize(
    "x,kwargs,exc,match",
    [
        (np.zeros((4, 6, 6), np.uint64), {"kernel_size": 2}, ValueError, "4-D"),
        (np.zeros((1, 1, 4, 4)), {"kernel_size": 2}, TypeError, "float64"),
        (np.zeros((1, 1, 4, 4), np.uint64), {"kernel_size": 0}, ValueError, "kernel_size"),
        (np.zeros((1, 1, 4, 4), np.uint64), {"kernel_size": 2, "stride": 0}, ValueError, "stride"),
        (np.zeros((1, 1, 4, 4), np.uint64), {"kernel_size": 2, "padding": -1}, ValueError,
         "padding"),
        (np.zeros((1, 1, 4, 4), np.uint64), {"kernel_size": 5}, ValueError, "larger"),
    ],
)
def test_sum_pool2d_bad_inputs(x, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        sum_pool2d(x, **kwargs)
