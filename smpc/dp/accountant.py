"""RDPAccountant: composes Poisson-subsampled Gaussian steps in Renyi DP and reports (epsilon, delta).

RDP composes by addition at every order (Mironov 2017, "Renyi Differential Privacy",
arXiv:1702.07476, Prop. 1), so the accountant keeps one running sum per order and converts
only when asked, with the conversion of :mod:`smpc.dp.conversion`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from smpc.dp import _validate
from smpc.dp.conversion import delta_from_rdp, epsilon_from_rdp
from smpc.dp.rdp import DEFAULT_ORDERS, sampled_gaussian_rdp


class RDPAccountant:
    """Running RDP of a sequence of Poisson-subsampled Gaussian mechanisms.

    >>> acc = RDPAccountant()
    >>> acc.step(noise_multiplier=1.1, sample_rate=256 / 60000, steps=60 * 60000 // 256)
    >>> round(acc.get_epsilon(1e-5), 3)  # 60 epochs of batch 256 over 60000 records
    2.597

    ``orders`` defaults to dp_accounting's RdpAccountant orders, so epsilons agree with it.
    """

    def __init__(self, orders: Sequence[float] | None = None):
        self._orders = _validate.orders(DEFAULT_ORDERS if orders is None else orders)
        self._rdp = np.zeros(len(self._orders), dtype=np.float64)
        self._history: list[tuple[float, float, int]] = []

    def step(self, noise_multiplier: float, sample_rate: float, steps: int = 1) -> None:
        """Compose ``steps`` runs of the sampled Gaussian mechanism (MTZ 2019) into the running RDP.

        ``sample_rate`` is the Poisson inclusion probability (expected batch / dataset size) and
        ``noise_multiplier`` the noise std over the L2 clipping norm. May be called any number of
        times with different parameters; q = 0 or steps = 0 leaves the accountant unchanged.
        """
        sigma = _validate.noise_multiplier(noise_multiplier)
        q = _validate.sample_rate(sample_rate)
        count = _validate.steps(steps)
        self._history.append((sigma, q, count))
        if count == 0 or q == 0.0:
            return
        self._rdp += count * sampled_gaussian_rdp(sigma, q, self._orders)

    @property
    def orders(self) -> np.ndarray:
        """The RDP orders tracked (a copy)."""
        return np.array(self._orders, dtype=np.float64)

    @property
    def history(self) -> tuple[tuple[float, float, int], ...]:
        """Every (noise_multiplier, sample_rate, steps) passed to :meth:`step`, in order."""
        return tuple(self._history)

    def get_rdp(self) -> np.ndarray:
        """The composed RDP at each of :attr:`orders` (a copy; +inf where an order is unusable)."""
        return self._rdp.copy()

    def get_epsilon_and_order(self, delta: float) -> tuple[float, float]:
        """(epsilon, the order attaining it) at ``delta`` in (0, 1) (CKS 2020, Prop. 12)."""
        return epsilon_from_rdp(self._orders, self._rdp, delta)

    def get_epsilon(self, delta: float) -> float:
        """The smallest epsilon this accountant certifies at ``delta`` in (0, 1)."""
        return self.get_epsilon_and_order(delta)[0]

    def get_delta(self, epsilon: float) -> float:
        """The smallest delta this accountant certifies at ``epsilon`` >= 0 (CKS 2020, Prop. 12)."""
        return delta_from_rdp(self._orders, self._rdp, epsilon)[0]

    def __repr__(self) -> str:
        return f"RDPAccountant(orders={len(self._orders)}, steps={sum(k for _, _, k in self._history)})"
