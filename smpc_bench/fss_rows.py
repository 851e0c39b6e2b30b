"""Function secret sharing's two halves, timed on their own: the dealer's keys and one party's evaluation.

The x msb(x) gadget of :mod:`smpc.mpc.fss.compare` (keys ``with_product``, what ReLU takes): ``deal`` makes both
parties' keys (the dealer's offline work), ``eval`` is one party's online work (after the opening of x + r, the
one-bit DCF walk and its share of msb(x) XOR s; after the opening of that, its share of x msb(x)), and the 63-bit
DCF walk is the bulk of it. Each row carries the key bytes per element and party. The end-to-end ReLU with FSS
comparisons, on loopback, the LAN and the WAN, on demand and preprocessed ahead, is in the "networks" group
(:mod:`smpc_bench.network_rows`).
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.fss import bit_dcf, compare
from smpc.ring.bitslice import plane_words
from smpc.ring.prg import PRG
from smpc_bench.timing import timed


def fss_rows(elements: int, repeat: int) -> list[dict]:
    """Deal and eval times of the FSS x msb(x) (ReLU) gadget on ``elements`` elements, with the key bytes."""
    prg = PRG.fresh()
    warm_0, _ = compare.deal_sign(prg, 8, with_product=True)  # compile the kernels
    _evaluate(warm_0, prg.random_ring(8), prg.random_ring(8), prg.random_ring(1))
    deal_seconds, (keys_0, _) = timed(lambda: compare.deal_sign(prg, elements, with_product=True), repeat)
    x_share, c, e = prg.random_ring(elements), prg.random_ring(elements), prg.random_ring(plane_words(elements))
    eval_seconds, _ = timed(lambda: _evaluate(keys_0, x_share, c, e), repeat)
    dcf_seconds, _ = timed(lambda: bit_dcf.eval(0, keys_0.dcf, c >> np.uint64(1)), repeat)
    per_element = compare.sign_key_bytes(elements, True) / max(elements, 1)
    base = {"group": "function secret sharing", "elements": elements, "key_bytes_per_element": per_element,
            "sign_key_bytes_per_element": compare.sign_key_bytes(elements, False) / max(elements, 1)}
    deal = deal_seconds["median"]
    label = f"{per_element:.0f} key bytes per element and party"
    return [
        {**base, "name": f"FSS ReLU keys, both parties (the dealer, offline), {elements:.0e} elements ({label})",
         "seconds": deal_seconds, "ratio": 1.0, "ratio_to": "the deal"},
        {**base, "name": f"FSS ReLU eval, one party (online, around the second opening), {elements:.0e} elements",
         "seconds": eval_seconds, "ratio": eval_seconds["median"] / deal, "ratio_to": "the deal"},
        {**base, "name": f"  of which the 63-bit DCF walk, {elements:.0e} elements", "seconds": dcf_seconds,
         "ratio": dcf_seconds["median"] / deal, "ratio_to": "the deal"},
    ]


def _evaluate(keys: compare.SignKeys, x_share: np.ndarray, c: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Party 0's local work for x msb(x), with ``e`` standing for the opened msb(x) XOR s."""
    compare.masked_sign(0, keys, c)
    return compare.times_sign(0, keys, x_share, c, e)
