"""Noise for DP mechanisms drawn from the CSPRNG (smpc.ring.prg): uniform, Gaussian, Laplace, Poisson sampling.

Every function takes ``rng``: None (the default: a fresh AES key-stream generator keyed from
os.urandom), a :class:`~smpc.ring.prg.PRG` (its stream continues), an int or bytes seed
(a PRG keyed from that seed: reproducible, for tests only), or an explicit
``numpy.random.Generator`` (for tests and simulations; not a secure source).

The samples are IEEE doubles; as Mironov (CCS 2012, "On significance of the least
significant bits for differential privacy") shows, textbook floating-point Laplace noise can
leak through its low-order bits. Use a discrete or snapped mechanism where that matters.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from smpc.dp import _kernels, _validate
from smpc.ring.prg import PRG, derive_key

Rng = PRG | int | bytes | np.random.Generator | None

_SEED_LABEL = "smpc.dp.noise"


def as_rng(rng: Rng) -> PRG | np.random.Generator:
    """The generator named by ``rng`` (see the module docstring); a fresh CSPRNG for None."""
    if rng is None:
        return PRG.fresh()
    if isinstance(rng, (PRG, np.random.Generator)):
        return rng
    if isinstance(rng, (bytes, bytearray)):
        return PRG(derive_key(bytes(rng), _SEED_LABEL))
    if isinstance(rng, Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng seed must be >= 0, got {rng}")
        seed = int(rng).to_bytes((int(rng).bit_length() + 8) // 8, "big")
        return PRG(derive_key(seed, _SEED_LABEL))
    raise TypeError(f"rng must be None, a smpc.ring.prg.PRG, an int or bytes seed, or a numpy Generator; got {rng!r}")


def uniform(shape: int | tuple[int, ...], rng: Rng = None) -> np.ndarray:
    """Uniform doubles in [0, 1): the top 53 bits of each 64-bit CSPRNG word times 2^-53."""
    source = as_rng(rng)
    shape = _shape(shape)
    if isinstance(source, np.random.Generator):
        return source.random(shape)
    return _kernels.uniform_from_words(source.random_ring(shape))  # (word >> 11) * 2^-53, in one pass


def gaussian_noise(shape: int | tuple[int, ...], std: float, rng: Rng = None) -> np.ndarray:
    """N(0, std^2) samples of ``shape`` by the Box-Muller transform of CSPRNG uniforms (Box & Muller 1958).

    With u the ``2 * pairs`` uniforms (pairs = ceil(count / 2)), radius = sqrt(-2 log1p(-u[:pairs])) and
    angle = 2 pi u[pairs:], the samples are std * radius * cos(angle), then std * radius * sin(angle),
    cut to ``count``. From a CSPRNG a numba kernel computes this in one pass over the words (log, sin
    and cos are its own, within ~1 ulp of libm's: see smpc.dp._kernels); a numpy Generator goes
    through numpy. With 53-bit uniforms the radius never exceeds sqrt(2 * 53 * ln 2) ~ 8.57, so draws
    beyond 8.57 std (probability ~1e-17) do not occur.
    """
    std = _validate.non_negative("std", std)
    shape = _shape(shape)
    count = math.prod(shape)
    pairs = (count + 1) // 2
    source = as_rng(rng)
    if isinstance(source, PRG):
        return _kernels.gaussian_from_words(source.random_ring(2 * pairs), count, std).reshape(shape)
    u = uniform(2 * pairs, source)
    radius = np.sqrt(-2.0 * np.log1p(-u[:pairs]))  # 1 - u lies in (0, 1], so the log is finite
    angle = 2.0 * math.pi * u[pairs:]
    normal = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:count]
    return (std * normal).reshape(shape)


def laplace_noise(shape: int | tuple[int, ...], scale: float, rng: Rng = None) -> np.ndarray:
    """Laplace(0, scale) samples of ``shape``: scale times the difference of two Exp(1) draws.

    With u the ``2 * count`` uniforms and E = -log1p(-u), sample i is scale * (E[i] - E[count + i]);
    from a CSPRNG a numba kernel computes it in one pass (its log within ~1 ulp of libm's).
    """
    scale = _validate.positive("scale", scale)
    shape = _shape(shape)
    count = math.prod(shape)
    source = as_rng(rng)
    if isinstance(source, PRG):
        return _kernels.laplace_from_words(source.random_ring(2 * count), count, scale).reshape(shape)
    exponential = -np.log1p(-uniform(2 * count, source))
    return (scale * (exponential[:count] - exponential[count:])).reshape(shape)


def poisson_sample(population: int, sample_rate: float, rng: Rng = None) -> np.ndarray:
    """Indices of a Poisson sample: each of ``population`` records kept independently with ``sample_rate``.

    This is the sampling the RDP accountant assumes (MTZ 2019, Sec. 2); the sample itself
    must stay secret for the amplification to hold, hence the CSPRNG.
    """
    q = _validate.sample_rate(sample_rate)
    n = _validate.whole("population", population)
    return np.flatnonzero(uniform(n, rng) < q)


def _shape(shape: int | tuple[int, ...]) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, Integral) else tuple(shape)
    if any(isinstance(d, bool) or not isinstance(d, Integral) or d < 0 for d in dims):
        raise ValueError(f"shape must be non-negative integers, got {shape!r}")
    return tuple(int(d) for d in dims)
