"""Private one-hot encoding of a shared integer by a random-offset one-hot (a table lookup in one round).

The protocol supplies a shared random offset r (uniform modulo L = 2^m) together with the shared one-hot
vector e_r of length L, made without anyone learning r (a dealer, or the parties among themselves). To
encode a shared integer x in [0, L): open d = (x - r) mod L (uniform, so it reveals nothing about x),
then e_x is e_r rotated by d, a local permutation of every share: e_x[j] = e_r[(j - d) mod L]. The
reduction mod L is local because L divides 2^64. This is the lookup-table technique of Ishai et al.,
"On the power of correlated randomness in secure computation", TCC 2013 (one-time truth tables), in the
rotated one-hot form used by Keller et al. and by Sigma (Gupta et al., PETS 2024) for lookup tables.

A shared one-hot times any (public or shared) table is then a table lookup: ``one_hot(x, V) @ table``.
Cost: one round, n elements to each peer (n values encoded), plus the protocol's making of (r, e_r):
for the trusted dealer n (L + 1) words of offline corrections to the last party, nothing online.
"""

from __future__ import annotations

import numpy as np

MAX_ONE_HOT_BITS = 24  # a one-hot of 2^24 entries per value is already far beyond any vocabulary


def width_bits(size: int) -> int:
    """The m with 2^(m-1) < size <= 2^m (0 for size 1)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"one_hot: the size must be a positive integer, got {size!r}")
    bits = max(int(size) - 1, 0).bit_length()
    if bits > MAX_ONE_HOT_BITS:
        raise ValueError(f"one_hot: size {size} exceeds the limit of 2^{MAX_ONE_HOT_BITS}")
    return bits


def one_hot(x, size: int):
    """The shared one-hot encoding of the shared integer tensor ``x``: shape ``x.shape + (size,)``, an
    integer tensor with a 1 at position x and 0 elsewhere; x must hold integers in [0, size) (a value
    outside encodes as (x mod 2^m) with 2^m the next power of two at or above ``size``: a one-hot of
    that position, or all zeros if it is at or past ``size``). One online round (module docstring).
    """
    if x.is_fixed_point:
        raise TypeError("one_hot needs a shared integer tensor (frac_bits 0), not fixed point")
    bits = width_bits(size)
    flat = x.reshape(-1)
    offset, rows = x._random_one_hot(flat.size, bits)
    mask = np.uint64((1 << bits) - 1)
    masked = (flat - offset)._local(lambda c: c & mask)
    shift = masked.reveal_ring() & mask
    encoded = rows()._local(lambda c: rotate_rows(c, shift)[:, :size])
    return encoded.reshape(*x.shape, size)


def rotate_rows(values: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Row i of ``values`` (n, L) rotated right by ``shifts[i]`` (mod L): out[i, j] = values[i, j - shifts[i]]."""
    length = values.shape[1]  # a power of two
    positions = (np.arange(length, dtype=np.int64)[None, :] - shifts.astype(np.int64)[:, None]) & (length - 1)
    return np.take_along_axis(values, positions, axis=1)


def one_hot_rows(offsets: np.ndarray, bits: int) -> np.ndarray:
    """The uint64 one-hot rows of ``offsets mod 2^bits``: shape (n, 2^bits)."""
    rows = np.zeros((offsets.size, 1 << bits), np.uint64)
    rows[np.arange(offsets.size), (offsets & np.uint64((1 << bits) - 1)).astype(np.int64)] = 1
    return rows
