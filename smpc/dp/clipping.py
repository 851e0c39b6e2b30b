"""L2 clipping of model updates and of per-example gradients, the sensitivity bound DP-SGD and DP-FedAvg need.

Scaling a vector g by min(1, C / ||g||_2) bounds its norm by C (Abadi et al., "Deep Learning
with Differential Privacy", CCS 2016, arXiv:1607.00133, Algorithm 1, "Clip gradient").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from smpc.dp import _validate

Arrays = np.ndarray | Sequence[np.ndarray]


def l2_norm(update: Arrays) -> float:
    """The L2 norm of one array, or of a list of arrays read as one concatenated vector."""
    return _norm(_parts(update))


def clip_by_l2_norm(update: Arrays, max_norm: float) -> np.ndarray | list[np.ndarray]:
    """``update`` scaled by min(1, max_norm / ||update||_2) (Abadi et al. 2016, Alg. 1).

    A list or tuple of arrays (one per layer) is clipped as one vector and comes back as a
    list; anything else comes back as a float64 array of its shape. Inputs are never modified.
    """
    bound = _validate.positive("max_norm", max_norm)
    parts = _parts(update)
    norm = _norm(parts)
    scale = bound / norm if norm > bound else 1.0
    clipped = [p * scale for p in parts]
    return clipped if _is_list(update) else clipped[0]


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
    squared = sum(np.sum(p.reshape(p.shape[0], -1) ** 2, axis=1) for p in parts)
    norms = np.sqrt(squared)
    with np.errstate(divide="ignore"):
        scale = np.where(norms > bound, bound / norms, 1.0)
    clipped = [p * scale.reshape((-1,) + (1,) * (p.ndim - 1)) for p in parts]
    return clipped if _is_list(grads) else clipped[0]


def _norm(parts: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.sum(p * p)) for p in parts)))


def _is_list(update: Arrays) -> bool:
    return isinstance(update, (list, tuple))


def _parts(update: Arrays) -> list[np.ndarray]:
    arrays = list(update) if _is_list(update) else [update]
    if not arrays:
        raise ValueError("update is an empty list of arrays")
    parts = []
    for a in arrays:
        part = np.asarray(a, dtype=np.float64)
        if not np.all(np.isfinite(part)):
            raise ValueError("update contains NaN or infinity")
        parts.append(part)
    return parts
