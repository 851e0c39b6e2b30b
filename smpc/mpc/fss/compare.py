"""The sign bit, and ReLU, of an additively shared x in Z_2^64 from one opening of x + r, on a dealer's DCF keys.

Two parties hold additive shares x_0 + x_1 = x; a dealer knows a uniform mask r and gave them shares of r and DCF
keys (:mod:`.dcf`). The gadget follows the comparison and MSB gates that Boyle et al., EUROCRYPT 2021 (eprint
2020/1392), build on their DCF (section 4), and LLAMA (Gupta et al., PoPETs 2022) after them: one DCF on the low
63 bits, with the top bits of c and r handled in the clear and in the payload:

1. Each party b sends c_b = x_b + r_b to the other; both learn c = x + r, uniform, so it reveals nothing about x.
2. With c = c_63 2^63 + c_low and r = r_63 2^63 + r_low (c_low, r_low < 2^63), x = c - r borrows from bit 63
   exactly when c_low < r_low, so

       msb(x) = c_63 XOR z,    z = r_63 XOR w,    w = [c_low < r_low].

   w is a DCF on 63 bits at alpha = r_low, evaluated at the public c_low. The dealer folds r_63 (which only it
   knows) into the payload: z = r_63 + w (1 - 2 r_63), so the keys carry beta_1 = 1 - 2 r_63 and the parties hold
   additive shares of r_63. Then msb(x) = c_63 + (1 - 2 c_63) z is linear in the shares: no further round.
3. ReLU(x) = x - x msb(x), and x msb(x) = c msb(x) - r msb(x), r msb(x) = c_63 r + (1 - 2 c_63) r z,
   r z = r r_63 + w r (1 - 2 r_63). So a second payload word beta_2 = r (1 - 2 r_63) and shares of r r_63 give
   ReLU from the same opening and the same DCF evaluation (``with_product``).

Online cost for n elements: one round, 8 n bytes to the peer (the opening of c), then local work; the keys are
offline. Exact for every x: there is no error and no assumption on the range of x.

Key material per element and party (:func:`sign_key_bytes`): the shares of r and r_63 (16 bytes; 24 with the
share of r r_63) and a 63-bit DCF key of one payload word (two with the product), i.e. 1568 bytes, or 2088.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc.mpc.fss import dcf
from smpc.ring.arith import wrapping

LOW_BITS = 63
#: elements per batch of keys a protocol requests at once: about 0.5 GB of ReLU keys per party
BATCH = 1 << 18
_LOW_MASK = np.uint64((1 << LOW_BITS) - 1)
_TOP = np.uint64(LOW_BITS)
_ONE = np.uint64(1)
_TWO = np.uint64(2)


@dataclass(frozen=True, eq=False)
class SignKeys:
    """One party's material for the sign bit of ``count`` masked elements (and their ReLU, ``with_product``)."""

    party: int
    mask: np.ndarray  # share of r, uint64 (count,)
    top: np.ndarray  # share of r_63
    top_product: np.ndarray | None  # share of r r_63 (only with the product)
    dcf: dcf.DCFKeys  # 63 bits, alpha = r mod 2^63, payload 1 - 2 r_63 (and r (1 - 2 r_63))

    @property
    def count(self) -> int:
        return self.mask.shape[0]

    @property
    def with_product(self) -> bool:
        return self.top_product is not None

    @property
    def nbytes(self) -> int:
        """Bytes of this party's material: ``count * sign_key_bytes(with_product)``."""
        extra = self.top_product.nbytes if self.with_product else 0
        return self.mask.nbytes + self.top.nbytes + extra + self.dcf.nbytes


def sign_key_bytes(with_product: bool = False) -> int:
    """One party's key bytes per element (offline material)."""
    return (24 if with_product else 16) + dcf.key_bytes(LOW_BITS, 2 if with_product else 1)


@wrapping
def deal_sign(prg, count: int, with_product: bool = False) -> tuple[np.ndarray, SignKeys, SignKeys]:
    """The dealer's side for ``count`` elements: (the parties' shares of the masks r, shape (2, count); party 0's
    keys; party 1's keys). ``prg``: the dealer's CSPRNG (:class:`smpc.ring.prg.PRG`)."""
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if not callable(getattr(prg, "random_ring", None)):
        raise TypeError(f"prg must be an smpc.ring.prg.PRG (the CSPRNG), got {type(prg).__name__}")
    count = int(count)
    r = prg.random_ring(count)
    masks = _share(prg, r)
    material = keys_for_mask(prg, r, masks, with_product)
    return np.stack(masks), material[0], material[1]


@wrapping
def keys_for_mask(prg, r: np.ndarray, masks: tuple[np.ndarray, np.ndarray],
                  with_product: bool = False) -> tuple[SignKeys, SignKeys]:
    """Both parties' keys for masks ``r`` the parties already share as ``masks`` (e.g. each expanded its share
    from the PRG it shares with the dealer, who added them up): the DCF keys and the shares of r_63 (and
    r r_63), drawn from the dealer's ``prg``."""
    top = r >> _TOP
    flip = _ONE - _TWO * top  # 1 - 2 r_63
    beta = np.stack([flip, r * flip], axis=1) if with_product else flip
    keys = dcf.gen(r & _LOW_MASK, beta, prg, LOW_BITS)
    tops = _share(prg, top)
    products = _share(prg, r * top) if with_product else (None, None)
    first, second = (SignKeys(b, masks[b], tops[b], products[b], keys[b]) for b in (0, 1))
    return first, second


@wrapping
def eval_sign(party: int, keys: SignKeys, c: np.ndarray) -> np.ndarray:
    """This party's additive share (uint64, 0 or 1 in sum) of msb(x), from the opened ``c = x + r``."""
    _, msb = _sign_parts(party, keys, c)
    return msb


@wrapping
def eval_relu(party: int, keys: SignKeys, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """This party's shares of (msb(x), ReLU(x) = x - x msb(x)) from the opened ``c``; keys made ``with_product``."""
    if isinstance(keys, SignKeys) and not keys.with_product:
        raise ValueError("ReLU needs sign keys dealt with_product=True (the payload r (1 - 2 r_63))")
    out, msb = _sign_parts(party, keys, c)
    top_c = c >> _TOP
    r_msb = top_c * keys.mask + (_ONE - _TWO * top_c) * (keys.top_product + out[:, 1])
    x_msb = c * msb - r_msb
    relu = -keys.mask - x_msb
    if party == 0:
        relu += c
    return msb, relu


def _sign_parts(party: int, keys: SignKeys, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the DCF outputs as (count, width), this party's share of msb(x))."""
    if not isinstance(keys, SignKeys):
        raise TypeError(f"keys must be SignKeys, got {type(keys).__name__}")
    if not isinstance(c, np.ndarray) or c.dtype != np.uint64:
        got = c.dtype if isinstance(c, np.ndarray) else type(c).__name__
        raise TypeError(f"c (the opened x + r) must be a uint64 numpy array, got {got}")
    if c.shape != (keys.count,):
        raise ValueError(f"c has shape {c.shape} but the sign keys are for ({keys.count},) elements")
    out = dcf.eval(party, keys.dcf, c & _LOW_MASK).reshape(keys.count, keys.dcf.width)
    top_c = c >> _TOP
    z = keys.top + out[:, 0]
    msb = (_ONE - _TWO * top_c) * z
    if party == 0:
        msb += top_c
    return out, msb


def _share(prg, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = prg.random_ring(values.shape)
    return first, values - first
