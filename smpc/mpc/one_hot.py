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
    (rows, shifts), = _rotations([x], [width_bits(size)])
    return rows._rotated_rows(shifts, size).reshape(*x.shape, size)


class Selection:
    """Shared indices made ready for table lookups (:func:`select`): their random one-hot rows, rotated by the
    opened differences. Each :meth:`lookup` of a public table is then local: one opening serves any number."""

    def __init__(self, index, rows, shifts: np.ndarray):
        self._index, self._rows, self._shifts = index, rows, shifts
        self._planned: dict = {}

    def lookup(self, table):
        """``table[index]``: shape index.shape + table.shape[1:] (integer table: integer tensor; float table:
        fixed point); the table has at most as many rows as the selection's size rounded up to 2^m. A table
        :meth:`plan` looked up already is handed out (once) from there."""
        table = _checked_table(table)
        planned = self._planned.pop(_table_key(table), None)
        if planned is not None:
            return planned
        if self._rows is None:
            raise ValueError("this selection released its one-hot rows after its planned lookups, and this table "
                             "was not among them (or was handed out already)")
        return self._lookups([table])[0]

    def plan(self, tables: list, release: bool = False) -> None:
        """Look up every table of ``tables`` now, in one pass over the one-hot rows, for :meth:`lookup` to hand
        out later; ``release``: drop the rows afterwards (memory), so that no other table can be looked up."""
        for table, looked_up in zip(tables, self._lookups([_checked_table(table) for table in tables])):
            self._planned[_table_key(table)] = looked_up
        if release:
            self._rows = None

    def _lookups(self, tables: list) -> list:
        """table[index] for every table, by one product of the rotated rows with the tables' columns side by side."""
        coerced = [self._index._coerce(table) for table in tables]  # integers exactly, floats in fixed point
        length = max(len(ring) for ring, _ in coerced)
        flats = [np.pad(ring.reshape(len(ring), -1), ((0, length - len(ring)), (0, 0))) for ring, _ in coerced]
        joined = flats[0] if len(flats) == 1 else np.concatenate(flats, axis=1)
        looked_up = self._rows._rotated_dot(self._shifts, joined)
        out, start = [], 0
        for (ring, frac), flat in zip(coerced, flats):
            stop = start + flat.shape[1]
            part = looked_up if len(flats) == 1 else looked_up._local(
                lambda c, a=start, b=stop: np.ascontiguousarray(c[:, a:b]))
            out.append(self._index._new(part.components, frac).reshape(*self._index.shape, *ring.shape[1:]))
            start = stop
        return out


def select(x, size: int) -> Selection:
    """The shared integer tensor x (values in [0, size)) made ready for lookups in tables of ``size`` rows:
    one round (the opening of x - r), then every :meth:`Selection.lookup` is local."""
    (rows, shifts), = _rotations([x], [width_bits(size)])
    return Selection(x, rows, shifts)


def lookup(x, table):
    """``table[x]`` for a shared integer tensor x (values in [0, len(table))) and a public table: shape
    ``x.shape + table.shape[1:]``; an integer table gives an integer tensor (exact), a float table a
    fixed-point one (the table's encoding is the only error). One online round; see :func:`lookups`."""
    return lookups([x], [table])[0]


def lookups(indices: list, tables: list) -> list:
    """``[table[x] for x, table in zip(indices, tables)]`` with one opening for all of them (one round).

    Each lookup is its random one-hot rows, rotated by the opened difference, times the public table (the
    product is computed without materialising the rotation; :func:`smpc.ring.lookup.rotated_dot`).
    """
    if len(indices) != len(tables) or not indices:
        raise ValueError("lookups needs as many tables as index tensors, and at least one")
    tables = [_checked_table(table) for table in tables]  # before any round
    rotations = _rotations(indices, [width_bits(len(table)) for table in tables])
    return [Selection(x, rows, shifts).lookup(table) for x, table, (rows, shifts) in zip(indices, tables, rotations)]


def _table_key(table) -> tuple:
    table = np.asarray(table)
    return table.dtype.str, table.shape, table.tobytes()


def _checked_table(table) -> np.ndarray:
    table = np.asarray(table)
    if table.ndim == 0 or len(table) == 0:
        raise ValueError(f"lookup: the table needs a first axis of at least one entry, got shape {table.shape}")
    return table


def _rotations(indices: list, widths: list) -> list:
    """For each integer tensor x (flattened) of ``indices``: (random one-hot rows of 2^bits columns, the opened
    shifts (x - r) mod 2^bits), all differences opened in one round."""
    parts, masked = [], []
    for x, bits in zip(indices, widths):
        if x.is_fixed_point:
            raise TypeError("one_hot and lookup need a shared integer tensor (frac_bits 0), not fixed point")
        flat = x.reshape(-1)
        offsets, rows = x._random_one_hot(flat.size, bits)
        mask = np.uint64((1 << bits) - 1)
        masked.append((flat - offsets)._masked_for_opening(bits))
        parts.append((rows, mask, flat.size))
    first = masked[0]
    joined = first._new(tuple(np.concatenate([m.components[i] for m in masked]) for i in range(len(first.components))))
    opened = joined._open_partially()
    out, start = [], 0
    for rows, mask, count in parts:
        out.append((rows(), opened[start : start + count] & mask))
        start += count
    return out


def one_hot_rows(offsets: np.ndarray, bits: int) -> np.ndarray:
    """The uint64 one-hot rows of ``offsets mod 2^bits``: shape (n, 2^bits)."""
    rows = np.zeros((offsets.size, 1 << bits), np.uint64)
    rows[np.arange(offsets.size), (offsets & np.uint64((1 << bits) - 1)).astype(np.int64)] = 1
    return rows
