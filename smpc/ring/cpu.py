"""What the CPU offers, as Linux reports it: the kernels that need an instruction set extension ask here."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (``avx512f``, ``vaes``, ``amx_int8``, ...); empty where there is
    no such file (other systems), so every optional kernel stays off there."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()
