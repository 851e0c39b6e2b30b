"""Renyi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019).

Reference: I. Mironov, K. Talwar, L. Zhang, "Renyi Differential Privacy of the Sampled
Gaussian Mechanism", arXiv:1908.10530 (2019). Section 3.2 gives A_alpha as a finite sum
for integer orders, Section 3.3 as two convergent series for fractional orders; the RDP
at order alpha is log(A_alpha) / (alpha - 1). Everything is summed in log space.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np

from smpc.dp import _validate
from smpc.dp._logmath import log_abs_binomial, log_erfc_array, logsumexp

#: The orders dp_accounting's RdpAccountant uses by default: 1.1 .. 10.9 in steps of 0.1,
#: the integers 11 .. 63, then 128, 256, 512, 1024.
DEFAULT_ORDERS: tuple[float, ...] = (
    tuple(1 + k / 10 for k in range(1, 100)) + tuple(float(a) for a in range(11, 64)) + (128.0, 256.0, 512.0, 1024.0)
)

#: Fractional-order series: terms computed before an order is declared divergent (and excluded).
MAX_SERIES_TERMS = 1000
#: A series stops once both of its terms shrink and the larger is exp(-30) times the running total.
SERIES_TAIL_NATS = 30.0
_FIRST_BLOCK = 48
_LOG_HALF = math.log(0.5)


def sampled_gaussian_rdp(
    noise_multiplier: float, sample_rate: float, orders: Sequence[float] = DEFAULT_ORDERS
) -> np.ndarray:
    """RDP of one step of the Poisson-subsampled Gaussian mechanism at each order (MTZ 2019, Sec. 3).

    ``noise_multiplier`` is the noise standard deviation over the L2 sensitivity; each record
    is included independently with probability ``sample_rate``. q = 0 gives 0; q = 1 the plain
    Gaussian mechanism's alpha / (2 sigma^2) (Mironov 2017, Prop. 7); sigma = 0 with q > 0 gives inf.
    A fractional order whose series has not converged after MAX_SERIES_TERMS terms gets +inf,
    which removes it from any epsilon computed later (a truncated series would not be a bound).
    """
    sigma = _validate.noise_multiplier(noise_multiplier)
    q = _validate.sample_rate(sample_rate)
    checked = _validate.orders(orders)
    return np.array(_rdp_cached(q, sigma, checked), dtype=np.float64)


@lru_cache(maxsize=256)
def _rdp_cached(q: float, sigma: float, orders: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(_rdp_one_order(q, sigma, alpha) for alpha in orders)


def _rdp_one_order(q: float, sigma: float, alpha: float) -> float:
    if q == 0.0:
        return 0.0
    if sigma == 0.0:
        return math.inf
    if q == 1.0:
        return alpha / (2 * sigma**2)
    if float(alpha).is_integer():
        log_a = log_a_integer(q, sigma, int(alpha))
    else:
        log_a = log_a_fractional(q, sigma, alpha)
    return log_a / (alpha - 1)


def log_a_integer(q: float, sigma: float, alpha: int) -> float:
    """log A_alpha for an integer order alpha >= 2 and 0 < q < 1 (MTZ 2019, Sec. 3.2).

    A_alpha = sum_{k=0}^{alpha} C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2)).
    """
    k = np.arange(alpha + 1, dtype=np.float64)
    log_terms = (
        log_abs_binomial(alpha, alpha + 1)
        + k * math.log(q)
        + (alpha - k) * math.log1p(-q)
        + (k * k - k) / (2 * sigma**2)
    )
    return logsumexp(log_terms)


def log_a_fractional(q: float, sigma: float, alpha: float) -> float:
    """log A_alpha for a fractional order alpha > 1 and 0 < q < 1 (MTZ 2019, Sec. 3.3).

    A_alpha = A_0 + A_1, with z0 = sigma^2 log(1/q - 1) + 1/2 splitting the integral, and
      A_0 = sum_i C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2)) erfc((i - z0) / (sqrt2 sigma)) / 2,
      A_1 = sum_i C(alpha, i) q^(alpha-i) (1-q)^i exp((j^2 - j) / (2 sigma^2)) erfc((z0 - j) / (sqrt2 sigma)) / 2,
    where j = alpha - i. |C(alpha, i)| replaces the alternating coefficients past i > alpha, which
    can only raise A_alpha, so the result stays an upper bound (as in the reference accountants).
    The series stops at the first i where both terms shrink and the larger is below the running
    total by SERIES_TAIL_NATS; returns +inf when that does not happen within MAX_SERIES_TERMS terms.
    """
    count = min(_FIRST_BLOCK, MAX_SERIES_TERMS)
    while True:
        found = _fractional_series(q, sigma, alpha, count)
        if found is not None:
            return found
        if count >= MAX_SERIES_TERMS:
            return math.inf
        count = MAX_SERIES_TERMS


def _fractional_series(q: float, sigma: float, alpha: float, count: int) -> float | None:
    """The two series' combined log-sum at the first stopping index below ``count``, or None."""
    i = np.arange(count, dtype=np.float64)
    j = alpha - i
    log_q, log_1mq = math.log(q), math.log1p(-q)
    z0 = sigma**2 * (log_1mq - log_q) + 0.5
    scale = math.sqrt(2) * sigma
    log_binom = log_abs_binomial(alpha, count)
    s0 = log_binom + i * log_q + j * log_1mq + (i * i - i) / (2 * sigma**2)
    s0 += _LOG_HALF + log_erfc_array((i - z0) / scale)
    s1 = log_binom + j * log_q + i * log_1mq + (j * j - j) / (2 * sigma**2)
    s1 += _LOG_HALF + log_erfc_array((z0 - j) / scale)
    total = np.logaddexp(np.logaddexp.accumulate(s0), np.logaddexp.accumulate(s1))
    shrinking = (s0[1:] < s0[:-1]) & (s1[1:] < s1[:-1])
    negligible = np.maximum(s0[1:], s1[1:]) < total[1:] - SERIES_TAIL_NATS
    stop = np.flatnonzero(shrinking & negligible)
    return float(total[stop[0] + 1]) if stop.size else None
