"""Bench rows for Z_2^128 (two uint64 limbs, where SPDZ2k keeps its shares) against the Z_2^64 kernels every
protocol runs on today: the matrix and the element-wise product, the two rings timed alternately in one run so
that both see the same machine load (ratio: 128-bit / 64-bit)."""

from __future__ import annotations

import time
from typing import Callable

from smpc.ring import ring128
from smpc.ring.jit import warmup as warm_ring
from smpc.ring.prg import PRG, derive_key
from smpc.ring.rings import RING64, RING128
from smpc_bench.timing import spread

GROUP = "ring kernels"


def _alternately(first: Callable[[], object], second: Callable[[], object], repeat: int) -> tuple[dict, dict]:
    """Seconds of ``first`` and of ``second`` ({median, min, max}), run in turns after one untimed run each."""
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, seconds in zip((first, second), times):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
    return spread(times[0]), spread(times[1])


def _row(what: str, wide: dict, narrow: dict) -> dict:
    return {"group": GROUP,
            "name": f"{what}: Z_2^128 {wide['median'] * 1e3:.3g} ms, Z_2^64 {narrow['median'] * 1e3:.3g} ms",
            "seconds": wide, "seconds_64": narrow, "ratio": wide["median"] / narrow["median"],
            "ratio_to": "the Z_2^64 kernel"}


def ring128_rows(n: int = 1000, repeat: int = 5) -> list[dict]:
    """The n x n matrix product and the n*n-element product in Z_2^128 against Z_2^64, on the same machine."""
    warm_ring()
    ring128.warmup()
    prg = PRG(derive_key(b"smpc-bench", "ring128 rows"))
    a64, b64 = RING64.random(prg, (n, n)), RING64.random(prg, (n, n))
    a128, b128 = RING128.random(prg, (n, n)), RING128.random(prg, (n, n))
    rows = []
    wide, narrow = _alternately(lambda: RING128.matmul(a128, b128), lambda: RING64.matmul(a64, b64), repeat)
    rows.append(_row(f"matmul {n}x{n} @ {n}x{n}", wide, narrow))
    wide, narrow = _alternately(lambda: RING128.mul(a128, b128), lambda: RING64.mul(a64, b64), repeat)
    rows.append(_row(f"element-wise product of {n * n:,} elements", wide, narrow))
    return rows
