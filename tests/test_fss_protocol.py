"""comparisons="fss": the additive protocol's sign bit by function secret sharing, through the dealer and the
registry (the op suites run it as protocol "additive_fss"; here: its costs, its exactness at the edges, bad input)."""

from __future__ import annotations

import numpy as np
import pytest

import smpc
from conftest import only
from smpc.mpc.fss import compare, wire
from smpc.net.wire import frame_bytes
from smpc.ring.prg import PRG

EDGES = np.array([0, 1, -1, 2**62 - 1, -(2**62), 2**62, 2**63 - 1, -(2**63), 12345, -54321], dtype=np.int64)


def test_the_sign_and_relu_are_exact_at_every_edge_in_two_openings():
    def program(party):
        x = party.share(only(EDGES, party, 0), src=0)
        party.reset_stats()
        negative = x < 0
        rounds_sign = party.stats["rounds"]
        relu = x.relu()
        stats = party.stats
        return negative.reveal(), relu.reveal(), rounds_sign, stats["rounds"], stats["bytes"]

    for negative, relu, rounds_sign, rounds, nbytes in smpc.run(program, parties=2, comparisons="fss"):
        np.testing.assert_array_equal(negative, EDGES < 0)
        np.testing.assert_array_equal(relu, np.maximum(EDGES, 0))
        assert rounds_sign == 2 and rounds == 4  # c = x + r, then the packed bits of msb(x) XOR s, each
        assert nbytes == 2 * (frame_bytes((EDGES.size,)) + frame_bytes((1,)))


def test_the_dealer_sends_each_party_its_keys_as_the_theory_says():
    count = 50

    def program(party):
        x = party.share(only(np.linspace(-3, 3, count), party, 0), src=0)
        party.reset_stats()
        x.relu()
        return party.stats

    report = smpc.launch(program, parties=2, protocol="additive_fss")
    theory = smpc.cost(lambda t: t.relu(), [(count,)], "additive_fss", 2)
    replies = [frame_bytes((wire.reply_words(rank, count, True),)) for rank in (0, 1)]
    assert report.dealer_stats["offline_bytes_sent"] == theory["dealer_bytes"] == sum(replies)
    for reply, stats in zip(replies, report.stats):
        assert stats["offline_bytes_received"] == reply
        assert stats["rounds"] == theory["rounds"] == 2


def test_both_names_run_the_same_protocol_and_tcp_agrees_on_the_setting():
    assert smpc.protocols()["additive_fss"].party_range == "2"
    assert "fss comparisons" in smpc.protocols()["additive_fss"].protocol(2).describe()
    assert "fss" not in smpc.protocols()["additive"].protocol(2).describe()


@pytest.mark.parametrize("options, error, message", [
    ({"parties": 3, "comparisons": "fss"}, smpc.PartyFailedError, "exactly 2 parties, got 3"),
    ({"parties": 2, "comparisons": "fss", "dealer": "paillier"}, ValueError, "needs dealer='trusted'"),
    ({"parties": 2, "comparisons": "garbled"}, ValueError, "unknown comparisons 'garbled'"),
    ({"parties": 3, "protocol": "aby3", "comparisons": "fss"}, ValueError, "takes no options"),
    ({"parties": 3, "protocol": "additive_fss"}, ValueError, "runs with 2 parties, got 3"),
    ({"parties": 2, "protocol": "additive_fss", "comparisons": "fss"}, ValueError, "takes no options"),
])
def test_bad_settings_are_refused_naming_the_problem(options, error, message):
    with pytest.raises(error, match=message):
        smpc.run(lambda party: party.share(only(np.ones(2), party, 0), src=0).relu(), **options)


def test_keys_of_the_wrong_length_are_refused_before_use():
    shares = compare.draw_shares(PRG.fresh(), 0, 3)
    with pytest.raises(ValueError, match="party 0's sign keys for 3 elements are 568 uint64 words"):
        wire.unpack(0, np.zeros(567, np.uint64), shares)


def test_large_comparisons_run_in_bounded_key_batches_as_the_theory_counts(monkeypatch):
    import smpc.mpc.additive.cost as additive_cost
    import smpc.mpc.additive.tensor as additive_tensor

    for module in (additive_tensor, additive_cost):  # 64-element batches: 200 elements take 4 x 2 rounds
        monkeypatch.setattr(module, "FSS_BATCH", 64)
    x = np.random.default_rng(1).normal(0, 4, 200)

    def program(party):
        shared = party.share(only(x, party, 0), src=0)
        party.reset_stats()
        relu = shared.relu()
        stats = party.stats
        return relu.reveal(), stats["rounds"], stats["bytes"]

    theory = smpc.cost(lambda t: t.relu(), [(200,)], "additive_fss", 2)
    assert theory["rounds"] == 8
    for relu, rounds, nbytes in smpc.run(program, parties=2, comparisons="fss"):
        np.testing.assert_allclose(relu, np.maximum(x, 0), atol=2.0**-16)
        assert (rounds, nbytes) == (theory["rounds"], theory["bytes"])
