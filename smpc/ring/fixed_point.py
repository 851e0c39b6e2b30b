"""Fixed-point encoding of real numbers into Z_2^64 (two's complement, ``frac_bits`` fraction bits)."""

from __future__ import annotations

from typing import NoReturn

import numpy as np
from numba import njit

DEFAULT_FRAC_BITS = 16
RING_BITS = 64
#: values must satisfy |x| < 2^(MAGNITUDE_BITS - frac_bits) to be encoded
MAGNITUDE_BITS = 62


def max_magnitude(frac_bits: int = DEFAULT_FRAC_BITS) -> float:
    """The bound 2^(62 - frac_bits) that every encoded magnitude must stay below."""
    _check_frac_bits(frac_bits)
    return float(2 ** (MAGNITUDE_BITS - frac_bits))


# Arrays this large are encoded by one compiled pass (check, scale, round, convert) instead of numpy's
# five temporaries; below it numpy's per-call overhead is smaller than the kernel's.
_KERNEL_MIN_SIZE = 1 << 14


@njit(cache=True, nogil=True)
def _encode_pass(values, scale, limit, out):  # pragma: no cover (compiled)
    """out[i] = rint(values[i] * scale) while |values[i]| < limit; the index of the first other value, else -1."""
    for i in range(values.size):
        v = values[i]
        if not abs(v) < limit:  # NaN and infinities fail this comparison too
            return i
        out[i] = np.int64(np.rint(v * scale))
    return -1


def encode(x, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
    """Encode reals as ``round(x * 2^frac_bits)`` in Z_2^64 (uint64, round half to even).

    Raises ``ValueError`` naming the first offending value for NaN, inf, or a magnitude
    at or above :func:`max_magnitude`; nothing wraps silently.
    """
    _check_frac_bits(frac_bits)
    values = np.asarray(x, dtype=np.float64)
    limit = max_magnitude(frac_bits)
    if values.size >= _KERNEL_MIN_SIZE:
        flat = np.ascontiguousarray(values).reshape(-1)
        out = np.empty(flat.size, dtype=np.int64)
        first_bad = _encode_pass(flat, float(2**frac_bits), limit, out)
        if first_bad < 0:
            return out.view(np.uint64).reshape(values.shape)
        _refuse(values, np.unravel_index(first_bad, values.shape), frac_bits)
    bad = ~np.isfinite(values) | (np.abs(values) >= limit)
    if bad.any():
        _refuse(values, np.argwhere(bad)[0], frac_bits)
    scaled = np.rint(values * float(2**frac_bits))
    return scaled.astype(np.int64).view(np.uint64)


def _refuse(values: np.ndarray, index, frac_bits: int) -> NoReturn:
    index = tuple(int(i) for i in index)
    value = values[index] if values.ndim else values.item()
    raise ValueError(
        f"cannot fixed-point encode {value!r} at index {index}: values must be finite "
        f"with |x| < 2^{MAGNITUDE_BITS - frac_bits} for frac_bits={frac_bits}"
    )


def decode(u, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
    """Decode ring elements (two's complement) to float64 by dividing by 2^frac_bits."""
    _check_frac_bits(frac_bits)
    signed = np.asarray(u, dtype=np.uint64).view(np.int64)
    return signed.astype(np.float64) / float(2**frac_bits)


def _check_frac_bits(frac_bits: int) -> None:
    if not isinstance(frac_bits, (int, np.integer)) or not 0 <= frac_bits <= 30:
        raise ValueError(f"frac_bits must be an integer in [0, 30], got {frac_bits!r}")


def warmup() -> None:
    """Compile (or load from numba's cache) the encoding kernel on a tiny input."""
    _encode_pass(np.zeros(2), 1.0, 2.0, np.empty(2, np.int64))
