"""What the wire costs: one 2-party fixed-point matmul over threads, TCP with a session secret, and mutual TLS.

Each party times its own program (share, product, reveal) after the connections are set up, so the
rows compare moving the same bytes through queues, plain sockets and TLS (AES-GCM), not process start-up.
"""

from __future__ import annotations

import functools
import tempfile
import time

import numpy as np

import smpc
from smpc.net.certs import write_deployment
from smpc_bench.cases import _theory
from smpc_bench.timing import spread

TRANSPORTS = (("local", "threads"), ("tcp", "TCP with a session secret"), ("tls", "TCP with mutual TLS"))


def timed_matmul(x: np.ndarray, y: np.ndarray, party):
    """Share x (party 0) and y (party 1), reveal x @ y; return it with this party's stats and wall time."""
    start = time.perf_counter()
    xs = party.share(x if party.rank == 0 else None, src=0)
    ys = party.share(y if party.rank == 1 else None, src=1)
    party.reset_stats()
    z = (xs @ ys).reveal()
    stats = party.stats
    stats["wall"] = time.perf_counter() - start
    return z, stats


def transport_rows(n: int, repeat: int) -> list[dict]:
    """One row per transport; the ratio is to the threads' time."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    program = functools.partial(timed_matmul, x, y)
    theory = _theory("additive", 2, n)
    rows, local_median = [], None
    with tempfile.TemporaryDirectory() as folder:
        write_deployment(folder, 2, dealer=True)
        tls = smpc.TlsConfig.from_directory(folder)
        for key, label in TRANSPORTS:
            transport = "local" if key == "local" else "tcp"
            options = {"tls": tls} if key == "tls" else {}
            smpc.run(functools.partial(timed_matmul, x[:8, :8], y[:8, :8]), parties=2, transport=transport,
                     **options)  # compiled kernels and warm caches in each process
            walls, last = [], None
            for _ in range(repeat):
                last = smpc.run(program, parties=2, transport=transport, **options)
                walls.append(max(stats["wall"] for _, stats in last))
            seconds = spread(walls)
            local_median = local_median or seconds["median"]
            error = float(np.max(np.abs(last[0][0] - x @ y)))
            rows.append({
                "group": "transports",
                "name": f"2-party additive matmul {n}x{n} over {label}",
                "seconds": seconds,
                "ratio": seconds["median"] / local_median,
                "ratio_to": "threads",
                "bytes_per_party": max(stats["bytes"] for _, stats in last),
                "bytes_theory": theory["bytes"],
                "rounds": max(stats["rounds"] for _, stats in last),
                "rounds_theory": theory["rounds"],
                "max_error": error,
                "error_bound": 0.01,
                "within_bound": error <= 0.01,
            })
    return rows
