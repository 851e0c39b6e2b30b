"""Exact truncation: |error| < 1 unit for every |x| < 2^62, tested on 10^7 elements."""

import numpy as np
import pytest

import smpc
from conftest import only

LIMIT = 2**62


def _values(count, rng):
    full = rng.integers(-LIMIT + 1, LIMIT, size=count // 2, dtype=np.int64)
    small = rng.integers(-(2**20), 2**20, size=count // 4, dtype=np.int64)
    moderate = rng.integers(-(2**40), 2**40, size=count - count // 2 - count // 4 - 8, dtype=np.int64)
    edges = np.array([0, 1, -1, 2**16, -(2**16), LIMIT - 1, -LIMIT, -LIMIT + 1], dtype=np.int64)
    return np.concatenate([edges, full, small, moderate])


def _truncate_everywhere(values, bits, parties):
    def program(party):
        shared = party.share(only(values, party, 0), src=0)
        return shared.truncate(bits).reveal()

    return smpc.run(program, parties=parties)[0]


@pytest.mark.parametrize("parties, count", [(2, 10**7), (3, 10**5), (5, 10**5)])
def test_truncation_is_floor_or_floor_plus_one(parties, count):
    rng = np.random.default_rng(parties)
    values = _values(count, rng)
    got = _truncate_everywhere(values, 16, parties)
    floor = values >> 16
    difference = got - floor
    assert set(np.unique(difference)) <= {0, 1}
    # stochastic rounding: +1 happens with the probability of the discarded fraction
    fraction = (values & 0xFFFF) / 2**16
    assert abs(difference.mean() - fraction.mean()) < 0.01


@pytest.mark.parametrize("bits", [1, 8, 20, 30])
def test_other_truncation_widths(bits):
    values = _values(10_000, np.random.default_rng(bits))
    difference = _truncate_everywhere(values, bits, 3) - (values >> bits)
    assert set(np.unique(difference)) <= {0, 1}
