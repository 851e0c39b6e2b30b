"""Log-space helpers for privacy accounting: log-sum-exp, log|binomial|, log erfc without underflow."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_LOG_SQRT_PI = 0.5 * math.log(math.pi)
_ERFC_DIRECT_LIMIT = 20.0  # math.erfc keeps full relative precision well past this (it underflows near 26.5)


def logsumexp(values: np.ndarray) -> float:
    """log(sum(exp(values))) without overflow; -inf for an empty or all -inf input."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return -math.inf
    top = float(np.max(values))
    if math.isinf(top):
        return top
    return top + math.log(float(np.sum(np.exp(values - top))))


def log_erfc(x: float) -> float:
    """log(erfc(x)), accurate where erfc(x) itself underflows.

    Below the limit this is log of the C library's erfc; above it, the asymptotic series
    erfc(x) = exp(-x^2) / (x sqrt(pi)) * sum_n (-1)^n (2n-1)!! / (2x^2)^n
    (Abramowitz & Stegun 7.1.23), summed until a term drops below 1e-17.
    """
    if x < _ERFC_DIRECT_LIMIT:
        return math.log(math.erfc(x))
    ratio = 1.0 / (2.0 * x * x)
    term, series, n = 1.0, 1.0, 1
    while abs(term) > 1e-17 and n < 40:
        term *= -(2 * n - 1) * ratio
        series += term
        n += 1
    return -x * x - math.log(x) - _LOG_SQRT_PI + math.log(series)


_ASYMPTOTIC_TERMS = 16  # at x >= 20 the 16th term is below 1e-29


def log_erfc_array(x: np.ndarray) -> np.ndarray:
    """:func:`log_erfc` element-wise on a float array (the asymptotic branch vectorised)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    far = x >= _ERFC_DIRECT_LIMIT
    near = ~far
    out[near] = [math.log(math.erfc(v)) for v in x[near].tolist()]
    if far.any():
        xf = x[far]
        ratio = 1.0 / (2.0 * xf * xf)
        term = np.ones_like(xf)
        series = np.ones_like(xf)
        for n in range(1, _ASYMPTOTIC_TERMS + 1):
            term *= -(2 * n - 1) * ratio
            series += term
        out[far] = -xf * xf - np.log(xf) - _LOG_SQRT_PI + np.log(series)
    return out


def log_abs_binomial(alpha: float, count: int) -> np.ndarray:
    """log|C(alpha, i)| for i = 0 .. count-1, for any real alpha (generalised binomial coefficient).

    ``math.lgamma`` returns log|Gamma|, so the signs of the coefficients with i > alpha
    (which alternate when alpha is fractional) are dropped on purpose.
    """
    return np.array(_log_abs_binomial(float(alpha), int(count)))


@lru_cache(maxsize=512)
def _log_abs_binomial(alpha: float, count: int) -> tuple[float, ...]:
    head = math.lgamma(alpha + 1)
    return tuple(head - math.lgamma(i + 1) - math.lgamma(alpha - i + 1) for i in range(count))
