"""The non-linear functions against their goals in Y, one 1000x1000 float64 matmul timed in the same run.

``python -m smpc_bench.nonlinear_goals [--elements N] [--repeat R] [--setups additive:2,aby3:3]``

Each function runs on N shared elements (softmax: rows of 1000) with the reveal included, as CrypTen's
figures are measured; the median of R runs is set beside its goal in Y and CrypTen 0.4.1's time on this
machine (quoted from the project's issue, 2 parties, 10^6 elements). The peak resident memory of each run
(all parties and the dealer are threads of this process) is sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from typing import Callable

import numpy as np

import smpc
from smpc.mpc import functions, transformer_functions
from smpc.net.allocator import release_freed_memory, restart_tuned
from smpc.mpc import registry
from smpc_bench.memory import PeakMemory

#: (name, function on a shared tensor, inputs, goal in Y, CrypTen 0.4.1 seconds at 10^6 elements, 2 parties)
GOALS: list[tuple[str, Callable, Callable, float, float | None]] = [
    ("exp", functions.exp, lambda rng, n: rng.uniform(-8, 8, n), 55, 1.51),
    ("sigmoid", functions.sigmoid, lambda rng, n: rng.normal(0, 4, n), 55, 7.33),
    ("GELU", transformer_functions.gelu, lambda rng, n: rng.normal(0, 2, n), 85, None),
    ("reciprocal", functions.reciprocal, lambda rng, n: np.exp(rng.uniform(-4.6, 4.6, n)), 85, 10.5),
    ("inv_sqrt", functions.inv_sqrt, lambda rng, n: np.exp(rng.uniform(-4.6, 9.2, n)), 85, None),
    ("softmax (rows of 1000)", lambda x: functions.softmax(x, axis=-1),
     lambda rng, n: rng.normal(0, 3, (max(n // 1000, 1), min(n, 1000))), 110, 21.2),
]


def matmul_seconds(repeat: int = 5) -> float:
    """Y: the median time of one 1000x1000 float64 matmul."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1000, 1000)), rng.normal(size=(1000, 1000))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def goal_rows(n: int, setups: list[tuple[str, int]], repeat: int) -> list[dict]:
    """One row per function and setup: median seconds (reveal included), ratio in Y, goal, peak memory."""
    rng = np.random.default_rng(5)
    y_seconds = matmul_seconds()
    rows = []
    for protocol, parties in setups:  # one untimed run at full size: the process's memory grows once, not in row 1
        smpc.run(lambda party: GOALS[0][1](party.share(np.zeros(n) if party.rank == 0 else None, src=0)).reveal(),
                 parties=parties, protocol=protocol)
    for name, fn, inputs, goal, crypten in GOALS:
        x = inputs(rng, n)

        def program(party, x=x, fn=fn):
            shared = party.share(x if party.rank == 0 else None, src=0)
            start = time.perf_counter()
            fn(shared).reveal()
            return time.perf_counter() - start

        warm = x[:64] if x.ndim == 1 else x[:1]
        for protocol, parties in setups:
            release_freed_memory()  # the row's peak is its own, not what earlier rows left free in the heap
            smpc.run(functools.partial(program, x=warm), parties=parties, protocol=protocol)  # warm up the kernels
            seconds, peak = [], 0
            for _ in range(repeat):
                with PeakMemory() as memory:
                    seconds.append(max(smpc.run(program, parties=parties, protocol=protocol)))
                peak = max(peak, memory.peak or 0)
            median = statistics.median(seconds)
            rows.append({"name": name, "setup": f"{parties}-party {protocol}", "elements": int(x.size),
                         "seconds": median, "in_y": median / y_seconds, "goal_y": goal, "y_seconds": y_seconds,
                         "crypten_seconds": crypten, "peak_gib": peak / 2**30})
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    lines = ["| function | setup | elements | seconds | in Y | goal | CrypTen 0.4.1 (quoted) | peak memory |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        crypten = f"{row['crypten_seconds']} s" if row["crypten_seconds"] else "-"
        lines.append(f"| {row['name']} | {row['setup']} | {row['elements']:.0e} | {row['seconds']:.2f} s | "
                     f"{row['in_y']:.0f} Y | <= {row['goal_y']:.0f} Y | {crypten} | {row['peak_gib']:.1f} GiB |")
    lines.append(f"\nY = {rows[0]['y_seconds'] * 1000:.1f} ms (one 1000x1000 float64 matmul, this run).")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--setups", default="additive:2,aby3:3")
    args = parser.parse_args(argv)
    if args.elements < 1 or args.repeat < 1:
        raise SystemExit("--elements and --repeat must be at least 1")
    setups = []
    for item in args.setups.split(","):
        protocol, _, parties = item.partition(":")
        if protocol not in registry.protocols() or not parties.isdigit():
            raise SystemExit(f"--setups: expected protocol:parties items, got {item!r}")
        setups.append((protocol, int(parties)))
    print(markdown(goal_rows(args.elements, setups, args.repeat)))


if __name__ == "__main__":
    restart_tuned()
    main()
