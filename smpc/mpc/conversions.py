"""Conversions between arithmetic and binary sharing for the additive protocol.

* ``a2b``: each party's arithmetic share is a private input; the N words are added
  in binary: carry-save adders reduce them to two (one round per level), then a
  Kogge-Stone parallel-prefix adder (Kogge and Stone, IEEE Trans. Computers, 1973)
  adds those in 1 + log2(64) = 7 rounds. Generate and propagate terms are disjoint,
  so the prefix's OR is an XOR and every step is an AND of shared words.
* ``msb``: the top bit of the sum, i.e. the sign of the two's complement value.
* ``b2a``: a shared bit to an arithmetic share with a dealer dabit (r shared both
  ways): open c = b ^ r, then b = c + r - 2 c r. One round.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.binary import BinaryTensor, and_many
from smpc.ring.arith import wrapping

WORD_BITS = 64


def private_inputs(party, share: np.ndarray) -> list[BinaryTensor]:
    """Each party's arithmetic share as a binary-shared word (its owner holds it, others 0)."""
    zero = np.zeros_like(share)
    return [BinaryTensor(party, share if rank == party.rank else zero) for rank in range(party.world_size)]


def carry_save(party, words: list[BinaryTensor]) -> list[BinaryTensor]:
    """Reduce the words to two with the same sum, three into two per level (one round each)."""
    while len(words) > 2:
        groups = [words[i : i + 3] for i in range(0, len(words) - len(words) % 3, 3)]
        rest = words[len(groups) * 3 :]
        pairs = []
        for a, b, c in groups:
            pairs += [(a, b), (c, a ^ b)]
        products = and_many(party, pairs)
        reduced = []
        for index, (a, b, c) in enumerate(groups):
            majority = products[2 * index] ^ products[2 * index + 1]
            reduced += [a ^ b ^ c, majority << 1]
        words = reduced + rest
    return words


def add(party, a: BinaryTensor, b: BinaryTensor) -> BinaryTensor:
    """The sum a + b mod 2^64 of two binary-shared words (Kogge-Stone, 7 rounds)."""
    generate = a & b
    propagate = a ^ b
    shift = 1
    while shift < WORD_BITS:
        if shift * 2 < WORD_BITS:
            gp, pp = and_many(party, [(propagate, generate << shift), (propagate, propagate << shift)])
            propagate = pp
        else:  # the last level needs no new propagate term
            (gp,) = and_many(party, [(propagate, generate << shift)])
        generate = generate ^ gp
        shift *= 2
    return a ^ b ^ (generate << 1)


def a2b(party, share: np.ndarray) -> BinaryTensor:
    """Binary sharing of the ring value whose arithmetic share is ``share``."""
    words = carry_save(party, private_inputs(party, share))
    if len(words) == 1:
        return words[0]
    return add(party, words[0], words[1])


def msb(party, share: np.ndarray) -> BinaryTensor:
    """The most significant bit (1 for negative two's complement values), as words 0/1."""
    return a2b(party, share).bit(WORD_BITS - 1)


@wrapping
def b2a(party, bit: BinaryTensor) -> np.ndarray:
    """An arithmetic share of a binary-shared bit (words 0/1), one round with a dabit."""
    r_binary, r_arith = party.dealer.dabits(bit.shape)
    c = BinaryTensor(party, bit.share ^ r_binary).reveal()
    share = r_arith * (np.uint64(1) - np.uint64(2) * c)
    if party.rank == 0:
        share += c
    return share
