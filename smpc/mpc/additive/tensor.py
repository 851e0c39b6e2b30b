"""N-party additive secret sharing over Z_2^64 with a trusted dealer (semi-honest).

:class:`AdditiveTensor` is the shared-tensor interface for this protocol: numpy-like
arithmetic with public or shared operands, fixed point, reveal. Costs (N parties,
n output elements, online): add/sub 0 rounds; integer ``*``/``@``/conv2d 1 round
(Beaver); fixed-point ``*``/``@``/conv2d 2 rounds (Beaver, then truncation); reveal
1 round. Fixed-point values carry ``frac_bits`` fraction bits; integer tensors carry 0.
"""

from __future__ import annotations

import functools

import numpy as np

from smpc.mpc.correlated import trusted as dealer_module
from smpc.mpc.correlated.preprocessed import plan_ahead
from smpc.mpc.additive.beaver import beaver_product
from smpc.mpc.additive.conversions import a2b, b2a_packed
from smpc.mpc.bilinear import Bilinear
from smpc.mpc.fss import compare as fss_compare
from smpc.mpc.fss.compare import BATCH as FSS_BATCH
from smpc.mpc.interfaces import Protocol
from smpc.mpc.sharing import open_shares, open_to, share_from
from smpc.mpc.tensor import SharedTensor
from smpc.mpc.tensor_core import public_to_ring, source_value
from smpc.mpc.circuits.sign_bit import arithmetic_bit, msb_plane, product_with_bit
from smpc.mpc.additive.truncation import truncate
from smpc.ring.arith import ring_add as _plus, wrapping
from smpc.ring.prg import PRG

#: how the sign bit is computed: the bit-sliced circuit (7 rounds) or function secret sharing (2 rounds, 2 parties)
COMPARISONS = {"circuit": "the bit-sliced sign-bit circuit, 7 rounds",
               "fss": "one-bit DCF keys and a daBit from the dealer, 2 rounds"}
DEFAULT_KEY_BITS = 2048  # the Paillier modulus of dealer="paillier"
MIN_KEY_BITS = 2048


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
        # ask for the triple and the truncation pair together: the dealer makes both during the Beaver
        # round, and the pair is completed (in request order) after the triple, inside its truncation
        triple = self.party.dealer.triple(op, left.shape, right.shape)
        pair = self.party.dealer.trunc_pair(shape, excess) if excess > 0 else None
        product = beaver_product(self.party, left.components[0], right.components[0], op, triple)
        if pair is None:
            return self._new((product,), frac)
        return self._new((truncate(self.party, product, excess, pair),), self.party.frac_bits)

    def _truncate_ring(self, bits: int) -> tuple[np.ndarray, ...]:
        return (truncate(self.party, self.share, bits),)

    def _is_negative(self) -> SharedTensor:
        """The sign bit as a shared integer 0/1: open x + r, the bit-sliced circuit of
        :mod:`smpc.mpc.circuits.sign_bit` (5 rounds), open msb XOR s. 7 rounds; per peer
        8n + 11n + n/8 bytes for n elements."""
        return self._sign_protocol(times_self=False)

    def _times_negative(self) -> SharedTensor:
        """x * msb(x) in the sign bit's 7 rounds (the product rides on the opened x + r)."""
        return self._sign_protocol(times_self=True)

    def _sign_protocol(self, times_self: bool) -> SharedTensor:
        party = self.party
        flat = self.share.reshape(-1)
        if flat.size == 0:
            return self._new((np.zeros(self.shape, np.uint64),), self.frac_bits if times_self else 0)
        if party.protocol.comparisons == "fss":
            return self._fss_sign(flat, times_self)
        material = party.dealer.sign_material(flat.size, with_product=times_self)
        leader = party.rank == 0
        masked = open_shares(party, [_plus(flat, material["r"])])[0]
        party.dealer.complete(material)  # the last party's derived fields, made by the dealer during the opening
        plane = msb_plane(masked, material, functools.partial(open_shares, party, combine=np.bitwise_xor), leader)
        opened = open_shares(party, [plane ^ material["s_bits"]], combine=np.bitwise_xor)[0]
        if times_self:
            product = product_with_bit(opened, flat, masked, material["s"], material["rs"])
            return self._new((product.reshape(self.shape),))
        bit = arithmetic_bit(opened, material["s"], leader)
        return self._new((bit.reshape(self.shape),), 0)

    def _fss_sign(self, flat: np.ndarray, times_self: bool) -> SharedTensor:
        """msb(x), or x * msb(x), by function secret sharing (:mod:`smpc.mpc.fss.compare`): open c = x + r (8 bytes
        per element to the peer), evaluate this party's one-bit DCF keys locally, open msb(x) XOR s for the dealer's
        daBit s (1 bit per element), then finish locally: 2 rounds. The keys take about 1 KB per element, so more
        than :data:`smpc.mpc.fss.compare.BATCH` elements run in consecutive batches (2 rounds each)."""
        party = self.party
        out = np.empty_like(flat)
        for start in range(0, flat.size, FSS_BATCH):
            part = flat[start : start + FSS_BATCH]
            material = party.dealer.fss_sign(part.size, with_product=times_self)
            masked = open_shares(party, [_plus(part, material.mask)], owned=True)[0]
            keys = party.dealer.complete(material).keys  # the dealer made them while c was opened
            share = fss_compare.masked_sign(party.rank, keys, masked)
            opened = open_shares(party, [share], combine=np.bitwise_xor, owned=True)[0]
            if times_self:
                out[start : start + part.size] = fss_compare.times_sign(party.rank, keys, part, masked, opened)
            else:
                out[start : start + part.size] = fss_compare.sign(party.rank, keys, opened)
        return self._new((out.reshape(self.shape),), self.frac_bits if times_self else 0)

    def _random_one_hot(self, count: int, bits: int):
        """The dealer's random offsets and (through a call that completes the material, after the opening of
        x - r) their one-hot rows (offline; :mod:`smpc.mpc.one_hot`)."""
        mask = self.party.dealer.random_one_hot(count, bits)
        return self._new((mask.offsets,), 0), lambda: self._new((self.party.dealer.complete(mask).rows,), 0)

    def to_binary(self):
        """This value in binary (XOR) sharing, as a :class:`~smpc.mpc.additive.binary.BinaryTensor`."""
        return a2b(self.party, self.share)

    def _bits_to_arithmetic(self, bits: list) -> "AdditiveTensor":
        """Binary-shared bits (words 0/1, each of this shape) as one stacked integer tensor: one B2A round, the
        masked bits opened packed into one word per element."""
        return self._new((b2a_packed(self.party, bits),), 0)

    def reveal_ring(self, to: int | None = None) -> np.ndarray | None:
        """The raw ring elements (uint64), to all or to party ``to``. One round."""
        if to is None:
            return open_shares(self.party, [self.share])[0]
        return open_to(self.party, self.share, to)


class AdditiveProtocol(Protocol):
    """``protocol="additive"``: N >= 2 parties plus a trusted dealer endpoint, or two parties
    that make their correlated randomness with Paillier (``dealer="paillier"``)."""

    name = "additive"

    def __init__(self, dealer: str = "trusted", dealer_key_bits: int = DEFAULT_KEY_BITS, comparisons: str = "circuit"):
        if dealer not in ("trusted", "paillier"):
            raise ValueError(f"unknown dealer {dealer!r} for protocol 'additive'; choose 'trusted' or 'paillier'")
        if comparisons not in COMPARISONS:
            raise ValueError(f"unknown comparisons {comparisons!r} for protocol 'additive'; choose one of "
                             f"{list(COMPARISONS)}")
        if comparisons == "fss" and dealer != "trusted":
            raise ValueError("comparisons='fss' needs dealer='trusted' (the dealer makes the keys)")
        self.comparisons = comparisons
        if dealer == "paillier" and (not isinstance(dealer_key_bits, int) or isinstance(dealer_key_bits, bool)
                                     or dealer_key_bits < MIN_KEY_BITS):
            raise ValueError(f"dealer_key_bits must be an integer >= {MIN_KEY_BITS}, got {dealer_key_bits!r}")
        self.dealer = dealer
        self.dealer_key_bits = dealer_key_bits
        self.has_dealer = dealer == "trusted"

    def attach(self, party) -> None:
        """Give ``party`` this protocol and a correlated-randomness source."""
        if self.comparisons == "fss" and party.world_size != 2:
            raise ValueError(f"comparisons='fss' runs with exactly 2 parties, got {party.world_size}")
        party.protocol = self
        if self.dealer == "paillier":
            from smpc.mpc.correlated.paillier import PaillierDealerClient  # gmpy2 work only when asked for

            party.dealer = PaillierDealerClient(party, self.dealer_key_bits)
        else:
            party.dealer = dealer_module.TrustedDealerClient(party)

    def preprocess(self, party, fn) -> None:
        """Fetch all of ``fn``'s correlated randomness in a planning pass (``preprocessing="ahead"``)."""
        plan_ahead(party, fn)

    def describe(self) -> str:
        fss = ", fss comparisons" if self.comparisons == "fss" else ""
        return f"protocol {self.name}, {self.dealer} correlated randomness{fss}"

    def serve_dealer(self, dealer_party) -> dict:
        """Run the trusted dealer until the parties finish."""
        return dealer_module.serve(dealer_party)

    def share(self, party, x, src: int) -> AdditiveTensor:
        """Secret-share ``x`` held by party ``src`` (the others pass None)."""
        ring, frac = source_value(party, x, src) or (None, None)
        share, frac = share_from(party, ring, src, frac)
        return AdditiveTensor(party, share, frac)

    @wrapping
    def client_messages(self, ring, parties, key_source):
        """Seed-compressed additive shares: a PRG key for each of parties 0..N-2, the rest of ``ring`` for the last
        (a client uploads one ring vector in all; Prio's two-server model, Corrigan-Gibbs and Boneh, NSDI 2017)."""
        keys = [key_source() for _ in range(parties - 1)]
        last = np.asarray(ring, dtype=np.uint64)
        for index, key in enumerate(keys):
            stream = PRG(key).random_ring(last.shape)
            if index == 0:
                last = last - stream  # a new array: the caller's ring stays as it was
            else:
                last -= stream
        return [[key] for key in keys] + [[last if keys else last.copy()]]

    def from_components(self, party, components, frac_bits: int) -> AdditiveTensor:
        return AdditiveTensor(party, tuple(components), frac_bits)

    def from_public(self, party, value) -> AdditiveTensor:
        """A public value as a (trivially) shared tensor: party 0 holds it, others zero."""
        ring, frac = public_to_ring(value, party.frac_bits)
        share = ring.copy() if party.rank == 0 else np.zeros_like(ring)
        return AdditiveTensor(party, share, frac)

