"""SPDZ2k (Cramer, Damgard, Escudero, Scholl and Xing, CRYPTO 2018): additive shares with MACs over Z_2^128, so a
cheating party is caught.

A value x of Z_2^64 (k = 64) is held as shares x_i of some x~ in Z_2^128 with x~ = x mod 2^64, and MAC shares m_i
with sum m_i = alpha x~ mod 2^128, under a global key alpha in [0, 2^s) that no party knows (s <= 64 statistical
bits; each party holds a share alpha_i). Linear operations act on both shares locally (a public constant c adds
to party 0's value share and alpha_i c to every MAC share). Openings are partial: the value is learned, the MACs
are checked later, in batches, by :mod:`.mac_check`, always before a value derived from them leaves the protocol.

Steps (N parties; n elements):

* input: the dealer gives an authenticated mask r that the source knows; the source broadcasts x - r (1 round).
* product (element-wise, matmul, conv2d): Beaver with an authenticated triple; e = x - a and f = y - b are opened
  (uniform in Z_2^128, so they hide x~ whole: SPDZ2k section 3), the MACs follow by linearity (1 round).
* truncation: an authenticated pair (r uniform in Z_2^128, the top bit and the shifted low part of r mod 2^64), so
  the additive protocol's exact truncation (:mod:`smpc.mpc.additive.truncation`) runs on c = x + r mod 2^64 and
  the MACs follow by linearity (1 round).
* reveal: x~ + 2^64 t for a random authenticated t (the upper 64 bits hide what the computation left in them) is
  opened, the log is checked, and the low 64 bits are the value (1 + 4 rounds); to one party, x - r for a mask r
  that party knows.

Semi-honest parties get the additive protocol's results, within the same error bounds; a party that changes a
share, a MAC or a message is caught by the check with probability at least 1 - 2^(-s + log2(s + 1)).
"""

from __future__ import annotations

import functools

import numpy as np

from smpc.mpc.bilinear import MATMUL, Bilinear
from smpc.mpc.circuits.adders import prefix_carries
from smpc.mpc.correlated import trusted
from smpc.mpc.interfaces import Protocol
from smpc.mpc.sharing import receive_share_header, send_share_header
from smpc.mpc.spdz2k import binary, compare, fss, words
from smpc.mpc.spdz2k.binary import Spdz2kBinary
from smpc.mpc.spdz2k.dealer import AuthTruncPair, Spdz2kDealerClient
from smpc.mpc.spdz2k.requests import MAX_STATISTICAL_BITS, MIN_STATISTICAL_BITS, DealerKey
from smpc.mpc.tensor import SharedTensor
from smpc.mpc.tensor_core import SharedTensorCore, public_to_ring, source_value
from smpc.ring import conv128
from smpc.ring.arith import wrapping
from smpc.ring.lookup import rotate_rows

DEFAULT_STATISTICAL_BITS = 64
BIAS_BITS = 62
_TOP = np.uint64(63)
_LOW_MASK = np.uint64((1 << 63) - 1)


class Spdz2kTensor(SharedTensor):
    """This party's authenticated share of a tensor: components (value share, MAC share), each a
    :data:`~smpc.mpc.spdz2k.words.U128` array of the tensor's shape."""

    # --- the parts -------------------------------------------------------------------------------------------------
    @property
    def value_limbs(self) -> np.ndarray:
        """This party's value share as Z_2^128 limbs."""
        return words.limbs(self.components[0])

    @property
    def mac_limbs(self) -> np.ndarray:
        """This party's MAC share as Z_2^128 limbs."""
        return words.limbs(self.components[1])

    def _from_limbs(self, value: np.ndarray, mac: np.ndarray, frac: int | None = None) -> "Spdz2kTensor":
        return self._new((words.words(value), words.words(mac)), frac)

    @property
    def _checker(self):
        return self.party.dealer.checker

    # --- public values ---------------------------------------------------------------------------------------------
    def _public_components(self, ring: np.ndarray):
        lifted = words.lift(ring)
        value = lifted if self.party.rank == 0 else np.zeros_like(lifted)
        return words.words(value), words.words(words.mul(lifted, self._checker.alpha_share))

    def _plus_public(self, value: np.ndarray, mac: np.ndarray, lifted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Limbs of (value, mac) plus a public value (limbs): party 0's value share takes it, every MAC share
        alpha_i times it."""
        shape = np.broadcast_shapes(value.shape, lifted.shape)
        value = words.add(value, lifted) if self.party.rank == 0 else np.broadcast_to(value, shape).copy()
        return value, words.add(mac, words.mul(lifted, self._checker.alpha_share))

    @staticmethod
    @wrapping
    def _aligned(ring: np.ndarray, frac: int, target: int) -> np.ndarray:
        if frac == target:
            return ring
        if ring.dtype == words.U128:
            return words.words(words.shift_left(words.limbs(ring), target - frac))
        return ring * np.uint64(1 << (target - frac))

    def _offset_own_share(self, ring: np.ndarray) -> "Spdz2kTensor":
        value = words.add(self.value_limbs, words.lift(np.broadcast_to(ring, self.shape)))
        return self._from_limbs(value, self.mac_limbs)

    # --- linear operations -----------------------------------------------------------------------------------------
    def __add__(self, other):
        other = self._coerce(other)
        frac = max(self.frac_bits, other.frac_bits if isinstance(other, SharedTensorCore) else other[1])
        value, mac = (words.limbs(self._aligned(c, self.frac_bits, frac)) for c in self.components)
        if isinstance(other, SharedTensorCore):
            theirs = [words.limbs(self._aligned(c, other.frac_bits, frac)) for c in other.components]
            return self._from_limbs(words.add(value, theirs[0]), words.add(mac, theirs[1]), frac)
        public = words.lift(self._aligned(other[0], other[1], frac))
        return self._from_limbs(*self._plus_public(value, mac, public), frac)

    __radd__ = __add__

    def __neg__(self):
        return self._local(lambda c: words.words(words.neg(words.limbs(c))))

    def _public_bilinear(self, value: np.ndarray, frac: int, op: Bilinear, reverse: bool) -> "Spdz2kTensor":
        lifted = words.lift(value)
        if reverse:
            parts = [words.apply(op, lifted, words.limbs(c)) for c in self.components]
        else:
            parts = [words.apply(op, words.limbs(c), lifted) for c in self.components]
        return self._from_limbs(*parts, self.frac_bits + frac)

    def _times_public_ring(self, ring: np.ndarray, frac: int) -> "Spdz2kTensor":
        lifted = words.lift(ring)
        value, mac = (words.mul(words.limbs(c), lifted) for c in self.components)
        return self._from_limbs(value, mac, self.frac_bits + frac)

    def sum(self, axis=None, keepdims: bool = False) -> "Spdz2kTensor":
        """Sum over ``axis`` (local, exact mod 2^128)."""
        return self._local(lambda c: words.words(words.sum_axes(words.limbs(c), axis, keepdims)))

    def sum_pool2d(self, kernel_size, stride=None, padding=0) -> "Spdz2kTensor":
        """Window sums over an NCHW tensor (local, exact mod 2^128)."""
        return self._local(lambda c: words.words(conv128.sum_pool2d(words.limbs(c), kernel_size, stride, padding)))

    def __getitem__(self, index) -> "Spdz2kTensor":
        if isinstance(index, SharedTensorCore):
            raise TypeError("indexing with a shared index is not supported")
        return self._local(lambda c: np.array(c[index], dtype=words.U128, copy=True))

    # --- products, truncation, reveal --------------------------------------------------------------------------------
    def _shared_bilinear(self, left: SharedTensor, right: SharedTensor, op: Bilinear) -> "Spdz2kTensor":
        shape = op.output_shape(left.shape, right.shape)
        frac = left.frac_bits + right.frac_bits
        excess = frac - self.party.frac_bits
        dealer = self.party.dealer
        triple = dealer.triple(op, left.shape, right.shape)  # both requested together: made during the opening
        pair = dealer.trunc_pair(shape, excess) if excess > 0 else None
        product = self._beaver(left, right, op, triple)
        return product if pair is None else product._truncated(excess, pair)

    def _beaver(self, left, right, op: Bilinear, triple) -> "Spdz2kTensor":
        """Beaver's product on authenticated shares (SPDZ, Damgard et al., CRYPTO 2012, section 3; over Z_2^128 as
        in SPDZ2k, section 3): open e = x - a and f = y - b, then
        z = c + op(e, b) + op(a, f) + op(e, f) (the last term a public constant) and, by bilinearity,
        m_z = m_c + op(e, m_b + alpha_i f) + op(m_a, f)."""
        party = self.party
        x, y = left.value_limbs, right.value_limbs
        e, f = open_limbs(party, [words.sub(x, triple.a.value), words.sub(y, triple.b.value)])
        party.dealer.complete(triple)
        checker = self._checker
        checker.record(e, words.sub(left.mac_limbs, triple.a.mac))
        checker.record(f, words.sub(right.mac_limbs, triple.b.mac))
        b_value = words.add(triple.b.value, f) if party.rank == 0 else triple.b.value
        value = words.add(words.add(words.apply(op, e, b_value), words.apply(op, triple.a.value, f)), triple.c.value)
        b_mac = words.add(triple.b.mac, words.mul(f, checker.alpha_share))
        mac = words.add(words.add(words.apply(op, e, b_mac), words.apply(op, triple.a.mac, f)), triple.c.mac)
        checker.check_if_full()
        return self._from_limbs(value, mac, left.frac_bits + right.frac_bits)

    def _truncate_ring(self, bits: int) -> tuple[np.ndarray, ...]:
        return self._truncated(bits, self.party.dealer.trunc_pair(self.shape, bits)).components

    @wrapping
    def _truncated(self, bits: int, pair: AuthTruncPair) -> "Spdz2kTensor":
        """The additive protocol's exact truncation (:mod:`smpc.mpc.additive.truncation`, Escudero et al., CRYPTO
        2020, section 5) on authenticated shares: open c = x + 2^62 + r, then with c's top bit and low bits public,
        y = r_msb (1 - 2 c_msb) 2^(63-bits) - low + [c_msb 2^(63-bits) + (c_low >> bits) - 2^(62-bits)], every term
        linear in the pair's authenticated shares (its MACs follow). Result scale: ``party.frac_bits``."""
        party, checker = self.party, self._checker
        bias = words.lift(np.array(1 << BIAS_BITS, dtype=np.uint64))
        value = words.add(self.value_limbs, pair.r.value)
        if party.rank == 0:
            value = words.add(value, bias)
        (c,) = open_limbs(party, [value])
        party.dealer.complete(pair)
        masked_mac = words.add(words.add(self.mac_limbs, pair.r.mac), words.mul(bias, checker.alpha_share))
        checker.record(c, masked_mac)
        low = c[..., 0]
        c_msb = low >> _TOP
        scale = np.uint64(1 << (63 - bits))
        coefficient = words.lift((np.uint64(1) - np.uint64(2) * c_msb) * scale)
        shared_value = words.sub(words.mul(pair.msb.value, coefficient), pair.low.value)
        shared_mac = words.sub(words.mul(pair.msb.mac, coefficient), pair.low.mac)
        public = c_msb * scale + ((low & _LOW_MASK) >> np.uint64(bits)) - np.uint64(1 << (BIAS_BITS - bits))
        value, mac = self._plus_public(shared_value, shared_mac, words.lift(public))
        checker.check_if_full()
        return self._from_limbs(value, mac, party.frac_bits)

    # --- comparisons (smpc.mpc.spdz2k.compare) ---------------------------------------------------------------------
    def _is_negative(self) -> "Spdz2kTensor":
        """msb(x) as an authenticated 0/1: two parties by authenticated FSS (:mod:`.fss`, 2 rounds per batch), more
        by the comparison tree (:mod:`.compare`, 7 rounds per batch)."""
        if self.size == 0:
            return self._new((words.zeros(self.shape), words.zeros(self.shape)), 0)
        if self.party.protocol.uses_fss(self.party):
            return fss.sign_bit(self.reshape(-1), with_product=False).reshape(self.shape)
        return compare.sign_bit(self.reshape(-1)).reshape(self.shape)

    def _times_negative(self) -> "Spdz2kTensor":
        """x * msb(x): by FSS in the same 2 rounds (x s = c s - r s, no product), or the tree's sign bit and one
        Beaver product (8 rounds per batch)."""
        flat = self.reshape(-1)
        if self.size and self.party.protocol.uses_fss(self.party):
            return fss.sign_bit(flat, with_product=True).reshape(self.shape)
        return (flat * flat._is_negative()).reshape(self.shape)

    def _max_by_relu(self) -> bool:
        return self.party.protocol.uses_fss(self.party)  # x msb(x) comes from the same two openings

    def _open_masked(self, material) -> np.ndarray:
        """Open x~ + r for the dealer's authenticated masks (logged for the MAC check); complete ``material``."""
        (c,) = open_limbs(self.party, [words.add(self.value_limbs, material.r.value)])
        self.party.dealer.complete(material)
        self._checker.record(c, words.add(self.mac_limbs, material.r.mac))
        return c

    def _from_material(self, shares) -> "Spdz2kTensor":
        """An authenticated integer tensor of the dealer's value and MAC shares (limbs)."""
        return self._from_limbs(shares.value, shares.mac, 0)

    def _public_row(self, ring: np.ndarray) -> "Spdz2kTensor":
        """A public integer array as an authenticated tensor (no communication)."""
        return self._new(self._public_components(ring), 0)

    # --- binary sharing (smpc.mpc.spdz2k.binary) -------------------------------------------------------------------
    def to_binary(self) -> Spdz2kBinary:
        """This value's 64 bits in the bit domain, with an edaBit (Escudero et al., CRYPTO 2020): open c = x~ + r
        for the dealer's r, whose bits it also deals authenticated in the bit domain, then x = c + ~r + 1 by a
        Kogge-Stone adder with the public c (1 + 6 rounds)."""
        party = self.party
        material = party.dealer.edabits(self.shape)
        r, planes = material
        (c,) = open_limbs(party, [words.add(self.value_limbs, r.value)])
        party.dealer.complete(material)
        self._checker.record(c, words.add(self.mac_limbs, r.mac))
        not_r = ~Spdz2kBinary(party, planes.value, planes.mac)
        public = words.low_limb(c)
        generate, propagate = not_r & public, not_r ^ public  # public with shared: local
        generate = generate ^ (propagate & np.uint64(1))  # the carry into bit 0 (disjoint from generate: XOR is OR)
        carries = prefix_carries(functools.partial(binary.and_many, party), generate, propagate)
        return propagate ^ ((carries << 1) ^ np.uint64(1))

    def _bits_to_arithmetic(self, bits: list) -> "Spdz2kTensor":
        """Bit-domain bits (words 0/1) as authenticated integers, stacked (len(bits), *shape), in one round with
        daBits: open b XOR d in the bit domain, then b = e + d - 2 e d with e public."""
        party = self.party
        shape = (len(bits), *bits[0].shape)
        arith, bit = party.dealer.complete(party.dealer.auth_dabits(shape))
        value = np.stack([b.value[0] for b in bits]) + bit.value
        mac = np.stack([b.mac[0] for b in bits]) + bit.mac
        e = binary.open_bits(party, value, mac)
        coefficient = words.lift(np.uint64(1) - np.uint64(2) * e)
        out_value = words.mul(arith.value, coefficient)
        out_mac = words.mul(arith.mac, coefficient)
        out_value, out_mac = self._plus_public(out_value, out_mac, words.lift(e))
        self.party.dealer.bit_checker.check_if_full()
        return self._from_limbs(out_value, out_mac, 0)

    # --- one-hot rows (smpc.mpc.one_hot) -------------------------------------------------------------------------
    def _random_one_hot(self, count: int, bits: int):
        """The dealer's offsets r (uniform in Z_2^128, so x - r opens only (x - r) mod 2^bits) and the authenticated
        one-hot rows of r mod 2^bits (completed at once: the reveal that follows fetches its own mask)."""
        r, rows = self.party.dealer.complete(self.party.dealer.one_hot(count, bits))
        offsets = self._from_limbs(r.value, r.mac, 0)
        table = self._from_limbs(rows.value, rows.mac, 0)
        return offsets, lambda: table

    def _masked_for_opening(self, bits: int) -> "Spdz2kTensor":
        return self  # the offsets' upper bits are uniform: opening x - r reveals only (x - r) mod 2^bits

    def _rotated_rows(self, shifts: np.ndarray, size: int) -> "Spdz2kTensor":
        def rotate(component):
            limb_array = words.limbs(component)
            rotated = np.stack([rotate_rows(limb_array[..., limb], shifts)[:, :size] for limb in (0, 1)], axis=-1)
            return words.words(rotated)

        return self._local(rotate)

    def _rotated_dot(self, shifts: np.ndarray, table: np.ndarray) -> "Spdz2kTensor":
        rotated = self._rotated_rows(shifts, self.shape[1])
        lifted = np.zeros((self.shape[1], table.shape[1], 2), np.uint64)
        lifted[: table.shape[0]] = words.lift(table)
        value, mac = (words.apply(Bilinear(MATMUL), words.limbs(c), lifted) for c in rotated.components)
        return self._from_limbs(value, mac)

    def _open_partially(self) -> np.ndarray:
        """Open a value whose upper 64 bits are already uniform (a one-hot's x - r): logged, checked later (before
        any output), one round."""
        (opened,) = open_limbs(self.party, [self.value_limbs])
        self._checker.record(opened, self.mac_limbs)
        return words.low_limb(opened)

    def reveal_ring(self, to: int | None = None) -> np.ndarray | None:
        """The value mod 2^64 (uint64), to every party or to party ``to`` only, after the MAC check of every opening
        so far (1 + 4 rounds; see the module docstring)."""
        party, checker = self.party, self._checker
        if to is not None and not (isinstance(to, (int, np.integer)) and 0 <= to < party.world_size):
            raise ValueError(f"reveal target {to!r} is not a party rank (0..{party.world_size - 1})")
        mask = party.dealer.complete(party.dealer.random(self.shape, owner=-1 if to is None else int(to)))
        if to is None:  # open x~ + 2^64 t: the low 64 bits are x, the high ones uniform
            value = words.add(self.value_limbs, words.shift_left(mask.r.value, 64))
            mac = words.add(self.mac_limbs, words.shift_left(mask.r.mac, 64))
        else:  # open x~ - r for an r that party `to` knows
            value = words.sub(self.value_limbs, mask.r.value)
            mac = words.sub(self.mac_limbs, mask.r.mac)
        (opened,) = open_limbs(party, [value])
        checker.record(opened, mac)
        binary.check_both(party)
        if to is None:
            return words.low_limb(opened)
        return words.low_limb(words.add(opened, mask.known)) if party.rank == to else None


def open_limbs(party, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Open Z_2^128 shares (limbs) at every party in one round: each party sends each array to every peer and adds
    up what it receives mod 2^128. (N - 1) * 16 bytes per element sent per party."""
    for peer in party.others:
        for array in arrays:
            party.send(peer, array)
    totals = list(arrays)
    for peer in party.others:
        totals = [words.add(total, party.recv_like(peer, total.shape)) for total in totals]
    return totals


class Spdz2kProtocol(Protocol):
    """``protocol="spdz2k"``: N >= 2 parties with authenticated shares and a trusted dealer of authenticated
    material; ``statistical_bits`` is s, the MAC key's width (1..64; a cheater passes with probability at most
    2^(-s + log2(s + 1))); ``comparisons``: ``"auto"`` (FSS with authenticated outputs for two parties,
    :mod:`.fss`; the comparison tree on authenticated bits for more, :mod:`.compare`), ``"fss"`` (two parties
    only) or ``"circuit"`` (the tree for any N)."""

    name = "spdz2k"
    has_dealer = True
    COMPARISONS = ("auto", "fss", "circuit")

    def __init__(self, statistical_bits: int = DEFAULT_STATISTICAL_BITS, comparisons: str = "auto"):
        if isinstance(statistical_bits, bool) or not isinstance(statistical_bits, int) or not (
                MIN_STATISTICAL_BITS <= statistical_bits <= MAX_STATISTICAL_BITS):
            raise ValueError(f"statistical_bits must be an integer in {MIN_STATISTICAL_BITS}.."
                             f"{MAX_STATISTICAL_BITS}, got {statistical_bits!r}")
        if comparisons not in self.COMPARISONS:
            raise ValueError(f"comparisons must be one of {', '.join(map(repr, self.COMPARISONS))}, "
                             f"got {comparisons!r}")
        self.statistical_bits = statistical_bits
        self.comparisons = comparisons

    def uses_fss(self, party) -> bool:
        """Whether this run's comparisons are by FSS (two parties, unless ``comparisons="circuit"``)."""
        return self.comparisons == "fss" or (self.comparisons == "auto" and party.world_size == 2)

    def attach(self, party) -> None:
        """Give ``party`` this protocol and its dealer client (which sets up its MAC key share)."""
        if self.comparisons == "fss" and party.world_size != 2:
            raise ValueError(f"comparisons='fss' runs with exactly 2 parties, got {party.world_size}")
        party.protocol = self
        party.dealer = Spdz2kDealerClient(party, self.statistical_bits)

    def describe(self) -> str:
        chosen = "" if self.comparisons == "auto" else f", {self.comparisons} comparisons"
        return f"protocol {self.name}, {self.statistical_bits} statistical bits{chosen}"

    def serve_dealer(self, dealer_party) -> dict:
        """Run the dealer of authenticated material (it draws the MAC key at the first request)."""
        return trusted.serve(dealer_party, decoder=DealerKey().decode)

    def finish(self, party) -> None:
        """Check every opening not yet checked (both domains) before the party's result is returned."""
        binary.check_both(party)

    def share(self, party, x, src: int) -> Spdz2kTensor:
        """Authenticated shares of ``x`` held by party ``src``: the source broadcasts x - r for the dealer's
        authenticated mask r that it alone knows (1 round; every party's copy of x - r enters the MAC check's
        transcript, so a source that sends different differences to different parties is caught)."""
        ring, frac = source_value(party, x, src) or (None, None)
        if party.rank == src:
            shape = ring.shape
            send_share_header(party, party.others, frac, shape)
        else:
            frac, shape = receive_share_header(party, src)
        mask = party.dealer.complete(party.dealer.random(shape, owner=src))
        if party.rank == src:
            difference = words.sub(words.lift(ring), mask.known)
            for peer in party.others:
                party.send(peer, difference)
        else:
            difference = party.recv_like(src, (*shape, 2))
        checker = party.dealer.checker
        checker.record_public(difference)
        value = words.add(mask.r.value, difference) if party.rank == 0 else mask.r.value
        mac = words.add(mask.r.mac, words.mul(difference, checker.alpha_share))
        return Spdz2kTensor(party, (words.words(value), words.words(mac)), frac)

    def from_public(self, party, value) -> Spdz2kTensor:
        """A public value as authenticated shares, without communication."""
        ring, frac = public_to_ring(value, party.frac_bits)
        lifted = words.lift(ring)
        own = lifted if party.rank == 0 else np.zeros_like(lifted)
        mac = words.mul(lifted, party.dealer.checker.alpha_share)
        return Spdz2kTensor(party, (words.words(own), words.words(mac)), frac)
