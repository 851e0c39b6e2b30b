"""N-party additive secret sharing over Z_2^64 (semi-honest), with a trusted dealer or Paillier preprocessing.

The package holds everything this protocol owns: its tensor and protocol object (:mod:`.tensor`), Beaver
products (:mod:`.beaver`), exact truncation (:mod:`.truncation`), binary sharing with dealer AND triples
(:mod:`.binary`) and the arithmetic/binary conversions (:mod:`.conversions`).
"""

from smpc.mpc.additive.tensor import AdditiveProtocol, AdditiveTensor

__all__ = ["AdditiveProtocol", "AdditiveTensor"]
