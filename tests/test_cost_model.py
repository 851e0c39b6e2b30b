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
