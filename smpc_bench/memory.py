"""Peak-memory estimates of the bench's cases, checked before anything is allocated.

Each estimate is bytes per element times the elements the case holds at its peak (every party's
shares, the dealer's triples and the numpy temporaries included, all in one process), fitted to the
peak resident memory measured for each case at two sizes on the development machine and rounded up.
"""

from __future__ import annotations

import os
import resource
import threading

GIB = 2**30
MIB = 2**20
# measured peaks above the imported baseline (AMD EPYC, 2 cores): ring matmul 82 / 131 MiB at n = 500 / 1000;
# fixed-point matmul (three setups) 231 / 562 MiB; non-linear rows 1.7 / 11.0 GiB at 10^5 / 10^6 elements;
# ResNet-18 (plaintext, DP, additive, aby3) 1.85 / 1.87 GiB at 64 / 224 pixels; aggregation of 10 clients
# 145 / 348 MiB at 3 10^5 / 10^6 parameters
_RESNET_FIXED = 2 * GIB  # weights, their shares and folded copies in every party, at any image size
_RESNET_PER_PIXEL = 4096  # activations, im2col buffers and Beaver masks per input pixel (3 channels)
# imported models (MobileNetV2, ResNet-18 imported and built-in, ResNet-50 converted, torch's copies too; Xeon,
# 2 cores): 1.60 / 1.58 GiB above the imported baseline at 32 / 224 pixels (the weights dominate)
_IMPORTED_FIXED = 2 * GIB
_IMPORTED_PER_PIXEL = 4096


def estimate_bytes(sizes: dict) -> dict[str, int]:
    """Estimated peak bytes of each bench case for the given sizes."""
    return {
        "exact ring matmul": 96 * sizes["ring"] ** 2 + 64 * MIB,
        "fixed-point matmul": 512 * sizes["mpc"] ** 2 + 128 * MIB,
        "transports": 512 * sizes["mpc"] ** 2 + 128 * MIB,  # the 2-party matmul, its processes apart
        "comparisons and non-linear functions": 12_000 * sizes["elements"] + GIB,
        # FSS ReLU keys: about 2 KB per element for each party and the dealer's copy, twice over when preprocessed
        "networks": 12_000 * min(sizes["elements"], 100_000) + 512 * min(sizes["mpc"], 500) ** 2 + GIB,
        "function secret sharing": 8_000 * min(sizes["elements"], 100_000) + 256 * MIB,
        "ResNet-18 inference": _RESNET_FIXED + _RESNET_PER_PIXEL * sizes["image"] ** 2,
        "imported models": _IMPORTED_FIXED + _IMPORTED_PER_PIXEL * sizes["image"] ** 2,
        "gradient aggregation": 48 * sizes["clients"] * sizes["parameters"] + 64 * MIB,
        "imported transformers": max((_transformer_bytes(sizes[key], words) for key, words in _VOCABULARIES.items()
                                      if key in sizes), default=0),
    }


_VOCABULARIES = {"bert": 30522, "gpt2": 50257, "vit": 0}  # the transformers' families, their default vocabularies


def _transformer_bytes(model: dict, vocabulary: int) -> int:
    """The transformers' rows in one process (Xeon, 2 cores; each family's 2-party additive row, then its aby3 one)
    peaked at 11.6 GiB with BERT-base, 13.3 GiB with GPT-2 small (its 50257-word head), 9.8 GiB with ViT-Base/16:
    2 GiB plus 1 GiB per layer, scaled by the width, and 48 bytes per value of the token embedding."""
    width, layers = model.get("hidden", 768), model.get("layers", 12)
    words = model.get("vocabulary", vocabulary) if vocabulary else 0
    return int((2 * GIB + GIB * layers) * width / 768) + 48 * words * width + 64 * MIB


def available_bytes() -> int | None:
    """Memory the bench may use: MemAvailable from /proc/meminfo, else physical memory, else None."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(sizes: dict, available: int | None = None, cases: list[str] | None = None) -> None:
    """Raise ``MemoryError`` naming the case, its estimate and the memory available if one of ``cases`` (default:
    every case with an estimate) would not fit."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    for case, need in estimate_bytes(sizes).items():
        if (cases is None or case in cases) and need > available:
            raise MemoryError(f"{case} at these sizes needs about {need / GIB:.1f} GiB (estimated before "
                              f"allocating anything); this machine has {available / GIB:.1f} GiB available")


def _resident_bytes() -> int | None:
    """This process's resident memory now (Linux /proc), or None."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _lifetime_peak_bytes() -> int:
    """The process's peak resident memory so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if os.uname().sysname == "Darwin" else peak * 1024


class PeakMemory:
    """Samples the process's resident memory in a thread while the block runs: ``peak`` and ``before`` (bytes).

    The whole process: under the local transport every party and the dealer are its threads. Falls back to the
    lifetime peak (ru_maxrss) where /proc is missing (then a peak reached earlier in the process may show).
    """

    def __init__(self, period: float = 0.02):
        self.period, self.before, self.peak = period, None, None
        self._stop = threading.Event()
        self._thread = None

    def _sample(self) -> None:
        while not self._stop.wait(self.period):
            now = _resident_bytes()
            if now is not None and now > self.peak:
                self.peak = now

    def __enter__(self) -> "PeakMemory":
        self.before = _resident_bytes()
        if self.before is not None:
            self.peak = self.before
            self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            now = _resident_bytes()
            self.peak = max(self.peak, now) if now is not None else self.peak
        else:
            self.peak = _lifetime_peak_bytes()
