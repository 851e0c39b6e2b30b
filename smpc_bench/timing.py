"""Timing helpers of the bench: run a callable several times, report the median and the spread."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def timed(fn: Callable[[], object], repeat: int, warmup: bool = False) -> tuple[dict, object]:
    """Run ``fn`` ``repeat`` times; return ``{median, min, max}`` seconds and the last result.

    ``warmup``: one untimed run first, so first-touch page faults and lazy initialisation do not land in a
    timed run of a cell that takes milliseconds.
    """
    if warmup:
        fn()
    seconds, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return spread(seconds), result


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
