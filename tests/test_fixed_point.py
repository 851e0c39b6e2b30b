import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smpc.ring import decode, encode, max_magnitude


@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
               elements=st.floats(-1e9, 1e9, allow_nan=False)),
    st.integers(0, 30),
)
def test_round_trip_error_is_half_a_unit(values, frac_bits):
    if frac_bits > 20:
        values = np.clip(values, -1e3, 1e3)
    decoded = decode(encode(values, frac_bits), frac_bits)
    assert decoded.shape == values.shape
    assert np.all(np.abs(decoded - values) <= 2.0 ** -(frac_bits + 1))


def test_encoding_is_twos_complement_rounded_to_nearest():
    ring = encode(np.array([1.0, -1.0, 0.5 / 2**16, 1.5 / 2**16, -2.0]), 16)
    assert ring.dtype == np.uint64
    assert ring.view(np.int64).tolist() == [65536, -65536, 0, 2, -131072]


def test_range_ends_are_exact():
    bound = max_magnitude(16)
    just_inside = np.array([np.nextafter(bound, 0), -np.nextafter(bound, 0)])
    assert np.array_equal(decode(encode(just_inside)), just_inside)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 2.0**46, -(2.0**46), 1e300])
def test_unencodable_values_raise_naming_the_value(bad):
    values = np.array([0.0, 1.0, bad])
    with pytest.raises(ValueError, match=r"cannot fixed-point encode .* at index \(2,\)") as info:
        encode(values, 16)
    assert repr(float(bad)) in str(info.value)


def test_scalar_bad_value():
    with pytest.raises(ValueError, match="nan"):
        encode(float("nan"))


@pytest.mark.parametrize("frac_bits", [-1, 31, 1.5, "16"])
def test_bad_frac_bits(frac_bits):
    with pytest.raises(ValueError, match="frac_bits"):
        encode([1.0], frac_bits)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), frac_bits=st.sampled_from([0, 8, 16, 24]))
def test_large_arrays_encode_exactly_as_small_ones(data, frac_bits):
    """Arrays from 2^14 elements take the compiled pass: same values (ties to even), same errors."""
    from smpc.ring import fixed_point

    size = data.draw(st.integers(fixed_point._KERNEL_MIN_SIZE, fixed_point._KERNEL_MIN_SIZE + 300))
    limit = fixed_point.max_magnitude(frac_bits)
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = rng.uniform(-limit, limit, size) * rng.choice([1.0, 1e-6, 1e-12], size)
    values[:4] = np.array([0.5, 1.5, -2.5, -0.5]) / 2.0**frac_bits  # exact ties
    big = encode(values.reshape(-1, 2) if size % 2 == 0 else values, frac_bits)
    small = np.concatenate([encode(chunk, frac_bits) for chunk in np.array_split(values, 8)])
    np.testing.assert_array_equal(big.reshape(-1), small)
    assert list(big.reshape(-1)[:4].view(np.int64)) == [0, 2, -2, 0]
    position = data.draw(st.integers(0, size - 1))
    for bad in (np.nan, np.inf, -limit):
        broken = values.copy()
        broken[position] = bad
        with pytest.raises(ValueError, match=rf"at index \({position},\)"):
            encode(broken, frac_bits)
