"""smpc.dp: differential privacy: RDP accounting of the sampled Gaussian mechanism, calibration, mechanisms, clipping.

Accounting follows Mironov, Talwar, Zhang 2019 (arXiv:1908.10530) and converts to
(epsilon, delta) as Google's dp_accounting RdpAccountant does (Canonne, Kamath, Steinke 2020,
Prop. 12), over the same default orders, so the two report the same epsilon. All noise and
sampling come from the CSPRNG in :mod:`smpc.ring.prg` unless an ``rng`` is passed.
:func:`clipped_sum` is the clipped sum of DP-SGD and DP-FedAvg (Abadi et al. 2016, arXiv:1607.00133,
Alg. 1; McMahan et al. 2018, arXiv:1710.06963) in one pass over the updates.
"""

from smpc.dp.accountant import RDPAccountant
from smpc.dp.calibration import MAX_NOISE_MULTIPLIER, noise_multiplier_for
from smpc.dp.clipping import clip_by_l2_norm, clip_per_example, clipped_sum, l2_norm
from smpc.dp.conversion import delta_from_rdp, epsilon_from_rdp
from smpc.dp.dpsgd import DPSGD, noisy_clipped_mean
from smpc.dp.mechanisms import analytic_gaussian_delta, gaussian_mechanism, gaussian_sigma, laplace_mechanism
from smpc.dp.noise import gaussian_noise, laplace_noise, poisson_sample, uniform
from smpc.dp.rdp import DEFAULT_ORDERS, sampled_gaussian_rdp

__all__ = [
    "DEFAULT_ORDERS",
    "DPSGD",
    "MAX_NOISE_MULTIPLIER",
    "RDPAccountant",
    "analytic_gaussian_delta",
    "clip_by_l2_norm",
    "clip_per_example",
    "clipped_sum",
    "delta_from_rdp",
    "epsilon_from_rdp",
    "gaussian_mechanism",
    "gaussian_noise",
    "gaussian_sigma",
    "l2_norm",
    "laplace_mechanism",
    "laplace_noise",
    "noise_multiplier_for",
    "noisy_clipped_mean",
    "poisson_sample",
    "sampled_gaussian_rdp",
    "uniform",
]
