"""Bit planes against a per-bit numpy reference, on hypothesis-drawn word arrays."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smpc.ring.bitslice import bit_planes_into, bits_to_plane, plane_to_bits, plane_words, to_bit_planes

words = hnp.arrays(np.uint64, st.integers(0, 300),
                   elements=st.one_of(st.sampled_from([0, 1, 2**63, 2**64 - 1, 2**63 - 1]),
                                      st.integers(0, 2**64 - 1)))


@given(words)
def test_planes_hold_bit_i_of_element_64w_plus_j(x):
    planes = to_bit_planes(x)
    assert planes.shape == (64, plane_words(x.size)) and planes.dtype == np.uint64
    for i in range(64):
        expected = (x >> np.uint64(i)) & np.uint64(1)
        assert np.array_equal(plane_to_bits(planes[i], x.size), expected)
        assert np.array_equal(bits_to_plane(expected), planes[i])  # padding bits are 0


@given(words)
def test_the_serial_transpose_matches_the_threaded_one(x):
    out = np.full((64, plane_words(x.size)), 7, np.uint64)
    bit_planes_into(x, out)
    assert np.array_equal(out, to_bit_planes(x))


def test_plane_words_rounds_up():
    assert [plane_words(n) for n in (0, 1, 64, 65, 128)] == [0, 1, 1, 2, 2]
