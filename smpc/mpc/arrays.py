"""The array layer: the few operations whose numpy and shared forms differ, so that :mod:`smpc.mpc.functions`,
:mod:`smpc.nn` and :mod:`smpc.fl` write each computation once for numpy arrays and shared tensors.

Everything else is numpy itself: a shared tensor takes ``+ - * / @``, comparisons, indexing and its own methods,
and numpy's functions dispatch to it (``np.exp``, ``np.maximum``, ``np.clip``, ``np.where``, ``np.stack``, ...;
:mod:`smpc.mpc.numpy_interop`). What is here:

* kinds: :func:`is_shared`, :func:`is_public`, :func:`asarray`, :func:`as_array`, :func:`as_float`, :func:`frac_bits`;
* shapes written once for both (as the autodiff needs them): :func:`sum_to_shape`, :func:`swap_last`;
* public values of the right kind (free on shared tensors: products with public *integers* stay exact and local):
  :func:`zeros`, :func:`constant`, :func:`lift`, :func:`broadcast_to`, :func:`scatter_add`, :func:`pad2d`,
  :func:`concatenate` and :func:`stack` (public parts joined to shared ones), :func:`matching_dtype`;
* fixed-point steps that are exact on floats: :func:`truncate`, :func:`integer_part`, :func:`ring_integers`,
  :func:`with_frac`;
* the functions numpy has no ufunc for, exact on floats and the shared approximation (the tensor's method, as
  ``np.exp`` is): :func:`sigmoid`, :func:`inv_sqrt`, :func:`softmax`, :func:`log_softmax`.

It sits just above :mod:`smpc.mpc.tensor_core` and uses shared tensors through their interface only.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.tensor_core import SharedTensorCore
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS

FLOATS = (np.float32, np.float64)


# --- kinds ---------------------------------------------------------------------------------------------------
def is_shared(x) -> bool:
    """Whether ``x`` is a secret-shared tensor (of any protocol)."""
    return isinstance(x, SharedTensorCore)


def is_public(x) -> bool:
    """Whether numpy can read ``x`` as it is: not a shared tensor, nor another library's secret or autodiff value
    (an object with ``reveal``, ``components`` or ``grad``)."""
    return not is_shared(x) and not any(hasattr(x, name) for name in ("reveal", "components", "grad"))


def asarray(x, dtype=None):
    """np.asarray(x, dtype) for a public value; a shared tensor as it is (it has no dtype to cast: integer ones,
    such as comparison bits, stay integers)."""
    return x if is_shared(x) else np.asarray(x, dtype=dtype)


def as_array(x):
    """A shared tensor as-is; anything else as a float array (float32 and float64 kept)."""
    if is_shared(x):
        return x
    arr = np.asarray(x)
    return arr if arr.dtype in FLOATS else arr.astype(np.float64)


def as_float(x):
    """A fixed-point shared tensor (an integer one converted, exactly) or a float64 array.

    Objects that look like another library's secret or autodiff value (``reveal``, ``components``, ``grad``) are
    refused with a TypeError rather than read as an object array."""
    if is_shared(x):
        return x if x.is_fixed_point else x + 0.0
    if not is_public(x):
        raise TypeError(f"expected a shared tensor or an array, got {type(x).__name__}")
    return np.asarray(x, dtype=np.float64)


def frac_bits(x) -> int:
    """The fraction bits ``x`` is computed with: its run's for a shared tensor, the default for an array."""
    return x.party.frac_bits if is_shared(x) else DEFAULT_FRAC_BITS


def matching_dtype(public, like):
    """``public`` cast to ``like``'s dtype where both are float32/float64 arrays (so float32 stays float32); a shared
    operand on either side takes it as it is."""
    if is_shared(public) or is_shared(like) or like.dtype != np.float32:
        return public
    return public.astype(like.dtype, copy=False)


# --- shapes (the same code on both kinds) -----------------------------------------------------------------------
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


# --- public values of the right kind ---------------------------------------------------------------------------
def zeros(like, shape: tuple[int, ...]):
    """Zeros of ``shape`` of the same kind as ``like`` (shared zeros cost no communication)."""
    if is_shared(like):
        return like.reshape(-1)[:1] * np.zeros(shape, dtype=np.int64)
    return np.zeros(shape, dtype=like.dtype)


def constant(like, shape: tuple[int, ...], value: float):
    """``value`` everywhere in ``shape``: shared (of ``like``'s run, no communication) if ``like`` is, else a float64
    array."""
    if not is_shared(like):
        return np.full(shape, value, dtype=np.float64)
    block = zeros(like, shape)
    return block + value if value else block


def lift(x, like):
    """``x`` as a shared tensor of ``like``'s run: a shared ``x`` as it is, a public one as zeros plus the value
    (no communication)."""
    return x if is_shared(x) else zeros(like, np.shape(x)) + np.asarray(x)


def broadcast_to(x, shape: tuple[int, ...]):
    """``x`` broadcast to ``shape`` as a new array (shared: a local product with integer ones)."""
    if is_shared(x):
        return x * np.ones(shape, dtype=np.int64)
    return np.broadcast_to(x, shape).copy()


def scatter_add(g, index, shape: tuple[int, ...]):
    """An array of ``shape`` that is zero except ``[index]``, which holds ``g`` (repeats add up on numpy)."""
    full = zeros(g, shape)
    if is_shared(g):
        full[index] = g  # a basic or duplicate-free index: assignment is the sum
    else:
        np.add.at(full, index, g)
    return full


def _same_kind(parts) -> list:
    """All parts shared (public ones lifted into the first shared part's run, at no cost), or all as they are."""
    shared = next((p for p in parts if is_shared(p)), None)
    if shared is None:
        return list(parts)
    return [p if is_shared(p) else lift(np.asarray(p, dtype=np.float64), shared) for p in parts]


def stack(parts, axis: int = 0):
    """np.stack of arrays, shared tensors, or both (public parts become shared ones of the same run, locally)."""
    return np.stack(_same_kind(parts), axis=axis)


def concatenate(parts, axis: int = 0):
    """np.concatenate of arrays, shared tensors, or both (public parts become shared ones, locally)."""
    return np.concatenate(_same_kind(parts), axis=axis)


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


# --- fixed-point steps (exact on floats) -------------------------------------------------------------------------
def truncate(x, bits: int):
    """x / 2^bits: a truncation of a shared tensor (one round or two; error below one unit), exact on arrays."""
    if bits == 0:
        return x
    return x.truncate(bits) if is_shared(x) else x / float(2**bits)


def integer_part(t):
    """floor(t) of a non-negative fixed-point t as an integer tensor (shared: one truncation, floor(t) + 1 with
    the probability of t's fraction)."""
    return t.integer_part() if is_shared(t) else np.floor(t)


def ring_integers(t, frac: int):
    """A fixed-point tensor's ring integers (t 2^frac) as an integer tensor: no computation, no rounding."""
    return with_frac(t, 0) if is_shared(t) else t * 2.0**frac


def with_frac(t, frac: int):
    """The same ring elements of a shared tensor read with ``frac`` fraction bits (an integer tensor holding
    t 2^frac read as the fixed-point t); on arrays t / 2^frac."""
    if is_shared(t):
        return type(t)(t.party, t.components, frac)
    return t / 2.0**frac


# --- functions numpy has no ufunc for: exact on floats, the shared tensor's approximation ----------------------
def sigmoid(x):
    """1 / (1 + e^-x): exact (and stable) on arrays; shared: ``x.sigmoid()`` (:func:`smpc.mpc.functions.sigmoid`)."""
    if is_shared(x):
        return x.sigmoid()
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def inv_sqrt(x):
    """1 / sqrt(x): exact on arrays; shared: ``x.inv_sqrt()`` (:func:`smpc.mpc.functions.inv_sqrt`, one octave
    search instead of a square root and a reciprocal)."""
    return x.inv_sqrt() if is_shared(x) else 1.0 / np.sqrt(x)


def softmax(x, axis: int = -1):
    """exp(x - max) / sum along ``axis``: exact on arrays; shared: ``x.softmax(axis)``."""
    if is_shared(x):
        return x.softmax(axis)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis: int = -1):
    """x - max - log(sum(exp(x - max))) along ``axis``: exact on arrays; shared: ``x.log_softmax(axis)``."""
    if is_shared(x):
        return x.log_softmax(axis)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
