"""N-party additive secret sharing over Z_2^64 (semi-honest), with a trusted dealer or Paillier preprocessing.

The package holds everything this protocol owns: its tensor and protocol object (:mod:`.tensor`), Beaver
products (:mod:`.beaver`), exact truncation (:mod:`.truncation`), binary sharing with dealer AND triples
(:mod:`.binary`) and the arithmetic/binary conversions (:mod:`.conversions`).
"""

import functools

from smpc.mpc.additive.cost import AdditiveCost
from smpc.mpc.additive.tensor import DEFAULT_KEY_BITS, AdditiveProtocol, AdditiveTensor
from smpc.mpc.registry import CorrelatedKind, ProtocolSpec

_PAILLIER_MAKES_ONLY = "dealer='paillier' makes Beaver triples and truncation pairs only"


def _make(correlated: str, dealer_key_bits: int | None = None, comparisons: str | None = None) -> AdditiveProtocol:
    if dealer_key_bits is not None and correlated != "paillier":
        raise ValueError("dealer_key_bits sets the Paillier modulus of dealer='paillier' only")
    return AdditiveProtocol(correlated, DEFAULT_KEY_BITS if dealer_key_bits is None else dealer_key_bits,
                            comparisons or "circuit")


def _make_fss(correlated: str, **options) -> AdditiveProtocol:
    if options:
        raise ValueError(f"protocol 'additive_fss' takes no options, got {sorted(options)}")
    return AdditiveProtocol(correlated, comparisons="fss")


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
                       "comparison material", endpoint=True, preprocessing=True),
        CorrelatedKind("paillier", "the two parties make triples and truncation pairs with Paillier, no third party",
                       parties=(2,), preprocessing=True,
                       unsupported={"comparison": _PAILLIER_MAKES_ONLY, "binary": _PAILLIER_MAKES_ONLY,
                                    "one_hot": _PAILLIER_MAKES_ONLY, "functions": _PAILLIER_MAKES_ONLY,
                                    "nn": _PAILLIER_MAKES_ONLY + " (ReLU and pooling need comparisons)"}),
    ),
    test_parties=(2, 3),
    label="additive (trusted dealer)",
    bench_parties=2,
)

#: ``protocol="additive", comparisons="fss"`` under its own name, so the test matrix and the CLI offer it too
FSS_SPEC = ProtocolSpec(
    name="additive_fss",
    summary="2-party additive sharing with comparisons by function secret sharing (two openings per comparison)",
    security="semi-honest; the two parties must not collude; the trusted dealer sees no input or output but must "
             "not collude with either party (it knows every mask)",
    make=_make_fss,
    cost=functools.partial(AdditiveCost, comparisons="fss"),
    min_parties=2,
    max_parties=2,
    correlated=(CorrelatedKind("trusted", "a dealer endpoint deals triples, truncation pairs, DCF keys and daBits",
                               endpoint=True, preprocessing=True),),
    test_parties=(2,),
    bench_parties=2,
    label="additive, FSS comparisons (trusted dealer)",
    in_bench=False,  # not yet run at the bench's ResNet-18 sizes: about 1 KB of keys per comparison and party
    bench_groups=("networks",),
)
SPECS = (SPEC, FSS_SPEC)

__all__ = ["FSS_SPEC", "SPEC", "SPECS", "AdditiveCost", "AdditiveProtocol", "AdditiveTensor"]
