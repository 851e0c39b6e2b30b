"""The sign bit under 2-party spdz2k by function secret sharing with authenticated outputs: 2 rounds, not 7.

The dealer is trusted to make correct material; the parties are not. So the DCF's outputs carry their own MACs: the
payload of the comparison is the pair (1, beta), beta the bit domain's MAC key (:mod:`.bit_requests`), and the two
parties' outputs add up to an authenticated bit of the bit domain. A party that changes its output (or evaluates at
another point) adds some (d, d') to that bit's value and MAC shares, which is the attack the bit domain's MAC check
catches, as for any share (Cramer et al., CRYPTO 2018, section 3). This is the trusted-dealer form of the
authenticated FSS of Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar and Rathee (EUROCRYPT 2021, eprint 2020/1392,
section 3: a DCF with any abelian group as output, here Z_2^64 x Z_2^64; :mod:`smpc.mpc.fss.word_dcf`).

For x in Z_2^64 (the low bits of the authenticated x~), the dealer's material per element is an authenticated r
uniform in Z_2^128, an arithmetic daBit s (authenticated 0/1), with the product r s (authenticated) when x msb(x)
is wanted, a bit-domain authenticated u~ = (r_63 XOR s) + 2 t for a uniform t, and the DCF keys for
alpha = r mod 2^63 with payload (1, beta) (the same for every element). Then, as in :mod:`smpc.mpc.fss.compare`:

1. Open c = x~ + r (16 bytes per element; logged for the arithmetic MAC check). With c_low, r_low the low 63 bits,
   msb(x) = c_63 XOR r_63 XOR w for w = [c_low < r_low], the DCF at the public c_low.
2. Each party's DCF output is its share of w with its MAC share; adding u~ and the public c_63 (bit-domain XOR is
   addition, k = 1) gives shares of E with E mod 2 = msb(x) XOR s. Open E (8 bytes per element; logged for the bit
   domain's check): its low bit e is uniform (s is), its upper 63 bits are uniform (2 t hides them).
3. msb(x) = e + (1 - 2 e) s: linear in the authenticated s once e is public. With the product,
   x~ msb(x) = e x~ + (1 - 2 e) x~ s and x~ s = c s - r s (c public): linear too, so ReLU needs no Beaver round.

Online: 2 rounds and 24 bytes per element to the peer; the dealer's keys are about 2 KB per element and party.
Exact for every x. Batches of :data:`BATCH` elements run one after another (2 rounds each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.fss import word_dcf
from smpc.mpc.spdz2k import binary, words
from smpc.mpc.spdz2k.requests import REQUEST_TYPES, AuthRequest, Shares, draw
from smpc.mpc.tensor_core import concatenate
from smpc.ring import ring128
from smpc.ring.arith import wrapping

#: elements per batch (the keys take about 2 KB per element at each party, twice that at the dealer)
BATCH = 1 << 17
LOW_BITS = 63
MAX_COUNT = 1 << 24
_LOW_MASK = np.uint64((1 << LOW_BITS) - 1)
_TOP = np.uint64(LOW_BITS)


def _arith_rows(with_product: bool) -> int:
    """Z_2^128 rows party 0 draws: r's value and MAC, s's value and MAC (and r s's value and MAC)."""
    return 6 if with_product else 4


def correction_words(count: int, with_product: bool) -> int:
    """Words the last party (party 1) receives besides its DCF key: r's MAC, s (value, MAC), r s (value, MAC), each
    two limbs, and u~ (value, MAC) in the bit domain."""
    return 2 * (_arith_rows(with_product) - 1) * count + 2 * count


def reply_words(rank: int, count: int, with_product: bool) -> int:
    """Words of the dealer's reply to party ``rank``: its DCF key (and, at party 1, the corrections)."""
    extra = correction_words(count, with_product) if rank == 1 else 0
    return word_dcf.words_for(count, LOW_BITS) + extra


@dataclass(eq=False)
class AuthFssSign:
    """One party's material for the sign bits of ``count`` elements: r, s, r s (with the product), u~ and the
    DCF key (set at completion)."""

    count: int
    with_product: bool
    r: Shares
    s: Shares
    rs: Shares | None
    u: Shares
    keys: word_dcf.WordDCFKeys | None = None


def draw_shares(prg, rank: int, count: int, with_product: bool) -> AuthFssSign:
    """What party ``rank`` (0 or 1) expands from the PRG it shares with the dealer, who draws the same: party 1
    only its share of r; party 0 all its shares, in this order: r, s, r s (value and MAC each, Z_2^128) and u~
    (value and MAC, bit domain)."""
    if rank == 1:
        return AuthFssSign(count, with_product, Shares(draw(prg, (count,)), None), Shares(None, None),
                           Shares(None, None) if with_product else None, Shares(None, None))
    rows = draw(prg, (_arith_rows(with_product), count))
    u = prg.random_ring((2, count))
    rs = Shares(rows[4], rows[5]) if with_product else None
    return AuthFssSign(count, with_product, Shares(rows[0], rows[1]), Shares(rows[2], rows[3]), rs,
                       Shares(u[0], u[1]))


def fill(rank: int, material: AuthFssSign, reply: np.ndarray) -> None:
    """Put the dealer's reply into party ``rank``'s material (its length was checked on receipt)."""
    count = material.count
    key_words = word_dcf.words_for(count, LOW_BITS)
    material.keys = word_dcf.WordDCFKeys.from_words(rank, LOW_BITS, count, reply[:key_words])
    if rank == 1:
        rows = reply[key_words : key_words + 2 * (_arith_rows(material.with_product) - 1) * count]
        rows = rows.reshape(-1, count, 2)
        material.r.mac = rows[0]
        material.s.value, material.s.mac = rows[1], rows[2]
        if material.with_product:
            material.rs.value, material.rs.mac = rows[3], rows[4]
        material.u.value, material.u.mac = reply[reply.size - 2 * count :].reshape(2, count)


@dataclass(frozen=True)
class FssSignRequest(AuthRequest):
    """Authenticated FSS sign material for ``count`` elements (:mod:`.fss`; two parties only). Both parties
    receive their DCF keys (the correction words are common to both: the seed trick cannot compress them); party 1
    also its shares of r's MAC, s, r s and u~."""

    count: int
    with_product: bool
    code: ClassVar[int] = 112
    reply_to_every_party: ClassVar[bool] = True

    def __post_init__(self):
        count = self.count
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 0 < count <= MAX_COUNT:
            raise ProtocolError(f"malformed spdz2k FSS sign request: count {count!r} outside 1..{MAX_COUNT}")
        if self.with_product not in (0, 1) or isinstance(self.with_product, float):
            raise ProtocolError(f"malformed spdz2k FSS sign request: with_product {self.with_product!r}")
        object.__setattr__(self, "count", int(count))
        object.__setattr__(self, "with_product", bool(self.with_product))

    def _values(self) -> list[int]:
        return [self.count, int(self.with_product)]

    @classmethod
    def _parse(cls, values: list[int]) -> "FssSignRequest":
        if len(values) != 2:
            raise ProtocolError("malformed spdz2k FSS sign request")
        return cls(values[0], values[1])

    def describe(self) -> str:
        return f"authenticated FSS sign keys ({self.count} elements{', with product' if self.with_product else ''})"

    @property
    def reply_shape(self) -> tuple[int, ...]:
        return self.reply_shape_for(1)

    def reply_shape_for(self, rank: int) -> tuple[int, ...]:
        return (reply_words(rank, self.count, self.with_product),)

    @wrapping
    def make_keyed(self, prgs, own_prg, key) -> list[np.ndarray]:
        """Both parties' replies, in rank order."""
        if len(prgs) != 2:
            raise ProtocolError(f"spdz2k FSS comparisons are for two parties, this run has {len(prgs)}")
        count, product = self.count, self.with_product
        first = draw_shares(prgs[0], 0, count, product)
        r = words.add(first.r.value, draw(prgs[1], (count,)))
        low = r[:, 0]
        s = own_prg.random_bits((count,))
        u = ((low >> _TOP) ^ s) + (own_prg.random_ring((count,)) << np.uint64(1))
        payload = np.empty((count, 2), np.uint64)
        payload[:, 0], payload[:, 1] = 1, key.beta[0]
        replies = [np.empty(reply_words(rank, count, product), np.uint64) for rank in (0, 1)]
        word_dcf.gen(low & _LOW_MASK, payload, own_prg, LOW_BITS, out=replies)  # the keys first, in place
        alpha = key.alpha
        s_lifted = words.lift(s)
        wanted = [(words.mul(r, alpha), first.r.mac), (s_lifted, first.s.value),
                  (words.mul(s_lifted, alpha), first.s.mac)]
        if product:
            rs = words.mul(r, s_lifted)
            wanted += [(rs, first.rs.value), (words.mul(rs, alpha), first.rs.mac)]
        at = word_dcf.words_for(count, LOW_BITS)
        rest = replies[1][at:]
        rows = rest[: 2 * count * len(wanted)].reshape(len(wanted), count, 2)
        for row, (value, drawn) in zip(rows, wanted):
            row[:] = words.sub(value, drawn)
        rest[rows.size : rows.size + count] = u - first.u.value
        rest[rows.size + count :] = u * key.beta[0] - first.u.mac
        return replies


REQUEST_TYPES[FssSignRequest.code] = FssSignRequest


def sign_bit(x, with_product: bool):
    """msb(x), or x msb(x) with ``with_product``, of a flat authenticated tensor ``x`` of two parties: batches of
    :data:`BATCH` elements, 2 rounds each (see the module docstring). Each batch's material is asked for before the
    previous batch runs, so the dealer makes it meanwhile."""
    dealer = x.party.dealer
    starts = list(range(0, x.size, BATCH))
    asked = [dealer.auth_fss_sign(min(BATCH, x.size - starts[0]), with_product)]
    parts = []
    for index, start in enumerate(starts):
        if index + 1 < len(starts):
            asked.append(dealer.auth_fss_sign(min(BATCH, x.size - starts[index + 1]), with_product))
        rows = x._local(lambda component, start=start: component[start : start + BATCH])  # a view: only read
        parts.append(_sign_batch(rows, with_product, asked[index]))
        asked[index] = None  # its keys can go once the batch is done
    return parts[0] if len(parts) == 1 else concatenate(parts)


@wrapping
def _sign_batch(x, with_product: bool, material: AuthFssSign):
    party = x.party
    rank = party.rank
    c = x._open_masked(material)  # logged; the dealer's reply (the keys) arrives during the opening
    checker, bit_checker = party.dealer.checker, party.dealer.bit_checker
    checker.check_if_full()
    low = c[:, 0]
    c_top = low >> _TOP
    out = word_dcf.eval(rank, material.keys, low & _LOW_MASK)
    value = out[:, 0] + material.u.value
    if rank == 0:
        value += c_top
    mac = out[:, 1] + material.u.mac + c_top * bit_checker.alpha_share[0]
    (opened,) = binary.open_words(party, [value])
    bit_checker.record_words(opened, mac)
    bit_checker.check_if_full()
    e = opened & np.uint64(1)
    coefficient = words.lift(np.uint64(1) - np.uint64(2) * e)
    if not with_product:
        bit_value, bit_mac = x._plus_public(words.mul(material.s.value, coefficient),
                                            words.mul(material.s.mac, coefficient), words.lift(e))
        return x._from_limbs(bit_value, bit_mac, 0)
    # x s = c s - r s; x msb(x) = x s where e = 0 and x (1 - s) = x - x s where e = 1
    parts = [ring128.choose_difference(own, c, s, rs, e)
             for own, s, rs in ((x.value_limbs, material.s.value, material.rs.value),
                                (x.mac_limbs, material.s.mac, material.rs.mac))]
    return x._from_limbs(*parts, x.frac_bits)
