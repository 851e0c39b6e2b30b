"""Beaver multiplication: one protocol body for every bilinear op (mul, matmul, conv2d).

Beaver, "Efficient multiparty protocols using circuit randomization", CRYPTO 1991; the
SPDZ online phase (Damgard et al., CRYPTO 2012, section 3) without MACs.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.bilinear import MUL, Bilinear
from smpc.mpc.correlated.source import Triple
from smpc.mpc.sharing import open_shares
from smpc.ring import fused
from smpc.ring.arith import wrapping


@wrapping
def beaver_product(party, x: np.ndarray, y: np.ndarray, op: Bilinear, triple: Triple | None = None) -> np.ndarray:
    """This party's share of ``op(x, y)`` from its shares ``x`` and ``y``.

    1. Take a triple [a], [b], [c] with c = op(a, b) from the source (offline); ``triple``: one requested
       earlier for these shapes, else one is requested now.
    2. Open e = x - a and f = y - b together: one round, |x| + |y| elements to each peer.
    3. Complete the triple (the last party receives its c, which the dealer made during step 2).
    4. z_i = c_i + op(e, b_i) + op(a_i, f), and party 0 adds op(e, f); by bilinearity
       party 0 computes op(e, b_0 + f) + op(a_0, f), two ops like everyone else.
    """
    if triple is None:
        triple = party.dealer.triple(op, x.shape, y.shape)
    a, b = triple.a, triple.b
    e, f = open_shares(party, [x - a, y - b], owned=True)
    if op.code == MUL:  # step 4 in one pass over memory where one operand is the other's shape (or broadcast
        # along leading axes: one x for several y)
        if fused.leading_copies(x.shape, y.shape) is not None:
            return fused.beaver_mul_finish(e, f, a, b, party.dealer.complete(triple).c, party.rank == 0)
        if fused.leading_copies(y.shape, x.shape) is not None:
            return fused.beaver_mul_finish(f, e, b, a, party.dealer.complete(triple).c, party.rank == 0)
    if party.rank == 0:
        b = b + f
    product = op.apply(e, b)
    product += op.apply(a, f)
    product += party.dealer.complete(triple).c
    return product
