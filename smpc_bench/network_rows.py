"""What a real network adds: ReLU and a fixed-point matmul (after sharing, reveal included) on loopback, the LAN
preset and the WAN preset.

The local transport's network model (:mod:`smpc.net.network`) delivers every frame when that link would. Each row
reports the wall time, how long the busiest party waited for frames in flight (``network_seconds``), the online
rounds and the latency floor those rounds alone cost (rounds x RTT / 2, one way per round). The dealer's replies
travel the same links: on demand they sit on the critical path whenever a party needs one, so the wall time can
exceed the rounds' floor by more than the transfers explain. Each row therefore also runs the program with
``preprocessing="ahead"`` (where the protocol's source supports it) and reports that run's offline phase (the
planning pass that fetches all the dealer's material, the busiest party) apart from its online phase.

Setups: every bench protocol at its bench party count, and protocols that join this group only (``bench_groups``:
the additive protocol with FSS comparisons).
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


def _timed_runs(program, setup: tuple[str, int], network, repeat: int, preprocessing: str | None):
    """(online walls, planning-pass walls, the last run's results) over ``repeat`` runs; the busiest party's."""
    protocol, parties = setup
    walls, offline, last = [], [], None
    for _ in range(repeat):
        last = smpc.run(program, parties=parties, protocol=protocol, network=network, preprocessing=preprocessing)
        walls.append(max(stats["wall"] for _, stats in last))
        offline.append(max(stats["preprocessing_seconds"] for _, stats in last))
    return walls, offline, last


def network_rows(elements: int, side: int, repeat: int) -> list[dict]:
    """ReLU on ``elements`` values and a ``side`` x ``side`` matmul, per protocol and network, on demand and (where
    the protocol allows it) with the dealer's material fetched ahead."""
    rng = np.random.default_rng(4)
    inputs = {"relu": rng.standard_normal(elements), "matmul": rng.standard_normal((side, side))}
    labels = {"relu": f"ReLU, {elements:.0e} elements", "matmul": f"fixed-point matmul {side}x{side}"}
    expected = {"relu": np.maximum(inputs["relu"], 0), "matmul": inputs["matmul"] @ inputs["matmul"]}
    steps = {"relu": lambda t: t.relu().reveal_ring(), "matmul": lambda t: (t @ t).reveal_ring()}
    rows = []
    for protocol, parties in registry.bench_setups(group="networks"):
        spec = registry.get(protocol)
        ahead = "ahead" if spec.kind(None).preprocessing else None
        for operation, x in inputs.items():
            program = functools.partial(_program, operation, x)
            small = x[:8] if x.ndim == 1 else x[:8, :8]
            smpc.run(functools.partial(_program, operation, small), parties=parties, protocol=protocol)  # warm
            theory = smpc.cost(steps[operation], [x.shape], protocol, parties)
            loopback = None
            for network_label, network in NETWORKS:
                walls, _, last = _timed_runs(program, (protocol, parties), network, repeat, None)
                seconds = spread(walls)
                loopback = loopback or seconds["median"]
                rounds = max(stats["rounds"] for _, stats in last)
                error = float(np.max(np.abs(last[0][0] - expected[operation])))
                row = {
                    "group": "networks",
                    "name": f"{labels[operation]}, {parties}-party {spec.label}, {network_label}"
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
                }
                if ahead:
                    walls, offline, last = _timed_runs(program, (protocol, parties), network, repeat, ahead)
                    error = max(error, float(np.max(np.abs(last[0][0] - expected[operation]))))
                    row.update(offline_seconds=spread(offline), online_seconds=spread(walls),
                               max_error=error, within_bound=error <= 0.01)
                rows.append(row)
    return rows
