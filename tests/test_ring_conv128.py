"""smpc.ring.conv128: exact Z_2^128 conv2d and sum pooling against Python integers."""

import numpy as np
from hypothesis import given, settings, strategies as st

from smpc.ring import conv128

MOD = 1 << 128


def rand128(rng, shape):
    return rng.integers(0, 2**64, size=(*shape, 2), dtype=np.uint64, endpoint=False)


def as_ints(a):
    return np.vectorize(lambda lo, hi: int(lo) + (int(hi) << 64), otypes=[object])(a[..., 0], a[..., 1])


def conv_reference(x, w, stride, padding, dilation, groups):
    """Loops in Python integers, mod 2^128."""
    x, w = as_ints(x), as_ints(w)
    n, c, h, width = x.shape
    o, cg, kh, kw = w.shape
    padded = np.zeros((n, c, h + 2 * padding, width + 2 * padding), dtype=object)
    padded[:, :, padding : padding + h, padding : padding + width] = x
    x = padded
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    og = o // groups
    out = np.empty((n, o, ho, wo), dtype=object)
    for b in range(n):
        for oc in range(o):
            g = oc // og
            for i in range(ho):
                for j in range(wo):
                    total = 0
                    for ci in range(cg):
                        for di in range(kh):
                            for dj in range(kw):
                                total += (x[b, g * cg + ci, i * stride + di * dilation, j * stride + dj * dilation]
                                          * w[oc, ci, di, dj])
                    out[b, oc, i, j] = total % MOD
    return out


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3), st.integers(3, 6), st.integers(1, 3),
       st.integers(1, 2), st.integers(0, 1), st.integers(1, 2), st.integers(0, 2**32 - 1))
def test_conv2d_is_exact_mod_2_128(n, groups, per_group, size, kernel, stride, padding, dilation, seed):
    rng = np.random.default_rng(seed)
    c = o = groups * per_group
    if size + 2 * padding < dilation * (kernel - 1) + 1:
        kernel = 1
    x, w = rand128(rng, (n, c, size, size)), rand128(rng, (o, per_group, kernel, kernel))
    got = conv128.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = conv_reference(x, w, stride, padding, dilation, groups)
    assert got.shape == (*expected.shape, 2)
    assert (as_ints(got) == expected).all()


def test_sum_pool2d_is_exact_mod_2_128():
    rng = np.random.default_rng(3)
    x = rand128(rng, (2, 3, 5, 6))
    got = as_ints(conv128.sum_pool2d(x, (2, 3), stride=(2, 2), padding=1))
    ints = np.zeros((2, 3, 7, 8), dtype=object)
    ints[:, :, 1:6, 1:7] = as_ints(x)
    for i in range(got.shape[2]):
        for j in range(got.shape[3]):
            for b in range(2):
                for ch in range(3):
                    window = ints[b, ch, 2 * i : 2 * i + 2, 2 * j : 2 * j + 3]
                    assert got[b, ch, i, j] == sum(window.reshape(-1).tolist()) % MOD
