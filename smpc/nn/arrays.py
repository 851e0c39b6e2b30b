"""The few array operations the network code needs, on numpy arrays and shared tensors alike.

Shared tensors are used through their public interface only (``+ - * @``, ``sum``, ``reshape``,
indexing, ``concatenate``/``stack``); multiplications by public *integer* arrays stay local and exact
(no truncation), which is how zeros, broadcasts and masks are made here.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.tensor import SharedTensor, concatenate as shared_concatenate, stack as shared_stack


def is_shared(x) -> bool:
    """Whether ``x`` is a secret-shared tensor (of any protocol)."""
    return isinstance(x, SharedTensor)


def as_array(x):
    """A shared tensor as-is; anything else as a float array (float32 and float64 kept)."""
    if is_shared(x):
        return x
    arr = np.asarray(x)
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)


def broadcast_to(x, shape: tuple[int, ...]):
    """``x`` broadcast to ``shape`` as a new array (shared: a local product with integer ones)."""
    if is_shared(x):
        return x * np.ones(shape, dtype=np.int64)
    return np.broadcast_to(x, shape).copy()


def sum_to_shape(g, shape: tuple[int, ...]):
    """Undo broadcasting: sum ``g`` over the axes that broadcasting added or stretched to reach its shape."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = len(g.shape) - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def swap_last(x):
    """``x`` with its last two axes exchanged."""
    axes = list(range(len(x.shape)))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return x.transpose(*axes)


def zeros(like, shape: tuple[int, ...]):
    """Zeros of ``shape`` of the same kind as ``like`` (shared zeros cost no communication)."""
    if is_shared(like):
        return like.reshape(-1)[:1] * np.zeros(shape, dtype=np.int64)
    return np.zeros(shape, dtype=like.dtype)


def scatter_add(g, index, shape: tuple[int, ...]):
    """An array of ``shape`` that is zero except ``[index]``, which holds ``g`` (repeats add up on numpy)."""
    full = zeros(g, shape)
    if is_shared(g):
        full[index] = g  # a basic or duplicate-free index: assignment is the sum
    else:
        np.add.at(full, index, g)
    return full


def stack(parts, axis: int = 0):
    """np.stack for either kind."""
    return shared_stack(parts, axis=axis) if is_shared(parts[0]) else np.stack(parts, axis=axis)


def concatenate(parts, axis: int = 0):
    """np.concatenate for either kind."""
    return shared_concatenate(parts, axis=axis) if is_shared(parts[0]) else np.concatenate(parts, axis=axis)


def pad2d(x, ph: int, pw: int):
    """Zero padding of the last two axes (shared: concatenation with local zeros)."""
    if ph == 0 and pw == 0:
        return x
    if not is_shared(x):
        return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)])
    *lead, h, w = x.shape
    if ph:
        rows = zeros(x, (*lead, ph, w))
        x = concatenate([rows, x, rows], axis=-2)
    if pw:
        cols = zeros(x, (*lead, h + 2 * ph, pw))
        x = concatenate([cols, x, cols], axis=-1)
    return x


def lift(x, like):
    """A public array as a shared tensor of ``like``'s run (zeros plus a public value: no communication)."""
    return zeros(like, np.shape(x)) + np.asarray(x)
