"""Two-party triples and truncation pairs from Paillier (dealer='paillier'), against numpy and the theory."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import programs
import smpc
from smpc.exceptions import PartyFailedError, ProtocolError
from smpc.mpc.correlated import paillier as paillier_dealer
from smpc.mpc.additive import AdditiveTensor
from smpc.mpc.bilinear import MATMUL, MUL, Bilinear
from smpc.mpc.circuits.masked_ands import AndLayout
from smpc.ring import matmul as ring_matmul
from conftest import TCP_PHASES, assert_close, frame, only

ULP = 2.0**-16
PAILLIER = {"protocol": "additive", "parties": 2, "dealer": "paillier"}


def _reveal_triple(op, shape_x, shape_y, party):
    triple = party.dealer.triple(op, shape_x, shape_y)
    parts = []
    for share in (triple.a, triple.b, triple.c):
        other = party.recv_like(1 - party.rank, share.shape) if party.rank else None
        if party.rank == 0:
            party.send(1, share)
        else:
            parts.append((share + other).astype(np.uint64))
    return parts


@pytest.mark.parametrize("op, shape_x, shape_y", [
    (Bilinear(MUL), (7,), (7,)),
    (Bilinear(MUL), (2, 3), (3,)),  # broadcasting
    (Bilinear(MATMUL), (3, 4), (4, 2)),
    (Bilinear(MATMUL), (4,), (4, 3)),
    (Bilinear(MATMUL), (2, 3, 4), (4,)),  # batched by vector
])
def test_triples_satisfy_c_equals_op_of_a_and_b(op, shape_x, shape_y):
    with np.errstate(over="ignore"):
        result = smpc.run(functools.partial(_reveal_triple, op, shape_x, shape_y), **PAILLIER)
        a, b, c = result[1]
        expected = a * b if op.code == MUL else ring_matmul(a, b)
    assert np.array_equal(c, expected)
    assert not np.array_equal(a, np.zeros_like(a))  # the parties' own randomness, not zeros


@settings(max_examples=4)
@given(data=st.data())
def test_fixed_point_products_match_numpy_and_the_trusted_dealer(data):
    rows, cols = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    values = st.floats(-1000, 1000, allow_nan=False)
    x = data.draw(hnp.arrays(np.float64, (rows, cols), elements=values))
    y = data.draw(hnp.arrays(np.float64, (rows, cols), elements=values))
    got = smpc.run(functools.partial(programs.paillier_suite, x, y), **PAILLIER)[0]
    trusted = smpc.run(functools.partial(programs.paillier_suite, x, y), parties=2)[0]
    fx, fy = (np.rint(v * 2**16) / 2**16 for v in (x, y))
    for name, expected in [("mul", fx * fy), ("matmul", fx @ fy.T), ("vector", fx[0] @ fy.T),
                           ("square_sum", (fx * fx).sum(axis=1) / 4)]:
        assert_close(got[name], expected, 2 * ULP * (1 + cols))  # one truncation per product, plus /4
        assert_close(got[name], trusted[name], 4 * ULP * (1 + cols))
    assert np.array_equal(got["integers"], 3 * np.arange(x.size).reshape(x.shape))


def test_truncation_with_a_known_mask_is_exact_to_one_unit_over_the_whole_range():
    rng = np.random.default_rng(5)
    ring = np.concatenate([rng.integers(-(2**61), 2**61, 3000), [0, 1, -1, 2**61 - 1, -(2**61) + 1,
                                                                  2**62 - 1, -(2**62) + 1]])

    def program(party):
        shared = AdditiveTensor(party, _split(party, ring), 32)
        party.reset_stats()
        out = shared.truncate(16)
        stats = party.stats
        return out.reveal_ring(), stats

    results = smpc.run(program, **PAILLIER)
    got = results[0][0].view(np.int64)
    assert np.all(np.abs(got - ring / 2**16) < 1)
    for _, stats in results:  # x_1 + r to party 0, then c_msb - a back: one word per element each way
        assert stats["bytes_sent"] == frame(ring.shape) and stats["offline_bytes_sent"] > 0


def _split(party, ring):
    """Party 1 holds a random share, party 0 the rest (a share of the signed ring values)."""
    values = ring.astype(np.int64).view(np.uint64)
    mask = np.random.default_rng(9).integers(0, 2**63, values.shape, dtype=np.uint64) * np.uint64(2)
    with np.errstate(over="ignore"):
        return mask if party.rank == 1 else values - mask


def test_online_bytes_and_rounds_of_a_product_follow_the_theory():
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    results = smpc.run(functools.partial(programs.paillier_suite, x, x), **PAILLIER)
    for result in results:
        stats = result["mul_stats"]
        # Beaver: open e and f (2 frames of 12 words); truncation: one frame of 12 words each way
        assert stats["bytes_sent"] == 2 * frame((3, 4)) + frame((3, 4))
        assert stats["offline_bytes_sent"] > 0
    # party 0 receives the Beaver opening and then x_1 + r in one receive phase; party 1 waits for c_msb - a
    assert [result["mul_stats"]["rounds"] for result in results] == [1, 2]
    assert results[0]["requests"] == results[1]["requests"] > 0


@settings(max_examples=2, phases=TCP_PHASES)
@given(x=hnp.arrays(np.float64, (2, 3), elements=st.floats(-50, 50)))
def test_products_over_tcp(x):
    got = smpc.run(functools.partial(programs.paillier_suite, x, x), transport="tcp", **PAILLIER)[1]
    fx = np.rint(x * 2**16) / 2**16
    assert_close(got["mul"], fx * fx, 2 * ULP)
    assert_close(got["matmul"], fx @ fx.T, 8 * ULP)


def test_comparisons_and_conv_triples_are_refused_clearly():
    def program(party):
        x = party.share(only(np.ones(4), party, 0), src=0)
        return x < 0

    with pytest.raises(PartyFailedError, match="dealer='paillier' makes arithmetic triples"):
        smpc.run(program, **PAILLIER)

    def conv(party):
        x = party.share(only(np.ones((1, 1, 3, 3)), party, 0), src=0)
        return x.conv2d(x)

    with pytest.raises(PartyFailedError, match="conv2d triples"):
        smpc.run(conv, **PAILLIER)


@pytest.mark.parametrize("options, message", [
    ({"parties": 3, "dealer": "paillier"}, "2 parties"),
    ({"parties": 3, "protocol": "aby3", "dealer": "paillier"}, "dealer 'paillier' for protocol 'aby3'"),
    ({"parties": 2, "dealer": "paillier", "dealer_key_bits": 1024}, "dealer_key_bits"),
    ({"parties": 2, "dealer": "oracle"}, "unknown dealer"),
])
def test_bad_dealer_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        smpc.run(lambda party: None, **options)


def test_a_ciphertext_outside_the_range_is_rejected_by_the_evaluator(monkeypatch):
    def send_zeros(self, values):
        self.party.send(1, np.zeros((values.size, 2 * self.key_bits // 64), np.uint64))

    monkeypatch.setattr(paillier_dealer.PaillierDealerClient, "_send_encrypted", send_zeros)

    def program(party):
        x = party.share(only(np.ones(3), party, 0), src=0)
        return (x * x).reveal()

    with pytest.raises(PartyFailedError, match=r"outside \[1, n\^2\)") as info:
        smpc.run(program, **PAILLIER)
    assert info.value.rank == 1


def test_the_protocol_error_names_the_alternatives():
    client = paillier_dealer.PaillierDealerClient.__new__(paillier_dealer.PaillierDealerClient)
    with pytest.raises(ProtocolError, match="dealer='trusted'"):
        client.and_triples(AndLayout((((4,), -1),), ((0, 0, 0, 1),)))
