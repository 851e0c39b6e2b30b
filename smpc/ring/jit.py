"""Compiling the ring's numba kernels ahead of time, so no timed call pays for it."""

from smpc.ring.conv import warmup as warm_conv
from smpc.ring.fixed_point import warmup as warm_fixed_point
from smpc.ring.fused import warmup as warm_fused
from smpc.ring.matmul import warmup as warm_matmul


def warmup() -> None:
    """Compile (or load from numba's cache) every ring kernel (matmul's, conv2d's, encode's, the fused passes')
    on tiny inputs."""
    warm_matmul()
    warm_conv()
    warm_fixed_point()
    warm_fused()
