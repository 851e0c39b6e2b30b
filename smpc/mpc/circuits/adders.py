"""Binary adders on XOR-shared 64-bit words, for any protocol that supplies an ``and_many``.

``and_many_fn(pairs)`` ANDs several pairs of shared words in one round; everything
else (XOR, shifts) is local, so these adders serve the additive and aby3 protocols alike.
"""

from __future__ import annotations

from typing import Callable, Sequence

WORD_BITS = 64

AndMany = Callable[[Sequence[tuple]], list]


def prefix_carries(and_many_fn: AndMany, generate, propagate, shift: int = 1):
    """Kogge-Stone prefix (Kogge and Stone, 1973) from level ``shift``: G[i] = carry out of bits 0..i.

    ``generate``/``propagate`` are the (G, P) of blocks of ``shift`` bits; each level
    G = G ^ (P & (G << s)), P = P & (P << s) doubles s (G and P & (G << s) are
    disjoint, so the OR is an XOR). One round per level, log2(64 / shift) rounds; both
    ANDs of a level go in one ``and_many`` call, the last level skips P.
    """
    while shift < WORD_BITS:
        if 2 * shift < WORD_BITS:
            carried, propagate = and_many_fn([(propagate, generate << shift), (propagate, propagate << shift)])
        else:
            (carried,) = and_many_fn([(propagate, generate << shift)])
        generate = generate ^ carried
        shift *= 2
    return generate


def add(and_many_fn: AndMany, a, b):
    """a + b mod 2^64 of two XOR-shared words: 1 + 6 = 7 rounds, 12 words per element."""
    (generate,) = and_many_fn([(a, b)])
    propagate = a ^ b
    return propagate ^ (prefix_carries(and_many_fn, generate, propagate) << 1)


def carry_save(and_many_fn: AndMany, words: list) -> list:
    """Reduce XOR-shared words to two with the same sum; one round and one AND per three words.

    a + b + c = (a ^ b ^ c) + (maj(a, b, c) << 1), maj(a, b, c) = ((a ^ c) & (b ^ c)) ^ c.
    """
    words = list(words)
    while len(words) > 2:
        groups = [words[i : i + 3] for i in range(0, len(words) - len(words) % 3, 3)]
        rest = words[3 * len(groups) :]
        products = and_many_fn([(a ^ c, b ^ c) for a, b, c in groups])
        reduced = []
        for (a, b, c), product in zip(groups, products):
            reduced += [a ^ b ^ c, (product ^ c) << 1]
        words = reduced + rest
    return words
