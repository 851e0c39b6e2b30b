"""Fixed-point quantisation of clipped float updates into Z_2^32 (or Z_2^64) for secure aggregation.

Bonawitz et al. (CCS 2017, figure 4) sum vectors over Z_R; real-valued updates must be
clipped and rounded first. An element x becomes ``rint(clip(x, -c, c) * 2^f)`` in two's
complement. The fraction bits ``f`` are the largest for which the sum of all ``n``
clients' values cannot leave the signed range, ``n * rint(c * 2^f) <= L``, with
``L = 2^31 - 1`` in Z_2^32 and ``L = 2^53`` in Z_2^64 (where 2^53, not 2^63, keeps the
decoded sum exact in float64). So the ring sum, read as a signed integer, *is* the
integer sum, and 32 bits suffice whenever ``n * c * 2^f < 2^31`` leaves useful ``f``:
10 clients with ``c = 16`` get f = 23 (step 1.2e-7).

Error bound: the decoded sum equals ``sum_i rint(clip(x_i) * 2^f) / 2^f`` exactly, so
per element it differs from the sum of the clipped values by at most
``m * 2^-(f+1)`` for ``m`` summed clients (round to nearest; see :func:`error_bound`).
"""

from __future__ import annotations

import math

import numpy as np

#: ring sizes the masks and sums may use
RING_BITS = (32, 64)
#: default clipping bound (2^4): covers standard-normal and unit-scale updates with room to spare
DEFAULT_CLIP = 16.0
_MAX_FRAC_BITS = 960  # keeps 2^f finite in float64 for absurdly small clips


def ring_dtype(ring_bits: int) -> np.dtype:
    """The unsigned dtype of Z_2^ring_bits."""
    _check_ring_bits(ring_bits)
    return np.dtype(np.uint32 if ring_bits == 32 else np.uint64)


def capacity(ring_bits: int) -> int:
    """The largest magnitude the integer sum may reach and still decode exactly."""
    _check_ring_bits(ring_bits)
    return (1 << 31) - 1 if ring_bits == 32 else 1 << 53


def choose_frac_bits(n_clients: int, clip: float, ring_bits: int = 32) -> int:
    """The largest f >= 0 with ``n_clients * rint(clip * 2^f) <= capacity(ring_bits)``.

    Raises ``ValueError`` if even f = 0 does not fit (use a smaller clip or 64 bits).
    """
    check_clip(clip)
    if not isinstance(n_clients, int) or n_clients < 1:
        raise ValueError(f"n_clients must be a positive integer, got {n_clients!r}")
    limit = capacity(ring_bits)
    frac = min(math.floor(math.log2(limit / (n_clients * clip))) + 1, _MAX_FRAC_BITS)
    while frac >= 0 and n_clients * round(clip * 2.0**frac) > limit:
        frac -= 1
    if frac < 0:
        raise ValueError(
            f"{n_clients} clients with clip={clip} overflow Z_2^{ring_bits} even without fraction bits; "
            f"use a smaller clip or ring_bits=64"
        )
    return frac


def check_frac_bits(frac_bits: int, n_clients: int, clip: float, ring_bits: int) -> None:
    """Raise ``ValueError`` if an explicit ``frac_bits`` would let the sum overflow the ring."""
    if not isinstance(frac_bits, int) or isinstance(frac_bits, bool) or frac_bits < 0:
        raise ValueError(f"frac_bits must be a non-negative integer, got {frac_bits!r}")
    most = choose_frac_bits(n_clients, clip, ring_bits)
    if frac_bits > most:
        raise ValueError(
            f"frac_bits={frac_bits} lets {n_clients} clients with clip={clip} overflow Z_2^{ring_bits}; "
            f"at most {most} fit"
        )


def quantize(update: np.ndarray, clip: float, frac_bits: int, ring_bits: int = 32) -> np.ndarray:
    """Clip to [-clip, clip], scale by 2^frac_bits, round to nearest: a flat ring array."""
    scaled = np.clip(np.asarray(update, dtype=np.float64).ravel(), -clip, clip)
    scaled *= 2.0**frac_bits
    np.rint(scaled, out=scaled)
    if ring_bits == 32:
        return scaled.astype(np.int32).view(np.uint32)
    return scaled.astype(np.int64).view(np.uint64)


def dequantize(total: np.ndarray, frac_bits: int, ring_bits: int = 32) -> np.ndarray:
    """A ring sum read as signed fixed point, as float64."""
    signed = np.asarray(total).view(np.int32 if ring_bits == 32 else np.int64)
    return signed.astype(np.float64) / 2.0**frac_bits


def error_bound(n_summed: int, frac_bits: int) -> float:
    """Per-element bound on |decoded sum - sum of clipped inputs|: ``n_summed * 2^-(frac_bits+1)``."""
    return n_summed * 2.0 ** -(frac_bits + 1)


def check_clip(clip: float) -> None:
    """Raise ``ValueError`` unless ``clip`` is a positive finite number."""
    if isinstance(clip, bool) or not isinstance(clip, (int, float, np.floating, np.integer)):
        raise ValueError(f"clip must be a positive finite number, got {clip!r}")
    if not math.isfinite(clip) or clip <= 0:
        raise ValueError(f"clip must be a positive finite number, got {clip!r}")


def _check_ring_bits(ring_bits: int) -> None:
    if ring_bits not in RING_BITS:
        raise ValueError(f"ring_bits must be one of {RING_BITS}, got {ring_bits!r}")
