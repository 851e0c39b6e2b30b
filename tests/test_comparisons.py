"""Binary sharing, A2B/B2A and comparisons (additive protocol) against numpy, edge cases included."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import programs
from protocol_matrix import one_per_protocol, one_per_protocol_pairs, protocol_parties
import smpc
from smpc.mpc import functions
from smpc.mpc.additive import conversions
from smpc.mpc.circuits import sign_bit
from smpc.mpc.cost import cost
from conftest import TCP_PHASES, frame, only

SETUPS = protocol_parties("comparison", more_parties=5)
ULP = 2.0**-16
LIMIT = 2.0**46  # encodable: |x| < 2^(62 - 16); any two such values differ by less than 2^63 ring units
EDGES = [0.0, ULP, -ULP, 2 * ULP, 1.0, -1.0, LIMIT - 1, -(LIMIT - 1), 0.5, 0.5 - ULP, 0.5 + ULP]


def fixed(values):
    """Values as the fixed-point grid sees them (comparisons are exact on that grid)."""
    return np.rint(np.asarray(values) * 2**16) / 2**16


def reals(size):
    return hnp.arrays(np.float64, size,
                      elements=st.one_of(st.sampled_from(EDGES), st.floats(-4, 4),
                                         st.floats(-(LIMIT - 1), LIMIT - 1)))


def check(result, x, y):
    x, y = fixed(x), fixed(y)
    expected = {"lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y, "eq": x == y, "ne": x != y,
                "lt_public": x < 0.5, "sign": np.sign(x), "relu": np.maximum(x, 0), "abs": np.abs(x)}
    for name, want in expected.items():
        got = result[name]
        if name in ("relu", "abs"):
            assert np.array_equal(got, want), name  # exact: x times a 0/1 bit, no truncation
        else:
            assert got.dtype == np.int64 and np.array_equal(got, want.astype(np.int64)), name


@pytest.mark.filterwarnings("ignore::smpc.FixedPointPrecisionWarning")  # arbitrary floats: tiny ones are drawn
@pytest.mark.parametrize("protocol, parties", SETUPS)
@given(data=st.data())
def test_comparisons_and_sign_functions(protocol, parties, data):
    size = data.draw(st.integers(1, 12))
    x, y = data.draw(reals(size)), data.draw(reals(size))
    y = np.where(data.draw(hnp.arrays(np.bool_, size)), x, y)  # many ties
    program = functools.partial(programs.comparison_suite, x, y)
    for result in smpc.run(program, parties=parties, protocol=protocol):
        check(result, x, y)


@pytest.mark.parametrize("setup", one_per_protocol("comparison", transport="tcp"))
@settings(max_examples=2, phases=TCP_PHASES)
@given(data=st.data())
def test_comparisons_over_tcp(setup, data):
    x, y = data.draw(reals(6)), data.draw(reals(6))
    program = functools.partial(programs.comparison_suite, x, y)
    for result in setup.run(program):
        check(result, x, y)


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_comparisons_are_exact_on_a_dense_grid_and_random_words(protocol, parties):
    # both signs, around every power of two up to the end of the encodable range
    powers = 2.0 ** np.arange(-16, 46)
    grid = np.concatenate([powers, powers - ULP, powers + ULP, [0.0, ULP, LIMIT - 1, LIMIT - 2**-6]])
    x = np.concatenate([grid, -grid, np.random.default_rng(parties).uniform(-LIMIT, LIMIT, 3000)])
    x = fixed(x)

    def program(party):
        a = party.share(only(x, party, 0), src=0)
        return (a < 0).reveal(), (a > 0).reveal(), a.relu().reveal()

    for negative, positive, relu in smpc.run(program, parties=parties, protocol=protocol):
        assert np.array_equal(negative, (x < 0).astype(np.int64))
        assert np.array_equal(positive, (x > 0).astype(np.int64))
        assert np.array_equal(relu, np.maximum(x, 0))


@pytest.mark.parametrize("parties", [2, 3, 5])
def test_a2b_is_exact_on_the_whole_ring(parties):
    rng = np.random.default_rng(parties)
    values = np.concatenate([rng.integers(0, 2**64, size=2000, dtype=np.uint64),
                             np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64)])

    def program(party):
        shared = party.share(only(values, party, 0), src=0)
        binary = shared.to_binary()
        return binary.reveal(), (binary & np.uint64(0xFF)).reveal(), (~binary).reveal(), (binary >> 60).reveal()

    for words, low, inverted, top in smpc.run(program, parties=parties):
        assert np.array_equal(words, values)
        assert np.array_equal(low, values & np.uint64(0xFF)) and np.array_equal(inverted, ~values)
        assert np.array_equal(top, values >> np.uint64(60))


@pytest.mark.parametrize("parties", [2, 3])
def test_binary_and_xor_of_shared_words(parties):
    rng = np.random.default_rng(7)
    x, y = (rng.integers(0, 2**64, size=300, dtype=np.uint64) for _ in range(2))

    def program(party):
        a = party.share(only(x, party, 0), src=0).to_binary()
        b = party.share(only(y, party, 1), src=1).to_binary()
        party.reset_stats()
        both = a & b
        rounds = party.stats["rounds"]
        return both.reveal(), (a ^ b).reveal(), rounds

    for both, either, rounds in smpc.run(program, parties=parties):
        assert np.array_equal(both, x & y) and np.array_equal(either, x ^ y) and rounds == 1


@pytest.mark.parametrize("parties", [2, 3, 5])
@pytest.mark.parametrize("size", [1, 64, 1000])
def test_relu_rounds_and_bytes_match_theory(parties, size):
    # open x + r (1 round, n words per peer); 5 tree levels opening 3G - 1 planes of
    # W = ceil(n/64) words for G = 16..1 groups; open msb ^ s (1 plane), which also
    # gives x * msb(x) from the dealer's shares of r * s: no multiplication round
    words = -(-size // 64)
    tree = sum(frame((3 * groups - 1, words)) for groups in (16, 8, 4, 2, 1))
    for stats in smpc.run(functools.partial(_relu_stats, size), parties=parties):
        assert stats["rounds"] == 7
        assert stats["bytes_sent"] == (parties - 1) * (frame((size,)) + tree + frame((words,)))


@pytest.mark.parametrize("size", [1, 64, 1000])
def test_aby3_relu_rounds_and_bytes_match_theory(size):
    # party 0 sends c' to parties 1 and 2 and the corrections to party 2, and receives
    # nothing; parties 1 and 2 run 5 tree levels, open msb ^ s and re-share x * msb(x)
    words = -(-size // 64)
    fields = sign_bit.layout(size, with_mask=False, with_arith_bit=True, with_product=True)
    tree = sum(frame((3 * groups - 1, words)) for groups in (16, 8, 4, 2, 1))
    helper, left, right = smpc.run(functools.partial(_relu_stats, size), parties=3, protocol="aby3")
    assert helper["rounds"] == 0 and left["rounds"] == right["rounds"] == 8
    assert helper["bytes_sent"] == 2 * frame((size,)) + frame((sign_bit.correction_size(fields),))
    for stats in (left, right):
        assert stats["bytes_sent"] == tree + frame((words,)) + frame((size,))


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_one_comparisons_rounds_for_every_sign_function(protocol, parties):
    ops = (lambda t: t < 0, lambda t: t == 0, lambda t: t != 0.5, lambda t: t.sign(), lambda t: t.relu(),
           lambda t: t.abs())

    def program(party):
        x = party.share(only(np.linspace(-2, 2, 10), party, 0), src=0)
        rounds = []
        for op in ops:
            party.reset_stats()
            op(x)
            rounds.append(party.stats["rounds"])
        return rounds

    per_op = np.max(smpc.run(program, parties=parties, protocol=protocol), axis=0)  # the busiest party
    sign_rounds = cost(ops[0], [(10,)], protocol, parties)["rounds"]  # 7 additive, 8 aby3, 7 spdz2k
    assert list(per_op[:4]) == [sign_rounds] * 4  # ==, != and sign batch their two sign bits into one
    # relu and abs ride on the sign bit's rounds (additive, aby3) or take one product more (spdz2k)
    assert list(per_op[4:]) == [cost(op, [(10,)], protocol, parties)["rounds"] for op in ops[4:]]
    assert all(sign_rounds <= rounds <= sign_rounds + 1 for rounds in per_op[4:])


def _relu_stats(size, party):
    x = party.share(only(np.linspace(-2, 2, size), party, 0), src=0)
    party.reset_stats()
    x.relu()
    return party.stats


def test_where_selects_and_checks_its_condition():
    x, y = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.5, 4.0])

    def program(party):
        a = party.share(only(x, party, 0), src=0)
        b = party.share(only(y, party, 1), src=1)
        return smpc.where(a < b, a, b).reveal(), smpc.where(a > b, a, 0.0).reveal()

    low, high = smpc.run(program, parties=2)[0]
    assert np.array_equal(low, np.minimum(x, y)) and np.array_equal(high, np.where(x > y, x, 0.0))
    with pytest.raises(smpc.PartyFailedError, match="needs a shared condition"):
        smpc.run(lambda p: smpc.where(True, 1, 2), parties=2)
    with pytest.raises(smpc.PartyFailedError, match="integer tensor"):
        smpc.run(lambda p: smpc.where(p.share(only(np.ones(2), p, 0), src=0), 1, 2), parties=2)


@pytest.mark.parametrize("protocol, parties", one_per_protocol_pairs("comparison"))
def test_incompatible_shapes_and_mixed_protocols_are_refused(protocol, parties):
    def program(party):
        return party.share(only(np.ones(3), party, 0), src=0) < party.share(only(np.ones(2), party, 0), src=0)

    with pytest.raises(smpc.PartyFailedError, match="shape"):
        smpc.run(program, parties=parties, protocol=protocol)


@pytest.mark.parametrize("parties", [2, 3])
def test_binary_msb_and_b2a(parties):
    values = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1, 12345], dtype=np.uint64)

    def program(party):
        shared = party.share(only(values.view(np.int64), party, 0), src=0)
        bit = conversions.msb(party, shared.share)
        arithmetic = type(shared)(party, conversions.b2a(party, bit), 0)
        return bit.reveal(), arithmetic.reveal()

    for bits, arithmetic in smpc.run(program, parties=parties):
        assert np.array_equal(bits, values >> np.uint64(63))
        assert np.array_equal(arithmetic, (values >> np.uint64(63)).astype(np.int64))


@pytest.mark.parametrize("parties", [2, 3])
def test_packed_b2a_of_many_bits_in_one_round(parties):
    values = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1, 12345, 0xA5A5], dtype=np.uint64)
    positions = [0, 1, 2, 7, 15, 62, 63]

    def program(party):
        words = conversions.a2b(party, party.share(only(values.view(np.int64), party, 0), src=0).share)
        party.reset_stats()
        shares = conversions.b2a_packed(party, [words.bit(j) for j in positions])
        stats = party.stats
        return type(party.share(only(np.zeros(1, np.int64), party, 0), src=0))(party, shares, 0).reveal(), stats

    for arithmetic, stats in smpc.run(program, parties=parties):
        want = np.stack([(values >> np.uint64(j)) & np.uint64(1) for j in positions]).astype(np.int64)
        assert np.array_equal(arithmetic, want)
        assert stats["rounds"] == 1 and stats["bytes"] == (parties - 1) * frame((values.size,))  # one packed word

    with pytest.raises(ValueError, match="1 to 64 bits"):
        conversions.b2a_packed(None, [])


@pytest.mark.parametrize("protocol, parties", protocol_parties("binary", more_parties=5))
def test_to_binary_gives_the_twos_complement_words(protocol, parties):
    values = np.array([0, 1, -1, 2**63 - 1, -(2**63), 12345, -98765], dtype=np.int64)

    def program(party):
        binary = party.share(only(values, party, 0), src=0).to_binary()
        return binary.reveal(), (np.uint64(0xFF) ^ binary).reveal()

    for words, flipped in smpc.run(program, parties=parties, protocol=protocol):
        assert np.array_equal(words, values.view(np.uint64))
        assert np.array_equal(flipped, values.view(np.uint64) ^ np.uint64(0xFF))


@pytest.mark.parametrize("protocol, parties", protocol_parties("comparison", "functions"))
def test_large_sign_batches_run_in_bounded_pieces(protocol, parties, monkeypatch):
    # more than SIGN_BATCH compared elements run as consecutive batches (multiples of 64 elements):
    # same results, the sign bit's rounds once per batch, bytes and rounds as the cost model says
    monkeypatch.setattr(smpc.mpc.tensor_core, "SIGN_BATCH", 256)
    x = np.random.default_rng(1).normal(0, 4, (10, 100))
    operations = {"relu": lambda t: t.relu(), "less": lambda t: t < 0.5, "equal": lambda t: t == 0.5,
                  "exp": lambda t: t.exp()}

    def program(party):
        shared = party.share(only(x, party, 0), src=0)
        outcomes = {}
        for name, op in operations.items():
            party.reset_stats()
            result = op(shared)
            outcomes[name] = (party.stats["rounds"], party.stats["bytes_sent"], result.reveal())
        return outcomes

    results = smpc.run(program, parties=parties, protocol=protocol)
    grid, got = fixed(x), results[0]
    assert np.array_equal(got["relu"][2], np.maximum(grid, 0))
    assert np.array_equal(got["less"][2], grid < 0.5) and np.array_equal(got["equal"][2], grid == 0.5)
    assert np.all(np.abs(got["exp"][2] - np.exp(grid)) <= functions.ERRORS["exp"].allowed(np.exp(grid)))
    sign_rounds = cost(lambda t: t < 0, [(64,)], protocol, parties)["rounds"]  # 7 additive, 8 aby3
    # aby3: each batch after the first begins with a receive that continues the previous batch's last round
    merged = 0 if smpc.protocols()[protocol].rounds_add_up else 1
    batches = {"relu": 4, "less": 4, "equal": 8}  # 1000 elements: 3 x 256 + 232; 2000: 7 x 256 + 208
    for name, op in operations.items():
        rounds = max(r[name][0] for r in results)
        expected = cost(op, [x.shape], protocol, parties)
        assert max(r[name][1] for r in results) == expected["bytes"]
        assert rounds == expected["rounds"]
        if name in batches:
            per_batch = cost(op, [(64,)], protocol, parties)["rounds"] if name == "relu" else sign_rounds
            assert rounds == batches[name] * per_batch - (batches[name] - 1) * merged
