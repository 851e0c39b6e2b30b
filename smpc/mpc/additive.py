"""N-party additive secret sharing over Z_2^64 with a trusted dealer (semi-honest).

:class:`AdditiveTensor` is the shared-tensor interface for this protocol: numpy-like
arithmetic with public or shared operands, fixed point, reveal. Costs (N parties,
n output elements, online): add/sub 0 rounds; integer ``*``/``@``/conv2d 1 round
(Beaver); fixed-point ``*``/``@``/conv2d 2 rounds (Beaver, then truncation); reveal
1 round. Fixed-point values carry ``frac_bits`` fraction bits; integer tensors carry 0.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc import dealer as dealer_module
from smpc.mpc.beaver import beaver_product
from smpc.mpc.conversions import a2b, b2a, msb
from smpc.mpc.bilinear import Bilinear
from smpc.mpc.sharing import open_shares, open_to, share_from
from smpc.mpc.tensor import SharedTensor, public_to_ring, source_value
from smpc.mpc.truncation import truncate


class AdditiveTensor(SharedTensor):
    """This party's additive share of a tensor (one uint64 component plus a scale).

    ``frac_bits`` is 0 for an integer tensor and the party's ``frac_bits`` for a
    fixed-point one. A shared value refuses ``bool()``: it can never steer an ``if``.
    """

    def __init__(self, party, share, frac_bits: int):
        components = (share,) if isinstance(share, np.ndarray) else tuple(share)
        super().__init__(party, components, frac_bits)

    @property
    def share(self) -> np.ndarray:
        """This party's additive share (uint64)."""
        return self.components[0]

    def _public_components(self, ring: np.ndarray):
        return (ring if self.party.rank == 0 else None,)

    def _shared_bilinear(self, left: SharedTensor, right: SharedTensor, op: Bilinear) -> SharedTensor:
        shape = op.output_shape(left.shape, right.shape)
        frac = left.frac_bits + right.frac_bits
        excess = frac - self.party.frac_bits
        # ask for the truncation pair first: the dealer makes it during the Beaver round
        pair = self.party.dealer.trunc_pair(shape, excess) if excess > 0 else None
        product = beaver_product(self.party, left.components[0], right.components[0], op)
        if pair is None:
            return self._new((product,), frac)
        return self._new((truncate(self.party, product, excess, pair),), self.party.frac_bits)

    def _truncate_ring(self, bits: int) -> tuple[np.ndarray, ...]:
        return (truncate(self.party, self.share, bits),)

    def _is_negative(self) -> SharedTensor:
        """The sign bit: A2B with a prefix adder (7 rounds for 2 parties), then B2A (1 round)."""
        bit = msb(self.party, self.share)
        return self._new((b2a(self.party, bit),), 0)

    def to_binary(self):
        """This value in binary (XOR) sharing, as a :class:`~smpc.mpc.binary.BinaryTensor`."""
        return a2b(self.party, self.share)

    def reveal_ring(self, to: int | None = None) -> np.ndarray | None:
        """The raw ring elements (uint64), to all or to party ``to``. One round."""
        if to is None:
            return open_shares(self.party, [self.share])[0]
        return open_to(self.party, self.share, to)


class AdditiveProtocol:
    """``protocol="additive"``: N >= 2 parties plus a trusted dealer endpoint."""

    name = "additive"
    has_dealer = True
    min_parties = 2

    def attach(self, party) -> None:
        """Give ``party`` this protocol and a dealer client."""
        party.protocol = self
        party.dealer = dealer_module.TrustedDealerClient(party)

    def serve_dealer(self, dealer_party) -> dict:
        """Run the trusted dealer until the parties finish."""
        return dealer_module.serve(dealer_party)

    def share(self, party, x, src: int) -> AdditiveTensor:
        """Secret-share ``x`` held by party ``src`` (the others pass None)."""
        ring, frac = source_value(party, x, src) or (None, None)
        share, frac = share_from(party, ring, src, frac)
        return AdditiveTensor(party, share, frac)

    def from_public(self, party, value) -> AdditiveTensor:
        """A public value as a (trivially) shared tensor: party 0 holds it, others zero."""
        ring, frac = public_to_ring(value, party.frac_bits)
        share = ring.copy() if party.rank == 0 else np.zeros_like(ring)
        return AdditiveTensor(party, share, frac)
