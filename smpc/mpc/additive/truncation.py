"""Exact fixed-point truncation with a dealer truncation pair (one online round).

After a fixed-point product the scale is 2^(2f); dividing by 2^f on shares is the one
non-linear step. SecureML's local truncation (Mohassel and Zhang, S&P 2017, section
4.1) fails with probability about |x| / 2^(64-f) per element by an error as large as the
ring. We use a truncation pair with the MSB correction of Escudero et al., "Improved
primitives for MPC over mixed arithmetic-binary circuits", CRYPTO 2020, section 5:

1. Shift into the non-negative half: x' = x + 2^62, so 0 <= x' < 2^63 for |x| < 2^62.
2. Open c = x' + r for a dealer-made random r (uniform in Z_2^64, so c hides x').
3. With c = c_msb * 2^63 + c_low and r = r_msb * 2^63 + r_low, the sum s = x' + r_low
   (no wrap) has top bit w = c_msb XOR r_msb, so s >> f = w * 2^(63-f) + (c_low >> f).
4. y = (s >> f) - (r_low >> f) - 2^(62-f).

Result: y is floor(x / 2^f) or that plus one, with probability exactly matching the
discarded fraction (stochastic rounding, unbiased): |y - x / 2^f| < 1 unit in the last
place for every |x| < 2^62. Outside that range the result is wrong: callers keep
values (after a product, before truncation) below 2^62 in magnitude.

Two parties without a dealer (the Paillier preprocessing) cannot cheaply make an r
that nobody knows with shares of its top bit. There party 1 draws r itself
(:class:`KnownMaskPair`), so c is opened to party 0 only, and the one non-local term of
step 3, c_msb * r_msb (a bit each party holds privately), is an oblivious linear
evaluation prepared offline: party 0 holds a random a, the parties hold shares of
a * r_msb; online party 0 sends e = c_msb - a and c_msb r_msb = e r_msb + a r_msb.
Same result and error; 2 rounds (party 1 -> party 0, then party 0 -> party 1).

No switch on the source: each kind of pair carries its own online step, ``pair.truncate(party, x, bits)``
(:class:`TruncPair` from the trusted dealer, :class:`KnownMaskPair` from the Paillier preprocessing), and
:func:`truncate` only asks the party's source for a pair. A new source with another kind of pair brings its
step along in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.sharing import open_shares
from smpc.ring import fused
from smpc.ring.arith import wrapping

BIAS_BITS = 62
_TOP = np.uint64(63)
_LOW_MASK = np.uint64((1 << 63) - 1)


def truncate(party, x: np.ndarray, bits: int, pair=None) -> np.ndarray:
    """This party's share of ``x / 2^bits`` (error below one unit, see module docstring).

    ``pair`` is a truncation pair for ``x.shape`` and ``bits`` requested earlier (so
    the dealer makes it while the parties compute); by default one is requested now.
    The pair runs its own online step (:meth:`TruncPair.truncate` or :meth:`KnownMaskPair.truncate`).
    """
    if bits == 0:
        return x
    if pair is None:
        pair = party.dealer.trunc_pair(x.shape, bits)
    return pair.truncate(party, x, bits)


@dataclass(eq=False)
class TruncPair:
    """One party's shares of a truncation pair nobody knows: r, its top bit and ``(r mod 2^63) >> bits``.

    ``r_msb`` and ``r_low_shifted`` are None at a party that receives them until its source completes the pair,
    which :meth:`truncate` does after opening c.
    """

    r: np.ndarray
    r_msb: np.ndarray | None
    r_low_shifted: np.ndarray | None

    @wrapping
    def truncate(self, party, x: np.ndarray, bits: int) -> np.ndarray:
        """Steps 1-4, c opened to every party (one round)."""
        leader = party.rank == 0
        masked = fused.masked_sum(x, self.r, 1 << BIAS_BITS if leader else 0)
        (c,) = open_shares(party, [masked], owned=True)
        party.dealer.complete(self)  # the last party's r_msb, r_low_shifted: made by the dealer during the opening
        # [w] = c_msb + [r_msb] - 2 c_msb [r_msb] (XOR of a public bit and a shared bit), then step 4: one pass
        return fused.truncation_finish(c, self.r_msb, self.r_low_shifted, bits, BIAS_BITS, leader)


@dataclass(eq=False)
class KnownMaskPair:
    """A two-party truncation pair whose mask r party 1 drew alone (party 0's shares of r and
    its parts are 0), with the shares of one oblivious product ``ole_a * r_msb`` (party 0 holds
    the random ``ole_a``; party 1 holds None there)."""

    r: np.ndarray
    r_msb: np.ndarray
    r_low_shifted: np.ndarray
    ole_a: np.ndarray | None
    ole_share: np.ndarray

    @wrapping
    def truncate(self, party, x: np.ndarray, bits: int) -> np.ndarray:
        """Steps 1-4 with c opened to party 0 only (party 1 knows r); see the module docstring."""
        if party.world_size != 2:
            raise ProtocolError("a truncation pair with a known mask needs exactly two parties")
        party.dealer.complete(self)  # made whole offline: nothing to receive
        scale = np.uint64(1 << (63 - bits))
        if party.rank == 1:
            party.send(0, x + self.r)  # x_1 + r: uniform to party 0
            e = party.recv_like(0, x.shape)  # c_msb - a: uniform to party 1
            # party 1's share of w = c_msb + r_msb - 2 c_msb r_msb, with c_msb r_msb = e r_msb + a r_msb
            w = self.r_msb - np.uint64(2) * (e * self.r_msb + self.ole_share)
            return w * scale - self.r_low_shifted
        c = x + np.uint64(1 << BIAS_BITS) + party.recv_like(1, x.shape)
        c_msb = c >> _TOP
        party.send(1, c_msb - self.ole_a)
        w = c_msb - np.uint64(2) * self.ole_share
        return w * scale + ((c & _LOW_MASK) >> np.uint64(bits)) - np.uint64(1 << (BIAS_BITS - bits))
