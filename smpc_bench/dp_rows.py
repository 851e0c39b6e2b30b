"""The DP column of the overhead table: a plaintext computation whose output is released through the Gaussian
mechanism at (EPSILON, DELTA), with the clipping that makes its sensitivity hold for every input.

Each function times the whole release (clipping, the computation, calibrating sigma by the analytic Gaussian
mechanism of Balle & Wang, ICML 2018, Thm. 8, and drawing the noise from the CSPRNG). Its error is measured
against the same clipped computation without noise: Box-Muller on 53-bit uniforms never draws beyond
sqrt(2 * 53 * ln 2) = 8.572 standard deviations, so ``NOISE_TAIL * sigma`` is a hard bound, not a likely one.
What each release protects is stated in its row's ``protects`` field.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from smpc import dp
from smpc.dp import _kernels
from smpc_bench.timing import timed

EPSILON = 1.0
DELTA = 1e-5
NOISE_TAIL = 8.58  # > 8.572, the largest |N(0, 1)| Box-Muller on 53-bit uniforms can produce


def _timed_release(release: Callable[[], tuple], repeat: int) -> tuple[dict, tuple]:
    _kernels.warmup()  # load the noise and clipping kernels before the clock starts
    return timed(release, repeat, warmup=True)


def _row(group: str, name: str, seconds: dict, plain: dict, sigma: float, error: float, protects: str,
         cell: list[str], **extra) -> dict:
    bound = NOISE_TAIL * sigma
    return {"group": group, "name": name, "seconds": seconds, "ratio": seconds["median"] / plain["median"],
            "ratio_to": "plaintext", "epsilon": EPSILON, "delta": DELTA, "sigma": sigma, "max_error": error,
            "error_bound": bound, "within_bound": bool(error <= bound), "error_against": "clipped, noise-free",
            "protects": protects, "cell": cell, **extra}


def row_clip_scales(x: np.ndarray, max_norm: float) -> np.ndarray:
    """min(1, max_norm / ||row||_2) for each row of ``x`` (1 for a zero row)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    with np.errstate(divide="ignore", over="ignore"):  # a zero row: max_norm / 0 = inf, scale 1
        return np.minimum(1.0, max_norm / norms)


def clip_rows(x: np.ndarray, max_norm: float) -> np.ndarray:
    """``x`` with each row scaled by min(1, max_norm / ||row||_2) (a copy)."""
    return x * row_clip_scales(x, max_norm)[:, None]


def dp_matmul(x: np.ndarray, y: np.ndarray, row_norm: float) -> tuple[np.ndarray, float]:
    """(clip_rows(x) @ y + noise, sigma): each row of ``x`` is one record, ``y`` is public.

    Clipping row i of x scales row i of the product, so the product is computed once and its rows scaled
    in place (no clipped copy of x). Replacing one record x_i by x_i' moves only output row i, by at most
    ||x_i - x_i'|| ||y||_2 <= 2 row_norm ||y||_F (the Frobenius norm bounds the spectral norm, in one pass).
    """
    product = x @ y
    product *= row_clip_scales(x, row_norm)[:, None]
    flat = y.reshape(-1)
    sigma = dp.gaussian_sigma(2 * row_norm * float(np.sqrt(np.dot(flat, flat))), EPSILON, DELTA)
    product += dp.gaussian_noise(product.shape, sigma)
    return product, sigma


def matmul_row(x: np.ndarray, y: np.ndarray, plain: dict, repeat: int) -> dict:
    """The DP cell of the matmul row, rows of ``x`` clipped to the norm of a row of N(0, 1) entries."""
    row_norm = float(np.sqrt(x.shape[1]))
    seconds, (noisy, sigma) = _timed_release(lambda: dp_matmul(x, y, row_norm), repeat)
    error = float(np.max(np.abs(noisy - clip_rows(x, row_norm) @ y)))
    n = x.shape[0]
    return _row("fixed-point matmul", f"DP (Gaussian, epsilon {EPSILON}, delta {DELTA}) numpy float64 {n}x{n}",
                seconds, plain, sigma, error, cell=["matmul", "dp"],
                protects=f"one row of x (a record, clipped to L2 {row_norm:.3g}) against whoever sees the product; "
                         "y is public")


def dp_logits(forward: Callable[[], np.ndarray], max_norm: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(noisy logits, clipped logits, sigma): each example's logit vector clipped to L2 ``max_norm``; any two
    inputs then give clipped logits at most 2 max_norm apart, the sensitivity the noise is calibrated to."""
    logits = np.asarray(forward(), dtype=np.float64)
    clipped = clip_rows(logits.reshape(logits.shape[0], -1), max_norm).reshape(logits.shape)
    sigma = dp.gaussian_sigma(2 * max_norm, EPSILON, DELTA)
    return clipped + dp.gaussian_noise(clipped.shape, sigma), clipped, sigma


def logits_row(group: str, label: str, forward: Callable[[], np.ndarray], plain: dict, repeat: int,
               max_norm: float = 10.0) -> dict:
    """The DP cell of the inference row: the forward pass, then clipped logits through the Gaussian mechanism."""
    seconds, (noisy, clipped, sigma) = _timed_release(lambda: dp_logits(forward, max_norm), repeat)
    error = float(np.max(np.abs(noisy - clipped)))
    return _row(group, f"{label}, DP (Gaussian on logits clipped to L2 {max_norm:g}, epsilon {EPSILON}, "
                f"delta {DELTA})", seconds, plain, sigma, error, cell=["resnet18", "dp"],
                protects="the input image against whoever sees the noisy logits (not the training data)",
                argmax_kept=bool(np.argmax(noisy) == np.argmax(clipped)))


def dp_aggregate(updates: Sequence[np.ndarray], clip_norm: float) -> tuple[np.ndarray, float]:
    """(sum of the updates each clipped to L2 ``clip_norm``, plus noise; sigma): one client joining or leaving
    moves the clipped sum by at most clip_norm (McMahan et al., ICLR 2018, arXiv:1710.06963, Alg. 1)."""
    total = dp.clipped_sum(updates, clip_norm)
    sigma = dp.gaussian_sigma(clip_norm, EPSILON, DELTA)
    total += dp.gaussian_noise(total.shape, sigma)
    return total, sigma


def aggregation_row(updates: Sequence[np.ndarray], clip_norm: float, plain: dict, label: str,
                    repeat: int) -> dict:
    """The DP cell of the aggregation row."""
    seconds, (noisy, sigma) = _timed_release(lambda: dp_aggregate(updates, clip_norm), repeat)
    error = float(np.max(np.abs(noisy - dp.clipped_sum(updates, clip_norm))))
    return _row("gradient aggregation",
                f"{label}, DP: clip to L2 {clip_norm:g}, Gaussian noise (epsilon {EPSILON}, delta {DELTA})",
                seconds, plain, sigma, error, cell=["aggregation", "dp"],
                protects="any one client's update (clipped) against whoever sees the noisy sum; the server that "
                         "adds the noise still sees every update",
                bytes_per_client=8 * updates[0].size)
