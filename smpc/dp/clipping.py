"""L2 clipping of model updates and of per-example gradients, the sensitivity bound DP-SGD and DP-FedAvg need.

Scaling a vector g by min(1, C / ||g||_2) bounds its norm by C (Abadi et al., "Deep Learning
with Differential Privacy", CCS 2016, arXiv:1607.00133, Algorithm 1, "Clip gradient").

Norms are computed without temporaries on large contiguous float64 arrays (a numba sum of squares;
numpy's ``np.sum(p * p)`` below ``_KERNEL_MIN_SIZE`` elements, as before). NaN or infinity in the
input makes the sum of squares non-finite, so the input is only scanned for them when that happens;
finite entries whose squares overflow (|x| ~ 1e155 and up) are then rescaled by the largest
magnitude, so they clip correctly instead of collapsing to zero.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from smpc.dp import _kernels, _validate

Arrays = np.ndarray | Sequence[np.ndarray]

# Below this many elements np.sum(p * p) (numpy's pairwise sum, bit for bit what earlier versions
# computed) costs a few microseconds; from here on the temporary is worth avoiding.
_KERNEL_MIN_SIZE = 1 << 12
_REAL_KINDS = "biuf"  # bool, signed and unsigned integers, floats


def l2_norm(update: Arrays) -> float:
    """The L2 norm of one array, or of a list of arrays read as one concatenated vector."""
    return _norm_and_scale(_parts(update), None)[0]


def clip_by_l2_norm(update: Arrays, max_norm: float) -> np.ndarray | list[np.ndarray]:
    """``update`` scaled by min(1, max_norm / ||update||_2) (Abadi et al. 2016, Alg. 1).

    A list or tuple of arrays (one per layer) is clipped as one vector and comes back as a
    list; anything else comes back as a float64 array of its shape. Inputs are never modified.
    """
    bound = _validate.positive("max_norm", max_norm)
    parts = _parts(update)
    _, scale = _norm_and_scale(parts, bound)
    clipped = [p * scale for p in parts]
    return clipped if _is_list(update) else clipped[0]


def clipped_sum(
    updates: Sequence[np.ndarray], max_norm: float, *, return_norms: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """sum_i u_i * min(1, max_norm / ||u_i||_2): the clipped sum of DP-SGD and DP-FedAvg, in one pass.

    This is the sum that the Gaussian mechanism then noises: per-example gradients clipped and added
    in Abadi et al. 2016 (arXiv:1607.00133), Algorithm 1, and per-client model updates in DP-FedAvg
    (McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent Language Models",
    ICLR 2018, arXiv:1710.06963, Algorithm 1 with the flat clipping of Sec. 3). One update changes it
    by at most ``max_norm`` in L2.

    ``updates`` holds k >= 1 arrays of one shape (or is one array whose axis 0 indexes them); each is
    clipped as one vector. The result is a float64 array of that shape, equal to
    ``sum(clip_by_l2_norm(u, max_norm) for u in updates)`` (same scales, added in the same order).
    After the norms, one numba pass streams every update once; inputs are never modified nor
    copied unless they are not C-contiguous float64.

    With ``return_norms`` the result is ``(sum, norms)``, norms[i] = ||u_i||_2 before clipping
    (so ``np.count_nonzero(norms > max_norm)`` counts the updates that were clipped).
    """
    bound = _validate.positive("max_norm", max_norm)
    vectors, shape = _update_vectors(updates)
    norms = np.empty(len(vectors), np.float64)
    scales = np.empty(len(vectors), np.float64)
    for i, v in enumerate(vectors):
        norms[i], scales[i] = _norm_and_scale([v], bound, f"updates[{i}]")
    total = _kernels.weighted_sum(vectors, scales).reshape(shape)
    return (total, norms) if return_norms else total


def clip_per_example(grads: Arrays, max_norm: float) -> np.ndarray | list[np.ndarray]:
    """Clip each example's gradient to L2 norm ``max_norm``; axis 0 indexes the examples.

    ``grads`` is one array of shape (batch, ...) or a list of such arrays (one per layer,
    all with the same batch size), in which case example b's gradient is the concatenation of
    every array's row b. Returns the same structure, each row scaled by min(1, max_norm / norm_b).
    """
    bound = _validate.positive("max_norm", max_norm)
    parts = _parts(grads)
    if any(p.ndim == 0 for p in parts):
        raise ValueError("per-example gradients need a leading batch axis; got a 0-d array")
    batch = {p.shape[0] for p in parts}
    if len(batch) != 1:
        raise ValueError(f"every per-example gradient array needs the same batch size, got {sorted(batch)}")
    rows = [p.reshape(p.shape[0], -1) for p in parts]
    with np.errstate(over="ignore", invalid="ignore"):  # handled below
        squared = sum(np.sum(r**2, axis=1) for r in rows)
    if np.all(np.isfinite(squared)):
        norms = np.sqrt(squared)
    else:
        _require_finite(parts, "update")
        # finite rows whose squares overflow: divide each row by its largest magnitude first
        big = np.max([np.max(np.abs(r), axis=1, initial=0.0) for r in rows], axis=0)
        big = np.where(big > 0, big, 1.0)
        norms = big * np.sqrt(sum(np.sum((r / big[:, None]) ** 2, axis=1) for r in rows))
    with np.errstate(divide="ignore"):
        scale = np.where(norms > bound, bound / norms, 1.0)
    clipped = [p * scale.reshape((-1,) + (1,) * (p.ndim - 1)) for p in parts]
    return clipped if _is_list(grads) else clipped[0]


def _sum_squares(p: np.ndarray) -> float:
    """sum p^2 of a float64 array: inf or NaN when p holds them or its squares overflow."""
    if p.size >= _KERNEL_MIN_SIZE and p.flags.c_contiguous:
        return _kernels.sum_squares(p)
    with np.errstate(over="ignore", invalid="ignore"):  # inf or NaN: see _norm_and_scale
        return float(np.sum(p * p))


def _norm_and_scale(parts: list[np.ndarray], bound: float | None, what: str = "update") -> tuple[float, float]:
    """(||parts||_2, min(1, bound / norm)) of float64 arrays read as one vector; ValueError on NaN or inf.

    The norm is inf only when the true norm exceeds the largest double; the scale is right even then.
    """
    squares = sum(_sum_squares(p) for p in parts)
    if math.isfinite(squares):
        norm = math.sqrt(squares)
        return norm, (bound / norm if bound is not None and norm > bound else 1.0)
    _require_finite(parts, what)
    big = max(float(np.max(np.abs(p))) for p in parts if p.size)  # > 0: some square overflowed
    scaled = math.sqrt(sum(float(np.sum(np.square(p / big))) for p in parts))  # in [1, sqrt(size)]
    norm = big * scaled
    if bound is None or norm <= bound:
        return norm, 1.0
    return norm, (bound / big) / scaled


def _require_finite(parts: list[np.ndarray], what: str) -> None:
    if not all(np.all(np.isfinite(p)) for p in parts):
        raise ValueError(f"{what} contains NaN or infinity")


def _update_vectors(updates: Sequence[np.ndarray]) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """The updates as 1-D C-contiguous float64 arrays (views where possible), and their common shape."""
    if isinstance(updates, np.ndarray) and updates.ndim < 2:
        raise ValueError(
            f"updates must be a sequence of arrays (one per update) or an array whose axis 0 indexes them; "
            f"got a {updates.ndim}-d array (wrap a single update in a list)"
        )
    if isinstance(updates, (str, bytes)):
        raise TypeError(f"updates must be a sequence of arrays, got {type(updates).__name__}")
    arrays = [np.asarray(u) for u in updates]
    if not arrays:
        raise ValueError("updates is an empty list: clipped_sum needs at least one update")
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.dtype.kind not in _REAL_KINDS:
            raise TypeError(f"updates[{i}] has dtype {a.dtype}; clipped_sum needs real numbers")
        if a.shape != shape:
            raise ValueError(f"every update needs the same shape: updates[0] has shape {shape}, updates[{i}] {a.shape}")
    return [np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in arrays], shape


def _is_list(update: Arrays) -> bool:
    return isinstance(update, (list, tuple))


def _parts(update: Arrays) -> list[np.ndarray]:
    arrays = list(update) if _is_list(update) else [update]
    if not arrays:
        raise ValueError("update is an empty list of arrays")
    return [np.asarray(a, dtype=np.float64) for a in arrays]
