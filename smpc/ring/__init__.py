"""Z_2^64 arithmetic (and Z_2^128 as a parameter, smpc.ring.rings): fixed-point encoding, exact matmul and
convolution kernels, the CSPRNG.

Nothing here knows about parties or protocols.
"""

from smpc.ring.arith import arithmetic_shift, signed, to_ring, wrapping
from smpc.ring.conv import conv2d, conv2d_output_shape, sum_pool2d
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS, decode, encode, max_magnitude
from smpc.ring.matmul import matmul
from smpc.ring.prg import PRG, derive_key, fresh_key
from smpc.ring.rings import RING64, RING128, Ring, ring_of

__all__ = [
    "DEFAULT_FRAC_BITS",
    "PRG",
    "RING64",
    "RING128",
    "Ring",
    "arithmetic_shift",
    "conv2d",
    "conv2d_output_shape",
    "decode",
    "derive_key",
    "encode",
    "fresh_key",
    "matmul",
    "max_magnitude",
    "ring_of",
    "signed",
    "sum_pool2d",
    "to_ring",
    "wrapping",
]
