"""What a real network adds: ReLU and a fixed-point matmul (after sharing, reveal included) on loopback, the LAN
preset and the WAN preset.

The local transport's network model (:mod:`smpc.net.network`) delivers every frame when that link would. Each row
reports the wall time, how long the busiest party waited for frames in flight (``network_seconds``), the online
rounds and the latency floor those rounds alone cost (rounds x RTT / 2, one way per round). The dealer's replies
travel the same links: on a WAN they sit on the critical path whenever a party needs one, which is why the wall
time can exceed the rounds' floor by more than the transfers explain (a preprocessing phase is future work).
"""

from __future__ import annotations

import functools
import time

import numpy as np

import smpc
from smpc.mpc import registry
from smpc.net.network import PRESETS
from smpc_bench.timing import spread

NETWORKS = (("loopback", None), ("LAN", PRESETS["lan"]), ("WAN", PRESETS["wan"]))


def _program(operation: str, x: np.ndarray, party):
    shared = party.share(x if party.rank == 0 else None, src=0)
    party.reset_stats()
    start = time.perf_counter()
    result = (shared.relu() if operation == "relu" else shared @ shared).reveal()
    stats = party.stats
    stats["wall"] = time.perf_counter() - start
    return result, stats


def network_rows(elements: int, side: int, repeat: int) -> list[dict]:
    """ReLU on ``elements`` values and a ``side`` x ``side`` matmul, per bench protocol and network."""
    rng = np.random.default_rng(4)
    inputs = {"relu": rng.standard_normal(elements), "matmul": rng.standard_normal((side, side))}
    labels = {"relu": f"ReLU, {elements:.0e} elements", "matmul": f"fixed-point matmul {side}x{side}"}
    expected = {"relu": np.maximum(inputs["relu"], 0), "matmul": inputs["matmul"] @ inputs["matmul"]}
    steps = {"relu": lambda t: t.relu().reveal_ring(), "matmul": lambda t: (t @ t).reveal_ring()}
    rows = []
    for protocol, parties in registry.bench_setups():
        label = registry.get(protocol).label
        for operation, x in inputs.items():
            program = functools.partial(_program, operation, x)
            small = x[:8] if x.ndim == 1 else x[:8, :8]
            smpc.run(functools.partial(_program, operation, small), parties=parties, protocol=protocol)  # warm
            theory = smpc.cost(steps[operation], [x.shape], protocol, parties)
            loopback = None
            for network_label, network in NETWORKS:
                walls, last = [], None
                for _ in range(repeat):
                    last = smpc.run(program, parties=parties, protocol=protocol, network=network)
                    walls.append(max(stats["wall"] for _, stats in last))
                seconds = spread(walls)
                loopback = loopback or seconds["median"]
                rounds = max(stats["rounds"] for _, stats in last)
                error = float(np.max(np.abs(last[0][0] - expected[operation])))
                rows.append({
                    "group": "networks",
                    "name": f"{labels[operation]}, {parties}-party {label}, {network_label}"
                            + (f" ({network})" if network else ""),
                    "seconds": seconds,
                    "ratio": seconds["median"] / loopback,
                    "ratio_to": "loopback",
                    "network_seconds": max(stats["network_seconds"] for _, stats in last),
                    "latency_floor_seconds": rounds * (network.one_way_seconds if network else 0.0),
                    "bytes_per_party": max(stats["bytes"] for _, stats in last),
                    "bytes_theory": theory["bytes"],
                    "rounds": rounds,
                    "rounds_theory": theory["rounds"],
                    "max_error": error,
                    "error_bound": 0.01,
                    "within_bound": error <= 0.01,
                })
    return rows
