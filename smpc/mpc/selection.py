"""Maximum, argmax and one-hot argmax of shared tensors by a tree of batched comparisons.

Written against the shared-tensor interface only (comparisons, ``where``, indexing, ``stack``); numpy goes to numpy.
"""

from __future__ import annotations

import operator

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from smpc.mpc import arrays
from smpc.mpc.tensor_core import SharedTensorCore, concatenate, stack, where

# Rounds below: C is one comparison (additive: 7, aby3: 8), M one multiplication by a
# shared bit (1; no truncation since a bit is an integer tensor), L = ceil(log2 n) for n
# elements per slice. Every tree level is ONE comparison and ONE multiplication over all
# slices and pairs at once.
#
# Pairs are neighbours (0, 1), (2, 3), ... with an odd last element carried up, so every
# slot of every level stands for a contiguous run of the input and a left slot's run comes
# before its right partner's. Keeping the left side on ties (``left >= right``) therefore
# keeps the first maximal index for any length, as numpy.argmax does. (Pairing i with
# i + n/2 would not: after one level slot 0 holds {0, n/2} and slot 1 holds {1, 1 + n/2}.)


def max(x, axis=None, keepdims: bool = False):
    """The largest element along ``axis`` (an int, a tuple, or None for all), as numpy.max.

    Rounds: L * (C + M), or L * R where a ReLU costs no more than a comparison (``_maximum``).
    """
    if not arrays.is_shared(x):  # numpy's own exact max (np.max of a shared tensor comes here)
        return np.max(np.asarray(x), axis=axis, keepdims=keepdims)
    rows, out_shape = _rows(x, _axes(x, axis), keepdims, "max")
    values = rows
    while values.shape[1] > 1:  # pairs as in :func:`_tournament` (its comment above)
        pairs = values.shape[1] // 2
        winners = values[:, 0 : 2 * pairs : 2]._maximum(values[:, 1 : 2 * pairs : 2])
        values = concatenate([winners, values[:, 2 * pairs :]], axis=1) if values.shape[1] % 2 else winners
    return values.reshape(out_shape)


def argmax(x, axis=None, keepdims: bool = False):
    """Shared integer indices of the first largest element along ``axis``, as numpy.argmax.

    ``axis=None`` gives the index into the flattened tensor. The result has frac_bits 0.
    Rounds: L * C + (L - 1) * M + ceil(log2 L) * M (see :func:`argmax_onehot`).
    """
    if not arrays.is_shared(x):  # numpy's own exact argmax (np.argmax of a shared tensor comes here)
        return np.argmax(np.asarray(x), axis=axis, keepdims=keepdims)
    axes = _axes(x, None if axis is None else operator.index(axis))
    rows, out_shape = _rows(x, axes, keepdims, "argmax")
    onehot = _onehot_rows(rows)
    positions = np.arange(rows.shape[1], dtype=np.int64)
    return (onehot * positions).sum(axis=1).reshape(out_shape)  # public weights: local


def argmax_onehot(x, axis: int | None = -1):
    """A shared 0/1 integer tensor shaped like ``x``: 1 at the first largest element of each slice.

    Each slice along ``axis`` (None: the whole tensor) holds exactly one 1, where
    numpy.argmax points. The comparison tree runs as in :func:`max` (its last level needs
    no selection); then every element's 1 is the product of its L "won at this level"
    bits, multiplied out by a tree over the levels.
    Rounds: L * C + (L - 1) * M + ceil(log2 L) * M.
    """
    if np.ndim(x) == 0:  # a 0-d value is its own only slice, whatever the axis
        axis = None
    if not arrays.is_shared(x):  # public values: numpy's argmax made one-hot
        values = np.asarray(x)
        flat = values.reshape(-1) if axis is None else np.moveaxis(values, axis, -1)
        if flat.shape[-1] == 0:
            raise ValueError(f"argmax_onehot of an empty axis: shape {values.shape}, axis {axis}")
        onehot = (np.arange(flat.shape[-1]) == np.argmax(flat, axis=-1)[..., None]).astype(np.int64)
        return onehot.reshape(values.shape) if axis is None else np.moveaxis(onehot, -1, axis)
    if axis is None:
        rows, _ = _rows(x, tuple(range(x.ndim)), False, "argmax_onehot")
        return _onehot_rows(rows).reshape(x.shape)
    axis = normalize_axis_index(operator.index(axis), x.ndim)
    rows, _ = _rows(x, (axis,), False, "argmax_onehot")
    order = [a for a in range(x.ndim) if a != axis] + [axis]
    moved_shape = tuple(x.shape[a] for a in order)
    onehot = _onehot_rows(rows).reshape(moved_shape)
    return onehot.transpose(tuple(int(a) for a in np.argsort(order))) if axis != x.ndim - 1 else onehot


def _axes(x: SharedTensorCore, axis) -> tuple[int, ...]:
    """Normalised reduction axes (numpy's AxisError for a bad one); None means all."""
    if axis is None:
        return tuple(range(x.ndim))
    if x.ndim == 0 and not isinstance(axis, tuple) and operator.index(axis) in (0, -1):
        return ()  # as numpy: an integer axis 0 or -1 of a 0-d array is the array itself
    return normalize_axis_tuple(axis, x.ndim)


def _rows(x: SharedTensorCore, axes: tuple[int, ...], keepdims: bool, name: str):
    """``x`` as a (slices, n) tensor with the reduced axes last, and the output shape."""
    shape = x.shape
    n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    if n == 0:
        raise ValueError(f"{name} of an empty axis: shape {shape}, axis {axes}")
    kept = [a for a in range(x.ndim) if a not in axes]
    order = kept + sorted(axes)
    moved = x if order == list(range(x.ndim)) else x.transpose(tuple(order))
    slices = int(np.prod([shape[a] for a in kept], dtype=np.int64))
    if keepdims:
        out_shape = tuple(1 if a in axes else s for a, s in enumerate(shape))
    else:
        out_shape = tuple(shape[a] for a in kept)
    return moved.reshape(slices, n), out_shape


def _tournament(rows: SharedTensorCore) -> list:
    """Reduce (slices, n) rows level by level (as :func:`max`, selecting each level's winners); return each level's
    keep-left bits. The last level only compares (its winners are not needed)."""
    values, levels = rows, []
    while values.shape[1] > 1:
        width = values.shape[1]
        pairs = width // 2
        left, right = values[:, 0 : 2 * pairs : 2], values[:, 1 : 2 * pairs : 2]
        keep_left = left >= right  # ties keep the left (earlier) run
        levels.append(keep_left)
        if width == 2:
            break
        winners = where(keep_left, left, right)
        values = concatenate([winners, values[:, 2 * pairs :]], axis=1) if width % 2 else winners
    return levels


def _onehot_rows(rows: SharedTensorCore) -> SharedTensorCore:
    """The (slices, n) 0/1 integer tensor marking each row's first maximum."""
    n = rows.shape[1]
    levels = _tournament(rows)
    if not levels:  # one element per row: it is the maximum
        return rows.party.protocol.from_public(rows.party, np.ones(rows.shape, dtype=np.int64))
    factors, width = [], n
    for level, keep_left in enumerate(levels):
        pairs = width // 2
        slot = np.arange(n) >> level  # each input element's slot at this level
        is_right = slot % 2 == 1
        carried = slot >= 2 * pairs
        sign = np.where(carried, 0, np.where(is_right, -1, 1)).astype(np.int64)
        offset = (is_right | carried).astype(np.int64)
        # left: keep_left; right: 1 - keep_left; carried up unopposed: 1 (all local)
        factors.append(keep_left[:, np.minimum(slot >> 1, pairs - 1)] * sign + offset)
        width = pairs + width % 2
    bits = stack(factors, axis=0)
    while bits.shape[0] > 1:  # multiply the levels out, one batched product per step
        count = bits.shape[0]
        half = count // 2
        product = bits[:half] * bits[half : 2 * half]
        bits = concatenate([product, bits[2 * half :]], axis=0) if count % 2 else product
    return bits[0]
