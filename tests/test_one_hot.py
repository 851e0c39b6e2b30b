"""Private one-hot encoding and table lookup (smpc.mpc.one_hot) on every protocol, against numpy."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import programs
from protocol_matrix import one_per_protocol, one_per_protocol_pairs, partial_opening_rounds, protocol_parties
import smpc
from smpc.mpc.cost import CostRun
from conftest import frame, only
from smpc.mpc.aby3 import one_hot as aby3_one_hot
from smpc.mpc.correlated import requests as dealer_requests
from smpc.mpc.one_hot import lookup, lookups, width_bits
from smpc.ring.lookup import rotate_rows, rotated_dot

SETUPS = protocol_parties("one_hot", more_parties=5)


def encode(ids, size, protocol, parties, table=None):
    """Party 0 shares ``ids``; every party's revealed one-hot (and lookup of party 1's ``table``)."""

    def program(party):
        shared = party.share(only(ids, party, 0), src=0)
        party.reset_stats()
        encoded = shared.one_hot(size)
        stats = party.stats
        looked_up = None
        if table is not None:
            last = party.world_size - 1  # the table's owner
            looked_up = (encoded @ party.share(only(table, party, last), src=last)).reveal()
        return encoded.reveal(), stats, looked_up

    return smpc.run(program, parties=parties, protocol=protocol)


@pytest.mark.parametrize("protocol, parties", SETUPS)
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_one_hot_matches_numpy(protocol, parties, data):
    size = data.draw(st.integers(1, 70))
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    ids = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, size - 1)))
    for encoded, _, _ in encode(ids, size, protocol, parties):
        assert encoded.dtype == np.int64 and encoded.shape == ids.shape + (size,)
        np.testing.assert_array_equal(encoded, np.eye(size, dtype=np.int64)[ids])


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_lookup_is_exact_fixed_point(protocol, parties):
    rng = np.random.default_rng(3)
    ids, table = rng.integers(0, 50, size=(2, 7)), rng.normal(size=(50, 4))
    for _, _, looked_up in encode(ids, 50, protocol, parties, table):
        np.testing.assert_allclose(looked_up, table[ids], atol=2.0**-17)  # the table's encoding only


@pytest.mark.parametrize("protocol, parties", SETUPS)
def test_one_round_and_the_bytes_of_one_opening(protocol, parties):
    ids = np.arange(12).reshape(3, 4) % 10
    run = CostRun(protocol, parties)
    run.tensor(ids.shape, integer=True).one_hot(10)
    theory = run.result()
    assert theory["rounds"] <= 1
    for rank, (_, stats, _) in enumerate(encode(ids, 10, protocol, parties)):
        assert stats["rounds"] == theory["rounds"] and stats["bytes"] == theory["bytes_per_party"][rank]


@pytest.mark.parametrize("parties", [2, 3])
def test_additive_one_hot_offline_bytes(parties):
    # online every party opens its n masked shares to every other; offline each asks, the last gets the rows
    ids = np.arange(12).reshape(3, 4) % 10
    for rank, (_, stats, _) in enumerate(encode(ids, 10, "additive", parties)):
        assert stats["bytes"] == (parties - 1) * frame((12,))
        request = frame((3,))  # [kind, count, bits]
        assert stats["offline_bytes_sent"] == request
        assert stats["offline_bytes_received"] == (frame((12, 16)) if rank == parties - 1 else 0)


def test_aby3_one_hot_offline_bytes():
    # party 0 sends party 1 12 x 16 words, then parties 1 and 2 swap 12 x 16 words
    ids = np.arange(12).reshape(3, 4) % 10
    for _, stats, _ in encode(ids, 10, "aby3", 3):
        assert stats["bytes"] == frame((12,))
        assert stats["offline_bytes_sent"] == frame((12, 16))


def test_aby3_one_hot_streams_its_offline_messages_in_chunks(monkeypatch):
    # 5 rows of 16 words per message: the 12 rows go as chunks of 5, 5 and 2, and the result is unchanged
    monkeypatch.setattr(aby3_one_hot, "CHUNK_WORDS", 5 * 16 + 3)
    ids = (np.arange(12) * 7 % 10).reshape(3, 4)
    for encoded, stats, _ in encode(ids, 10, "aby3", 3):
        np.testing.assert_array_equal(encoded, np.eye(10, dtype=np.int64)[ids])
        assert stats["bytes"] == frame((12,))
        assert stats["offline_bytes_sent"] == 2 * frame((5, 16)) + frame((2, 16))


@pytest.mark.parametrize("protocol, parties", protocol_parties("one_hot"))
def test_the_random_offsets_are_uniform_and_their_rows_one_hot(protocol, parties):
    count, bits = 8192, 4

    def program(party):
        any_tensor = party.share(only(np.zeros(1, np.int64), party, 0), src=0)
        offsets, rows = any_tensor._random_one_hot(count, bits)
        return offsets.reveal(), rows().reveal()

    offsets, rows = smpc.run(program, parties=parties, protocol=protocol)[0]
    low = offsets.view(np.uint64) & np.uint64(15)
    np.testing.assert_array_equal(rows, np.eye(16, dtype=np.int64)[low.astype(np.int64)])
    counts = np.bincount(low.astype(np.int64), minlength=16)
    assert np.all(np.abs(counts - count / 16) < 6 * np.sqrt(count / 16))  # uniform mod 16: 6 sigma
    assert len(np.unique(offsets)) > count - 4  # and over the whole ring


@pytest.mark.parametrize("setup", one_per_protocol("one_hot", transport="tcp"))
def test_tcp_matches_local(setup):
    ids, table = np.array([[3, 0, 9], [9, 9, 1]]), np.linspace(-2, 2, 40).reshape(10, 4)
    program = functools.partial(programs.one_hot_and_lookup, ids, 10, table)
    for encoded, looked_up in setup.run(program):
        np.testing.assert_array_equal(encoded, np.eye(10, dtype=np.int64)[ids])
        np.testing.assert_allclose(looked_up, table[ids], atol=2.0**-17)


def test_bad_input():
    def fixed_point(party):
        return party.share(only(np.ones(3), party, 0), src=0).one_hot(4)

    with pytest.raises(smpc.PartyFailedError, match="need a shared integer tensor"):
        smpc.run(fixed_point, parties=2)
    for size in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="size must be a positive integer"):
            width_bits(size)
    with pytest.raises(ValueError, match="exceeds the limit"):
        width_bits((1 << 24) + 1)

    def paillier(party):
        return party.share(only(np.ones(3, np.int64), party, 0), src=0).one_hot(4)

    with pytest.raises(smpc.PartyFailedError, match="random one-hot rows"):
        smpc.run(paillier, parties=2, dealer="paillier")


def test_dealer_refuses_a_malformed_one_hot_request():
    code = dealer_requests.OneHotRequest.code
    for values in ([code, 4, 25], [code, -1, 3], [code, 4]):
        with pytest.raises(smpc.ProtocolError, match="malformed one-hot request"):
            dealer_requests.decode(np.array(values, dtype=np.int64))
    assert dealer_requests.decode(np.array([code, 12, 4])).describe() == "random one-hot rows (12 of 2^4)"


@pytest.mark.parametrize("protocol, parties", one_per_protocol_pairs("one_hot"))
def test_several_lookups_share_one_opening(protocol, parties):
    rng = np.random.default_rng(5)
    first, second = rng.integers(0, 5, size=(3, 2)), rng.integers(0, 40, size=7)
    small, large = rng.integers(-9, 9, size=(5, 2, 3)), rng.normal(size=(40,))

    def program(party):
        a = party.share(only(first, party, 0), src=0)
        b = party.share(only(second, party, party.world_size - 1), src=party.world_size - 1)
        party.reset_stats()
        got = lookups([a, b], [small, large])
        rounds = party.stats["rounds"]
        return [t.reveal() for t in got], rounds

    for (got_small, got_large), rounds in smpc.run(program, parties=parties, protocol=protocol):
        assert rounds == partial_opening_rounds(protocol, parties)
        np.testing.assert_array_equal(got_small, small[first])
        np.testing.assert_allclose(got_large, large[second], atol=2.0**-17)


@settings(max_examples=25, deadline=None)
@given(count=st.integers(0, 9), bits=st.integers(0, 6), seed=st.integers(0, 2**32 - 1))
def test_ring_kernels_match_numpy(count, bits, seed):
    rng = np.random.default_rng(seed)
    length = 1 << bits
    rows = rng.integers(0, 2**64, size=(count, length), dtype=np.uint64)
    shifts = rng.integers(0, 2**64, size=count, dtype=np.uint64)
    table = rng.integers(0, 2**64, size=(max(length - 1, 1), 3), dtype=np.uint64)
    rotated = np.array([np.roll(row, int(s % length)) for row, s in zip(rows, shifts)], np.uint64)
    rotated = rotated.reshape(count, length)
    np.testing.assert_array_equal(rotate_rows(rows, shifts), rotated)
    padded = np.zeros((length, 3), np.uint64)
    padded[: len(table)] = table[:length]
    with np.errstate(over="ignore"):
        want = rotated @ padded if count else np.zeros((0, 3), np.uint64)
    np.testing.assert_array_equal(rotated_dot(rows, shifts, table[:length]), want)


def test_kernels_and_lookups_refuse_bad_shapes():
    with pytest.raises(ValueError, match="power-of-two|2\\^m"):
        rotate_rows(np.zeros((2, 3), np.uint64), np.zeros(2, np.uint64))
    with pytest.raises(ValueError, match="do not fit"):
        rotated_dot(np.zeros((2, 4), np.uint64), np.zeros(2, np.uint64), np.zeros((5, 1), np.uint64))

    def empty_table(party):
        return lookup(party.share(only(np.zeros(2, np.int64), party, 0), src=0), np.zeros((0, 2)))

    with pytest.raises(smpc.PartyFailedError, match="at least one entry"):
        smpc.run(empty_table, parties=2)
