"""Ring kernels for table lookups by rotated one-hot rows: rotate each row, or dot it with a rotated table.

Row i of an (n, L) array is rotated right by s_i (L a power of two): out[i, j] = rows[i, (j - s_i) mod L].
Its product with a (L, c) table is sum_j rows[i, j] table[(j + s_i) mod L, :], computed here without
materialising the rotated rows (one pass over the rows, mod 2^64).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def rotate_rows(rows: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Every row of ``rows`` (n, L), L a power of two, rotated right by its shift (uint64, taken mod L)."""
    if rows.ndim != 2 or rows.shape[1] & (rows.shape[1] - 1) or rows.shape[1] == 0:
        raise ValueError(f"rotate_rows needs (n, 2^m) rows, got shape {rows.shape}")
    return _rotate(np.ascontiguousarray(rows, dtype=np.uint64), np.ascontiguousarray(shifts, dtype=np.uint64))


def rotated_dot(rows: np.ndarray, shifts: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(rows rotated by shifts) @ table mod 2^64: rows (n, L), table (L', c) uint64 with L' <= L (rows past L'
    meet zeros); returns (n, c)."""
    if rows.ndim != 2 or table.ndim != 2 or table.shape[0] > rows.shape[1]:
        raise ValueError(f"rotated_dot: rows {rows.shape} and table {table.shape} do not fit")
    length = rows.shape[1]
    if length & (length - 1):
        raise ValueError(f"rotated_dot needs rows of a power-of-two length, got {length}")
    padded = np.zeros((length, table.shape[1]), np.uint64)
    padded[: table.shape[0]] = table
    return _dot(np.ascontiguousarray(rows, dtype=np.uint64), np.ascontiguousarray(shifts, dtype=np.uint64), padded)


@njit(parallel=True, nogil=True, cache=True)
def _rotate(rows, shifts):
    count, length = rows.shape
    mask = np.uint64(length - 1)
    out = np.empty_like(rows)
    for i in prange(count):
        shift = shifts[i] & mask
        for j in range(length):
            out[i, (np.uint64(j) + shift) & mask] = rows[i, j]
    return out


@njit(parallel=True, nogil=True, cache=True)
def _dot(rows, shifts, table):
    count, length = rows.shape
    columns = table.shape[1]
    mask = np.uint64(length - 1)
    out = np.zeros((count, columns), np.uint64)
    for i in prange(count):
        shift = shifts[i] & mask
        for j in range(length):
            weight = rows[i, j]
            entry = (np.uint64(j) + shift) & mask
            for c in range(columns):
                out[i, c] += weight * table[entry, c]
    return out
