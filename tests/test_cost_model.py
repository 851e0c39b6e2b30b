"""The bench cost model (protocol formulas composed over the steps taken) equals measured bytes and rounds."""

import numpy as np
import pytest

from protocol_matrix import protocol_parties
import smpc
from smpc.mpc.cost import cost as theory

OPERATIONS = {
    "relu": lambda x: x.relu(),
    "less": lambda x: x < 0.5,
    "exp": lambda x: x.exp(),
    "reciprocal": lambda x: x.reciprocal(),
    "softmax": lambda x: x.softmax(axis=-1),
    "matmul": lambda x: x @ x.T,
}


@pytest.mark.parametrize("protocol, parties", protocol_parties("functions"))
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_cost_model_matches_the_protocol(protocol, parties, name):
    fn, shape = OPERATIONS[name], (6, 70)

    def program(party):
        x = party.share(np.random.default_rng(0).uniform(0.5, 3, shape) if party.rank == 0 else None, src=0)
        party.reset_stats()
        fn(x)
        return party.stats["rounds"], party.stats["bytes_sent"]

    measured = smpc.run(program, parties=parties, protocol=protocol)
    expected = theory(fn, [shape], protocol, parties)
    assert max(nbytes for _, nbytes in measured) == expected["bytes"]
    rounds = max(count for count, _ in measured)
    if smpc.protocols()[protocol].exact_rounds:
        assert rounds == expected["rounds"]
    else:  # aby3: a step that begins with a receive may continue the previous step's receive phase
        assert rounds <= expected["rounds"]


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
