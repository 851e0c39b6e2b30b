"""The position of a shared value's leading one bit (its octave), for range reduction x = m 2^k.

One bit decomposition (A2B) of x gives XOR-shared words; a prefix OR from the top (six levels of
y | (y >> 2^j), one AND each) smears the leading one downwards, and h = y ^ (y >> 1) keeps only it. The
position p of that one is then a local function of h: bit t of p is the parity of the bits of h whose
positions have bit t set. The six bits of p (and the sign) go back to arithmetic sharing in one B2A round.
Normalisation by a prefix OR over the bits follows Catrina and Saxena, "Secure computation with
fixed-point numbers", FC 2010, section 4, and Aly and Smart, "Benchmarking privacy preserving scientific
operations", ACNS 2019, section 3; the parity read-out of the position is ours.

Rounds: the protocol's A2B (additive 7, aby3 6) + 6 ANDs + 1 B2A.
"""

from __future__ import annotations

import functools

from smpc.ring import fused

WORD_BITS = 64
POSITION_BITS = 6
_PREFIX_SHIFTS = (1, 2, 4, 8, 16, 32)
#: bit t of a position p in 0..63 is set where the mask has a one: positions whose bit t is set
_POSITION_MASKS = tuple(sum(1 << p for p in range(WORD_BITS) if p >> t & 1) for t in range(POSITION_BITS))


def leading_one(x, signed: bool, lowest: int = 0, highest: int = WORD_BITS - 1, shift: int = 0):
    """(p, s, z) for a shared tensor x: p the position (integer tensor in 0..63) of the leading one of the ring
    value's bits, clamped to [lowest, highest] (``lowest`` where there is none), s the sign bit and z = 1 where
    there is no one bit at all (integer 0/1 tensors). The clamp is free: the smeared bits are cut above
    ``highest`` and filled up to ``lowest`` (local operations with public masks). ``shift``: p >> shift
    instead (its low bits are never converted to arithmetic sharing).

    ``signed``: p is that of |x| - 1 for negative x (its one's complement, so |x| = 2^j gives p = j - 1),
    of x otherwise; unsigned, a negative x has its top bit set and p = 63. z is 1 for x = 0, and for
    ``signed`` also for x = -1 (in ring units: |x| - 1 = 0).
    """
    if not 0 <= lowest <= highest < WORD_BITS:
        raise ValueError(f"leading_one: need 0 <= lowest <= highest < 64, got {lowest}, {highest}")
    if not 0 <= shift < POSITION_BITS:
        raise ValueError(f"leading_one: need 0 <= shift < {POSITION_BITS}, got {shift}")
    words = x.to_binary()
    sign = words.bit(WORD_BITS - 1)
    if signed:
        words = words ^ _spread(sign)
    smeared = words
    for distance in _PREFIX_SHIFTS:
        smeared = _or(smeared, smeared >> distance)
    none = ~smeared.bit(0) & 1
    clamped = smeared & ((1 << (highest + 1)) - 1) if highest < WORD_BITS - 1 else smeared
    fill = (1 << (lowest + 1)) - 1
    clamped = (clamped & ~fill) ^ fill  # OR with public bits: set them, keep the rest
    leading = clamped ^ (clamped >> 1)
    bits = [_parity(leading, mask) for mask in _POSITION_MASKS[shift:]] + [sign, none]
    arithmetic = x._bits_to_arithmetic(bits)
    kept = POSITION_BITS - shift
    position = sum(arithmetic[t] * (1 << t) for t in range(kept))
    return position, arithmetic[kept], arithmetic[kept + 1]


def _or(a, b):
    """a | b of XOR-shared words: a ^ b ^ (a & b), one AND (of a word and its shift, here: a protocol that masks
    words once opens one word, :mod:`smpc.mpc.circuits.masked_ands`)."""
    return a ^ b ^ (a & b)


def _spread(bit):
    """A shared bit (word 0/1) copied into all 64 positions: local, as the copies never overlap."""
    return bit.linear(fused.spread_bit)


def _parity(word, mask: int):
    """The XOR of the bits of a shared word & ``mask``, as a word 0/1: local (one pass, XOR-linear)."""
    return word.linear(functools.partial(fused.masked_parity, mask=mask))
