"""N-party additive secret sharing over Z_2^64 (semi-honest), with a trusted dealer or Paillier preprocessing.

The package holds everything this protocol owns: its tensor and protocol object (:mod:`.tensor`), Beaver
products (:mod:`.beaver`), exact truncation (:mod:`.truncation`), binary sharing with dealer AND triples
(:mod:`.binary`) and the arithmetic/binary conversions (:mod:`.conversions`).
"""

from smpc.mpc.additive.cost import AdditiveCost
from smpc.mpc.additive.tensor import DEFAULT_KEY_BITS, AdditiveProtocol, AdditiveTensor
from smpc.mpc.registry import CorrelatedKind, ProtocolSpec

_PAILLIER_MAKES_ONLY = "dealer='paillier' makes Beaver triples and truncation pairs only"


def _make(correlated: str, dealer_key_bits: int | None = None) -> AdditiveProtocol:
    if dealer_key_bits is not None and correlated != "paillier":
        raise ValueError("dealer_key_bits sets the Paillier modulus of dealer='paillier' only")
    return AdditiveProtocol(correlated, DEFAULT_KEY_BITS if dealer_key_bits is None else dealer_key_bits)


SPEC = ProtocolSpec(
    name="additive",
    summary="N-party additive sharing over Z_2^64 with a trusted dealer, or 2 parties with Paillier preprocessing",
    security="semi-honest; any N-1 of the N parties may collude; dealer='trusted': the dealer sees no input or "
             "output but must not collude with any party; dealer='paillier': no third party",
    make=_make,
    cost=AdditiveCost,
    min_parties=2,
    max_parties=None,
    correlated=(
        CorrelatedKind("trusted", "a dealer endpoint deals seed-compressed triples, truncation pairs and "
                       "comparison material", endpoint=True),
        CorrelatedKind("paillier", "the two parties make triples and truncation pairs with Paillier, no third party",
                       parties=(2,),
                       unsupported={"comparison": _PAILLIER_MAKES_ONLY, "binary": _PAILLIER_MAKES_ONLY,
                                    "one_hot": _PAILLIER_MAKES_ONLY, "functions": _PAILLIER_MAKES_ONLY,
                                    "nn": _PAILLIER_MAKES_ONLY + " (ReLU and pooling need comparisons)"}),
    ),
    test_parties=(2, 3),
    label="additive (trusted dealer)",
    bench_parties=2,
)

__all__ = ["SPEC", "AdditiveCost", "AdditiveProtocol", "AdditiveTensor"]
