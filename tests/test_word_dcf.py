"""The DCF with a pair of 64-bit words as output (smpc.mpc.fss.word_dcf): the two parties' outputs add up to
payload * [x < alpha] for every x and alpha, at every bit width, batch size and chunk; each party's output alone
looks uniform; keys travel as flat words; bad input is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from smpc.mpc.fss import word_dcf
from smpc.ring.prg import PRG

PRG_KEY = b"word dcf tests!!"


def _expected(alpha, payload, x):
    return payload * (x < alpha)[:, None].astype(np.uint64)


def _sum(keys, x, chunk=word_dcf.DEFAULT_CHUNK):
    with np.errstate(over="ignore"):
        return word_dcf.eval(0, keys[0], x, chunk) + word_dcf.eval(1, keys[1], x, chunk)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6])
def test_every_alpha_and_every_x_at_small_widths(bits):
    prg = PRG(PRG_KEY)
    side = np.arange(1 << bits, dtype=np.uint64)
    alpha, x = (grid.ravel() for grid in np.meshgrid(side, side))
    payload = prg.random_ring((alpha.size, 2))
    keys = word_dcf.gen(alpha, payload, prg, bits)
    np.testing.assert_array_equal(_sum(keys, x, chunk=64), _expected(alpha, payload, x))


@pytest.mark.parametrize("bits", [63, 64])
def test_wide_inputs_at_their_edges(bits):
    prg = PRG(PRG_KEY)
    top = np.uint64((1 << bits) - 1)
    alpha = prg.random_ring(600) & top
    alpha[:6] = [0, 1, top, top - np.uint64(1), 1 << (bits - 1), (1 << (bits - 1)) - 1]
    x = np.empty_like(alpha)
    x[0::6], x[1::6], x[2::6] = alpha[0::6], alpha[1::6] - np.uint64(1), alpha[2::6] + np.uint64(1)
    x[3::6], x[4::6], x[5::6] = 0, top, prg.random_ring(100) & top
    x &= top
    payload = prg.random_ring((alpha.size, 2))
    keys = word_dcf.gen(alpha, payload, prg, bits)
    np.testing.assert_array_equal(_sum(keys, x, chunk=100), _expected(alpha, payload, x))


@pytest.mark.parametrize("count, chunk", [(0, 64), (1, 64), (63, 10), (65, 64), (200, 130), (9000, 8192)])
def test_batches_and_chunks_of_any_size(count, chunk):
    prg = PRG(PRG_KEY)
    alpha, x = prg.random_ring(count) >> np.uint64(1), prg.random_ring(count) >> np.uint64(1)
    payload = prg.random_ring((count, 2))
    keys = word_dcf.gen(alpha, payload, prg, 63)
    assert keys[0].count == count and keys[0].nbytes == word_dcf.key_bytes(count, 63)
    np.testing.assert_array_equal(_sum(keys, x, chunk), _expected(alpha, payload, x))


def test_gen_on_several_threads_makes_the_keys_one_thread_makes(monkeypatch):
    count = 3 * word_dcf.DEFAULT_CHUNK + 5  # four chunks: two per thread on two threads
    alpha = PRG(PRG_KEY).random_ring(count) >> np.uint64(1)
    payload = PRG(PRG_KEY).random_ring((count, 2))
    words = {}
    for threads in (1, 2, 3):
        monkeypatch.setattr(word_dcf, "nthreads", lambda threads=threads: threads)
        keys = word_dcf.gen(alpha, payload, PRG(PRG_KEY), 63)  # the same root seeds every time
        words[threads] = [key.to_words() for key in keys]
    for threads in (2, 3):
        for party in (0, 1):
            np.testing.assert_array_equal(words[threads][party], words[1][party])
    x = PRG(b"another key 0123").random_ring(count) >> np.uint64(1)
    np.testing.assert_array_equal(_sum(keys, x, 4096), _expected(alpha, payload, x))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 64), st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)), max_size=30))
def test_hypothesis_batches(bits, pairs):
    mask = (1 << bits) - 1
    alpha = np.array([a & mask for a, _ in pairs], dtype=np.uint64)
    x = np.array([v & mask for _, v in pairs], dtype=np.uint64)
    prg = PRG(PRG_KEY)
    payload = prg.random_ring((len(pairs), 2))
    np.testing.assert_array_equal(_sum(word_dcf.gen(alpha, payload, prg, bits), x), _expected(alpha, payload, x))


def test_keys_travel_as_words_and_share_their_corrections():
    prg = PRG(PRG_KEY)
    alpha, x = prg.random_ring(130) >> np.uint64(1), prg.random_ring(130) >> np.uint64(1)
    keys = word_dcf.gen(alpha, prg.random_ring((130, 2)), prg, 63)
    for party in (0, 1):
        words = keys[party].to_words()
        assert words.shape == (word_dcf.words_for(130, 63),)
        back = word_dcf.WordDCFKeys.from_words(party, 63, 130, words)
        np.testing.assert_array_equal(word_dcf.eval(party, back, x), word_dcf.eval(party, keys[party], x))
    first, second = keys[0].to_words(), keys[1].to_words()
    assert not np.array_equal(first[:260], second[:260])  # the root seeds differ ...
    np.testing.assert_array_equal(first[260:], second[260:])  # ... and nothing else
    with pytest.raises(ValueError, match=r"uint64\[\d+\], got uint64\[10\]"):
        word_dcf.WordDCFKeys.from_words(0, 63, 130, first[:10])
    with pytest.raises(ValueError, match="got int64"):
        word_dcf.WordDCFKeys.from_words(0, 63, 130, first.astype(np.int64))


def test_one_partys_output_looks_the_same_where_x_is_below_alpha_and_where_not():
    prg = PRG(PRG_KEY)
    count = 4000
    alpha = np.full(count, 1 << 40, dtype=np.uint64)
    x = np.where(np.arange(count) % 2 == 0, 5, (1 << 41) + 7).astype(np.uint64)  # half below alpha, half above
    payload = np.tile(np.array([[1, 12345]], dtype=np.uint64), (count, 1))
    keys = word_dcf.gen(alpha, payload, prg, 63)
    for party in (0, 1):
        out = word_dcf.eval(party, keys[party], x)
        for below in (out[0::2], out[1::2]):
            ones = np.unpackbits(below.view(np.uint8)).mean()  # every bit of a uniform word is 1 half the time
            assert abs(ones - 0.5) < 0.01
        assert len(np.unique(out[:, 0])) == count  # no repeats, as for uniform words


@pytest.mark.parametrize("call, message", [
    (lambda k, x: word_dcf.eval(1, k[0], x), "party 0's DCF keys, evaluated as party 1"),
    (lambda k, x: word_dcf.eval(2, k[0], x), "party must be 0 or 1"),
    (lambda k, x: word_dcf.eval(0, k[0], x[:3]), "x has 3 elements but the keys are for 4"),
    (lambda k, x: word_dcf.eval(0, k[0], x.astype(np.int64)), "x must be a uint64"),
    (lambda k, x: word_dcf.eval(0, k[0], x | np.uint64(1 << 63)), "more than 63 bits"),
    (lambda k, x: word_dcf.eval(0, k[0], x, chunk=0), "chunk must be a positive integer"),
    (lambda k, x: word_dcf.eval(0, "key", x), "keys must be WordDCFKeys"),
    (lambda k, x: word_dcf.gen(x, np.zeros((3, 2), np.uint64), PRG(PRG_KEY), 63), r"payload must be uint64\[4, 2\]"),
    (lambda k, x: word_dcf.gen(x, np.zeros((4, 2), np.uint64), PRG(PRG_KEY), 65), "integer in 1..64"),
    (lambda k, x: word_dcf.gen(x, np.zeros((4, 2), np.uint64), "seed", 63), "prg must be"),
])
def test_bad_input_is_refused_by_name(call, message):
    prg = PRG(PRG_KEY)
    x = np.arange(4, dtype=np.uint64)
    keys = word_dcf.gen(x, prg.random_ring((4, 2)), prg, 63)
    with pytest.raises((ValueError, TypeError), match=message):
        call(keys, x)
