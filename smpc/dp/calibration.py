"""noise_multiplier_for: the least Gaussian noise that keeps a DP-SGD run within (epsilon, delta)."""

from __future__ import annotations

import math
from typing import Sequence

from smpc.dp import _validate
from smpc.dp.conversion import epsilon_from_rdp
from smpc.dp.rdp import DEFAULT_ORDERS, sampled_gaussian_rdp

#: Largest noise multiplier searched; past it the target is reported unreachable.
MAX_NOISE_MULTIPLIER = 1e6
_MIN_NOISE_MULTIPLIER = 1e-6


def noise_multiplier_for(
    epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    *,
    orders: Sequence[float] | None = None,
    rtol: float = 1e-7,
) -> float:
    """Smallest noise multiplier sigma with epsilon(sigma) <= ``epsilon`` at ``delta`` after ``steps`` steps.

    epsilon(sigma) is what :class:`~smpc.dp.accountant.RDPAccountant` reports for ``steps``
    Poisson-subsampled Gaussian steps at ``sample_rate`` (MTZ 2019 with the CKS 2020
    conversion). It falls as sigma grows, so a doubling search brackets the answer and a
    geometric bisection narrows the bracket to hi / lo <= 1 + ``rtol``; the upper end is
    returned, so the target is always met. q = 0 or steps = 0 costs no privacy and gives 0.0.
    Raises ValueError when even MAX_NOISE_MULTIPLIER misses the target (with orders up to
    alpha_max, epsilon hardly falls below log(1/delta) / (alpha_max - 1) until sigma is so large
    that the RDP at the smallest order is below about delta^2, where the KL bound gives 0).
    """
    target = _validate.epsilon(epsilon)
    d = _validate.delta(delta)
    q = _validate.sample_rate(sample_rate)
    count = _validate.steps(steps)
    alphas = _validate.orders(DEFAULT_ORDERS if orders is None else orders)
    if not (math.isfinite(rtol) and 0 < rtol < 1):
        raise ValueError(f"rtol must be in (0, 1), got {rtol!r}")
    if q == 0.0 or count == 0:
        return 0.0

    def meets(sigma: float) -> bool:
        rdp = count * sampled_gaussian_rdp(sigma, q, alphas)
        return epsilon_from_rdp(alphas, rdp, d)[0] <= target

    hi = 1.0
    while not meets(hi):
        if hi >= MAX_NOISE_MULTIPLIER:
            reached = epsilon_from_rdp(alphas, count * sampled_gaussian_rdp(hi, q, alphas), d)[0]
            raise ValueError(
                f"epsilon={target!r} at delta={d!r} is out of reach for {count} steps at sample_rate={q!r}: "
                f"even noise_multiplier={hi:g} gives epsilon={reached:.4g}"
            )
        hi = min(2.0 * hi, MAX_NOISE_MULTIPLIER)
    lo = hi / 2.0
    while meets(lo):
        hi, lo = lo, lo / 2.0
        if lo < _MIN_NOISE_MULTIPLIER:
            return hi
    while hi / lo > 1.0 + rtol:
        mid = math.sqrt(lo * hi)
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return hi
