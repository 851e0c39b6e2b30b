"""The benchmark cases behind ``python -m smpc_bench``: each returns rows for the table.

Every case is measured ``repeat`` times; rows carry the median and the spread (min, max).
MPC cases report the total time (dealer and reveal included), the dealer's busy time
(offline), the parties' time outside the dealer (online), bytes and rounds next to
their theoretical values, and the maximum error against plaintext numpy.
"""

from __future__ import annotations

import time

import numpy as np

import smpc
from smpc.mpc import registry
from smpc.mpc.cost import cost
from smpc.ring import matmul as ring_matmul
from smpc.ring.jit import warmup
from smpc_bench import dp_rows
from smpc_bench.timing import spread, timed

OVERHEAD_SETUPS = tuple(registry.bench_setups(group="overhead"))  # the overhead table's MPC columns


def ring_matmul_rows(n: int, repeat: int) -> list[dict]:
    """Exact Z_2^64 matmul: numpy's uint64 loop vs smpc's kernel, and float64 BLAS."""
    warmup()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**64, size=(n, n), dtype=np.uint64)
    b = rng.integers(0, 2**64, size=(n, n), dtype=np.uint64)
    fa, fb = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    numpy_time, expected = timed(lambda: np.matmul(a, b), max(1, min(repeat, 3)))
    ours, got = timed(lambda: ring_matmul(a, b), repeat)
    blas, _ = timed(lambda: fa @ fb, repeat)
    exact = bool(np.array_equal(got, expected))
    label = f"{n}x{n} @ {n}x{n}"
    return [
        {"group": "ring matmul", "name": f"numpy uint64 matmul {label}", "seconds": numpy_time,
         "ratio": 1.0, "ratio_to": "numpy uint64", "exact": True},
        {"group": "ring matmul", "name": f"smpc.ring.matmul {label}", "seconds": ours,
         "ratio": ours["median"] / numpy_time["median"], "ratio_to": "numpy uint64", "exact": exact,
         "speedup": numpy_time["median"] / ours["median"]},
        {"group": "ring matmul", "name": f"float64 BLAS matmul {label} (inexact reference)", "seconds": blas,
         "ratio": blas["median"] / numpy_time["median"], "ratio_to": "numpy uint64", "exact": False},
    ]


def _mpc_matmul_program(x: np.ndarray, y: np.ndarray):
    def program(party):
        start = time.perf_counter()
        xs = party.share(x if party.rank == 0 else None, src=0)
        ys = party.share(y if party.rank == party.world_size - 1 else None, src=party.world_size - 1)
        party.reset_stats()
        z = (xs @ ys).reveal()
        stats = party.stats
        stats["wall"] = time.perf_counter() - start
        return z, stats

    return program


def _theory(protocol: str, parties: int, n: int) -> dict:
    """Bytes (the busiest party), dealer bytes (sharing the two inputs included), rounds and ring matmuls of a
    fixed-point matmul and reveal."""
    theory = cost(lambda x, y: (x @ y).reveal_ring(), [(n, n), (n, n)], protocol, parties)
    theory["dealer_bytes"] += registry.get(protocol).cost(parties).setup_dealer_bytes([(n, n), (n, n)])
    return theory


def mpc_matmul_rows(n: int, setups: list[tuple[str, int]], repeat: int) -> list[dict]:
    """Fixed-point n x n matmul: plaintext float64, then MPC for each (protocol, parties)."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    plain, reference = timed(lambda: x @ y, repeat, warmup=True)
    rows = [{"group": "fixed-point matmul", "name": f"plaintext numpy float64 {n}x{n}", "seconds": plain,
             "ratio": 1.0, "ratio_to": "plaintext", "cell": ["matmul", "plaintext"]}]
    rows.append(dp_rows.matmul_row(x, y, plain, repeat))
    program = _mpc_matmul_program(x, y)
    smpc.run(_mpc_matmul_program(x[:8, :8], y[:8, :8]), parties=2)  # compile kernels first
    ring = rng.integers(0, 2**64, size=(n, n), dtype=np.uint64)
    one_ring_matmul, _ = timed(lambda: ring_matmul(ring, ring), repeat)
    for protocol, parties in setups:
        totals, offline, online, last = [], [], [], None
        for _ in range(repeat):
            report = smpc.launch(program, parties=parties, protocol=protocol)
            wall = max(stats["wall"] for _, stats in report.results)
            totals.append(wall)
            offline.append(report.dealer_stats["offline_seconds"] if report.dealer_stats else 0.0)
            online.append(max(stats["wall"] - stats["offline_seconds"] for _, stats in report.results))
            last = report
        z = last.results[0][0]
        theory = _theory(protocol, parties, n)
        total = spread(totals)
        kind = registry.get(protocol).label
        rows.append({
            "group": "fixed-point matmul",
            "name": f"{parties}-party {kind} {n}x{n}",
            "seconds": total,
            "offline_seconds": spread(offline),
            "online_seconds": spread(online),
            "ratio": total["median"] / plain["median"],
            "ratio_to": "plaintext",
            # the floor: the ring matmuls the protocol cannot avoid, run one after another
            "floor_seconds": theory["ring_products"] * one_ring_matmul["median"],
            "bytes_per_party": max(stats["bytes"] for _, stats in last.results),
            "bytes_theory": theory["bytes"],
            "dealer_bytes": last.dealer_stats["offline_bytes_sent"] if last.dealer_stats else 0,
            "dealer_bytes_theory": theory["dealer_bytes"],
            "rounds": max(stats["rounds"] for _, stats in last.results),
            "rounds_theory": theory["rounds"],
            "max_error": float(np.max(np.abs(z - reference))),
            "error_bound": 0.01,
            "within_bound": bool(np.max(np.abs(z - reference)) <= 0.01),
            "cell": ["matmul", protocol] if (protocol, parties) in OVERHEAD_SETUPS else None,
        })
    return rows
