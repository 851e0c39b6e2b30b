"""Function secret sharing's two halves, timed on their own: the dealer's DCF keys and one party's evaluation.

The ReLU gadget of :mod:`smpc.mpc.fss.compare` (keys ``with_product``): ``deal`` makes both parties' keys (the
dealer's offline work), ``eval`` is one party's online work after the opening of x + r, and the 63-bit DCF walk is
the bulk of it. Each row carries the key bytes per element and party. The end-to-end ReLU with FSS comparisons, on
loopback, the LAN and the WAN, on demand and preprocessed ahead, is in the "networks" group
(:mod:`smpc_bench.network_rows`).
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.fss import compare, dcf
from smpc.ring.prg import PRG
from smpc_bench.timing import timed


def fss_rows(elements: int, repeat: int) -> list[dict]:
    """Deal and eval times of the FSS ReLU on ``elements`` elements, with the key bytes."""
    prg = PRG.fresh()
    warm_masks, warm_0, _ = compare.deal_sign(prg, 8, with_product=True)  # compile the kernels
    compare.eval_relu(0, warm_0, warm_masks[0])
    deal_seconds, (_, keys_0, _) = timed(lambda: compare.deal_sign(prg, elements, with_product=True), repeat)
    c = prg.random_ring(elements)
    eval_seconds, _ = timed(lambda: compare.eval_relu(0, keys_0, c), repeat)
    dcf_seconds, _ = timed(lambda: dcf.eval(0, keys_0.dcf, c >> np.uint64(1)), repeat)
    base = {"group": "function secret sharing", "elements": elements,
            "key_bytes_per_element": compare.sign_key_bytes(True),
            "sign_key_bytes_per_element": compare.sign_key_bytes(False)}
    deal = deal_seconds["median"]
    per_element = f"{compare.sign_key_bytes(True)} key bytes per element and party"
    return [
        {**base, "name": f"FSS ReLU keys, both parties (the dealer, offline), {elements:.0e} elements ({per_element})",
         "seconds": deal_seconds, "ratio": 1.0, "ratio_to": "the deal"},
        {**base, "name": f"FSS ReLU eval, one party (online, after the opening), {elements:.0e} elements",
         "seconds": eval_seconds, "ratio": eval_seconds["median"] / deal, "ratio_to": "the deal"},
        {**base, "name": f"  of which the 63-bit DCF walk, {elements:.0e} elements", "seconds": dcf_seconds,
         "ratio": dcf_seconds["median"] / deal, "ratio_to": "the deal"},
    ]
