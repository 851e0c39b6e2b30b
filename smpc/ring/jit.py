"""Compiling the ring's numba kernels ahead of time, so no timed call pays for it."""

from smpc.ring.conv import warmup as warm_conv
from smpc.ring.fixed_point import warmup as warm_fixed_point
from smpc.ring.fused import warmup as warm_fused
from smpc.ring.int8_gemm import warmup as warm_int8_gemm
from smpc.ring.matmul import warmup as warm_matmul


def warmup() -> None:
    """Compile (or load from numba's cache) every ring kernel (matmul's, conv2d's, encode's, the fused passes')
    on tiny inputs, the int8 products' digit kernels among them (without importing torch)."""
    warm_matmul()
    warm_conv()
    warm_fixed_point()
    warm_fused()
    warm_int8_gemm()
