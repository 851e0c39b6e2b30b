"""Rounds of ANDs that mask each word once (smpc.mpc.circuits.masked_ands): results against numpy, and the words
each party sends, for words ANDed with shifts of themselves and of each other and for private words."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import programs
import smpc
from smpc.mpc.circuits import masked_ands
from smpc.mpc.circuits.masked_ands import SHARED
from smpc.mpc.cost import cost
from conftest import TCP_PHASES, frame, only

WORDS = st.integers(0, 2**64 - 1)
SHIFTS = st.lists(st.integers(-63, 63), min_size=4, max_size=4)


def shifted(words, bits):
    return words << np.uint64(bits) if bits >= 0 else words >> np.uint64(-bits)


def expected(x, y, shifts):
    return [x & shifted(y, shifts[0]), x & shifted(x, shifts[1]), shifted(y, shifts[2]) & shifted(x, shifts[3])]


@pytest.mark.parametrize("parties", [2, 3, 5])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_ands_of_words_and_their_shifts_match_numpy(parties, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=5))
    x = data.draw(hnp.arrays(np.uint64, shape, elements=WORDS))
    y = data.draw(hnp.arrays(np.uint64, shape, elements=WORDS))
    shifts = data.draw(SHIFTS)
    for opened, stats, *_ in smpc.run(functools.partial(programs.shifted_ands, x, y, shifts), parties=parties):
        for got, want in zip(opened, expected(x, y, shifts)):
            assert np.array_equal(got, want)
        # the round masks two words (a, b) once each: two words to every peer, then three reveals
        assert stats["bytes_sent"] == (parties - 1) * (2 * frame(shape) + 3 * frame(shape))
        assert stats["rounds"] == 1 + 3


@settings(max_examples=2, phases=TCP_PHASES)
@given(x=hnp.arrays(np.uint64, 7, elements=WORDS), y=hnp.arrays(np.uint64, 7, elements=WORDS), shifts=SHIFTS)
def test_ands_of_shifted_words_over_tcp(x, y, shifts):
    for opened, *_ in smpc.run(functools.partial(programs.shifted_ands, x, y, shifts), parties=2,
                                    transport="tcp"):
        for got, want in zip(opened, expected(x, y, shifts)):
            assert np.array_equal(got, want)


@pytest.mark.parametrize("parties", [2, 3])
def test_private_words_are_masked_and_sent_by_their_owners_alone(parties):
    rng = np.random.default_rng(3)
    x, y = (rng.integers(0, 2**64, size=50, dtype=np.uint64) for _ in range(2))
    results = smpc.run(functools.partial(programs.shifted_ands, x, y, [0, 1, -1, 2]), parties=parties)
    first, last = results[0][-1], results[-1][-1]  # party 0's and the last party's shares of x
    for rank, (_, _, private, stats, _) in enumerate(results):
        assert np.array_equal(private, first & last)
        # each owner sends its word masked to every peer, the others send nothing; then the reveal
        owns = rank in (0, parties - 1)
        assert stats["bytes_sent"] == (parties - 1) * frame(x.shape) * (owns + 1)


def test_a2b_opens_thirteen_words_in_seven_rounds_with_two_parties():
    # the private inputs' AND opens one word per party, then five Kogge-Stone levels open P and G (the shifts of
    # G and P ride on them) and the last level P and G again: 1 + 5 * 2 + 2 = 13 words, where one mask per
    # operand would open 24
    def program(party):
        shared = party.share(only(np.arange(100.0), party, 0), src=0)
        party.reset_stats()
        shared.to_binary()
        return party.stats["rounds"], party.stats["bytes_sent"]

    for rounds, sent in smpc.run(program, parties=2):
        assert rounds == 7 and sent == 13 * frame((100,))
    assert cost(lambda x: x.to_binary(), [(100,)], "additive", 2)["bytes_per_party"] == [13 * frame((100,))] * 2


def test_layouts_group_pairs_within_a_request_and_mask_each_root_once():
    party = _Words()
    a, b = party.word((3,)), party.word((3,), owner=1)
    groups = masked_ands.layouts([(a, b << 2), (a, a >> 5), (b << 1, (a << 3) << 4)])
    assert len(groups) == 1
    layout, roots = groups[0]
    assert roots == [a, b] and layout.masks == (((3,), SHARED), ((3,), 1))
    assert layout.products == ((0, 0, 1, 2), (0, 0, 0, -5), (1, 1, 0, 7))
    assert ((a << 3) >> 1).root is not a  # opposite shifts lose bits: a new word
    assert (a << 40 << 30).root is not a  # 64 bits or more: a new word
    many = masked_ands.layouts([(party.word((2, 2, 2, 2)), party.word((2, 2, 2, 2))) for _ in range(5)])
    assert len(many) > 1 and all(layout.description_size <= masked_ands.MAX_DESCRIPTION for layout, _ in many)
    assert sum(len(layout.products) for layout, _ in many) == 5


class _Words:
    """Shift-tracked stand-ins for shared words (shape and owner only)."""

    def word(self, shape, owner=None):
        return _Word(shape, owner)


class _Word(masked_ands.ShiftTracked):
    def __init__(self, shape, owner=None):
        self.shape, self.owner = shape, owner

    def __lshift__(self, bits):
        return self._derive(_Word(self.shape), bits)

    def __rshift__(self, bits):
        return self._derive(_Word(self.shape), -bits)
