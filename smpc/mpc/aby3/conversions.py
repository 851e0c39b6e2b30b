"""Arithmetic <-> binary conversions for the aby3 protocol (ABY3 sections 5.3-5.4), no dealer.

Mohassel and Rindal, CCS 2018, https://eprint.iacr.org/2018/403. Party i holds
(x_i, x_{i+1}). Party 0 knows v = x_0 + x_1 (and b_0 ^ b_1); parties 1 and 2 both
know y = x_2 (and b_2). Both conversions start with a one-round step that turns a
function of v and y into replicated shares (:func:`_cross_terms` explains it), so:

* ``a2b``: x = v + y. Round 1 yields p = v ^ y and the first Kogge-Stone level
  (G1, P1) directly; 5 more levels (shifts 2..32) finish the carries. 6 rounds.
  Words sent per element: party 0 4 + 9 = 13, parties 1 and 2 2 + 9 = 11.
* ``msb``: bit 63 of ``a2b``, same cost.
* ``b2a`` (bits): b = d ^ e = d + e - 2de with d = b_0 ^ b_1 at party 0, e = b_2 at
  parties 1 and 2. 1 round (party 0 only sends); ring elements sent per element:
  party 0 2, parties 1 and 2 1 each.

The adders live in :mod:`smpc.mpc.circuits.adders` (shared with the additive protocol).
"""

from __future__ import annotations


import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.circuits.adders import prefix_carries
from smpc.mpc.aby3.binary import WORD_BITS, ReplicatedBinaryTensor, and_many
from smpc.ring.arith import wrapping

LEAD = 0  # knows v = x_0 + x_1; parties 1 and 2 both know y = x_2
_ONE = np.uint64(1)

# --- one round from the lead's v and the pair's y ----------------------------------------
def _split(prg, count: int, shape: tuple[int, ...]) -> np.ndarray:
    """``count`` pseudo-random arrays of ``shape`` in one draw (indexable by the first axis)."""
    return prg.random_ring((count, *shape))


def _lead_masks(party, count: int, shape) -> tuple[np.ndarray, np.ndarray]:
    """The lead's draws: from the PRG with party 2 (component 0) and with party 1 (component 1)."""
    return _split(party.pair_prg(2), count, shape), _split(party.pair_prg(1), count, shape)


@wrapping
def _cross_terms(party, lead_words, pair_words: np.ndarray | None, shape):
    """Replicated sharings of p = V ^ Y, G1 and P1 (the first Kogge-Stone level of V + Y). One round.

    The lead (party 0) knows V, parties 1 and 2 know Y; with X1 = X << 1:
      p  = V ^ Y
      G1 = g ^ (p & (g << 1)) = V&Y ^ (V&V1)&Y1 ^ V1&(Y&Y1)
      P1 = p & (p << 1)       = V&V1 ^ Y&Y1 ^ V&Y1 ^ V1&Y
    Every term is a word of V, of Y, or (words of V) & (words of Y). For each output o the lead's components
    c_0 (PRG with party 2) and c_1 (PRG with party 1) are pseudo-random; parties 1 and 2
    both need c_2 = o ^ c_0 ^ c_1. The lead sends party 1 U = V ^ w and M = (V&V1) ^ m
    (w, m from its PRG with party 2). Substituting V = U ^ w, V1 = U1 ^ w1, V&V1 = M ^ m
    splits o ^ c_0 into a part party 1 computes from U, M, Y and a part party 2 computes
    from w, m, Y, c_0 and sends to party 1 (one word per output, masked by c_0). For p,
    c_0 = w and nothing is sent. Party 2 symmetrically, with the lead's PRG with party 1.
    Party 1 sees U, M and the two hints, all one-time padded by w, m, c_0 that only
    parties 0 and 2 know. Words sent per element: lead 2 + 2, parties 1 and 2 2 each.
    """
    rank = party.rank
    if rank == LEAD:
        v = lead_words
        vv = v << _ONE
        vv &= v
        with_2, with_1 = _lead_masks(party, 4, shape)  # w, m, c_0 of G1, c_0 of P1 (and with party 1)
        for peer, masks in ((1, with_2), (2, with_1)):  # masked with what the receiver lacks
            out = np.empty((2, *shape), np.uint64)
            np.bitwise_xor(v, masks[0], out=out[0])
            np.bitwise_xor(vv, masks[1], out=out[1])
            party.send(peer, out)
        return tuple((with_2[k], with_1[k]) for k in (0, 2, 3))  # p, G1, P1 as (c_0, c_1)

    other = 3 - rank  # the other member of the pair
    y = pair_words
    y1 = y << _ONE
    yy = y & y1
    # the lead's masks for the other member's message, and this party's components
    w, m, g_mask, p_mask = _split(party.pair_prg(LEAD), 4, shape)
    shifted = w << _ONE
    scratch = np.empty(shape, np.uint64)
    hints = np.empty((2, *shape), np.uint64)
    _xor_products(hints[0], [(w, y), (m, y1), (shifted, yy)], scratch, g_mask)
    _xor_products(hints[1], [(w, y1), (shifted, y)], scratch, m, p_mask)
    party.send(other, hints)
    received = party.recv_like(LEAD, (2, *shape))
    u, masked_vv = received[0], received[1]
    theirs = party.recv_like(other, (2, *shape))
    np.left_shift(u, _ONE, out=shifted)
    c2_p = u ^ y
    c2_p ^= w
    c2_g, c2_pp = np.empty(shape, np.uint64), np.empty(shape, np.uint64)
    _xor_products(c2_g, [(u, y), (masked_vv, y1), (shifted, yy)], scratch, theirs[0], g_mask)
    _xor_products(c2_pp, [(u, y1), (shifted, y)], scratch, masked_vv, yy, theirs[1], p_mask)
    mine = (w, g_mask, p_mask)
    outputs = (c2_p, c2_g, c2_pp)
    if rank == 1:  # holds (c_1, c_2)
        return tuple(zip(mine, outputs))
    return tuple(zip(outputs, mine))  # party 2 holds (c_2, c_0)


def _xor_products(out: np.ndarray, products, scratch: np.ndarray, *terms) -> None:
    """out = XOR of a & b over ``products``, XOR every array in ``terms``; in place."""
    (a, b), *rest = products
    np.bitwise_and(a, b, out=out)
    for a, b in rest:
        np.bitwise_and(a, b, out=scratch)
        out ^= scratch
    for term in terms:
        out ^= term


# --- conversions ---------------------------------------------------------------------------
def _check_components(components) -> tuple[int, ...]:
    """The shape of a pair of replicated arithmetic components (uint64 arrays of one shape)."""
    if len(components) != 2:
        raise ValueError(f"expected this party's two replicated components, got {len(components)}")
    first, second = (np.asarray(c) for c in components)
    if first.dtype != np.uint64 or second.dtype != np.uint64 or first.shape != second.shape:
        raise TypeError("replicated components must be two uint64 arrays of one shape")
    return first.shape


@wrapping
def a2b(party, components: tuple[np.ndarray, np.ndarray]) -> ReplicatedBinaryTensor:
    """XOR sharing of the ring value with replicated components ``(x_i, x_{i+1})`` (ABY3 section 5.3).

    x = v + y with v = x_0 + x_1 (party 0) and y = x_2 (parties 1, 2). Round 1 gives
    p = v ^ y and the first Kogge-Stone level (:func:`_cross_terms`); levels 2..32 take
    5 more. 6 rounds (party 0 only sends in round 1: 5 receive phases). Words sent per
    element: party 0 13, parties 1 and 2 11. (Party 0 inputting v, then a Kogge-Stone
    adder: 1 + 7 rounds; three addends and a carry-save level: 8 rounds, 13 words each.)
    """
    shape = _check_components(components)
    first, second = (np.asarray(c).reshape(-1) for c in components)  # 1-D inside
    if party.rank == LEAD:
        propagate, generate1, propagate1 = _cross_terms(party, first + second, None, first.shape)
    else:
        propagate, generate1, propagate1 = _cross_terms(party, None, second if party.rank == 1 else first, first.shape)
    p, g, pp = (ReplicatedBinaryTensor(party, c) for c in (propagate, generate1, propagate1))
    carries = prefix_carries(lambda pairs: and_many(party, pairs), g, pp, shift=2)
    return (p ^ (carries << 1)).reshape(shape)


def msb(party, components: tuple[np.ndarray, np.ndarray]) -> ReplicatedBinaryTensor:
    """The top bit of the ring value (1 for negative two's complement) as words 0/1. As ``a2b``: 6 rounds."""
    return a2b(party, components).bit(WORD_BITS - 1)


@wrapping
def b2a(party, bit: ReplicatedBinaryTensor) -> tuple[np.ndarray, np.ndarray]:
    """Replicated arithmetic components of a shared bit (bit 0 of each word; ABY3 section 5.4). One round.

    b = d ^ e = d + e - 2de = d (1 - 2e) + e, d = b_0 ^ b_1 known to party 0, e = b_2 to
    parties 1 and 2. Party 0's components c_0, c_1 come from its PRGs with parties 2 and
    1; party 1 needs c_2 = b - c_0 - c_1. Party 0 sends it U = d + w (w from its PRG with
    party 2); party 2 sends h = w (1 - 2e) + c_0; then c_2 = U (1 - 2e) + e - h - c_1.
    Party 2 likewise with the roles of its PRG and party 1's swapped. Ring elements sent
    per element: party 0 2 (0 rounds: it only sends), parties 1 and 2 1 each (1 round).
    """
    if not isinstance(bit, ReplicatedBinaryTensor):
        raise TypeError(f"b2a takes a ReplicatedBinaryTensor, got {type(bit).__name__}")
    if bit.party is not party:
        raise ProtocolError("the bit belongs to another party or run")
    rank, shape = party.rank, bit.shape
    first, second = (c.reshape(-1) for c in bit.components)  # 1-D inside: no numpy scalars
    if rank == LEAD:
        d = (first ^ second) & _ONE
        with_2, with_1 = _lead_masks(party, 2, d.shape)  # (w, c_0) and (w', c_1)
        party.send(1, d + with_2[0])
        party.send(2, d + with_1[0])
        return with_2[1].reshape(shape), with_1[1].reshape(shape)
    other = 3 - rank
    e = (second if rank == 1 else first) & _ONE
    w, mine = _split(party.pair_prg(LEAD), 2, e.shape)  # the other's mask and my component from party 0
    sign = _ONE - (e << _ONE)  # 1 - 2e
    hint = w * sign
    hint += mine
    party.send(other, hint)
    c2 = party.recv_like(LEAD, e.shape) * sign
    c2 += e
    c2 -= party.recv_like(other, e.shape)
    c2 -= mine
    mine, c2 = mine.reshape(shape), c2.reshape(shape)
    return (mine, c2) if rank == 1 else (c2, mine)
