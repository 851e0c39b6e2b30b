"""One party's sign keys (:class:`smpc.mpc.fss.compare.SignKeys`) as a flat uint64 vector for the dealer's reply.

Layout for ``count`` elements, in words: the DCF key's seed (count x 2), seed corrections (62 x count x 2) and bit
planes (190 x ceil(count / 64)), then at party 1 only its additive shares of s (count) and, with the product, of
r s (count). The shares of r and u (and party 0's of s and r s) are not sent: each party expands them from the PRG
it shares with the dealer. The length is fixed by (party, count, with_product), so the receiver checks it before
reading anything.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from smpc.mpc.fss import bit_dcf
from smpc.mpc.fss.compare import LOW_BITS, SignKeys, SignShares
from smpc.ring.bitslice import plane_words

_PLANES = 3 * LOW_BITS + 1


def reply_words(party: int, count: int, with_product: bool) -> int:
    """Words of the dealer's reply to ``party`` for ``count`` elements (what :func:`pack` makes)."""
    extra = (2 if with_product else 1) * count if party == 1 else 0
    return 2 * count + 2 * (LOW_BITS - 1) * count + _PLANES * plane_words(count) + extra


def max_count(limit: int) -> int:
    """The most elements whose largest reply (party 1's, with the product) takes at most ``limit`` words."""
    per_64 = reply_words(1, 64, True)  # the reply grows by this much per 64 elements
    count = max(0, 64 * (limit // per_64) - 64)
    while reply_words(1, count + 1, True) <= limit:  # less than 2 x 64 steps
        count += 1
    return count


def pack(keys: SignKeys) -> np.ndarray:
    """The party's keys, without what it draws from its PRG, as one uint64 vector."""
    key = keys.dcf
    parts = [key.seed, key.seed_cw, key.bits_cw]
    if keys.party == 1:
        parts += [keys.shares.dabit, *([keys.shares.dabit_product] if keys.with_product else [])]
    return np.concatenate([np.ascontiguousarray(part, dtype=np.uint64).reshape(-1) for part in parts])


def unpack(party: int, words: np.ndarray, shares: SignShares) -> SignKeys:
    """Party ``party``'s :class:`SignKeys` from :func:`pack`'s vector and the shares it drew from its PRG."""
    m = shares.count
    expected = reply_words(party, m, shares.with_product)
    if words.dtype != np.uint64 or words.shape != (expected,):
        raise ValueError(f"party {party}'s sign keys for {m} elements are {expected} uint64 words, "
                         f"got {words.dtype}{list(words.shape)}")
    at = 0

    def take(count: int) -> np.ndarray:
        nonlocal at
        part = words[at : at + count]
        at += count
        return part

    seed = take(2 * m).reshape(m, 2)
    seed_cw = take(2 * (LOW_BITS - 1) * m).reshape(LOW_BITS - 1, m, 2)
    bits_cw = take(_PLANES * plane_words(m)).reshape(_PLANES, plane_words(m))
    if party == 1:
        shares = replace(shares, dabit=take(m), dabit_product=take(m) if shares.with_product else None)
    return SignKeys(party, shares, bit_dcf.BitDCFKeys(party, LOW_BITS, seed, seed_cw, bits_cw))
