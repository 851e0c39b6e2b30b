"""Gaussian and Laplace mechanisms for releasing statistics, with noise from the CSPRNG.

Gaussian calibration is the analytic Gaussian mechanism of Balle & Wang, "Improving the
Gaussian Mechanism for Differential Privacy: Analytical Calibration and Optimal Denoising",
ICML 2018, arXiv:1805.06530, Theorem 8: adding N(0, sigma^2) to a function of L2
sensitivity D is (epsilon, delta)-DP iff
    Phi(D / (2 sigma) - epsilon sigma / D) - e^epsilon Phi(-D / (2 sigma) - epsilon sigma / D) <= delta.
It is exact, valid for every epsilon > 0, and never needs more noise than the classic
sigma = sqrt(2 ln(1.25 / delta)) D / epsilon (Dwork & Roth 2014, Thm. A.1, for epsilon < 1 only).
"""

from __future__ import annotations

import math

import numpy as np

from smpc.dp import _validate
from smpc.dp._logmath import log_erfc
from smpc.dp.noise import Rng, gaussian_noise, laplace_noise

_SQRT2 = math.sqrt(2.0)
_LOG_HALF = math.log(0.5)
_SIGMA_RTOL = 1e-12


def analytic_gaussian_delta(sigma: float, sensitivity: float, epsilon: float) -> float:
    """The exact delta of N(0, sigma^2) noise at epsilon for L2 sensitivity D (Balle & Wang 2018, Thm. 8)."""
    sigma = _validate.positive("sigma", sigma)
    sensitivity = _validate.positive("sensitivity", sensitivity)
    epsilon = _validate.epsilon(epsilon)
    return _delta(sigma, sensitivity, epsilon)


def _delta(sigma: float, sensitivity: float, epsilon: float) -> float:
    a, b = sensitivity / (2 * sigma), epsilon * sigma / sensitivity
    # Phi(x) = erfc(-x / sqrt2) / 2; the second term stays in log space so e^epsilon cannot overflow
    first = 0.5 * math.erfc((b - a) / _SQRT2)
    second = math.exp(epsilon + _LOG_HALF + log_erfc((a + b) / _SQRT2))
    return first - second


def gaussian_sigma(sensitivity: float, epsilon: float, delta: float) -> float:
    """Smallest noise std giving (epsilon, delta)-DP for L2 sensitivity ``sensitivity`` (Balle & Wang 2018, Thm. 8).

    Found by bisection on Theorem 8's condition, whose left side falls as sigma grows; the
    returned end of the final bracket (relative width 1e-12) always satisfies it.
    """
    sensitivity = _validate.positive("sensitivity", sensitivity)
    epsilon = _validate.epsilon(epsilon)
    target = _validate.delta(delta)
    lo, hi = 0.0, sensitivity
    while _delta(hi, sensitivity, epsilon) > target:
        lo, hi = hi, 2 * hi
    while hi - lo > _SIGMA_RTOL * hi:
        mid = 0.5 * (lo + hi)
        if _delta(mid, sensitivity, epsilon) > target:
            lo = mid
        else:
            hi = mid
    return hi


def gaussian_mechanism(
    value: float | np.ndarray,
    sensitivity: float,
    epsilon: float | None = None,
    delta: float | None = None,
    *,
    sigma: float | None = None,
    rng: Rng = None,
) -> float | np.ndarray:
    """``value`` plus Gaussian noise: (epsilon, delta)-DP for a statistic of L2 sensitivity ``sensitivity``.

    The noise std is :func:`gaussian_sigma` (analytic calibration, Balle & Wang 2018), or
    ``sigma`` when given instead of epsilon and delta (then account for it elsewhere, e.g. with
    noise_multiplier = sigma / sensitivity). Noise comes from the CSPRNG unless ``rng`` says
    otherwise (see :mod:`smpc.dp.noise`). Returns a float for a scalar, else a float64 array.
    """
    sensitivity = _validate.positive("sensitivity", sensitivity)
    if sigma is None:
        if epsilon is None or delta is None:
            raise ValueError("gaussian_mechanism needs epsilon and delta, or sigma")
        std = gaussian_sigma(sensitivity, epsilon, delta)
    else:
        if epsilon is not None or delta is not None:
            raise ValueError("gaussian_mechanism takes either epsilon and delta or sigma, not both")
        std = _validate.non_negative("sigma", sigma)
    data = _values(value)
    return _like(value, data + gaussian_noise(data.shape, std, rng))


def laplace_mechanism(
    value: float | np.ndarray, sensitivity: float, epsilon: float, *, rng: Rng = None
) -> float | np.ndarray:
    """``value`` plus Laplace(sensitivity / epsilon) noise: epsilon-DP for L1 sensitivity ``sensitivity``.

    Dwork, McSherry, Nissim, Smith, "Calibrating Noise to Sensitivity in Private Data Analysis",
    TCC 2006 (Dwork & Roth 2014, Thm. 3.6). Returns a float for a scalar, else a float64 array.
    """
    sensitivity = _validate.positive("sensitivity", sensitivity)
    epsilon = _validate.epsilon(epsilon)
    data = _values(value)
    return _like(value, data + laplace_noise(data.shape, sensitivity / epsilon, rng))


def _values(value: float | np.ndarray) -> np.ndarray:
    try:
        data = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"value must be a number or numeric array, got {type(value).__name__}") from None
    if not np.all(np.isfinite(data)):
        raise ValueError("value contains NaN or infinity")
    return data


def _like(value: float | np.ndarray, noisy: np.ndarray) -> float | np.ndarray:
    return float(noisy) if np.ndim(value) == 0 and not isinstance(value, np.ndarray) else noisy
