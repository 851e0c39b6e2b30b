"""The sign bit, and x times it, of an additively shared x in Z_2^64: open x + r, a one-bit DCF, open msb XOR s.

Two parties hold additive shares x_0 + x_1 = x; a dealer knows a uniform mask r and gave them shares of r, a
one-bit DCF key (:mod:`.bit_dcf`) and a daBit s (a random bit shared both ways). The comparison step is the MSB
gate of Boyle et al., EUROCRYPT 2021 (eprint 2020/1392), section 4, as LLAMA (Gupta et al., PoPETs 2022) runs it:
one DCF on the low 63 bits, the top bits of c and r handled apart. Its output is a one-bit (XOR) sharing, as the
comparisons of Sigma (Gupta et al., PoPETs 2024) keep their DCF outputs in Z_2 for smaller keys; turning it into an
arithmetic bit, and the select x msb(x), take one more opening with a daBit (Rotaru and Wood, INDOCRYPT 2019):

1. Each party b sends c_b = x_b + r_b to the other; both learn c = x + r, uniform, so it reveals nothing about x.
2. With c = c_63 2^63 + c_low and r = r_63 2^63 + r_low (c_low, r_low < 2^63), x = c - r borrows from bit 63
   exactly when c_low < r_low, so

       msb(x) = c_63 XOR r_63 XOR w,    w = [c_low < r_low],

   and w is the DCF at alpha = r_low, evaluated at the public c_low: each party gets an XOR share of it, locally.
3. The dealer XOR-shares u = r_63 XOR s, not r_63 and s apart: the only use of either XOR sharing is
   e = msb(x) XOR s = c_63 XOR u XOR w. Each party computes its share of e and sends it (round 2: 1 bit per
   element, 64 to a word); e is uniform, since s is. u is uniform and independent of r, so both parties expand
   their shares of u from the PRG they share with the dealer, who defines s = u XOR r_63.
4. With the additive shares of s: msb(x) = e + s - 2 e s = e + (1 - 2 e) s, linear in the shares once e is
   public. And x msb(x) = e x + (1 - 2 e) x s with x s = c s - r s, so the dealer's additive shares of r s give
   x msb(x) (and ReLU(x) = x - x msb(x)) from the same two openings, with no third round: the masked operand
   x - a that a Beaver-style product would open is already open, as c = x + r (take a = -r).

Online cost for n elements: 2 rounds, 8 n + n / 8 bytes to the peer (c, then the packed bits of e), whether or not
the product is taken. Exact for every x: there is no error and no assumption on the range of x.

Material per element and party: the share of r and the bit share of u (from the PRG shared with the dealer), the
additive shares of s and of r s (party 0 expands them from its PRG too; party 1 receives them), and the DCF key
(:func:`.bit_dcf.key_bytes`: about 1032 bytes for 63 bits); :attr:`SignKeys.nbytes` counts it all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from smpc.mpc.circuits.sign_bit import arithmetic_bit, product_with_bit
from smpc.mpc.fss import bit_dcf
from smpc.ring.arith import wrapping
from smpc.ring.bitslice import bits_to_plane, plane_to_bits, plane_words

LOW_BITS = 63
#: elements per batch of keys a protocol requests at once: about 0.55 GB of keys per party
BATCH = 1 << 19
_LOW_MASK = np.uint64((1 << LOW_BITS) - 1)
_TOP = np.uint64(LOW_BITS)


@dataclass(frozen=True, eq=False)
class SignShares:
    """One party's shares for the sign bits of ``count`` elements, all but the DCF key. The first two (and, at
    party 0, all four) come from the PRG the party shares with the dealer; party 1 receives ``dabit`` and
    ``dabit_product`` (``None`` until then)."""

    mask: np.ndarray  # additive share of r, uint64 (count,)
    top_xor: np.ndarray  # XOR share of u = r_63 XOR s, packed: bit j % 64 of word j // 64 (ceil(count / 64),)
    dabit: np.ndarray | None  # additive share of s
    dabit_product: np.ndarray | None  # additive share of r s (with the product only)
    with_product: bool

    @property
    def count(self) -> int:
        return self.mask.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.mask, self.top_xor, self.dabit, self.dabit_product) if a is not None)


@dataclass(frozen=True, eq=False)
class SignKeys:
    """One party's material for the sign bit of ``count`` masked elements (and x msb(x), ``with_product``)."""

    party: int
    shares: SignShares
    dcf: bit_dcf.BitDCFKeys  # 63 bits, alpha = r mod 2^63

    @property
    def count(self) -> int:
        return self.shares.count

    @property
    def with_product(self) -> bool:
        return self.shares.with_product

    @property
    def mask(self) -> np.ndarray:
        """This party's share of r (what it adds to its share of x before opening)."""
        return self.shares.mask

    @property
    def nbytes(self) -> int:
        """Bytes of this party's material: :func:`sign_key_bytes`."""
        return self.shares.nbytes + self.dcf.nbytes


def sign_key_bytes(count: int, with_product: bool = False) -> int:
    """One party's bytes of material for ``count`` elements (offline)."""
    return (24 if with_product else 16) * count + 8 * plane_words(count) + bit_dcf.key_bytes(count, LOW_BITS)


@wrapping
def draw_shares(prg, party: int, count: int, with_product: bool = False) -> SignShares:
    """What party ``party`` expands from ``prg`` (the PRG it shares with the dealer, who draws the same) for
    ``count`` elements, in this order: the mask share, the share of u, and at party 0 the shares of s and r s."""
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if not callable(getattr(prg, "random_ring", None)):
        raise TypeError(f"prg must be an smpc.ring.prg.PRG (the CSPRNG), got {type(prg).__name__}")
    count = int(count)
    mask = prg.random_ring(count)
    top_xor = prg.random_ring(plane_words(count))
    if count % 64:
        top_xor[-1] &= (np.uint64(1) << np.uint64(count % 64)) - np.uint64(1)
    dabit = prg.random_ring(count) if party == 0 else None
    product = prg.random_ring(count) if party == 0 and with_product else None
    return SignShares(mask, top_xor, dabit, product, bool(with_product))


@wrapping
def deal_keys(prg, drawn: tuple[SignShares, SignShares]) -> tuple[SignKeys, SignKeys]:
    """The dealer's side: both parties' keys from what each drew from its PRG (``drawn``, party 1's without its
    daBit shares): the DCF keys (seeds from the dealer's own ``prg``) and party 1's shares of s (and r s)."""
    first, second = drawn
    r = first.mask + second.mask
    s = plane_to_bits(first.top_xor ^ second.top_xor, first.count) ^ (r >> _TOP)  # s = u XOR r_63
    dabit = s - first.dabit
    product = r * s - first.dabit_product if first.with_product else None
    keys = bit_dcf.gen(r & _LOW_MASK, prg, LOW_BITS)
    second = replace(second, dabit=dabit, dabit_product=product)
    return SignKeys(0, first, keys[0]), SignKeys(1, second, keys[1])


def deal_sign(prg, count: int, with_product: bool = False) -> tuple[SignKeys, SignKeys]:
    """Both parties' keys for ``count`` elements, every share drawn from one ``prg`` (for tests and benchmarks;
    a dealer draws each party's from the PRG it shares with that party: :func:`draw_shares`)."""
    drawn = (draw_shares(prg, 0, count, with_product), draw_shares(prg, 1, count, with_product))
    return deal_keys(prg, drawn)


def masked_sign(party: int, keys: SignKeys, c: np.ndarray) -> np.ndarray:
    """This party's XOR share of e = msb(x) XOR s from the opened ``c = x + r``, packed 64 to a word (what it
    opens in the second round)."""
    _check(party, keys, c)
    share = bit_dcf.eval(party, keys.dcf, c & _LOW_MASK) ^ keys.shares.top_xor
    if party == 0:
        share ^= bits_to_plane(c >> _TOP)
    return share


def sign(party: int, keys: SignKeys, e: np.ndarray) -> np.ndarray:
    """This party's additive share (uint64, 0 or 1 in sum) of msb(x), from the opened ``e`` (packed)."""
    _check_opened(party, keys, e)
    return arithmetic_bit(e, keys.shares.dabit, party == 0)


def times_sign(party: int, keys: SignKeys, x_share: np.ndarray, c: np.ndarray, e: np.ndarray) -> np.ndarray:
    """This party's additive share of x msb(x), from its share of x, the opened ``c`` and ``e``; keys made
    ``with_product``."""
    if isinstance(keys, SignKeys) and not keys.with_product:
        raise ValueError("x msb(x) needs sign keys dealt with_product=True (the shares of r s)")
    _check_opened(party, keys, e)
    return product_with_bit(e, x_share, c, keys.shares.dabit, keys.shares.dabit_product)


def _check(party: int, keys: SignKeys, c: np.ndarray) -> None:
    _check_keys(party, keys)
    if not isinstance(c, np.ndarray) or c.dtype != np.uint64:
        got = c.dtype if isinstance(c, np.ndarray) else type(c).__name__
        raise TypeError(f"c (the opened x + r) must be a uint64 numpy array, got {got}")
    if c.shape != (keys.count,):
        raise ValueError(f"c has shape {c.shape} but the sign keys are for ({keys.count},) elements")


def _check_keys(party: int, keys: SignKeys) -> None:
    if not isinstance(keys, SignKeys):
        raise TypeError(f"keys must be SignKeys, got {type(keys).__name__}")
    if not isinstance(party, (int, np.integer)) or isinstance(party, bool) or party not in (0, 1):
        raise ValueError(f"party must be 0 or 1, got {party!r}")
    if party != keys.party:
        raise ValueError(f"these are party {keys.party}'s sign keys, used as party {party}")


def _check_opened(party: int, keys: SignKeys, e: np.ndarray) -> None:
    _check_keys(party, keys)
    if not isinstance(e, np.ndarray) or e.dtype != np.uint64 or e.shape != (plane_words(keys.count),):
        got = f"{e.dtype}{list(e.shape)}" if isinstance(e, np.ndarray) else type(e).__name__
        raise ValueError(f"e must be the {plane_words(keys.count)} packed uint64 words of {keys.count} bits, "
                         f"got {got}")
