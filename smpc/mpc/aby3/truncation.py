"""Exact truncation for three-party replicated sharing, without a dealer.

ABY3's own truncations (Mohassel and Rindal, CCS 2018, section 5.1) either inherit
SecureML's failure probability (Pi_trunc1) or need a binary circuit for every
truncation pair (Pi_trunc2). We keep the exact MSB-corrected truncation used for the
additive protocol (Escudero et al., CRYPTO 2020, section 5) and let party 0 play the
dealer for parties 1 and 2: party 0 knows the mask r but never sees the masked value;
parties 1 and 2 see the masked value but not r. Secure against one semi-honest party
(honest majority), as ABY3 itself.

Input: a 3-out-of-3 sharing z = z_0 + z_1 + z_2 (party i holds z_i, freshly
re-randomised), |z| < 2^62. With K = 2^(63-f):

Round 1. Party 0 draws r, sends m = z_0 + r to parties 1 and 2, and splits r_msb * K
  and (r mod 2^63) >> f additively between them (party 1's halves from their common
  PRG, party 2's sent). Parties 1 and 2 swap z_1 and z_2. Both now know
  c = m + z_1 + z_2 + 2^62 = z + 2^62 + r, uniformly random.
Local. With w = c_msb XOR r_msb = c_msb + (1 - 2 c_msb) r_msb, parties 1 and 2 hold
  additive shares of y = (c_low >> f) - 2^(62-f) + w K - ((r mod 2^63) >> f).
Round 2. They re-share y into replicated form: components y_1 and y_0 come from the
  PRGs party 0 shares with parties 1 and 2; parties 1 and 2 swap their shares minus
  those, and both learn y_2.

Result: floor(z / 2^f) or that plus one (stochastic rounding, unbiased), for every
|z| < 2^62. Cost: 2 rounds for parties 1 and 2 (party 0 only sends); party 0 sends 4n
ring elements, parties 1 and 2 send 2n each.
"""

from __future__ import annotations

import numpy as np

from smpc.ring.arith import wrapping

BIAS_BITS = 62
_TOP = np.uint64(63)
_LOW_MASK = np.uint64((1 << 63) - 1)
DEALER, LEFT, RIGHT = 0, 1, 2


@wrapping
def truncate_3of3(party, z: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """This party's replicated components of ``z / 2^bits`` from its 3-out-of-3 share ``z``."""
    scale = np.uint64(1 << (63 - bits))
    rank, shape = party.rank, z.shape
    if rank == DEALER:
        r = party.prg.random_ring(shape)
        msb_scaled = (r >> _TOP) * scale
        low = (r & _LOW_MASK) >> np.uint64(bits)
        with_left = party.pair_prg(LEFT)
        masked = z + r
        corrections = np.stack([msb_scaled - with_left.random_ring(shape), low - with_left.random_ring(shape)])
        party.send(LEFT, masked)
        party.send(RIGHT, masked)
        party.send(RIGHT, corrections)
        return replicate_pair_sharing(party, None, shape)

    other = RIGHT if rank == LEFT else LEFT
    party.send(other, z)
    masked = party.recv_like(DEALER, shape)
    if rank == LEFT:
        with_dealer = party.pair_prg(DEALER)
        msb_half, low_half = with_dealer.random_ring(shape), with_dealer.random_ring(shape)
    else:
        corrections = party.recv_like(DEALER, (2, *shape))
        msb_half, low_half = corrections[0], corrections[1]
    c = masked + z + party.recv_like(other, shape) + np.uint64(1 << BIAS_BITS)
    c_msb = c >> _TOP
    mine = (np.uint64(1) - np.uint64(2) * c_msb) * msb_half - low_half
    if rank == LEFT:
        mine += ((c & _LOW_MASK) >> np.uint64(bits)) + c_msb * scale - np.uint64(1 << (BIAS_BITS - bits))
    return replicate_pair_sharing(party, mine, shape)


@wrapping
def replicate_pair_sharing(party, share: np.ndarray | None, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Replicated components of y = y_1 + y_2, additively shared by parties 1 and 2 (party 0 passes None).

    Components y_1 and y_0 come from the PRGs party 0 shares with parties 1 and 2;
    parties 1 and 2 swap their shares minus those and both learn y_2. One round for
    parties 1 and 2 (n elements each); party 0 sends nothing.
    """
    if party.rank == DEALER:
        return party.pair_prg(RIGHT).random_ring(shape), party.pair_prg(LEFT).random_ring(shape)  # (y_0, y_1)
    other = RIGHT if party.rank == LEFT else LEFT
    own_component = party.pair_prg(DEALER).random_ring(shape)  # y_1 at party 1, y_0 at party 2
    party.send(other, share - own_component)
    y_2 = (share - own_component) + party.recv_like(other, shape)
    if party.rank == LEFT:
        return own_component, y_2  # (y_1, y_2)
    return y_2, own_component  # (y_2, y_0)
