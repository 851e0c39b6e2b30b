"""The sign bit under spdz2k: a comparison circuit on authenticated bits, so a cheater is caught here too.

For x in Z_2^64 (the low 64 bits of the authenticated x~), with the dealer's authenticated r uniform in Z_2^128 and
the authenticated bits r_0..r_63 of r mod 2^64 (:class:`~smpc.mpc.spdz2k.dealer.AuthBits`; the edaBit idea of
Escudero, Ghosh, Keller, Rachuri and Scholl, CRYPTO 2020, with both halves in the arithmetic ring):

1. Open c = x~ + r (uniform, so it hides x~ whole; logged for the MAC check). With c's low 64 bits public,
   x = c - r mod 2^64, so msb(x) = c_63 XOR r_63 XOR b, where b = [c mod 2^63 < r mod 2^63] is the borrow into bit 63.
2. r_63 XOR b = [C0 < R] - [C1 < R] for the 64-bit strings R = r mod 2^64 and C_v = (v, c_62, ..., c_0): the first is
   r_63 OR b, the second r_63 AND b. Both come from one tree of comparisons of a public and a shared bit string
   (Damgard, Fitzi, Kiltz, Nielsen and Toft, TCC 2006, section 5): leaf i is (gt_i, eq_i) = (r_i (1 - c_i),
   [r_i = c_i]), linear in r_i since c_i is public; adjacent ranges merge as gt = gt_hi + eq_hi gt_lo,
   eq = eq_hi eq_lo (two products, one round per level: 6 levels for 64 leaves); the two strings differ only in the
   top leaf, so each level adds the two products of the top pair's other variant.
3. msb(x) = c_63 + (1 - 2 c_63) (r_63 XOR b): linear.

Every product is a Beaver product of authenticated integers (its openings logged for the MAC check too), so the
result is an authenticated 0/1: 7 rounds, and x msb(x) one product more (8). Batches of :data:`BATCH` elements (64
authenticated bits each take 2 KB) run one after another.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.tensor_core import concatenate, stack

#: elements per run of the circuit (the masks' bits take 64 * 32 bytes per element at every party)
BATCH = 1 << 16
LEVELS = 6  # 64 leaves


def sign_bit(x):
    """msb(x) of a flat authenticated tensor ``x`` (any scale), as an authenticated integer tensor of 0/1."""
    parts = [_sign_batch(x[start : start + BATCH]) for start in range(0, x.size, BATCH)]
    return parts[0] if len(parts) == 1 else concatenate(parts)


def _sign_batch(x):
    party = x.party
    count = x.size
    material = party.dealer.bits(count)
    c = x._open_masked(material)
    low = c[..., 0]
    c_bits = (low[None, :] >> np.arange(64, dtype=np.uint64)[:, None]) & np.uint64(1)
    bits = x._from_material(material.bits)  # (64, count) integers 0/1
    r_top = bits[63]
    gt = _concat(bits[:63] * (np.uint64(1) - c_bits[:63]), r_top[None])  # leaves; top: C_63 = 0
    eq = _concat(bits[:63] * (np.uint64(2) * c_bits[:63] - np.uint64(1)) + (np.uint64(1) - c_bits[:63]),
                 (1 - r_top)[None])
    gt_alt, eq_alt = r_top * 0, r_top  # the top leaf with C_63 = 1
    for _ in range(LEVELS - 1):
        gt_lo, gt_hi, eq_lo, eq_hi = gt[0::2], gt[1::2], eq[0::2], eq[1::2]
        left = _concat(eq_hi, eq_alt[None])
        products = stack([left, left]) * stack([_concat(gt_lo, gt_lo[-1:]), _concat(eq_lo, eq_lo[-1:])])
        rows = gt_hi.shape[0]
        gt_alt, eq_alt = gt_alt + products[0, rows], products[1, rows]
        gt, eq = gt_hi + products[0, :rows], products[1, :rows]
    last = stack([eq[1], eq_alt]) * stack([gt[0], gt[0]])  # the last level needs gt only
    t = (gt[1] + last[0]) - (gt_alt + last[1])  # (r_63 OR b) - (r_63 AND b)
    c_top = c_bits[63]
    return t * (np.uint64(1) - np.uint64(2) * c_top) + c_top


def _concat(*parts):
    return concatenate(list(parts))
