"""SPDZ2k: N-party additive sharing with MACs over Z_2^128 (k = 64, s statistical bits), so a party that deviates
is caught (Cramer, Damgard, Escudero, Scholl and Xing, CRYPTO 2018).

The package: the tensor and protocol object (:mod:`.tensor`), Z_2^128 arrays (:mod:`.words`), the dealer's
authenticated material (:mod:`.requests`, :mod:`.dealer`), the batched MAC check (:mod:`.mac_check`) and the cost
theory (:mod:`.cost`).
"""

from smpc.mpc.registry import CorrelatedKind, ProtocolSpec
from smpc.mpc.spdz2k.cost import Spdz2kCost
from smpc.mpc.spdz2k.tensor import DEFAULT_STATISTICAL_BITS, Spdz2kProtocol, Spdz2kTensor


def _make(correlated: str, statistical_bits: int | None = None, comparisons: str | None = None) -> Spdz2kProtocol:
    return Spdz2kProtocol(DEFAULT_STATISTICAL_BITS if statistical_bits is None else statistical_bits,
                          comparisons or "auto")


SPEC = ProtocolSpec(
    name="spdz2k",
    summary="N-party additive sharing with MACs over Z_2^128 (SPDZ2k): a cheating party is caught",
    security="malicious parties, any N-1 of N colluding, are caught (abort, no output from tampered values) with "
             "probability 1 - 2^(-s + log2(s + 1)), s = 64; the trusted dealer makes correct material, sees no input "
             "or output, and must not collude with any party",
    make=_make,
    cost=Spdz2kCost,
    min_parties=2,
    max_parties=None,
    correlated=(CorrelatedKind("trusted", "a dealer endpoint deals authenticated triples, truncation pairs and "
                               "masks (value and MAC shares, seed-compressed)", endpoint=True),),
    test_parties=(2, 3),
    bench_parties=2,
    label="spdz2k (trusted dealer, MACs)",
    ring_bits=128,
    unsupported={"outsourced": "inputs from outside clients need authenticated masks: not yet under spdz2k"},
    in_bench=False,  # the overhead table's matmul and ResNet-18 cells; smpc_bench.spdz2k_rows for the ratios
    bench_groups=("overhead",),
    extended_tests=True,  # its 3-party, 5-party and TCP cells of the test matrix take minutes: run when time allows
)

__all__ = ["SPEC", "Spdz2kCost", "Spdz2kProtocol", "Spdz2kTensor"]
