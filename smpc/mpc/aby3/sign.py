"""The sign bit for three-party replicated sharing: party 0 deals, parties 1 and 2 compute.

The circuit of :mod:`smpc.mpc.circuits.sign_bit` with party 0 in the helper's seat, as in our
dealer-free truncation (:mod:`smpc.mpc.aby3.truncation`): party 0 knows the mask
r but sees nothing masked; parties 1 and 2 see c = x + r but not r. Secure against one
semi-honest party (honest majority, as ABY3 itself). Party 0 also knows x_0 + x_1, so
it sends c' = x_0 + x_1 + r and parties 1 and 2, who both hold x_2, get c = c' + x_2
with no opening round.

Rounds for parties 1 and 2: 1 (receive c' and, party 2, the corrections), 5 (tree), 1
(open msb XOR s between them), 1 (re-share the 2-of-2 bit into replicated form) = 8,
the same for x * msb(x) (ReLU, abs). Party 0 only sends: 2 n words of c' and about
3.4 n words of corrections to party 2 (4.4 n with the product).
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.aby3.truncation import DEALER as HELPER, LEFT, RIGHT, replicate_pair_sharing
from smpc.mpc.circuits.sign_bit import (arithmetic_bit, correction_size, deal, expand, layout, msb_plane,
                                        product_with_bit)
from smpc.ring.arith import wrapping


@wrapping
def replicated_msb(party, components: tuple[np.ndarray, np.ndarray], times_self: bool = False):
    """Replicated components of msb(x) (integers 0/1) from this party's components of x.

    ``times_self``: components of x * msb(x) instead, with no extra round (the product
    rides on c = x + r, as in :func:`smpc.mpc.circuits.sign_bit.product_with_bit`).
    """
    first, second = (np.ascontiguousarray(c).reshape(-1) for c in components)
    shape, count = components[0].shape, first.size
    fields = layout(count, with_mask=False, with_arith_bit=True, with_product=times_self)
    if party.rank == HELPER:
        r = party.prg.random_ring(count)
        masked = first + second + r  # x_0 + x_1 + r
        party.send(LEFT, masked)
        party.send(RIGHT, masked)
        party.send(RIGHT, deal(fields, [party.pair_prg(LEFT), party.pair_prg(RIGHT)], mask=r))
        share = None
    else:
        share = _compute(party, fields, first, second, count, times_self)
    return tuple(c.reshape(shape) for c in replicate_pair_sharing(party, share, (count,)))


@wrapping
def _compute(party, fields, first: np.ndarray, second: np.ndarray, count: int, times_self: bool) -> np.ndarray:
    """Party 1's or 2's additive share of the sign bit (or of x times it)."""
    rank = party.rank
    other = RIGHT if rank == LEFT else LEFT
    x_2 = second if rank == LEFT else first
    masked = party.recv_like(HELPER, (count,)) + x_2
    material = expand(fields, party.pair_prg(HELPER), derived=rank == LEFT)
    if rank == RIGHT:  # the helper's corrections follow c' on the same channel
        material.add_corrections(party.recv_like(HELPER, (correction_size(fields),)))

    def open_xor(arrays):
        for array in arrays:
            party.send(other, array)
        return [array ^ party.recv_like(other, array.shape) for array in arrays]

    leader = rank == LEFT
    plane = msb_plane(masked, material, open_xor, leader)
    opened = open_xor([plane ^ material["s_bits"]])[0]
    if times_self:
        # x = (x_1 + x_2) + x_0: party 1's and party 2's additive shares of x
        x_share = first + second if rank == LEFT else second
        return product_with_bit(opened, x_share, masked, material["s"], material["rs"])
    return arithmetic_bit(opened, material["s"], leader)
