"""DP-SGD and DP-FedAvg steps: clip each contribution, sum, add Gaussian noise, divide by the expected count.

How the pieces compose (Abadi et al., CCS 2016, arXiv:1607.00133, Algorithm 1; McMahan et al.,
"Learning Differentially Private Recurrent Language Models", ICLR 2018, arXiv:1710.06963):
  1. sample a batch: each of the N records (or clients) independently with probability q = B / N;
  2. clip every per-example gradient (or client update) to L2 norm C: one record changes the
     sum by at most C;
  3. add N(0, (z C)^2) to the sum: a Gaussian mechanism with noise multiplier z;
  4. divide by the expected batch size B = q N (not the realised one, which depends on the data);
  5. account one step of the Poisson-subsampled Gaussian mechanism with (z, q) in an RDPAccountant.
"""

from __future__ import annotations

import numpy as np

from smpc.dp import _validate
from smpc.dp.accountant import RDPAccountant
from smpc.dp.clipping import Arrays, clip_per_example
from smpc.dp.noise import Rng, as_rng, gaussian_noise, poisson_sample


def noisy_clipped_mean(
    per_example: Arrays, max_norm: float, noise_multiplier: float, expected_count: float, rng: Rng = None
) -> np.ndarray | list[np.ndarray]:
    """Steps 2-4 above: (sum of clipped rows + N(0, (noise_multiplier * max_norm)^2)) / expected_count.

    ``per_example`` is an array (examples, ...) or a list of such arrays (one per layer); the
    result has one example's structure. Alone this costs no accounting: see :class:`DPSGD`.
    """
    bound = _validate.positive("max_norm", max_norm)
    sigma = _validate.noise_multiplier(noise_multiplier)
    count = _validate.positive("expected_count", expected_count)
    source = as_rng(rng)
    clipped = clip_per_example(per_example, bound)
    parts = clipped if isinstance(clipped, list) else [clipped]
    noisy = [(p.sum(axis=0) + gaussian_noise(p.shape[1:], sigma * bound, source)) / count for p in parts]
    return noisy if isinstance(clipped, list) else noisy[0]


class DPSGD:
    """Privatises one gradient (or federated update) per batch and accounts for it.

    Usage::

        opt = DPSGD(noise_multiplier=1.1, max_grad_norm=1.0, batch_size=256, dataset_size=60000)
        for _ in range(steps):
            batch = opt.sample_batch()                          # Poisson sample, q = 256 / 60000
            grad = opt.privatize(per_example_grads(batch))      # clip, sum, noise, / 256; one step
            params -= lr * grad
        opt.epsilon(1e-5)

    For DP-FedAvg pass per-client model deltas as the rows, with batch_size the expected number
    of clients per round and dataset_size the client population.
    """

    def __init__(
        self,
        noise_multiplier: float,
        max_grad_norm: float,
        batch_size: float,
        dataset_size: int,
        *,
        accountant: RDPAccountant | None = None,
        rng: Rng = None,
    ):
        self.noise_multiplier = _validate.noise_multiplier(noise_multiplier)
        self.max_grad_norm = _validate.positive("max_grad_norm", max_grad_norm)
        self.batch_size = _validate.positive("batch_size", batch_size)
        self.dataset_size = _validate.whole("dataset_size", dataset_size)
        if self.batch_size > self.dataset_size:
            raise ValueError(f"batch_size ({batch_size!r}) cannot exceed dataset_size ({dataset_size!r})")
        self.sample_rate = self.batch_size / self.dataset_size
        self.accountant = RDPAccountant() if accountant is None else accountant
        self._rng = as_rng(rng)

    def sample_batch(self) -> np.ndarray:
        """Indices of the next batch: each record kept independently with probability sample_rate."""
        return poisson_sample(self.dataset_size, self.sample_rate, self._rng)

    def privatize(self, per_example_grads: Arrays) -> np.ndarray | list[np.ndarray]:
        """The noisy mean gradient of one batch (steps 2-4), recorded as one accountant step (step 5)."""
        noisy = noisy_clipped_mean(
            per_example_grads, self.max_grad_norm, self.noise_multiplier, self.batch_size, self._rng
        )
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate, steps=1)
        return noisy

    def epsilon(self, delta: float) -> float:
        """Epsilon spent so far at ``delta`` (the accountant's, which may also hold other mechanisms)."""
        return self.accountant.get_epsilon(delta)
