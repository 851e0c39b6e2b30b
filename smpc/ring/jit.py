"""Compiling the ring's numba kernels ahead of time, so no timed call pays for it."""

from smpc.ring.conv import warmup as warm_conv
from smpc.ring.fixed_point import warmup as warm_fixed_point
from smpc.ring.fused import warmup as warm_fused
from smpc.ring.int8_gemm import warmup as warm_int8_gemm
from smpc.ring.matmul import warmup as warm_matmul
from smpc.ring.vaes import available as warm_vaes


def warmup() -> None:
    """Compile (or load from numba's cache) every ring kernel (matmul's, conv2d's, encode's, the fused passes')
    on tiny inputs, the int8 products' digit kernels among them (without importing torch)."""
    warm_matmul()
    warm_conv()
    warm_fixed_point()
    warm_fused()
    warm_int8_gemm()
    warm_vaes()  # compiles the VAES kernel (where the CPU has VAES) and checks it against OpenSSL
