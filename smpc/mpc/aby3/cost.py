"""The aby3 protocol's cost per step (three parties, no dealer): rounds and bytes each party sends.

Products re-share a 3-out-of-3 value to the predecessor (1 round); truncation and the sign bit have party 0 act as
the helper that deals for parties 1 and 2 (:mod:`smpc.mpc.aby3.truncation`, :mod:`smpc.mpc.aby3.sign`).

Rounds are each party's receive phases (:mod:`smpc.net.stats`), so the theory states every party's messages in a
step (:class:`smpc.mpc.cost.Phases`), not one count for all. Two patterns differ from "send, then receive":

* Party 0 only sends in a truncation, a sign bit, a B2A and the first level of an A2B (0 rounds there).
* Parties 1 and 2 begin the sign bit by receiving party 0's c' (and corrections). When their previous message was a
  receive, as at the end of every step counted here (not after a share or a reveal to one party that they only send in),
  that receive belongs to the same receive phase: a sign bit (a comparison, a ReLU, each batch of a large one) then
  adds 7 rounds, not 8; first after the counters start, or after a send, it adds 8. The message still waits for
  party 0, which can only send c' once it holds x (the depth, :mod:`smpc.net.stats`, counts that wait); the rounds
  follow their definition, which is deterministic: it depends only on each party's order of sends and receives.

With these the theory equals every party's measured rounds for programs on the shared-tensor interface
(tests/test_cost_model.py asserts it); a share or a reveal to one party in between is beyond the cost model anyway.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.additive.cost import sign_tree_bytes
from smpc.mpc.circuits import sign_bit
from smpc.mpc.circuits.adders import prefix_carries
from smpc.mpc.cost import CostBinary, CostTheory, Phases
from smpc.net.wire import frame_bytes
from smpc.ring.bitslice import plane_words

#: party 0 sends and receives nothing after its messages in the step
ONLY_SENDS = Phases(0, closes_with_send=True)
#: the sign bit at parties 1 and 2: receive c', then seven rounds that each send first
SIGN_PHASES = Phases(8, opens_with_receive=True)


class Aby3Cost(CostTheory):
    """ABY3 section 3.2 products, the helper-dealt truncation (2 rounds) and sign bit (8 rounds, or 7 where its first
    receive continues the previous step's), replicated ANDs (1 round, one message to the predecessor) and B2A
    (1 round); party 0 only sends in the helper's steps."""

    def product(self, ledger, shape_x, shape_y, shape_z, truncated):
        ledger.add_ring_products(2 * self.parties)  # op(x_i, y_i + y_i+1) and op(x_i+1, y_i) per party
        if truncated:
            self.truncation(ledger, shape_z)  # the truncation re-shares the product itself
        else:
            ledger.add(1, [frame_bytes(shape_z)] * 3)

    def truncation(self, ledger, shape):
        # party 0: c' twice and the corrections; parties 1, 2: swap, then re-share
        ledger.add(2, [2 * frame_bytes(shape) + frame_bytes((2, *shape))] + [2 * frame_bytes(shape)] * 2,
                   [ONLY_SENDS, Phases(2), Phases(2)])

    def sign(self, ledger, count, with_product):
        words = plane_words(count)
        fields = sign_bit.layout(count, with_mask=False, with_arith_bit=True, with_product=with_product)
        helper = 2 * frame_bytes((count,)) + frame_bytes((sign_bit.correction_size(fields),))
        computing = sign_tree_bytes(words) + frame_bytes((words,)) + frame_bytes((count,))
        ledger.add(8, [helper, computing, computing], [ONLY_SENDS, SIGN_PHASES, SIGN_PHASES])

    def opening(self, ledger, shape):
        ledger.add(1, [frame_bytes(shape)] * 3)  # each party sends one component to its predecessor

    def binary_and(self, ledger, shapes):
        total = sum(int(np.prod(shape, dtype=np.int64)) for shape in shapes)
        ledger.add(1, [frame_bytes((total,))] * 3)

    def a2b(self, ledger, shape):
        # ABY3's first level by party 0 and the pair, then the Kogge-Stone levels (smpc.mpc.aby3.conversions)
        count = int(np.prod(shape, dtype=np.int64))
        ledger.add(1, [2 * frame_bytes((2, count))] + [frame_bytes((2, count))] * 2,
                   [ONLY_SENDS, Phases(1), Phases(1)])
        prefix_carries(ledger.binary_and, CostBinary(ledger, (count,)), CostBinary(ledger, (count,)), shift=2)

    def b2a(self, ledger, shape):
        # party 0 sends each other party one word per bit; parties 1 and 2 one word to each other
        count = int(np.prod(shape, dtype=np.int64))
        ledger.add(1, [2 * frame_bytes((count,))] + [frame_bytes((count,))] * 2, [ONLY_SENDS, Phases(1), Phases(1)])
