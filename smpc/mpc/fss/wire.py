"""One party's sign keys (:class:`smpc.mpc.fss.compare.SignKeys`) as a flat uint64 vector for the dealer's reply.

Layout for ``count`` elements, in words: the share of r_63 (count), the share of r r_63 (count, with the product
only), then the DCF key's seed (count x 2), seed corrections (63 x count x 2), value corrections (63 x count x
width), control corrections (count x 2: 16 bytes, 63 pairs of bits zero-padded) and final corrections (count x
width). The mask share is not sent: each party expands it from the PRG it shares with the dealer. The length is
fixed by (count, with_product), so the receiver checks it before reading anything.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.fss import dcf
from smpc.mpc.fss.compare import LOW_BITS, SignKeys

_DCF_CONTROL_BYTES = dcf.control_bytes(LOW_BITS)  # the key's packed control corrections per element (16)
_CONTROL_WORDS = -(-_DCF_CONTROL_BYTES // 8)  # 2


def words_per_element(with_product: bool) -> int:
    """Reply words per element: what :func:`pack` sends for one comparison (195 for the sign, 260 for ReLU)."""
    width = 2 if with_product else 1
    return (2 if with_product else 1) + 2 + LOW_BITS * (2 + width) + _CONTROL_WORDS + width


def pack(keys: SignKeys) -> np.ndarray:
    """The party's keys, without its mask share, as one uint64 vector."""
    key = keys.dcf
    m = keys.count
    control = np.zeros((m, 8 * _CONTROL_WORDS), np.uint8)
    control[:, : key.control_cw.shape[1]] = key.control_cw
    parts = [keys.top, *([keys.top_product] if keys.with_product else []), key.seed.reshape(-1),
             key.seed_cw.reshape(-1), key.value_cw.reshape(-1), control.view(np.uint64).reshape(-1),
             key.final_cw.reshape(-1)]
    return np.concatenate([np.ascontiguousarray(part, dtype=np.uint64).reshape(-1) for part in parts])


def unpack(party: int, words: np.ndarray, mask: np.ndarray, with_product: bool) -> SignKeys:
    """Party ``party``'s :class:`SignKeys` from :func:`pack`'s vector and its own mask share (shape (count,))."""
    m = mask.shape[0]
    width = 2 if with_product else 1
    if words.dtype != np.uint64 or words.shape != (m * words_per_element(with_product),):
        raise ValueError(f"sign keys for {m} elements are {m * words_per_element(with_product)} uint64 words, "
                         f"got {words.dtype}{list(words.shape)}")
    at = 0

    def take(count: int) -> np.ndarray:
        nonlocal at
        part = words[at : at + count]
        at += count
        return part

    top = take(m)
    top_product = take(m) if with_product else None
    seed = take(2 * m).reshape(m, 2)
    seed_cw = take(LOW_BITS * m * 2).reshape(LOW_BITS, m, 2)
    value_cw = take(LOW_BITS * m * width).reshape(LOW_BITS, m, width)
    control = take(m * _CONTROL_WORDS).reshape(m, _CONTROL_WORDS).view(np.uint8)[:, :_DCF_CONTROL_BYTES]
    final_cw = take(m * width).reshape(m, width)
    key = dcf.DCFKeys(party, LOW_BITS, seed, seed_cw, value_cw, np.ascontiguousarray(control), final_cw)
    return SignKeys(party, mask, top, top_product, key)
