"""Function secret sharing against today's comparisons: DCF key generation and evaluation for the ReLU gadget of
:mod:`smpc.mpc.fss.compare`, next to the additive protocol's ReLU (the bit-sliced sign circuit) in the same run.

Not wired into the CLI yet (the FSS gadget is not a protocol option yet). The FSS rows time the two halves on
their own: ``deal`` (the dealer's keys for both parties, offline) and ``eval`` (one party's online work after the
opening of x + r). The LAN estimate adds the one opening (8 bytes per element to the peer) at the LAN preset's
bandwidth and half its round trip to one party's evaluation; both parties evaluate at the same time, so that is
the online wall time once the gadget is wired in, up to the thread hand-offs. Today's ReLU is measured in
``smpc.run`` after sharing, on loopback and on the LAN preset.
"""

from __future__ import annotations

import time

import numpy as np

import smpc
from smpc.mpc.fss import compare, dcf
from smpc.net.network import PRESETS
from smpc.ring.prg import PRG
from smpc_bench.timing import spread, timed


def _relu_program(x: np.ndarray, party):
    shared = party.share(x if party.rank == 0 else None, src=0)
    start = time.perf_counter()
    shared.relu()
    return time.perf_counter() - start


def todays_relu_seconds(elements: int, repeat: int, network=None) -> dict:
    """The additive protocol's ReLU on ``elements`` values (two parties, trusted dealer), timed inside the program
    after sharing: the slower party's time, ``{median, min, max}`` over ``repeat`` runs."""
    x = np.random.default_rng(5).standard_normal(elements)
    smpc.run(lambda party: _relu_program(x[:8], party), parties=2)  # compile and warm
    walls = [max(smpc.run(lambda party: _relu_program(x, party), parties=2, network=network))
             for _ in range(repeat)]
    return spread(walls)


def fss_rows(sizes: tuple[int, ...] = (10**5, 10**6), repeat: int = 3) -> list[dict]:
    """Rows of deal and eval times of the FSS ReLU per size, key bytes, and today's ReLU at the largest size."""
    prg = PRG.fresh()
    warm_masks, warm_0, _ = compare.deal_sign(prg, 8, with_product=True)  # compile the kernels
    compare.eval_relu(0, warm_0, warm_masks[0])
    rows = []
    for size in sizes:
        rows += _size_rows(prg, size, repeat)
    largest = max(sizes)
    fss_lan = rows[-1]["seconds"]["median"]
    for label, network in (("loopback", None), ("LAN preset", PRESETS["lan"])):
        seconds = todays_relu_seconds(largest, repeat, network)
        rows.append({"group": "fss", "elements": largest, "name": f"today's ReLU (additive, sign circuit), "
                     f"{label}, {largest:.0e} elements", "seconds": seconds,
                     "ratio": fss_lan / seconds["median"], "ratio_to": "FSS ReLU online on the LAN preset"})
    return rows


def _size_rows(prg: PRG, size: int, repeat: int) -> list[dict]:
    lan = PRESETS["lan"]
    deal_seconds, (_, keys_0, _) = timed(lambda: compare.deal_sign(prg, size, with_product=True), repeat)
    c = prg.random_ring(size)
    eval_seconds, _ = timed(lambda: compare.eval_relu(0, keys_0, c), repeat)
    dcf_seconds, _ = timed(lambda: dcf.eval(0, keys_0.dcf, c >> np.uint64(1)), repeat)
    opening = 8 * size * 8 / (lan.bandwidth_mbps * 1e6) + lan.one_way_seconds
    base = {"group": "fss", "elements": size, "key_bytes_per_element": compare.sign_key_bytes(True),
            "dcf_key_bytes_per_element": dcf.key_bytes(compare.LOW_BITS, 2)}
    return [
        {**base, "name": f"FSS ReLU keys (deal, both parties), {size:.0e} elements", "seconds": deal_seconds},
        {**base, "name": f"FSS ReLU eval (one party, after the opening), {size:.0e} elements",
         "seconds": eval_seconds},
        {**base, "name": f"  of which the 63-bit DCF eval, {size:.0e} elements", "seconds": dcf_seconds},
        {**base, "name": f"FSS ReLU online on the LAN preset (estimate: eval + one opening), {size:.0e} elements",
         "seconds": {key: value + opening for key, value in eval_seconds.items()}, "rounds": 1,
         "bytes_per_party": 8 * size},
    ]


def print_rows(rows: list[dict]) -> None:
    for row in rows:
        extra = f"  FSS-LAN / this = {row['ratio']:.2f}" if "ratio" in row else ""
        print(f"{row['seconds']['median']:9.3f} s  {row['name']}{extra}")
    print(f"key bytes per element: {rows[0]['key_bytes_per_element']} (ReLU), "
          f"{compare.sign_key_bytes(False)} (sign only)")
