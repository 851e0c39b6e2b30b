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
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.sharing import open_shares
from smpc.ring.arith import wrapping

BIAS_BITS = 62
_TOP = np.uint64(63)
_LOW_MASK = np.uint64((1 << 63) - 1)


@wrapping
def truncate(party, x: np.ndarray, bits: int, pair=None) -> np.ndarray:
    """This party's share of ``x / 2^bits`` (error below one unit, see module docstring).

    ``pair`` is a truncation pair for ``x.shape`` and ``bits`` requested earlier (so
    the dealer makes it while the parties compute); by default one is requested now.
    """
    if bits == 0:
        return x
    if pair is None:
        pair = party.dealer.trunc_pair(x.shape, bits)
    masked = x + pair.r
    if party.rank == 0:
        masked = masked + np.uint64(1 << BIAS_BITS)
    (c,) = open_shares(party, [masked])
    c_msb = c >> _TOP
    # [w] = c_msb + [r_msb] - 2 c_msb [r_msb]: XOR of a public bit and a shared bit
    w = pair.r_msb - np.uint64(2) * c_msb * pair.r_msb
    y = w * np.uint64(1 << (63 - bits)) - pair.r_low_shifted
    if party.rank == 0:
        y += c_msb * np.uint64(1 << (63 - bits)) + ((c & _LOW_MASK) >> np.uint64(bits))
        y -= np.uint64(1 << (BIAS_BITS - bits))
    return y
