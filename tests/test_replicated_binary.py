"""ABY3 replicated binary sharing and A2B/B2A against numpy: exact values, rounds and bytes, TCP, bad input."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import smpc
from conftest import TCP_PHASES, only
from smpc.mpc.aby3.tensor import ReplicatedTensor
from smpc.mpc.aby3.binary import ReplicatedBinaryTensor, and_many, share_binary, share_known_by_two
from smpc.mpc.circuits.adders import add, carry_save
from smpc.mpc.aby3.conversions import a2b, b2a, msb

EDGES = [0, 1, 2**64 - 1, 2**63, 2**63 - 1, 2**62, 0x5555555555555555]


def frame(shape):
    """Bytes on the wire for one uint64 array: 20-byte header, 8 per dimension, the payload."""
    return 20 + 8 * len(shape) + 8 * int(np.prod(shape))


def words(shape):
    return hnp.arrays(np.uint64, shape, elements=st.one_of(st.sampled_from(EDGES), st.integers(0, 2**64 - 1)))


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def arithmetic_bit(party, components) -> np.ndarray:
    """Reveal replicated arithmetic components as int64."""
    return ReplicatedTensor(party, components, 0).reveal()


# --- programs at module level (the TCP test runs them in spawned processes) ----------------
def binary_suite(x, y, mask, src_x, src_y, holders, party):
    a = share_binary(party, only(x, party, src_x), src_x)
    b = share_binary(party, only(y, party, src_y), src_y, shape=y.shape)
    c = share_known_by_two(party, x if party.rank in holders else None, holders, x.shape)
    many = and_many(party, [(a, b), (b, c), (a, a)])
    return {
        "xor": (a ^ b).reveal(), "xor_public": (a ^ mask).reveal(), "rxor": (mask ^ a).reveal(),
        "and": (a & b).reveal(), "and_public": (a & mask).reveal(), "rand": (mask & b).reveal(),
        "not": (~a).reveal(), "shifts": ((a << 7) ^ (b >> 63)).reveal(), "bit": a.bit(63).reveal(),
        "known": c.reveal(), "to": b.reveal(to=src_x), "many": [t.reveal() for t in many],
    }


def conversion_suite(values, src, party):
    x = party.share(only(values.view(np.int64), party, src), src=src)
    binary = a2b(party, x.components)
    sign = msb(party, x.components)
    return {"a2b": binary.reveal(), "msb": sign.reveal(), "b2a": arithmetic_bit(party, b2a(party, sign)),
            "b2a_low": arithmetic_bit(party, b2a(party, binary))}


def check_binary(result, x, y, mask, src_x, rank):
    assert result["xor"].dtype == np.uint64
    expected = {"xor": x ^ y, "xor_public": x ^ mask, "rxor": x ^ mask, "and": x & y, "and_public": x & mask,
                "rand": y & mask, "not": ~x, "shifts": (x << np.uint64(7)) ^ (y >> np.uint64(63)),
                "bit": x >> np.uint64(63), "known": x}
    for name, want in expected.items():
        assert np.array_equal(result[name], want), name
    assert (result["to"] is None) == (rank != src_x)
    if rank == src_x:
        assert np.array_equal(result["to"], y)
    for got, want in zip(result["many"], [x & y, y & x, x]):
        assert np.array_equal(got, want)


def check_conversions(result, values):
    top = values >> np.uint64(63)
    assert np.array_equal(result["a2b"], values)
    assert np.array_equal(result["msb"], top)
    assert result["b2a"].dtype == np.int64 and np.array_equal(result["b2a"], top.astype(np.int64))
    assert np.array_equal(result["b2a_low"], (values & np.uint64(1)).astype(np.int64))


# --- values -----------------------------------------------------------------------------------
@given(data=st.data())
def test_binary_operations_match_numpy(data):
    shape = data.draw(shapes)
    x, y = data.draw(words(shape)), data.draw(words(shape))
    mask = data.draw(words(shape[-1:] if shape else ()))  # public, broadcast
    src_x, src_y = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
    holders = tuple(data.draw(st.sampled_from([(0, 1), (1, 2), (2, 0)])))
    program = functools.partial(binary_suite, x, y, mask, src_x, src_y, holders)
    for rank, result in enumerate(smpc.run(program, parties=3, protocol="aby3")):
        check_binary(result, x, y, mask, src_x, rank)


@given(data=st.data())
def test_conversions_are_exact_on_the_whole_ring(data):
    values = data.draw(words(data.draw(shapes)))
    src = data.draw(st.integers(0, 2))
    for result in smpc.run(functools.partial(conversion_suite, values, src), parties=3, protocol="aby3"):
        check_conversions(result, values)


def test_conversions_on_many_values():
    rng = np.random.default_rng(11)
    values = np.concatenate([np.array(EDGES, dtype=np.uint64), rng.integers(0, 2**64, size=20_000, dtype=np.uint64),
                             rng.integers(-3, 3, size=100).astype(np.uint64)])
    for result in smpc.run(functools.partial(conversion_suite, values, 1), parties=3, protocol="aby3"):
        check_conversions(result, values)


def test_and_broadcasts_and_int_public_operands():
    x = np.array([[1, 2**63 + 5], [7, 2**64 - 1]], dtype=np.uint64)

    def program(party):
        a = share_binary(party, only(x, party, 0), 0)
        b = share_binary(party, only(x[0], party, 2), 2)  # shape (2,), broadcast against (2, 2)
        return (a & b).reveal(), (a ^ -1).reveal(), (a & True).reveal(), (a ^ np.int32(3)).reveal()

    for both, flipped, low, xored in smpc.run(program, parties=3, protocol="aby3"):
        assert np.array_equal(both, x & x[0]) and np.array_equal(flipped, ~x)
        assert np.array_equal(low, x & np.uint64(1)) and np.array_equal(xored, x ^ np.uint64(3))


def test_protocol_agnostic_adder_with_a_carry_save_level():
    # the other variant: three addends known by two parties each, one carry-save level, Kogge-Stone
    rng = np.random.default_rng(5)
    values = np.concatenate([np.array(EDGES, dtype=np.uint64), rng.integers(0, 2**64, size=500, dtype=np.uint64)])
    n = values.size

    def program(party):
        x = party.share(only(values, party, 0), src=0)
        addends = []
        for j in range(3):  # component j is held by parties j and j-1
            holders, mine = (j, (j - 1) % 3), None
            if party.rank == j:
                mine = x.components[0]
            elif party.rank == (j - 1) % 3:
                mine = x.components[1]
            addends.append(share_known_by_two(party, mine, holders, values.shape))
        party.reset_stats()
        many = functools.partial(and_many, party)
        total = add(many, *carry_save(many, addends))
        stats = party.stats
        return total.reveal(), stats

    for total, stats in smpc.run(program, parties=3, protocol="aby3"):
        assert np.array_equal(total, values)
        # carry-save 1, generate 1, six levels (the last without P): 8 rounds, 13 n words
        assert stats["rounds"] == 8
        assert stats["bytes_sent"] == 2 * frame((n,)) + 5 * frame((2 * n,)) + frame((n,))


def test_b2a_uses_bit_zero_of_each_word():
    bits = np.array([0, 1, 2, 3, 2**64 - 1, 2**63], dtype=np.uint64)

    def program(party):
        shared = share_binary(party, only(bits, party, 1), 1)
        return arithmetic_bit(party, b2a(party, shared))

    for result in smpc.run(program, parties=3, protocol="aby3"):
        assert np.array_equal(result, (bits & np.uint64(1)).astype(np.int64))


# --- costs ------------------------------------------------------------------------------------
def test_binary_costs_match_theory():
    shape, other = (4, 5), (3,)

    def program(party):
        counts = {}
        x = np.arange(20, dtype=np.uint64).reshape(shape)
        party.reset_stats()
        a = share_binary(party, only(x, party, 1), 1)
        counts["share"] = party.stats
        party.reset_stats()
        b = share_binary(party, only(x, party, 2), 2, shape=shape)
        counts["share_with_shape"] = party.stats
        party.reset_stats()
        share_known_by_two(party, x if party.rank in (0, 2) else None, (0, 2), shape)
        counts["known_by_two"] = party.stats
        c = share_binary(party, only(np.ones(other, np.uint64), party, 0), 0)
        operations = [("local", lambda: ((a ^ b) & 5, ~a, a << 3, a >> 2, a.bit(4), a ^ 9)),
                      ("and", lambda: a & b), ("and_many", lambda: and_many(party, [(a, b), (b, a), (c, c)])),
                      ("reveal", lambda: a.reveal()), ("reveal_to_0", lambda: a.reveal(to=0))]
        for name, operation in operations:
            party.reset_stats()
            operation()
            counts[name] = party.stats
        return counts

    n = 20
    out = smpc.launch(program, parties=3, protocol="aby3").results
    for rank, counts in enumerate(out):
        # share from 1: data to 2 (its successor), a shape header to 0 (its predecessor)
        share = {1: frame(shape) + frame((3,)), 2: 0, 0: 0}[rank]
        assert counts["share"]["bytes_sent"] == share and counts["share"]["rounds"] == (0 if rank == 1 else 1)
        assert counts["share_with_shape"]["bytes_sent"] == (frame(shape) if rank == 2 else 0)
        assert counts["share_with_shape"]["rounds"] == (1 if rank == 0 else 0)
        assert counts["known_by_two"]["bytes_sent"] == 0 and counts["known_by_two"]["messages_received"] == 0
        assert counts["local"]["bytes_sent"] == 0 and counts["local"]["messages_received"] == 0
        assert counts["and"]["rounds"] == 1 and counts["and"]["bytes_sent"] == frame((n,))
        assert counts["and_many"]["rounds"] == 1 and counts["and_many"]["messages_sent"] == 1
        assert counts["and_many"]["bytes_sent"] == frame((2 * n + 3,))
        assert counts["reveal"]["rounds"] == 1 and counts["reveal"]["bytes_sent"] == frame(shape)
        assert counts["reveal_to_0"]["bytes_sent"] == (frame(shape) if rank == 1 else 0)
        assert counts["reveal_to_0"]["rounds"] == (1 if rank == 0 else 0)


def _a2b_only(shape, party):
    x = party.share(only(np.ones(shape, np.int64), party, 0), src=0)
    party.reset_stats()
    a2b(party, x.components)


def _b2a_only(shape, party):
    x = party.share(only(np.ones(shape, np.int64), party, 0), src=0)
    bit = msb(party, x.components)
    party.reset_stats()
    b2a(party, bit)


@pytest.mark.parametrize("shape", [(), (1,), (7, 9)])
def test_conversion_costs_match_theory(shape):
    n = int(np.prod(shape))
    levels = 4 * frame((2 * n,)) + frame((n,))  # Kogge-Stone shifts 2, 4, 8, 16 (G and P), 32 (G)
    stats = smpc.launch(functools.partial(_a2b_only, shape), parties=3, protocol="aby3").stats
    # round 1: party 0 sends (U, M) to both others; parties 1 and 2 swap their two hints
    assert stats[0]["bytes_sent"] == 2 * frame((2, n)) + levels
    assert stats[0]["rounds"] == 5 and stats[0]["messages_sent"] == 7
    for party_stats in stats[1:]:
        assert party_stats["bytes_sent"] == frame((2, n)) + levels
        assert party_stats["rounds"] == 6 and party_stats["messages_sent"] == 6
    stats = smpc.launch(functools.partial(_b2a_only, shape), parties=3, protocol="aby3").stats
    assert stats[0]["bytes_sent"] == 2 * frame((n,)) and stats[0]["rounds"] == 0
    for party_stats in stats[1:]:
        assert party_stats["bytes_sent"] == frame((n,)) and party_stats["rounds"] == 1


# --- TCP --------------------------------------------------------------------------------------
def tcp_suite(x, y, party):
    return binary_suite(x, y, y[:1], 0, 2, (1, 2), party), conversion_suite(x, 1, party)


@settings(max_examples=2, phases=TCP_PHASES)
@given(data=st.data())
def test_tcp_matches_numpy(data):
    size = data.draw(st.integers(1, 6))
    x, y = data.draw(words((size,))), data.draw(words((size,)))
    out = smpc.run(functools.partial(tcp_suite, x, y), parties=3, protocol="aby3", transport="tcp")
    for rank, (binary, conversions) in enumerate(out):
        check_binary(binary, x, y, y[:1], 0, rank)
        check_conversions(conversions, x)


# --- bad input --------------------------------------------------------------------------------
def test_operands_from_another_run_are_refused():
    kept = smpc.run(lambda p: share_binary(p, only(np.ones(2, np.uint64), p, 0), 0), parties=3, protocol="aby3")

    def program(party, operation):
        mine = share_binary(party, only(np.ones(2, np.uint64), party, 0), 0)
        return operation(mine, kept[party.rank])

    for operation in (lambda a, b: a ^ b, lambda a, b: a & b, lambda a, b: and_many(a.party, [(a, b)])):
        with pytest.raises(smpc.PartyFailedError, match="ProtocolError: operands belong to different parties"):
            smpc.run(functools.partial(program, operation=operation), parties=3, protocol="aby3", timeout=10)


def test_bad_operands_are_refused():
    def program(party, operation):
        mine = share_binary(party, only(np.ones(2, np.uint64), party, 0), 0)
        return operation(party, mine)

    cases = [
        (lambda p, a: a ^ 1.5, "TypeError"),
        (lambda p, a: a & np.ones(2), "TypeError"),
        (lambda p, a: a ^ p.share(only(np.ones(2, np.int64), p, 0), src=0), "ProtocolError: cannot combine"),
        (lambda p, a: a << 64, "ValueError: shift must be an integer in"),
        (lambda p, a: a.bit(-1), "ValueError: shift must be an integer in"),
        (lambda p, a: a.reveal(to=3), "ValueError: reveal target 3"),
        (lambda p, a: bool(a), "TypeError"),
        (lambda p, a: share_known_by_two(p, None, (1, 1), (2,)), "ValueError: holders must be"),
        (lambda p, a: and_many(p, [(a, np.ones(2, np.uint64))]), "TypeError: and_many takes pairs"),
        (lambda p, a: b2a(p, np.ones(2, np.uint64)), "TypeError: b2a takes a ReplicatedBinaryTensor"),
        (lambda p, a: a2b(p, (np.ones(2), np.ones(2))), "TypeError: replicated components must be"),
    ]
    for operation, message in cases:
        with pytest.raises(smpc.PartyFailedError, match=message):
            smpc.run(functools.partial(program, operation=operation), parties=3, protocol="aby3", timeout=10)


def test_share_binary_refuses_misplaced_data():
    with pytest.raises(smpc.PartyFailedError, match="only the source"):
        smpc.run(lambda p: share_binary(p, np.ones(2, np.uint64), 0), parties=3, protocol="aby3", timeout=10)
    with pytest.raises(smpc.PartyFailedError, match="must pass the words"):
        smpc.run(lambda p: share_binary(p, None, 0), parties=3, protocol="aby3", timeout=10)
    with pytest.raises(smpc.PartyFailedError, match="src must be a party rank"):
        smpc.run(lambda p: share_binary(p, None, 3), parties=3, protocol="aby3", timeout=10)
    with pytest.raises(smpc.PartyFailedError, match="TypeError"):
        smpc.run(lambda p: share_binary(p, only(np.ones(2), p, 0), 0), parties=3, protocol="aby3", timeout=10)


def test_a_shared_binary_value_is_a_tensor_of_words():
    def program(party):
        shared = share_binary(party, only(np.zeros((2, 3), np.uint64), party, 0), 0)
        return shared.shape, shared.ndim, shared.size, repr(shared), isinstance(shared, ReplicatedBinaryTensor)

    for rank, (shape, ndim, size, text, is_tensor) in enumerate(smpc.run(program, parties=3, protocol="aby3")):
        assert (shape, ndim, size, is_tensor) == ((2, 3), 2, 6, True)
        assert text == f"ReplicatedBinaryTensor(shape=(2, 3), party={rank})"
