"""Both protocols (additive with 2, 3, 5 parties; aby3) against plaintext numpy, on hypothesis-drawn data."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from protocol_matrix import one_per_protocol_pairs, protocol_parties
import smpc
from smpc.mpc import concatenate, stack
from conftest import assert_close, frame, only

PARTY_COUNTS = [2, 3, 5]
SETUPS = protocol_parties("arithmetic", more_parties=5)
F = 16
ULP = 2.0**-F
ENC = 2.0 ** -(F + 1)  # encoding error bound per input


def reals(shape, bound=100.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, allow_nan=False, width=32))


def two_shared(fn, x, y, parties, **kw):
    """Run fn(x_shared, y_shared, party) with x from party 0 and y from the last party."""

    def program(party):
        xs = party.share(only(x, party, 0), src=0)
        ys = party.share(only(y, party, parties - 1), src=parties - 1)
        return fn(xs, ys, party)

    return smpc.run(program, parties=parties, **kw)  # protocol= passes through kw


small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5)


@pytest.mark.filterwarnings("ignore::smpc.FixedPointPrecisionWarning")  # arbitrary floats: tiny ones are drawn
@pytest.mark.parametrize("protocol, parties", SETUPS)
@given(data=st.data())
def test_add_sub_neg_with_broadcasting(protocol, parties, data):
    shape_x, shape_y = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4)).input_shapes
    x, y = data.draw(reals(shape_x)), data.draw(reals(shape_y))
    p = data.draw(reals(shape_y))
    results = two_shared(
        lambda a, b, _: (
            (a + b).reveal(),
            (a - b).reveal(),
            (-a).reveal(),
            (a + p).reveal(),
            (p - a).reveal(),
            (a - 3).reveal(),
        ),
        x,
        y,
        parties,
        protocol=protocol,
    )
    for got in results:
        assert_close(got[0], x + y, 2 * ENC)
        assert_close(got[1], x - y, 2 * ENC)
        assert_close(got[2], -x, ENC)
        assert_close(got[3], x + p, 2 * ENC)
        assert_close(got[4], p - x, 2 * ENC)
        assert_close(got[5], x - 3, ENC)


@pytest.mark.filterwarnings("ignore::smpc.FixedPointPrecisionWarning")  # arbitrary floats: tiny ones are drawn
@pytest.mark.parametrize("protocol, parties", SETUPS)
@given(data=st.data())
def test_elementwise_product_shared_and_public(protocol, parties, data):
    shape_x, shape_y = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4)).input_shapes
    x, y = data.draw(reals(shape_x)), data.draw(reals(shape_y))
    out = two_shared(
        lambda a, b, _: ((a * b).reveal(), (a * y).reveal(), (y * a).reveal(), (a * 3).reveal()),
        x,
        y,
        parties,
        protocol=protocol,
    )
    bound = 2 * 100 * ENC + ENC**2 + ULP
    for shared, public, rpublic, integer in out:
        assert_close(shared, x * y, bound)
        assert_close(public, x * y, bound)
        assert_close(rpublic, x * y, bound)
        assert_close(integer, x * 3, 3 * ENC)


@pytest.mark.filterwarnings("ignore::smpc.FixedPointPrecisionWarning")  # arbitrary floats: tiny ones are drawn
@pytest.mark.parametrize("protocol, parties", SETUPS)
@given(data=st.data())
def test_matmul_all_numpy_shapes(protocol, parties, data):
    kind = data.draw(st.sampled_from(["2d", "1d@2d", "2d@1d", "1d@1d", "batched"]))
    m, k, n = data.draw(st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)))
    shapes = {
        "2d": ((m, k), (k, n)),
        "1d@2d": ((k,), (k, n)),
        "2d@1d": ((m, k), (k,)),
        "1d@1d": ((k,), (k,)),
        "batched": ((2, 1, m, k), (3, k, n)),
    }[kind]
    x, y = data.draw(reals(shapes[0], 10.0)), data.draw(reals(shapes[1], 10.0))
    out = two_shared(
        lambda a, b, _: ((a @ b).reveal(), (a @ y).reveal(), (x @ b).reveal()), x, y, parties, protocol=protocol
    )
    bound = k * (2 * 10 * ENC + ENC**2) + ULP
    for shared, right_public, left_public in out:
        assert_close(shared, x @ y, bound)
        assert_close(right_public, x @ y, bound)
        assert_close(left_public, x @ y, bound)


@pytest.mark.parametrize("protocol, parties", SETUPS)
@given(data=st.data())
def test_integer_arithmetic_is_exact(protocol, parties, data):
    shape = data.draw(small_shapes)
    ints = hnp.arrays(np.int64, shape, elements=st.integers(-(2**31), 2**31))
    x, y = data.draw(ints), data.draw(ints)
    out = two_shared(
        lambda a, b, _: ((a * b).reveal(), (a + b - 7).reveal(), (a * 5).reveal()), x, y, parties, protocol=protocol
    )
    for product, affine, scaled in out:
        assert product.dtype == np.int64
        assert np.array_equal(product, x * y)
        assert np.array_equal(affine, x + y - 7)
        assert np.array_equal(scaled, x * 5)


@pytest.mark.filterwarnings("ignore::smpc.FixedPointPrecisionWarning")  # arbitrary floats: tiny ones are drawn
@pytest.mark.parametrize("protocol, parties", SETUPS)
@given(data=st.data())
def test_conv2d_and_pooling(protocol, parties, data):
    n, c, h, w = data.draw(st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(3, 7), st.integers(3, 7)))
    groups = data.draw(st.sampled_from([g for g in (1, 2, 4) if c % g == 0]))
    out_channels = groups * data.draw(st.integers(1, 2))
    kernel = data.draw(st.integers(1, 3))
    stride, padding = data.draw(st.integers(1, 2)), data.draw(st.integers(0, 1))
    x = data.draw(reals((n, c, h, w), 4.0))
    wt = data.draw(reals((out_channels, c // groups, kernel, kernel), 4.0))
    expected = _conv_reference(x, wt, stride, padding, groups)

    def fn(a, b, _):
        conv = a.conv2d(b, stride=stride, padding=padding, groups=groups).reveal()
        public_w = a.conv2d(wt, stride=stride, padding=padding, groups=groups).reveal()
        return conv, public_w, a.sum_pool2d(2).reveal(), a.avg_pool2d(2).reveal()

    out = two_shared(fn, x, wt, parties, protocol=protocol)
    bound = c // groups * kernel * kernel * (2 * 4 * ENC + ENC**2) + ULP
    pooled = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).sum(axis=(3, 5))
    for conv, public_w, sums, means in out:
        assert_close(conv, expected, bound)
        assert_close(public_w, expected, bound)
        assert_close(sums, pooled, 4 * ENC)
        assert_close(means, pooled / 4, 4 * ENC + ULP)


def _conv_reference(x, w, stride, padding, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, ho, wo))
    per_group = o // groups
    for oc in range(o):
        g = oc // per_group
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, g * cg : (g + 1) * cg, i * stride : i * stride + kh, j * stride : j * stride + kw]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
    return out


@pytest.mark.filterwarnings("ignore::smpc.FixedPointPrecisionWarning")  # arbitrary floats: tiny ones are drawn
@pytest.mark.parametrize("protocol, parties", SETUPS)
@given(data=st.data())
def test_reductions_shape_ops_and_indexing(protocol, parties, data):
    x = data.draw(reals(data.draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=5))))
    y = data.draw(reals(x.shape))
    axis = data.draw(st.integers(0, x.ndim - 1))

    def fn(a, b, _):
        return [
            a.sum().reveal(),
            a.sum(axis=axis).reveal(),
            a.mean(axis=axis, keepdims=True).reveal(),
            a.reshape(-1).reveal(),
            a.T.reveal(),
            a.transpose(1, 0, *range(2, x.ndim)).reveal(),
            a[0].reveal(),
            a[..., :1].reveal(),
            concatenate([a, b], axis=axis).reveal(),
            stack([a, b], axis=0).reveal(),
            len(a),
            a.shape,
            (a / 4).reveal(),
        ]

    size = x.shape[axis]
    for got in two_shared(fn, x, y, parties, protocol=protocol):
        assert_close(got[0], x.sum(), x.size * ENC)
        assert_close(got[1], x.sum(axis=axis), size * ENC)
        assert_close(got[2], x.mean(axis=axis, keepdims=True), ENC + ULP + 100 * ENC)  # |x/d| * 2^-17 + 1 ulp
        assert_close(got[3], x.reshape(-1), ENC)
        assert_close(got[4], x.T, ENC)
        assert_close(got[5], x.transpose(1, 0, *range(2, x.ndim)), ENC)
        assert_close(got[6], x[0], ENC)
        assert_close(got[7], x[..., :1], ENC)
        assert_close(got[8], np.concatenate([x, y], axis=axis), ENC)
        assert_close(got[9], np.stack([x, y]), ENC)
        assert got[10] == len(x) and got[11] == x.shape
        assert_close(got[12], x / 4, ENC + ULP)


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_setitem_and_reveal_to_one_party(protocol, parties):
    x = np.arange(12.0).reshape(3, 4) / 3

    def program(party):
        a = party.share(only(x, party, 0), src=0)
        a[0] = 5.0
        a[1, :2] = a[2, :2]
        return a.reveal(to=parties - 1)

    expected = x.copy()
    expected[0] = 5.0
    expected[1, :2] = expected[2, :2]
    out = smpc.run(program, parties=parties, protocol=protocol)
    assert all(r is None for r in out[:-1])
    assert_close(out[-1], expected, ENC)


# --- accuracy claims ------------------------------------------------------------------------
def test_large_fixed_point_matmul_has_no_entry_off_by_more_than_a_hundredth():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((1000, 1000)), rng.standard_normal((1000, 1000))
    out = two_shared(lambda a, b, _: (a @ b).reveal(), x, y, 2)
    assert np.max(np.abs(out[0] - x @ y)) <= 0.01


# --- round and byte counts against the theory ------------------------------------------------
@pytest.mark.parametrize("parties", PARTY_COUNTS)
def test_round_and_byte_counts_match_theory(parties):
    shape_x, shape_y = (4, 6), (6, 5)
    x, y = np.ones(shape_x), np.ones(shape_y)
    peers = parties - 1

    def program(party):
        a = party.share(only(x, party, 0), src=0)
        b = party.share(only(y, party, 0), src=0)
        counts = {}
        for name, op in [
            ("reveal", lambda: a.reveal()),
            ("add", lambda: a + a),
            ("int_mul", lambda: a * 3),
            ("mul", lambda: a * a),
            ("matmul", lambda: a @ b),
            ("reveal_to_0", lambda: a.reveal(to=0)),
        ]:
            party.reset_stats()
            op()
            counts[name] = party.stats
        return counts

    for rank, counts in enumerate(smpc.run(program, parties=parties)):
        assert counts["add"]["rounds"] == 0 and counts["add"]["bytes"] == 0
        assert counts["int_mul"]["rounds"] == 0 and counts["int_mul"]["bytes"] == 0
        assert counts["reveal"]["rounds"] == 1
        assert counts["reveal"]["bytes"] == peers * frame(shape_x)
        assert counts["mul"]["rounds"] == 2  # Beaver + truncation
        assert counts["mul"]["bytes"] == peers * (2 * frame(shape_x) + frame(shape_x))
        assert counts["matmul"]["rounds"] == 2
        assert counts["matmul"]["bytes"] == peers * (frame(shape_x) + frame(shape_y) + frame((4, 5)))
        assert counts["reveal_to_0"]["rounds"] == (1 if rank == 0 else 0)
        assert counts["reveal_to_0"]["bytes"] == (0 if rank == 0 else frame(shape_x))
        last = rank == parties - 1
        offline = counts["matmul"]["offline_bytes_received"]
        assert offline == (frame((4, 5)) + frame((2, 4, 5)) if last else 0)


@pytest.mark.parametrize("parties", PARTY_COUNTS)
def test_integer_beaver_multiplication_is_one_round(parties):
    def program(party):
        a = party.share(only(np.arange(5), party, 0), src=0)
        party.reset_stats()
        c = a * a
        stats = party.stats
        return stats["rounds"], stats["bytes"], c.reveal()

    for rounds, nbytes, value in smpc.run(program, parties=parties):
        assert rounds == 1 and nbytes == (parties - 1) * 2 * frame((5,))
        assert np.array_equal(value, np.arange(5) ** 2)


def test_dealer_offline_cost_is_reported_apart():
    def program(party):
        a = party.share(only(np.ones((20, 20)), party, 0), src=0)
        return (a @ a).reveal()

    report = smpc.launch(program, parties=3)
    assert report.dealer_stats["offline_bytes_sent"] == frame((20, 20)) + frame((2, 20, 20))
    assert report.dealer_stats["bytes"] == 0 and report.dealer_stats["offline_seconds"] > 0
    assert report.stats[2]["offline_seconds"] > 0


# --- bad input -------------------------------------------------------------------------------
def _fails(program, parties=2, match=None, rank=None, **kw):
    with pytest.raises(smpc.PartyFailedError, match=match) as info:
        smpc.run(program, parties=parties, timeout=10, **kw)
    if rank is not None:
        assert info.value.rank == rank
    return info.value


def test_non_source_passing_data_is_refused():
    _fails(lambda p: p.share(np.ones(2), src=0), match="only the source passes data")


def test_source_without_data_is_refused():
    _fails(lambda p: p.share(None, src=0), match="must pass data", rank=0)


@pytest.mark.parametrize("src", [-1, 2, 1.0, "0"])
def test_bad_source_rank(src):
    _fails(lambda p: p.share(None, src=src), match="src must be a party rank")


def test_unencodable_input_names_the_value_and_the_party():
    err = _fails(lambda p: p.share(only(np.array([1.0, np.inf]), p, 1), src=1), match="inf", rank=1)
    assert "ValueError" in err.failures[1]


def test_shared_value_cannot_steer_control_flow():
    def program(party):
        a = party.share(only(np.ones(2), party, 0), src=0)
        if a:
            return 1

    _fails(program, match="no truth value")


def test_shape_mismatch_is_reported_before_any_traffic():
    def program(party):
        a = party.share(only(np.ones((2, 3)), party, 0), src=0)
        return a @ a

    _fails(program, match=r"shapes \(2, 3\) and \(2, 3\) do not align")


def test_tensors_of_different_runs_do_not_mix():
    kept = {}

    def first(party):
        kept[party.rank] = party.share(only(np.ones(2), party, 0), src=0)

    smpc.run(first, parties=2)
    _fails(lambda p: p.share(only(np.ones(2), p, 0), src=0) + kept[p.rank], match="different parties")


def test_division_by_a_public_zero():
    _fails(lambda p: p.share(only(np.ones(2), p, 0), src=0) / 0, match="by zero")
    _fails(lambda p: p.share(only(np.ones(2), p, 0), src=0) / np.array([1.0, np.inf]), match="non-finite")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"parties": 1}, "parties >= 2"),
        ({"parties": 2, "protocol": "gmw"}, "unknown protocol"),
        ({"parties": 2, "transport": "udp"}, "unknown transport"),
        ({"parties": 2, "frac_bits": 0}, "frac_bits"),
        ({"parties": 2, "timeout": 0}, "timeout"),
        ({"parties": 2, "dealer": "oracle"}, "unknown dealer"),
        ({"parties": "2"}, "parties"),
    ],
)
def test_bad_run_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        smpc.run(lambda p: None, **kwargs)


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_pseudo_random_zero_sharing_needs_no_messages(protocol, parties):
    from smpc.mpc.sharing import zero_share

    def program(party):
        party.reset_stats()
        share = zero_share(party, (1000,))
        return share, party.stats["bytes"]

    out = smpc.run(program, parties=parties, protocol=protocol)
    total = sum(share for share, _ in out)  # wraps modulo 2^64
    assert not total.any() and all(sent == 0 for _, sent in out)
    if parties > 1:  # one party's share of zero is zero
        assert all(abs(np.unpackbits(share.view(np.uint8)).mean() - 0.5) < 0.02 for share, _ in out)


@pytest.mark.parametrize("target", [5, -1])
def test_reveal_to_a_rank_that_does_not_exist(target):
    _fails(lambda p: p.share(only(np.ones(2), p, 0), src=0).reveal(to=target),
           match="ValueError: reveal target .* is not a party rank")  # the same type as aby3's


def _precision_warnings(program, protocol, parties):
    """Run ``program``; its results and the FixedPointPrecisionWarnings its parties' threads raised."""
    with warnings.catch_warnings(record=True) as caught:  # filters are process-wide: set here, not in a thread
        warnings.simplefilter("always")
        results = smpc.run(program, parties=parties, protocol=protocol)
    return results, [w for w in caught if issubclass(w.category, smpc.FixedPointPrecisionWarning)]


@pytest.mark.parametrize("protocol, parties", one_per_protocol_pairs("arithmetic"))
def test_a_public_scalar_below_the_resolution_warns_instead_of_silently_zeroing(protocol, parties):
    def tiny(party):
        return (party.share(only(np.ones(3), party, 0), src=0) * 1e-6).reveal()

    def representable(party):
        x = party.share(only(np.ones(3), party, 0), src=0)
        return (x * 2.0**-16 + x * 0.0 + x * 3).reveal()  # exact, an intended zero, an integer: no warning

    results, caught = _precision_warnings(tiny, protocol, parties)
    assert not results[0].any() and caught
    assert "public value 1e-06 is below the fixed-point resolution 2^-16" in str(caught[0].message)
    results, caught = _precision_warnings(representable, protocol, parties)
    assert np.allclose(results[0], 3 + 2.0**-16) and not caught


@pytest.mark.parametrize("protocol, parties", [("additive", 2), ("aby3", 3)])
def test_sharing_data_that_mostly_encodes_to_zero_warns_at_the_source_only_without_values(protocol, parties):
    secret = np.array([3.0e-6, -7.0e-7, 0.0, 1.25e-6, 0.5])  # 3 of the 4 nonzero elements are below 2^-17

    def program(party):
        return party.share(only(secret, party, 1), src=1).reveal()

    results, caught = _precision_warnings(program, protocol, parties)
    assert len(caught) == 1  # one party (the source: the others have no data) warned once
    message = str(caught[0].message)
    assert "share(): 3 of the 4 nonzero elements are below the fixed-point resolution 2^-16" in message
    assert caught[0].filename == __file__  # it points at the program's share() call
    shown = [f"{v:{spec}}" for v in secret[secret != 0] for spec in ("", "g", ".2g", "e", ".1e")]
    assert not any(text in message for text in shown + ["3e-06", "7e-07", "1.25e-06", "0.5"]), message
    assert np.array_equal(results[0], [0, 0, 0, 0, 0.5])


@pytest.mark.parametrize("data", [
    np.array([2.0**-16, 1.0, 0.0]),  # representable, exact zeros
    np.r_[np.full(6, 1.0), np.full(5, 1e-7)],  # fewer than half of the nonzero elements vanish
    np.zeros(4),
    np.array([1, 0, 3]),  # integers stay exact
], ids=["representable", "a-few-tiny", "zeros", "integers"])
def test_sharing_data_that_keeps_most_of_its_elements_does_not_warn(data):
    def program(party):
        return party.share(only(data, party, 0), src=0).reveal()

    results, caught = _precision_warnings(program, "additive", 2)
    assert not caught and results[0].shape == data.shape
