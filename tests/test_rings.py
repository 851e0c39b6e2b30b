"""smpc.ring.rings: every operation of RING64 and RING128 against exact Python-int arithmetic mod 2^k, fixed point,
the PRG, bad input, and the registry's ring_bits -> Ring lookup."""

import importlib
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from smpc.mpc import registry
from smpc.ring import fixed_point, ring128
from smpc.ring.prg import PRG
from smpc.ring.rings import RING64, RING128, ring_of

RINGS = [RING64, RING128]
ring_param = pytest.mark.parametrize("ring", RINGS, ids=repr)


# ------------------------------------------------------------------------------ exact references
def edges(bits):
    """0, 1, 2^k - 1, 2^(k-1), 2^(k-1) - 1, and the limb boundaries of a 128-bit ring."""
    values = [0, 1, 2, (1 << bits) - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1]
    if bits > 64:
        values += [(1 << 64) - 1, 1 << 64, 1 << 63, (1 << 96) + (1 << 32) - 1]
    return values


def element(bits):
    return st.one_of(st.sampled_from(edges(bits)), st.integers(0, (1 << bits) - 1))


def exact(ring, x):
    """Element array -> object array of Python ints in [0, 2^k)."""
    return np.asarray(ring.to_int(x, signed=False)).astype(object)


def mod(ring, values):
    return np.vectorize(lambda v: int(v) % ring.modulus, otypes=[object])(np.asarray(values, dtype=object))


def signed(ring, v):
    return v - ring.modulus if v >= ring.modulus // 2 else v


def ints(draw, ring, shape):
    """An object array of ring values of ``shape`` (edge values mixed with random ones)."""
    flat = [draw(element(ring.bits)) for _ in range(int(np.prod(shape, dtype=np.int64)))]
    return np.array(flat + [0], dtype=object)[:-1].reshape(shape)


def assert_exact(ring, got, expected):
    got = ring.check(got, "result")
    assert ring.shape(got) == np.shape(expected)
    assert (exact(ring, got) == mod(ring, expected)).all()


# ------------------------------------------------------------------------------ element-wise arithmetic
@ring_param
@settings(max_examples=40)
@given(data=st.data(), shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
def test_add_sub_mul_neg_equal(ring, data, shapes):
    x = ints(data.draw, ring, shapes.input_shapes[0])
    y = ints(data.draw, ring, shapes.input_shapes[1])
    a, b = ring.from_int(x), ring.from_int(y)
    assert_exact(ring, ring.add(a, b), x + y)
    assert_exact(ring, ring.sub(a, b), x - y)
    assert_exact(ring, ring.mul(a, b), x * y)
    assert_exact(ring, ring.neg(a), -x)
    expected_equal = np.asarray(mod(ring, x) == mod(ring, y), dtype=bool)
    np.testing.assert_array_equal(ring.equal(a, b), np.broadcast_to(expected_equal, shapes.result_shape))
    assert ring.equal(a, a).all()


@ring_param
def test_every_pair_of_edge_values(ring):
    values = edges(ring.bits)
    x = np.array([[u for _ in values] for u in values] + [[0] * len(values)], dtype=object)[:-1]
    y = x.T.copy()
    a, b = ring.from_int(x), ring.from_int(y)
    assert_exact(ring, ring.mul(a, b), x * y)
    assert_exact(ring, ring.add(a, b), x + y)
    assert_exact(ring, ring.sub(a, b), x - y)


@ring_param
def test_mul_of_a_large_array(ring):
    rng = np.random.default_rng(5)
    a = ring.random(PRG(bytes(range(16))), (3, 1000))
    b = ring.random(PRG(bytes(16)), (1000,))
    pick = rng.integers(0, 1000, 20)
    got = exact(ring, ring.mul(a, b))[:, pick]
    assert (got == mod(ring, exact(ring, a)[:, pick] * exact(ring, b)[pick])).all()


def test_ring128_one_element_operands_and_choose_difference():
    prg = PRG(bytes(range(16)))
    a, one = prg.random_ring((7, 3, 2)), prg.random_ring((1, 2))
    value = lambda words: [int(w[0]) + (int(w[1]) << 64) for w in np.asarray(words).reshape(-1, 2)]  # noqa: E731
    c = value(one)[0]
    for got, want in ((ring128.add(a, one), [(v + c) % 2**128 for v in value(a)]),
                      (ring128.mul(one, a), [(v * c) % 2**128 for v in value(a)])):
        assert got.shape == a.shape and value(got) == want  # no broadcast copy, the same result
    own, opened, s, rs = (prg.random_ring((50, 2)) for _ in range(4))
    e = prg.random_ring(50) & np.uint64(1)
    want = [(o - (x * y - r)) % 2**128 if bit else (x * y - r) % 2**128
            for o, x, y, r, bit in zip(value(own), value(opened), value(s), value(rs), e)]
    assert value(ring128.choose_difference(own, opened, s, rs, e)) == want
    with pytest.raises(ValueError, match="one shape"):
        ring128.choose_difference(own, opened[:3], s, rs, e)


@ring_param
@settings(max_examples=30)
@given(data=st.data(), shape=st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple))
def test_sum(ring, data, shape):
    x = ints(data.draw, ring, shape)
    a = ring.from_int(x)
    nd = len(shape)
    axis = data.draw(st.sampled_from([None, *range(-nd, nd)] + ([tuple(range(nd)), (0, -1)] if nd > 1 else [])))
    got = ring.sum(a, axis=axis)
    assert_exact(ring, got, np.asarray(np.sum(x, axis=axis), dtype=object))


def test_sum_carries_through_the_low_limb():
    big = RING128.from_int(np.array([(1 << 64) - 1] * 1000 + [(1 << 128) - 1] * 7, dtype=object))
    assert RING128.to_int(RING128.sum(big), signed=False) == (1000 * ((1 << 64) - 1) - 7) % (1 << 128)


# ------------------------------------------------------------------------------ matmul
@st.composite
def matmul_shapes(draw):
    """Shapes numpy.matmul accepts: 1-D/2-D mixes, broadcast batches, empty dimensions."""
    m, k, n = draw(st.integers(0, 5)), draw(st.integers(0, 6)), draw(st.integers(0, 5))
    kind = draw(st.sampled_from(["1x1", "1x2", "2x1", "2x2", "batch"]))
    if kind == "1x1":
        return (k,), (k,)
    if kind == "1x2":
        return (k,), (k, n)
    if kind == "2x1":
        return (m, k), (k,)
    if kind == "2x2":
        return (m, k), (k, n)
    batches = draw(mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    sa, sb = batches.input_shapes
    return sa + (m, k), sb + (k, n)


def exact_matmul(ring, x, y):
    return mod(ring, np.matmul(x, y)) if x.shape[-1] else np.zeros(np.matmul(
        np.zeros(x.shape), np.zeros(y.shape)).shape, dtype=object)


@ring_param
@settings(max_examples=60)
@given(data=st.data(), shapes=matmul_shapes())
def test_matmul(ring, data, shapes):
    x = ints(data.draw, ring, shapes[0])
    y = ints(data.draw, ring, shapes[1])
    got = ring.matmul(ring.from_int(x), ring.from_int(y))
    assert_exact(ring, got, exact_matmul(ring, x, y))


@ring_param
@pytest.mark.parametrize("sa,sb", [
    ((13, 29), (29, 11)),  # odd edges of the 2 x 2 tile
    ((65, 3), (3, 66)),  # more than one output block
    ((5, 1100), (1100, 3)),  # more than one k-block: carries between blocks
    ((2, 3, 600), (600, 2)),  # folded batch
    ((2, 1, 4, 70), (3, 70, 2)),  # broadcast batch
    ((40, 700), (700, 40)),  # parallel kernel
])
def test_matmul_on_kernel_edges(ring, sa, sb):
    prg = PRG(bytes([len(sa), sa[-1] % 256] + [0] * 14))
    a, b = ring.random(prg, sa), ring.random(prg, sb)
    assert_exact(ring, ring.matmul(a, b), exact_matmul(ring, exact(ring, a), exact(ring, b)))


def test_matmul128_of_all_ones_carries_every_limb():
    top = (1 << 128) - 1
    for k in (1, 2, 511, 512, 513, 1500):
        a = RING128.from_int(np.full((3, k), top, dtype=object))
        b = RING128.from_int(np.full((k, 2), top, dtype=object))
        assert (exact(RING128, RING128.matmul(a, b)) == k % (1 << 128)).all()
        half = RING128.from_int(np.full((2, k), (1 << 64) - 1, dtype=object))
        got = exact(RING128, RING128.matmul(half, RING128.from_int(np.full((k, 1), (1 << 64) - 1, dtype=object))))
        assert (got == (k * ((1 << 64) - 1) ** 2) % (1 << 128)).all()


@ring_param
def test_matmul_vectors_give_a_0d_element(ring):
    a = ring.random(PRG(bytes(16)), (7,))
    got = ring.matmul(a, a)
    assert ring.shape(got) == ()
    assert exact(ring, got)[()] == sum(v * v for v in exact(ring, a)) % ring.modulus


def test_ring64_matmul_is_the_existing_kernel():
    from smpc.ring.matmul import matmul
    a = RING64.random(PRG(bytes(16)), (30, 50))
    b = RING64.random(PRG(bytes(16)), (50, 20))
    np.testing.assert_array_equal(RING64.matmul(a, b), matmul(a, b))


# ------------------------------------------------------------------------------ shifts and bits
def shifts(ring):
    return [0, 1, 2, 31, 63, 64] + ([65, 96, 127, 128] if ring.bits > 64 else [])


@ring_param
@settings(max_examples=20)
@given(data=st.data())
def test_shifts_and_msb(ring, data):
    x = ints(data.draw, ring, (6,))
    a = ring.from_int(x)
    for s in shifts(ring):
        assert_exact(ring, ring.shift_left(a, s), np.array([v << s for v in x], dtype=object))
        assert_exact(ring, ring.shift_right_logical(a, s), np.array([v >> s for v in x], dtype=object))
        assert_exact(ring, ring.shift_right_arithmetic(a, s), np.array([signed(ring, v) >> s for v in x], dtype=object))
    np.testing.assert_array_equal(ring.msb(a), [v >> (ring.bits - 1) for v in x])
    assert ring.msb(a).dtype == np.uint64


@ring_param
def test_low_bits(ring):
    x = np.array(edges(ring.bits), dtype=object)
    a = ring.from_int(x)
    for bits in shifts(ring):
        assert_exact(ring, ring.low_bits(a, bits), np.array([v % (1 << bits) for v in x], dtype=object))


# ------------------------------------------------------------------------------ conversions
@ring_param
@given(data=st.data(), shape=st.lists(st.integers(0, 3), max_size=3).map(tuple))
def test_from_int_to_int_round_trip(ring, data, shape):
    half = ring.modulus // 2
    flat = [data.draw(st.integers(-half, half - 1)) for _ in range(int(np.prod(shape, dtype=np.int64)))]
    x = np.array(flat + [0], dtype=object)[:-1].reshape(shape)
    a = ring.from_int(x)
    assert ring.shape(a) == shape and a.dtype == np.uint64
    assert (np.asarray(ring.to_int(a)).astype(object) == x).all()
    assert (exact(ring, a) == mod(ring, x)).all()


def test_from_int_of_numpy_and_python_ints():
    values = np.array([-3, 0, 5, np.iinfo(np.int64).min, np.iinfo(np.int64).max])
    for ring in RINGS:  # int64 sign-extended, uint64 zero-extended, narrow ints widened, Python ints exact
        assert list(ring.to_int(ring.from_int(values))) == values.tolist()
        unsigned = values.view(np.uint64)
        assert list(ring.to_int(ring.from_int(unsigned), signed=False)) == unsigned.tolist()
        assert list(ring.to_int(ring.from_int(np.array([-2, 7], np.int8)))) == [-2, 7]
        assert ring.to_int(ring.from_int(-1), signed=False)[()] == ring.modulus - 1
        assert list(ring.to_int(ring.from_int([-1, 2**63]), signed=False)) == [ring.modulus - 1, 2**63]
        assert ring.to_int(ring.from_int(ring.modulus + 5))[()] == 5
    assert RING64.to_int(RING64.from_int([1])).dtype == np.int64
    assert RING64.to_int(RING64.from_int([1]), signed=False).dtype == np.uint64
    assert RING128.to_int(RING128.from_int([1])).dtype == object


def test_reduce_and_lift():
    x = np.array(edges(128) + [-(1 << 100) + 12345], dtype=object)
    a = RING128.from_int(x)
    low = RING128.reduce(a, 64)
    assert low.dtype == np.uint64 and low.shape == x.shape
    assert list(RING64.to_int(low, signed=False)) == [v % (1 << 64) for v in mod(RING128, x)]
    np.testing.assert_array_equal(RING128.reduce(a, 128), a)
    w = RING64.from_int(np.array(edges(64) + [-5], dtype=object))
    assert list(RING128.to_int(RING128.lift(w), signed=False)) == list(exact(RING64, w))
    assert list(RING128.to_int(RING128.lift(w, signed=True))) == list(RING64.to_int(w))
    np.testing.assert_array_equal(RING64.lift(w), w)
    np.testing.assert_array_equal(RING128.reduce(RING128.lift(w, signed=True), 64), w)
    with pytest.raises(ValueError, match="wider than Z_2\\^64; use RING128.lift"):
        RING64.reduce(w, 128)


# ------------------------------------------------------------------------------ fixed point
@ring_param
@settings(max_examples=40)
@given(data=st.data(), frac_bits=st.sampled_from([0, 1, 13, 16, 30]))
def test_encode_decode_round_trip_within_half_a_unit(ring, data, frac_bits):
    bound = 2.0 ** (ring.bits - 2 - frac_bits)
    magnitude = data.draw(st.sampled_from([1.0, 1e6, min(2.0**40, bound / 2), bound / 2]))
    x = np.array(data.draw(st.lists(st.floats(-magnitude, magnitude, allow_nan=False), min_size=1, max_size=8)))
    encoded = ring.encode(x, frac_bits)
    assert ring.shape(encoded) == x.shape
    back = ring.decode(encoded, frac_bits)
    np.testing.assert_array_equal(back, np.rint(x * 2.0**frac_bits) / 2.0**frac_bits)  # exact, not approximate
    assert np.all(np.abs(back - x) <= 2.0 ** -(frac_bits + 1))
    assert list(ring.to_int(encoded)) == [int(v) for v in np.rint(x * 2.0**frac_bits)]


def test_encode_decode_128_beyond_64_bits_and_at_62_fraction_bits():
    for value in [2.0**100, -(2.0**100) - 2.0**60, 2.0**125 * 0.999, -(2.0**125), 1e-10, -3.25]:
        encoded = RING128.encode([value], 0 if abs(value) > 2.0**64 else 62)
        frac_bits = 0 if abs(value) > 2.0**64 else 62
        assert RING128.decode(encoded, frac_bits)[0] == np.rint(value * 2.0**frac_bits) / 2.0**frac_bits
        assert RING128.to_int(encoded)[0] == int(np.rint(value * 2.0**frac_bits))


def test_ring64_fixed_point_is_the_existing_one():
    x = np.linspace(-1000, 1000, 77)
    np.testing.assert_array_equal(RING64.encode(x, 16), fixed_point.encode(x, 16))
    np.testing.assert_array_equal(RING64.decode(RING64.encode(x, 16), 16), fixed_point.decode(fixed_point.encode(x)))


@ring_param
def test_decode_arbitrary_elements_within_an_ulp(ring):
    a = ring.random(PRG(bytes(16)), (200,))
    exact_values = [v / 2**16 for v in ring.to_int(a)]
    np.testing.assert_allclose(ring.decode(a, 16), exact_values, rtol=2.0**-52, atol=0)


# ------------------------------------------------------------------------------ creation, PRG
@ring_param
def test_zeros_layout_and_sizes(ring):
    assert ring.zeros((2, 3)).shape == ring.element_shape((2, 3)) == (2, 3) + ((2,) if ring.bits == 128 else ())
    assert not ring.zeros(4).any()
    assert ring.nbytes_per_element == ring.bits // 8
    assert ring.zeros((2, 3)).nbytes == 6 * ring.nbytes_per_element
    assert ring_of(ring.bits) is ring


@ring_param
def test_random_is_reproducible_from_a_key_and_uniform_looking(ring):
    key = bytes(range(16))
    a = ring.random(PRG(key), (4096,))
    np.testing.assert_array_equal(a, ring.random(PRG(key), (4096,)))
    assert not np.array_equal(a, ring.random(PRG(bytes(16)), (4096,)))
    words = a.reshape(4096, -1)
    bits = (words[:, :, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    frequency = bits.reshape(4096, -1).mean(axis=0)
    assert frequency.shape == (ring.bits,)
    assert np.all(np.abs(frequency - 0.5) < 0.05)  # 6.4 standard deviations of a fair bit over 4096 draws
    assert len(np.unique(words, axis=0)) == 4096
    np.testing.assert_array_equal(a.reshape(-1), PRG(key).random_ring(4096 * ring.limbs))  # the same key stream


# ------------------------------------------------------------------------------ bad input
@ring_param
def test_bad_operands_raise_clear_errors(ring):
    good = ring.zeros((2, 3))
    with pytest.raises(TypeError, match="uint64 element array, got dtype int64.*from_int"):
        ring.add(good, np.zeros(ring.element_shape((2, 3)), np.int64))
    with pytest.raises(TypeError, match="got dtype float64.*encode"):
        ring.mul(np.zeros(ring.element_shape(3)), good)
    with pytest.raises(ValueError, match=r"tensor shapes \(2, 3\) and \(4,\) do not broadcast"):
        ring.sub(good, ring.zeros(4))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) do not align"):
        ring.matmul(good, good)
    with pytest.raises(ValueError, match="at least one dimension"):
        ring.matmul(ring.zeros(()), good)
    with pytest.raises(ValueError, match=f"shift must be in \\[0, {ring.bits}\\], got {ring.bits + 1}"):
        ring.shift_left(good, ring.bits + 1)
    with pytest.raises(ValueError, match="got -1"):
        ring.shift_right_logical(good, -1)
    with pytest.raises(TypeError, match="shift must be an int"):
        ring.shift_right_arithmetic(good, 1.5)
    with pytest.raises(ValueError, match=f"frac_bits must be an integer in \\[0, {ring.bits // 2 - 2}\\]"):
        ring.encode([1.0], ring.bits // 2 - 1)
    with pytest.raises(ValueError, match="cannot fixed-point encode .*nan.* at index \\(1,\\)"):
        ring.encode([1.0, np.nan])
    with pytest.raises(ValueError, match=f"\\|x\\| < 2\\^{ring.bits - 18}"):
        ring.encode([2.0 ** (ring.bits - 18)], 16)
    with pytest.raises(TypeError, match="from_int takes integers, got float"):
        ring.from_int([1.5])
    with pytest.raises(TypeError, match="from_int takes integers, got dtype bool"):
        ring.from_int(np.array([True]))
    with pytest.raises(TypeError, match="needs an smpc.ring.prg.PRG"):
        ring.random(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="unsupported ring width 32"):
        ring.reduce(good, 32)


def test_ring128_layout_is_checked():
    for shape in [(3,), (2, 3), ()]:
        with pytest.raises(ValueError, match=re.escape(f"trailing axis of 2 limbs (lo, hi), got shape {shape}")):
            RING128.add(np.zeros(shape, np.uint64), np.zeros(shape, np.uint64))
    with pytest.raises(ValueError, match="operand b must have a trailing axis"):
        RING128.matmul(RING128.zeros((2, 2)), np.zeros((2, 3), np.uint64))
    with pytest.raises(TypeError, match="lift: operand must be a uint64"):
        RING128.lift(np.zeros(3, np.int64))


@pytest.mark.parametrize("bits", [0, 32, 63, 65, 256, True, "64", 64.0, None])
def test_unsupported_widths_name_the_supported_ones(bits):
    with pytest.raises(ValueError, match=r"unsupported ring width .*: smpc has rings of \[64, 128\] bits"):
        ring_of(bits)


def test_ring128_matmul_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"batch dimensions of shapes \(2, 3, 4\) and \(5, 4, 1\) do not broadcast"):
        ring128.matmul_shape((2, 3, 4), (5, 4, 1))


# ------------------------------------------------------------------------------ the registry's ring
def test_built_in_protocols_declare_their_ring():
    # the semi-honest protocols compute in Z_2^64; spdz2k's shares and MACs live in Z_2^128
    for module in registry.BUILT_IN:
        spec = importlib.import_module(module).SPEC
        assert spec.ring is ring_of(spec.ring_bits) and spec.ring in (RING64, RING128)
    for spec in registry.protocols().values():
        assert spec.ring is ring_of(spec.ring_bits)
