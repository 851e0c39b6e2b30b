"""ABY3 replicated secret sharing over Z_2^64: three parties, honest majority, semi-honest, no dealer.

Its tensor and protocol object (:mod:`.tensor`), replicated binary sharing (:mod:`.binary`), conversions
(:mod:`.conversions`), truncation (:mod:`.truncation`), the sign bit (:mod:`.sign`) and random one-hot rows
(:mod:`.one_hot`), all made by the three parties themselves.
"""

from smpc.mpc.aby3.cost import Aby3Cost
from smpc.mpc.aby3.tensor import PARTIES, Aby3Protocol, ReplicatedTensor
from smpc.mpc.registry import CorrelatedKind, ProtocolSpec


def _make(correlated: str, **options) -> Aby3Protocol:
    if options:
        raise ValueError(f"protocol 'aby3' takes no options, got {sorted(options)}")
    return Aby3Protocol()


SPEC = ProtocolSpec(
    name="aby3",
    summary="3-party replicated sharing over Z_2^64 (ABY3), no dealer",
    security="semi-honest, honest majority: any one of the three parties may be corrupted, no two may collude",
    make=_make,
    cost=Aby3Cost,
    min_parties=PARTIES,
    max_parties=PARTIES,
    correlated=(CorrelatedKind("none", "the three parties make every correlation themselves"),),
    test_parties=(PARTIES,),
    label="aby3 (replicated, no dealer)",
    rounds_add_up=False,  # a sign bit's first receive continues the previous step's last receive phase
    bench_parties=PARTIES,
)

__all__ = ["SPEC", "Aby3Cost", "Aby3Protocol", "ReplicatedTensor"]
