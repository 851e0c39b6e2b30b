"""The bench cost model (protocol formulas composed over the steps taken) equals measured bytes and rounds."""

import numpy as np
import pytest

from protocol_matrix import protocol_parties
import smpc
from smpc.mpc import transformer_functions
from smpc.mpc.cost import Ledger, Phases, cost as theory

SHAPE = (6, 70)
#: name: (program on shared inputs, their shapes); the chains put a comparison after a product, a comparison or a
#: conversion, where aby3's sign bit continues the previous step's receive phase (one round fewer than alone)
OPERATIONS = {
    "relu": (lambda x: x.relu(), [SHAPE]),
    "less": (lambda x: x < 0.5, [SHAPE]),
    "product then relu": (lambda x: (x * x).relu(), [SHAPE]),
    "relu then relu": (lambda x: x.relu().relu(), [SHAPE]),
    "max": (lambda x: x.max(axis=-1), [SHAPE]),
    "exp": (lambda x: x.exp(), [SHAPE]),
    "reciprocal": (lambda x: x.reciprocal(), [SHAPE]),
    "inv_sqrt": (lambda x: x.inv_sqrt(), [SHAPE]),
    "octaves then clamp": (lambda x: x.inv_sqrt().relu(), [SHAPE]),
    "softmax": (lambda x: x.softmax(axis=-1), [SHAPE]),
    "matmul": (lambda x: x @ x.T, [SHAPE]),
    "gelu": (transformer_functions.gelu, [SHAPE]),
    "layer_norm": (transformer_functions.layer_norm, [SHAPE]),
    "masked_softmax": (lambda x: transformer_functions.masked_softmax(x, is_causal=True), [(2, 8, 8)]),
    "attention": (transformer_functions.scaled_dot_product_attention, [(2, 8, 4)] * 3),
}


@pytest.mark.parametrize("protocol, parties", protocol_parties("functions"))
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_cost_model_matches_the_protocol(protocol, parties, name):
    # every party's rounds and bytes, exactly (aby3 too: the ledger follows each party's receive phases)
    fn, shapes = OPERATIONS[name]
    rng = np.random.default_rng(0)
    values = [rng.uniform(0.5, 3, shape) for shape in shapes]

    def program(party):
        inputs = [party.share(value if party.rank == 0 else None, src=0) for value in values]
        party.reset_stats()
        fn(*inputs)
        return party.stats["rounds"], party.stats["bytes_sent"]

    measured = smpc.run(program, parties=parties, protocol=protocol)
    expected = theory(fn, shapes, protocol, parties)
    assert [nbytes for _, nbytes in measured] == expected["bytes_per_party"]
    assert [rounds for rounds, _ in measured] == expected["rounds_per_party"]
    assert max(rounds for rounds, _ in measured) == expected["rounds"]


def test_aby3_sign_bit_continues_the_receive_phase_before_it():
    # the sign bit alone: 8 rounds; after a product (its re-share ends with a receive) 7 more; party 0 only sends
    alone = theory(lambda x: x.relu(), [(4,)], "aby3")
    after = theory(lambda x: (x * x).relu(), [(4,)], "aby3")
    product = theory(lambda x: x * x, [(4,)], "aby3")
    assert alone["rounds_per_party"] == [0, 8, 8] and product["rounds_per_party"] == [0, 2, 2]
    assert after["rounds_per_party"] == [0, 2 + 7, 2 + 7]


def test_ledger_phases():
    ledger = Ledger(smpc.protocols()["aby3"].cost(3))
    ledger.add(1, [8, 8, 8])  # everyone sends, then receives
    ledger.add(2, [0, 0, 0], [Phases(0), Phases(2, opens_with_receive=True), Phases(2, closes_with_send=True)])
    ledger.add(1, [0, 0, 0], [Phases(1, opens_with_receive=True)] * 3)
    assert ledger.rounds_per_party == [1, 2, 4] and ledger.rounds == 4 and ledger.bytes == [8, 8, 8]
    with pytest.raises(ValueError, match="phases"):
        ledger.add(3, [0, 0, 0], [Phases(1)] * 3)


@pytest.mark.parametrize("call, error, message", [
    (lambda: theory(lambda x: x, [(2,)], "spdz", 2), ValueError, "unknown protocol 'spdz'"),
    (lambda: theory(lambda x: x, [(2,)], "aby3", 2), ValueError, "runs with 3 parties, got 2"),
    (lambda: theory(lambda x: x, [(2,)], "additive", 2, frac_bits=0), ValueError, "frac_bits"),
    (lambda: theory(lambda x: x.reveal(to=0), [(2,)], "additive", 2), TypeError, "no values to reveal"),
])
def test_the_cost_predictor_refuses_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_cost_predictor_reports_every_party_and_the_dealer():
    n = 10
    got = theory(lambda x, y: (x @ y).reveal_ring(), [(n, n), (n, n)], "additive", 3)
    frame = 20 + 8 * 2 + 8 * n * n  # one uint64 (n, n) frame
    assert got["rounds"] == 3 and got["bytes_per_party"] == [2 * 4 * frame] * 3 and got["bytes"] == 8 * frame
    assert got["dealer_bytes"] == frame + (20 + 8 * 3 + 16 * n * n)  # c, then the truncation pair's two planes
    assert got["ring_products"] == 2 * 3 + 1
    assert theory(lambda x: x.exp(), [(4,)], "additive") == theory(lambda x: x.exp(), [(4,)], "additive", 2)
