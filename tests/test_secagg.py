"""Secure aggregation (Bonawitz et al. 2017, SecAgg+ graph of Bell et al. 2020) and its Shamir sharing."""

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import TCP_PHASES
from smpc.exceptions import PartyFailedError
from smpc.fl import secagg_messages as msg
from smpc.fl import shamir
from smpc.fl.secagg import SecAggProtocol, _raise_failure, run_secure_aggregation, secure_aggregate
from smpc.fl.secagg_client import run_client
from smpc.fl.secagg_config import make_config
from smpc.fl.secagg_crypto import (
    CIPHERTEXT_BYTES,
    ClientKeys,
    KeyAgreementError,
    ShareDecryptionError,
    decrypt_shares,
    encrypt_shares,
    mask_seed,
    private_from_int,
    private_to_int,
    share_key,
)
from smpc.fl.secagg_errors import MalformedMessageError, SecAggError, TooFewSurvivorsError
from smpc.fl.secagg_graph import graph_degree, is_connected, neighbour_graph
from smpc.fl.secagg_identity import Enrolment, enrol
from smpc.fl.secagg_quantize import capacity, choose_frac_bits, dequantize, error_bound, quantize
from smpc.fl.secagg_server import SecAggServer
from smpc.net.launch import launch
from smpc.net.party import PartyOptions
from smpc.net.wire import FIXED_HEADER_BYTES


def expected_sum(updates, before, clip):
    kept = [np.clip(u, -clip, clip) for c, u in enumerate(updates) if c not in before]
    return np.sum(kept, axis=0)


def assert_within(result, updates, before, clip=16.0):
    reference = expected_sum(updates, set(before), clip)
    slack = len(updates) ** 2 * clip * 2.0**-52  # float64 rounding of the numpy reference itself
    worst = float(np.max(np.abs(result.total - reference))) if reference.size else 0.0
    assert result.total.shape == reference.shape
    assert worst <= result.error_bound + slack, (worst, result.error_bound)


def zeros(count: int) -> bytes:
    return bytes(count)


SIGNING_KEYS, ENROLMENT = enrol(12)


def enrolled(config):
    """``config`` with the enrolment of the first n of the test clients' keys."""
    return dataclasses.replace(config, enrolment=Enrolment(ENROLMENT.keys[: config.n_clients]))


def run_with(config, updates, server=None, client_configs=None, timeout=10.0, client=None):
    """Launch server and clients on threads, with an optional server object, per-client configs and client
    program (the test clients' keys and enrolment filled in where a config has none)."""
    config = config if config.enrolment else enrolled(config)
    server = server or SecAggServer(config)
    client_configs = {c: (cc if cc.enrolment else enrolled(cc)) for c, cc in (client_configs or {}).items()}
    if server.config.enrolment is None:
        server.config = enrolled(server.config)
    client = client or run_client

    def program(party):
        if party.rank == 0:
            return server.run(party)
        c = party.rank - 1
        client(party, c, client_configs.get(c, config), updates[c], SIGNING_KEYS[c])
        return None

    return launch(program, config.n_clients + 1, SecAggProtocol(), "local", PartyOptions(timeout=timeout))


# --- Shamir ------------------------------------------------------------------------------------
@given(secret=st.integers(0, shamir.PRIME - 1), n=st.integers(1, 7), data=st.data())
def test_shamir_any_t_shares_reconstruct_and_t_minus_1_do_not(secret, n, data):
    t = data.draw(st.integers(1, n))
    xs = sorted(data.draw(st.sets(st.integers(1, 10**6), min_size=n, max_size=n)))
    shares = dict(zip(xs, shamir.split(secret, t, xs)))
    for subset in itertools.combinations(xs, t):
        assert shamir.reconstruct({x: shares[x] for x in subset}, t) == secret
    assert shamir.reconstruct(shares, t) == secret  # more than t: the first t are used
    if t > 1:
        fewer = {x: shares[x] for x in xs[: t - 1]}
        with pytest.raises(shamir.ShamirError, match=f"needs {t} shares, got {t - 1}"):
            shamir.reconstruct(fewer, t)
        # interpolating t-1 shares gives a value unrelated to the secret (equal with probability 1/p)
        assert shamir.interpolate_at_zero(sorted(fewer.items())) != secret


def test_shamir_t_minus_1_shares_fit_every_secret():
    """t-1 shares carry no information: for any other secret, some third share completes them to it."""
    xs = [1, 2, 3]
    shares = shamir.split(5, 3, xs)
    for other in (0, 7, shamir.PRIME - 1):
        # the degree-2 polynomial g through (0, other), (1, shares[0]), (2, shares[1]), evaluated at 3
        shifted = [((x - 3) % shamir.PRIME, y) for x, y in [(0, other), (1, shares[0]), (2, shares[1])]]
        third = shamir.interpolate_at_zero(shifted)
        assert shamir.reconstruct({1: shares[0], 2: shares[1], 3: third}, 3) == other


def test_shamir_rejects_bad_arguments_and_encodings():
    with pytest.raises(shamir.ShamirError, match="threshold"):
        shamir.split(1, 0, [1, 2])
    with pytest.raises(shamir.ShamirError, match="threshold"):
        shamir.split(1, 3, [1, 2])
    with pytest.raises(shamir.ShamirError, match="distinct"):
        shamir.split(1, 2, [1, 1])
    with pytest.raises(shamir.ShamirError, match="share points"):
        shamir.split(1, 1, [0])
    with pytest.raises(shamir.ShamirError, match="secret"):
        shamir.split(shamir.PRIME, 1, [1])
    with pytest.raises(shamir.ShamirError, match="share value"):
        shamir.reconstruct({1: shamir.PRIME}, 1)
    with pytest.raises(shamir.ShamirError, match="66 bytes"):
        shamir.decode_share(bytes(65))
    with pytest.raises(shamir.ShamirError, match="not a field element"):
        shamir.decode_share(shamir.PRIME.to_bytes(66, "big"))
    value = shamir.random_element()
    assert shamir.decode_share(shamir.encode_share(value)) == value


def test_shamir_random_element_rejects_the_one_non_element():
    draws = iter([b"\xff" * 66, bytes(65) + b"\x07"])  # first masks to 2^521 - 1 = PRIME: redrawn
    assert shamir.random_element(lambda n: next(draws)) == 7


# --- quantisation ------------------------------------------------------------------------------
@given(n=st.integers(1, 1000), clip=st.floats(1e-6, 1e4), ring_bits=st.sampled_from([32, 64]))
def test_fraction_bits_are_the_most_that_cannot_overflow(n, clip, ring_bits):
    f = choose_frac_bits(n, clip, ring_bits)
    assert n * round(clip * 2.0**f) <= capacity(ring_bits) < n * round(clip * 2.0 ** (f + 1))


@pytest.mark.parametrize("ring_bits", [32, 64])
@given(n=st.integers(1, 50), data=st.data())
def test_quantised_sum_at_the_clip_extremes_decodes_within_the_bound(ring_bits, n, data):
    clip = data.draw(st.sampled_from([1.0, 16.0, 1000.0]))
    f = choose_frac_bits(n, clip, ring_bits)
    values = data.draw(hnp.arrays(np.float64, (n, 8), elements=st.sampled_from([-clip, clip, 0.3 * clip, 0.0])))
    dtype = np.uint32 if ring_bits == 32 else np.uint64
    total = np.zeros(8, dtype)
    for row in values:
        total += quantize(row, clip, f, ring_bits)
    assert np.max(np.abs(dequantize(total, f, ring_bits) - values.sum(axis=0))) <= error_bound(n, f) + n * clip * 1e-15


def test_quantisation_parameters_are_checked():
    with pytest.raises(ValueError, match="clip"):
        choose_frac_bits(3, 0.0)
    with pytest.raises(ValueError, match="ring_bits"):
        choose_frac_bits(3, 1.0, 16)
    with pytest.raises(ValueError, match="overflow"):
        choose_frac_bits(10, 2.0**31)


# --- the neighbour graph -----------------------------------------------------------------------
@given(n=st.integers(2, 30), data=st.data())
def test_neighbour_graph_is_symmetric_regular_and_k_connected(n, data):
    k = data.draw(st.none() | st.integers(min(2, n - 1), n - 1))
    degree = graph_degree(n, k)
    graph = neighbour_graph(n, k)
    adjacency = dict(enumerate(graph))
    for u, neighbours in enumerate(graph):
        assert len(neighbours) == degree and u not in neighbours
        assert all(u in graph[v] for v in neighbours)
    removed = data.draw(st.sets(st.integers(0, n - 1), max_size=min(degree - 1, n - 1)))
    assert is_connected([u for u in range(n) if u not in removed], adjacency)


def test_graph_degree_rounds_odd_degree_up_for_odd_client_counts():
    assert graph_degree(9, 3) == 4 and graph_degree(10, 3) == 3 and graph_degree(7) == 6
    with pytest.raises(ValueError, match="at least 2 clients"):
        graph_degree(1)
    for bad in (5, 1, 0):
        with pytest.raises(ValueError, match=r"neighbours must be an integer in 2\.\.4"):
            graph_degree(5, bad)


# --- keys and share encryption ----------------------------------------------------------------
def test_pairwise_keys_agree_shares_round_trip_and_tampering_is_caught():
    a, b = ClientKeys.generate(), ClientKeys.generate()
    pub_a, pub_b = a.public_bytes(), b.public_bytes()
    assert mask_seed(a.masking, pub_b[32:], 0, 1) == mask_seed(b.masking, pub_a[32:], 1, 0)
    assert mask_seed(a.masking, pub_b[32:], 0, 1) != mask_seed(a.masking, pub_b[32:], 0, 2)
    key = share_key(a.encryption, pub_b[:32], 0, 1)
    assert key == share_key(b.encryption, pub_a[:32], 1, 0)
    blob = encrypt_shares(key, 0, 1, 12345, shamir.PRIME - 1)
    assert len(blob) == CIPHERTEXT_BYTES
    s_share, b_share = decrypt_shares(key, 0, 1, blob)
    assert shamir.decode_share(s_share) == 12345 and shamir.decode_share(b_share) == shamir.PRIME - 1
    tampered = bytearray(blob)
    tampered[20] ^= 1
    with pytest.raises(ShareDecryptionError, match="authentication"):
        decrypt_shares(key, 0, 1, bytes(tampered))
    with pytest.raises(ShareDecryptionError, match="another pair"):
        decrypt_shares(key, 1, 0, blob)
    with pytest.raises(KeyAgreementError, match="low-order"):
        mask_seed(a.masking, bytes(32), 0, 1)
    assert private_to_int(private_from_int(private_to_int(a.masking))) == private_to_int(a.masking)


# --- secure aggregation: sums and dropouts ------------------------------------------------------
@given(data=st.data())
def test_sum_matches_numpy_for_every_drop_pattern(data):
    n = data.draw(st.integers(2, 7))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5))
    clip = data.draw(st.sampled_from([1.0, 16.0, 300.0]))
    wide = st.floats(-1.5 * clip, 1.5 * clip, allow_nan=False)  # some values get clipped
    updates = [data.draw(hnp.arrays(np.float64, shape, elements=wide)) for _ in range(n)]
    t = data.draw(st.integers(n // 2 + 1, n))
    roles = data.draw(st.lists(st.sampled_from(["stay", "before", "after"]), min_size=n, max_size=n))
    before = tuple(c for c in range(n) if roles[c] == "before")
    after = tuple(c for c in range(n) if roles[c] == "after")
    if n - len(before) - len(after) >= t:
        result = secure_aggregate(updates, threshold=t, drop_before=before, drop_after=after, clip=clip,
                                  return_stats=True)
        assert_within(result, updates, before, clip)
        assert result.dropped_before == before and result.dropped_after == after
    else:
        with pytest.raises(TooFewSurvivorsError, match=f"threshold {t}"):
            secure_aggregate(updates, threshold=t, drop_before=before, drop_after=after, clip=clip)


@pytest.mark.parametrize("before, after", [((), ()), ((1,), ()), ((), (2, 4)), ((0,), (5,)), ((1, 3), (0,))])
def test_each_drop_pattern_sums_the_clients_that_sent_updates(before, after):
    rng = np.random.default_rng(7)
    updates = [rng.normal(size=(4, 5)) for _ in range(7)]
    result = secure_aggregate(updates, threshold=4, drop_before=before, drop_after=after, return_stats=True)
    assert_within(result, updates, before)
    assert result.included == tuple(c for c in range(7) if c not in before)
    assert result.dropped_before == before and result.dropped_after == after
    plain = secure_aggregate(updates, 4, before, after)
    assert np.max(np.abs(plain - result.total)) <= 2 * result.error_bound


def test_fewer_than_t_survivors_raise_naming_the_counts():
    updates = [np.ones(3)] * 5
    with pytest.raises(TooFewSurvivorsError, match="only 2 clients sent masked updates, fewer than the threshold 3"):
        secure_aggregate(updates, threshold=3, drop_before=(0, 1, 2))
    with pytest.raises(TooFewSurvivorsError, match=r"only 2 clients confirmed the survivor list, fewer than the "
                                                   r"threshold 3 \(5 clients\); missing clients: \[0, 1, 2\]") as info:
        secure_aggregate(updates, threshold=3, drop_before=(0,), drop_after=(1, 2))
    assert info.value.available == 2 and info.value.threshold == 3 and info.value.stage == "consistency check"


def test_ring_64_and_explicit_fraction_bits():
    rng = np.random.default_rng(3)
    updates = [rng.normal(size=50) for _ in range(4)]
    wide = secure_aggregate(updates, threshold=3, drop_after=(1,), ring_bits=64, return_stats=True)
    assert_within(wide, updates, ())
    assert wide.error_bound < 1e-13  # 4 * 2^-49: f = 48 keeps the integer sum below 2^53
    coarse = secure_aggregate(updates, threshold=3, frac_bits=8, return_stats=True)
    assert coarse.error_bound == 4 * 2.0**-9
    assert_within(coarse, updates, ())


def test_clipped_elements_are_counted_and_clipped():
    updates = [np.array([100.0, 0.5]), np.array([-100.0, 0.25])]
    result = secure_aggregate(updates, threshold=2, clip=1.0, return_stats=True)
    assert result.clipped_elements == 2
    assert np.max(np.abs(result.total - [0.0, 0.75])) <= result.error_bound


# --- SecAgg+ sparse graph ----------------------------------------------------------------------
@pytest.mark.parametrize("n, k, t, before, after", [(12, 4, 3, (2,), (7,)), (10, 3, 3, (), (4,)), (9, 3, 3, (5,), ())])
def test_sparse_graph_sums_with_dropouts(n, k, t, before, after):
    rng = np.random.default_rng(n)
    updates = [rng.uniform(-2, 2, size=33) for _ in range(n)]
    sparse = secure_aggregate(updates, threshold=t, drop_before=before, drop_after=after, neighbours=k,
                              return_stats=True)
    assert sparse.config.degree == graph_degree(n, k)
    assert_within(sparse, updates, before)
    complete = secure_aggregate(updates, threshold=n // 2 + 1, return_stats=True)
    # every message but the masked update shrinks with the degree
    assert max(sparse.client_bytes_received) < min(complete.client_bytes_received)


def test_sparse_threshold_is_checked_against_the_neighbourhood():
    updates = [np.zeros(2)] * 10
    with pytest.raises(ValueError, match=r"threshold must be an integer in 3\.\.5"):
        secure_aggregate(updates, threshold=6, neighbours=4)


def test_a_split_of_the_surviving_graph_aborts_before_unmasking():
    n, shape = 6, (3,)
    graph = neighbour_graph(n, 2, zeros)  # the pinned order the server below will use: a 6-cycle
    far = next(v for v in range(n) if v not in graph[0] and not set(graph[0]) & set(graph[v]))
    config = make_config(n, shape, 2, (0, far), (), 2, 16.0, 32, None)
    server = SecAggServer(config, randbytes=zeros)
    report = run_with(config, [np.ones(shape)] * n, server=server)
    assert report.results[0].failure[0] == "disconnected"
    assert report.results[0].total is None
    with pytest.raises(SecAggError, match="unconnected groups"):
        _raise_failure(report.results[0])


# --- what the server sees ----------------------------------------------------------------------
def test_masked_updates_look_uniform_and_the_server_keeps_no_individual_update():
    size = 1 << 15
    updates = [np.zeros(size), np.full(size, 0.5), np.full(size, -3.0), np.linspace(-1, 1, size)]
    result = run_secure_aggregation(updates, threshold=3, drop_before=(3,), record_view=True)
    assert_within(result, updates, (3,))
    encoded = [quantize(u, 16.0, result.config.frac_bits) for u in updates]
    masked = [(c, y) for r, c, y in result.server_view if r == msg.ROUND_MASKED]
    assert [c for c, _ in masked] == [0, 1, 2]
    for c, y in masked:
        assert np.mean(y == encoded[c]) < 1e-3
        counts = np.bincount((y >> np.uint32(28)).astype(np.int64), minlength=16)
        chi2 = float(np.sum((counts - size / 16) ** 2 / (size / 16)))
        assert chi2 < 60, chi2  # 15 degrees of freedom: p < 1e-6 for a uniform y
        assert abs(np.mean(y & np.uint32(1)) - 0.5) < 0.02
    for _, _, value in result.server_view:
        for e in encoded:
            assert not (isinstance(value, np.ndarray) and value.shape == e.shape and np.array_equal(value, e))


def test_server_object_holds_only_the_sum_after_a_run():
    n = 5
    rng = np.random.default_rng(11)
    updates = [rng.normal(size=64) for _ in range(n)]
    config = make_config(n, (64,), 3, (1,), (2,), None, 16.0, 32, None)
    server = SecAggServer(config)
    report = run_with(config, updates, server=server)
    outcome = report.results[0]
    assert outcome.view is None and outcome.failure is None
    encoded = [quantize(u, 16.0, config.frac_bits) for u in updates]
    arrays = [v for v in [*vars(server).values(), *vars(server._state).values(), *vars(outcome).values()]
              if isinstance(v, np.ndarray)]
    assert [a.shape for a in arrays] == [(64,)]  # the decoded sum, nothing else
    assert not any(np.array_equal(quantize(a, 16.0, config.frac_bits), e) for a in arrays for e in encoded)


# --- communication ------------------------------------------------------------------------------
def frame(shape, itemsize):
    return FIXED_HEADER_BYTES + 8 * len(shape) + itemsize * math.prod(shape)


def test_bytes_per_client_match_the_message_table():
    n, size = 5, 100
    k = n - 1
    result = secure_aggregate([np.ones(size)] * n, threshold=3, return_stats=True)
    sent = (frame((128,), 1) + frame((k, CIPHERTEXT_BYTES), 1) + frame((size,), 4) + frame((64,), 1)
            + frame((k + 1, 66), 1))
    received = (4 * frame((2,), 8) + frame((k,), 8) + frame((k, 128), 1) + frame((k,), 8)
                + frame((k, CIPHERTEXT_BYTES), 1) + frame((n,), 8) + frame((k + 1,), 8) + frame((k + 1, 64), 1))
    assert result.client_bytes_sent == [sent] * n
    assert result.client_bytes_received == [received] * n
    assert result.server_bytes_received == n * sent and result.server_bytes_sent == n * received
    assert result.bytes_per_client == sent + received


# --- malformed messages -----------------------------------------------------------------------
class ScriptedParty:
    """Stands in for a party whose peer sends the given arrays, in order."""

    def __init__(self, *arrays):
        self._arrays = list(arrays)

    def recv(self, peer):
        return self._arrays.pop(0)


KEYS = ClientKeys.generate().public_bytes()


def other_keys(count):
    """``count`` advertisements: fresh keys and 64 signature bytes (checked by the client, not here)."""
    return np.frombuffer(b"".join(ClientKeys.generate().public_bytes() + bytes(64) for _ in range(count)),
                         np.uint8).reshape(count, 128)


@pytest.mark.parametrize("ids, keys, match", [
    (np.array([1, 2], np.int32), None, "int32"),
    (np.array([2, 1], np.int64), None, "not sorted"),
    (np.array([0, 1], np.int64), None, "may not be on it"),
    (np.array([1, 9], np.int64), None, "may not be on it"),
    (np.array([1, 2, 3, 4], np.int64), None, "more than the graph's degree"),
    (np.array([1, 2], np.int64), other_keys(3), r"expected uint8\[2, 128\]"),
    (np.array([1, 2], np.int64), np.repeat(other_keys(1), 2, axis=0), "repeat"),
])
def test_client_rejects_bad_neighbour_lists(ids, keys, match):
    party = ScriptedParty(ids, other_keys(len(ids)) if keys is None else keys)
    with pytest.raises(MalformedMessageError, match=match):
        msg.recv_neighbours(party, 0, 5, 3, KEYS)


def test_client_and_server_reject_malformed_round_messages():
    with pytest.raises(MalformedMessageError, match="round 2"):
        msg.recv_go(ScriptedParty(np.array([2, 1], np.int64)), 1)
    with pytest.raises(MalformedMessageError, match="status 5"):
        msg.recv_go(ScriptedParty(np.array([1, 5], np.int64)), 1)
    with pytest.raises(MalformedMessageError, match="may not be on it"):
        msg.recv_routed_shares(ScriptedParty(np.array([3], np.int64)), 0, [1, 2])
    with pytest.raises(MalformedMessageError, match="survivor list that is not sorted"):
        msg.recv_survivors(ScriptedParty(np.array([2, 1], np.int64)), 1, 5)
    with pytest.raises(MalformedMessageError, match="may not be on it"):
        msg.recv_survivors(ScriptedParty(np.array([1, 5], np.int64)), 1, 5)
    with pytest.raises(MalformedMessageError, match="without this client"):
        msg.recv_survivors(ScriptedParty(np.array([0, 2], np.int64)), 1, 5)
    with pytest.raises(MalformedMessageError, match="confirming clients naming a client that may not be on it"):
        msg.recv_confirmations(ScriptedParty(np.array([0, 3], np.int64)), {0, 1, 2})
    with pytest.raises(MalformedMessageError, match=r"uint8\[1, 64\] as the confirmations, expected uint8\[2, 64\]"):
        msg.recv_confirmations(ScriptedParty(np.array([0, 1], np.int64), np.zeros((1, 64), np.uint8)), {0, 1, 2})
    with pytest.raises(MalformedMessageError, match=r"client 2 sent uint8\[63\] as its signature"):
        msg.recv_signature(ScriptedParty(np.zeros(63, np.uint8)), 2)
    with pytest.raises(MalformedMessageError, match="client 1 sent uint64"):
        msg.recv_masked(ScriptedParty(np.zeros(4, np.uint64)), 1, 4, np.uint32)
    with pytest.raises(MalformedMessageError, match=r"uint8\[2, 66\] as its unmasking shares, expected uint8\[3, 66\]"):
        msg.recv_share_rows(ScriptedParty(np.zeros((2, 66), np.uint8)), 0, 3)
    too_big = np.frombuffer(shamir.PRIME.to_bytes(66, "big"), np.uint8).reshape(1, 66)
    with pytest.raises(MalformedMessageError, match="not a field element"):
        msg.recv_share_rows(ScriptedParty(too_big), 0, 1)


def test_replayed_messages_are_rejected():
    """Keys are fresh per run and every share blob names its pair, so a blob replayed from an earlier run, relayed
    to another client or reflected to its sender fails; a round header replayed in a later round is refused."""
    a, b, c = ClientKeys.generate(), ClientKeys.generate(), ClientKeys.generate()
    key_ab = share_key(a.encryption, b.public_bytes()[:32], 0, 1)
    blob = encrypt_shares(key_ab, 0, 1, 7, 8)
    a_again, b_again = ClientKeys.generate(), ClientKeys.generate()  # the same two clients in the next run
    with pytest.raises(ShareDecryptionError, match="authentication"):
        decrypt_shares(share_key(b_again.encryption, a_again.public_bytes()[:32], 1, 0), 0, 1, blob)
    with pytest.raises(ShareDecryptionError, match="authentication"):
        decrypt_shares(share_key(c.encryption, a.public_bytes()[:32], 2, 0), 0, 2, blob)
    with pytest.raises(ShareDecryptionError, match="another pair"):
        decrypt_shares(key_ab, 1, 0, blob)
    with pytest.raises(MalformedMessageError, match="round 1 with status 1, expected round 2"):
        msg.recv_go(ScriptedParty(np.array([1, 1], np.int64)), 2)


def test_a_wrongly_shaped_masked_update_stops_the_run_naming_the_client():
    n, shape = 4, (6,)
    config = make_config(n, shape, 3, (), (), None, 16.0, 32, None)
    liar = dataclasses.replace(config, shape=(5,))
    updates = [np.ones(shape)] * n
    updates[2] = np.ones(5)
    with pytest.raises(PartyFailedError, match=r"client 2 sent uint32\[5\] as its masked update"):
        run_with(config, updates, client_configs={2: liar})


def test_a_client_refuses_to_unmask_when_the_server_goes_on_below_its_threshold():
    n, shape = 5, (2,)
    strict = make_config(n, shape, 4, (0, 1), (), None, 16.0, 32, None)
    lax = dataclasses.replace(strict, threshold=3)
    with pytest.raises(PartyFailedError, match="went on with 3 clients of its neighbourhood confirming the survivor "
                                               "list .* below the threshold 4"):
        run_with(lax, [np.ones(shape)] * n, server=SecAggServer(lax), client_configs={c: strict for c in (2, 3, 4)})


# --- argument checks -----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(updates=[np.zeros(3)]), "at least 2 clients"),
    (dict(updates=[np.zeros(3), np.zeros(4), np.zeros(3)]), r"client 1's update has shape \(4,\)"),
    (dict(updates=[np.zeros(3), np.array([0, np.nan, 0]), np.zeros(3)]), "client 1's update holds NaN"),
    (dict(updates=[np.zeros(3), np.array([0, np.inf, 0]), np.zeros(3)]), "infinite"),
    (dict(updates=[np.zeros(3), np.array(["a", "b", "c"]), np.zeros(3)]), "real numbers"),
    (dict(threshold=1), r"threshold must be an integer in 2\.\.3"),
    (dict(threshold=4), r"threshold must be an integer in 2\.\.3"),
    (dict(drop_before=(3,)), r"drop_before names client 3, but the clients are 0\.\.2"),
    (dict(drop_after=(-1,)), "drop_after names client -1"),
    (dict(drop_after=(1.5,)), "integer client indices"),
    (dict(drop_before=(1, 1)), "more than once"),
    (dict(drop_before=(1,), drop_after=(1,)), r"clients \[1\] are in both"),
    (dict(transport="udp"), "unknown transport"),
    (dict(neighbours=3), r"neighbours must be an integer in 2\.\.2"),
    (dict(clip=-1.0), "clip must be a positive"),
    (dict(ring_bits=16), "ring_bits"),
    (dict(frac_bits=40), "at most"),
    (dict(timeout=0), "timeout"),
])
def test_bad_arguments_raise_value_errors_naming_the_problem(kwargs, match):
    arguments = dict(updates=[np.zeros(3)] * 3, threshold=2)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        secure_aggregate(**arguments)


# --- TCP: a few examples, each launches processes ---------------------------------------------
@settings(max_examples=1, phases=TCP_PHASES)
@given(data=st.data())
def test_tcp_sum_with_dropouts_on_both_sides(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4))
    updates = [data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-16, 16))) for _ in range(5)]
    result = secure_aggregate(updates, threshold=3, drop_before=(1,), drop_after=(3,), transport="tcp",
                              return_stats=True)
    assert_within(result, updates, (1,))
    assert result.dropped_before == (1,) and result.dropped_after == (3,)


def test_tcp_too_few_survivors_raise_without_hanging():
    with pytest.raises(TooFewSurvivorsError, match="threshold 3"):
        secure_aggregate([np.ones(4)] * 4, threshold=3, drop_after=(0, 2), transport="tcp", timeout=20)


def test_tcp_with_mutual_tls(tmp_path):
    from smpc import TlsConfig
    from net_helpers import deployment

    updates = [np.full(3, float(c)) for c in range(4)]
    result = secure_aggregate(updates, threshold=3, drop_after=(2,), transport="tcp",
                              tls=deployment(tmp_path, 5), return_stats=True)
    assert np.allclose(result.total, np.full(3, 6.0), atol=result.error_bound)
    with pytest.raises(ValueError, match="tls applies to transport='tcp' only"):
        secure_aggregate(updates, tls=TlsConfig("a", "b", "c"))


def test_too_few_survivors_names_the_missing_clients():
    with pytest.raises(TooFewSurvivorsError, match=r"missing clients: \[1, 3, 4\]"):
        secure_aggregate([np.ones(2)] * 5, threshold=3, drop_before=(1,), drop_after=(3, 4))
    with pytest.raises(TooFewSurvivorsError, match=r"missing clients: \[0, 1, 2\]"):
        secure_aggregate([np.ones(2)] * 5, threshold=3, drop_before=(0, 1, 2))
