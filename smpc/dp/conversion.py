"""From Renyi DP to (epsilon, delta)-DP: the conversion dp_accounting's RdpAccountant uses.

For each order alpha with RDP value r, two bounds hold and the better one is taken:
  * r <= KL divergence bound: total variation <= sqrt(1 - exp(-r)) (Bretagnolle-Huber), so a
    delta >= sqrt(1 - exp(-r)) is met with epsilon = 0;
  * Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy",
    arXiv:2004.00010, Prop. 12 (also Asoodeh et al., arXiv:2001.05990, Eq. 20):
    delta = exp((alpha - 1)(r - epsilon + log(1 - 1/alpha)) - log(alpha)), i.e.
    epsilon = r + log(1 - 1/alpha) - log(delta * alpha) / (alpha - 1),
    used for alpha > 1.01 only (it is unstable as alpha -> 1, and useless there).
The minimum over the orders is returned together with the order that attains it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from smpc.dp import _validate

#: Orders at or below this use only the KL bound (as in dp_accounting).
MIN_CONVERSION_ORDER = 1.01


def epsilon_from_rdp(orders: Sequence[float], rdp: Sequence[float], delta: float) -> tuple[float, float]:
    """(epsilon, optimal order) for the given per-order RDP and delta in (0, 1) (CKS 2020, Prop. 12)."""
    target = _validate.delta(delta)
    alphas, values = _arrays(orders, rdp)
    eps = np.full(alphas.shape, math.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        meets_by_kl = (values < 0) | (target**2 + np.expm1(-values) > 0)
        usable = ~meets_by_kl & (alphas > MIN_CONVERSION_ORDER)
        a, r = alphas[usable], values[usable]
        eps[usable] = r + np.log1p(-1 / a) - (math.log(target) + np.log(a)) / (a - 1)
    eps[meets_by_kl] = 0.0
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(alphas[best])


def delta_from_rdp(orders: Sequence[float], rdp: Sequence[float], epsilon: float) -> tuple[float, float]:
    """(delta, optimal order) for the given per-order RDP and epsilon >= 0 (CKS 2020, Prop. 12)."""
    eps = _validate.epsilon(epsilon, allow_zero=True)
    alphas, values = _arrays(orders, rdp)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        positive = values > 0
        log_delta = np.full(alphas.shape, -math.inf)
        log_delta[positive] = 0.5 * np.log1p(-np.exp(-values[positive]))
        usable = positive & (alphas > MIN_CONVERSION_ORDER)
        a, r = alphas[usable], values[usable]
        log_delta[usable] = np.minimum(log_delta[usable], (a - 1) * (r - eps + np.log1p(-1 / a)) - np.log(a))
    best = int(np.argmin(log_delta))
    return min(1.0, math.exp(float(log_delta[best]))), float(alphas[best])


def _arrays(orders: Sequence[float], rdp: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    alphas = np.asarray(_validate.orders(orders), dtype=np.float64)
    values = np.asarray(rdp, dtype=np.float64)
    if values.shape != alphas.shape:
        raise ValueError(f"rdp must have one value per order: {values.shape} values for {alphas.shape} orders")
    if np.isnan(values).any():
        raise ValueError("rdp contains NaN")
    return alphas, values
