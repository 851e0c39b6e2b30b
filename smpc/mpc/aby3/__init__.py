"""ABY3 replicated secret sharing over Z_2^64: three parties, honest majority, semi-honest, no dealer.

Its tensor and protocol object (:mod:`.tensor`), replicated binary sharing (:mod:`.binary`), conversions
(:mod:`.conversions`), truncation (:mod:`.truncation`), the sign bit (:mod:`.sign`) and random one-hot rows
(:mod:`.one_hot`), all made by the three parties themselves.
"""

from smpc.mpc.aby3.tensor import Aby3Protocol, ReplicatedTensor

__all__ = ["Aby3Protocol", "ReplicatedTensor"]
