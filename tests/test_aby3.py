"""ABY3 replicated sharing: costs against theory, exact truncation, TCP, bad input."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import programs
import smpc
from conftest import TCP_PHASES, assert_close, only
from smpc.mpc import AdditiveTensor


def frame(shape):
    return 20 + 8 * len(shape) + 8 * int(np.prod(shape))


def test_costs_match_theory():
    shape_x, shape_y, shape_z = (4, 6), (6, 5), (4, 5)

    def program(party):
        counts = {}
        party.reset_stats()
        a = party.share(only(np.ones(shape_x), party, 0), src=0)
        counts["share"] = party.stats
        b = party.share(only(np.ones(shape_y), party, 1), src=1)
        for name, op in [("reveal", lambda: a.reveal()), ("reveal_to_1", lambda: a.reveal(to=1)),
                         ("int_mul", lambda: a * 3), ("add", lambda: a + a), ("fixed_matmul", lambda: a @ b)]:
            party.reset_stats()
            op()
            counts[name] = party.stats
        i = party.share(only(np.arange(4), party, 2), src=2)
        party.reset_stats()
        i * i
        counts["integer_product"] = party.stats
        return counts

    out = smpc.run(program, parties=3, protocol="aby3")
    meta = frame((4,))  # frac, ndim and a 2-d shape
    assert out[0]["share"]["bytes"] == 2 * (meta + frame(shape_x)) and out[0]["share"]["rounds"] == 0
    assert all(out[r]["share"]["bytes"] == 0 and out[r]["share"]["rounds"] == 1 for r in (1, 2))
    for rank, counts in enumerate(out):
        assert counts["reveal"]["rounds"] == 1 and counts["reveal"]["bytes"] == frame(shape_x)
        assert counts["reveal_to_1"]["bytes"] == (frame(shape_x) if rank == 2 else 0)
        assert counts["reveal_to_1"]["rounds"] == (1 if rank == 1 else 0)
        assert counts["int_mul"]["bytes"] == 0 and counts["add"]["bytes"] == 0
        assert counts["integer_product"]["rounds"] == 1
        assert counts["integer_product"]["bytes"] == frame((4,))
        matmul = counts["fixed_matmul"]
        if rank == 0:  # party 0 plays the truncation dealer: it only sends
            assert matmul["rounds"] == 0 and matmul["bytes"] == 2 * frame(shape_z) + frame((2, *shape_z))
        else:
            assert matmul["rounds"] == 2 and matmul["bytes"] == 2 * frame(shape_z)


def test_truncation_on_ten_million_elements_is_floor_or_floor_plus_one():
    rng = np.random.default_rng(3)
    limit = 2**62
    values = np.concatenate([
        np.array([0, 1, -1, limit - 1, -limit, 2**16, -(2**16)], dtype=np.int64),
        rng.integers(-limit + 1, limit, size=5 * 10**6, dtype=np.int64),
        rng.integers(-(2**30), 2**30, size=5 * 10**6 - 7, dtype=np.int64),
    ])

    def program(party):
        return party.share(only(values, party, 0), src=0).truncate(16).reveal()

    difference = smpc.run(program, parties=3, protocol="aby3")[2] - (values >> 16)
    assert set(np.unique(difference)) <= {0, 1}
    fraction = (values & 0xFFFF) / 2**16
    assert abs(difference.mean() - fraction.mean()) < 0.01


@pytest.mark.parametrize("bits", [1, 8, 20, 30])
def test_truncation_widths(bits):
    values = np.random.default_rng(bits).integers(-(2**62), 2**62, size=10_000, dtype=np.int64)
    out = smpc.run(lambda p: p.share(only(values, p, 1), src=1).truncate(bits).reveal(), parties=3, protocol="aby3")
    assert all(set(np.unique(o - (values >> bits))) <= {0, 1} for o in out)


def test_large_matmul_accuracy_and_no_dealer():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((1000, 1000)), rng.standard_normal((1000, 1000))

    def program(party):
        a = party.share(only(x, party, 0), src=0)
        b = party.share(only(y, party, 1), src=1)
        return (a @ b).reveal()

    report = smpc.launch(program, parties=3, protocol="aby3")
    assert report.dealer_stats is None
    assert np.max(np.abs(report.results[0] - x @ y)) <= 0.01


@settings(max_examples=3, phases=TCP_PHASES)
@given(data=st.data())
def test_tcp_matches_numpy_and_local_counts(data):
    m, k, n = data.draw(st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 8)))
    values = st.floats(-10, 10, allow_nan=False, width=32)
    x = data.draw(hnp.arrays(np.float64, (m, k), elements=values))
    y = data.draw(hnp.arrays(np.float64, (k, n), elements=values))
    program = functools.partial(programs.arithmetic_suite, x, y)
    tcp = smpc.run(program, parties=3, protocol="aby3", transport="tcp")
    local = smpc.run(program, parties=3, protocol="aby3")
    enc = 2.0**-17
    for rank, result in enumerate(tcp):
        assert_close(result["matmul"], x @ y, k * (20 * enc + enc**2) + 2.0**-16)
        assert_close(result["mul"], x * x, 20 * enc + 2.0**-16)
        assert_close(result["affine"], 3 * x - 1.5, 4 * enc)
        assert_close(result["shape_ops"], np.concatenate([x.T, x.T[::-1]], axis=1)[:, 1:], enc)
        assert (result["to_last"] is None) == (rank != 2)
        for key in ("bytes", "rounds", "bytes_received"):
            assert result["matmul_stats"][key] == local[rank]["matmul_stats"][key]


@pytest.mark.parametrize("transport", ["local", "tcp"])
def test_a_failing_party_is_named(transport):
    with pytest.raises(smpc.PartyFailedError, match="party 1 failed: ValueError: boom from 1") as info:
        smpc.run(functools.partial(programs.raise_on, 1), parties=3, protocol="aby3", transport=transport,
                 timeout=30)
    assert info.value.rank == 1


@pytest.mark.parametrize("parties", [2, 4, 5])
def test_aby3_needs_exactly_three_parties(parties):
    with pytest.raises(ValueError, match="aby3"):
        smpc.run(lambda p: None, parties=parties, protocol="aby3")


def test_mixing_protocols_is_refused():
    def program(party):
        replicated = party.share(only(np.ones(2), party, 0), src=0)
        additive = AdditiveTensor(party, np.zeros(2, np.uint64), 16)
        return replicated + additive

    with pytest.raises(smpc.PartyFailedError, match="cannot combine a ReplicatedTensor with a AdditiveTensor"):
        smpc.run(program, parties=3, protocol="aby3")


def test_bad_sources_and_data():
    with pytest.raises(smpc.PartyFailedError, match="src must be a party rank"):
        smpc.run(lambda p: p.share(None, src=3), parties=3, protocol="aby3")
    with pytest.raises(smpc.PartyFailedError, match="only the source passes data"):
        smpc.run(lambda p: p.share(np.ones(2), src=0), parties=3, protocol="aby3", timeout=10)
    with pytest.raises(smpc.PartyFailedError, match="not a party rank"):
        smpc.run(lambda p: p.share(only(np.ones(2), p, 0), src=0).reveal(to=3), parties=3, protocol="aby3",
                 timeout=10)
