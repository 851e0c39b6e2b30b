"""The additive protocol's cost per step (N parties, a trusted dealer): rounds, bytes each party sends, and the
dealer's replies to the last party. Every opening goes to every peer, so a party sends (N - 1) frames per value."""

from __future__ import annotations

import math

from smpc.mpc.circuits import sign_bit
from smpc.mpc.circuits.masked_ands import SHARED
from smpc.mpc.circuits.adders import add, carry_save
from smpc.mpc.cost import CostBinary, CostTheory, Ledger, Phases
from smpc.mpc.fss import wire as fss_wire
from smpc.mpc.fss.compare import BATCH as FSS_BATCH
from smpc.net.wire import frame_bytes
from smpc.ring.bitslice import plane_words


def sign_tree_bytes(words: int) -> int:
    """Bytes of the sign-bit tree's openings: eq_hi, lt_lo and eq_lo (not the lowest pair) per level."""
    return sum(frame_bytes((3 * groups - 1, words)) for groups in sign_bit.TREE_GROUPS)


class AdditiveCost(CostTheory):
    """Beaver products (open e and f: 1 round), dealer truncation pairs (open c: 1 round), the 7-round bit-sliced
    sign bit (or, with ``comparisons="fss"``, the openings of x + r and of the packed msb XOR s: 2 rounds), GMW
    ANDs with dealer triples, adders for A2B and dabit B2A (1 round)."""

    def __init__(self, parties: int, comparisons: str = "circuit"):
        super().__init__(parties)
        self.comparisons = comparisons

    def _to_peers(self, ledger: Ledger, rounds: int, per_peer: int) -> None:
        ledger.add(rounds, [(self.parties - 1) * per_peer] * self.parties)

    def product(self, ledger, shape_x, shape_y, shape_z, truncated):
        self._to_peers(ledger, 1, frame_bytes(shape_x) + frame_bytes(shape_y))
        ledger.add_dealer(frame_bytes(shape_z))
        ledger.add_ring_products(2 * self.parties + 1)  # op(e, b) and op(a, f) per party, op(a, b) at the dealer
        if truncated:
            self.truncation(ledger, shape_z)

    def truncation(self, ledger, shape):
        self._to_peers(ledger, 1, frame_bytes(shape))
        ledger.add_dealer(frame_bytes((2, *shape)))

    def sign(self, ledger, count, with_product):
        if self.comparisons == "fss":  # open c = x + r, evaluate the DCF keys, open msb XOR s (packed bits)
            for start in range(0, count, FSS_BATCH):  # batches of FSS_BATCH elements, 2 rounds each
                size = min(FSS_BATCH, count - start)
                self._to_peers(ledger, 2, frame_bytes((size,)) + frame_bytes((plane_words(size),)))
                ledger.add_dealer(sum(frame_bytes((fss_wire.reply_words(rank, size, with_product),))
                                      for rank in range(self.parties)))
            return
        words = plane_words(count)
        self._to_peers(ledger, 7, frame_bytes((count,)) + sign_tree_bytes(words) + frame_bytes((words,)))
        fields = sign_bit.layout(count, with_mask=True, with_arith_bit=True, with_product=with_product)
        ledger.add_dealer(frame_bytes((sign_bit.correction_size(fields),)))

    def opening(self, ledger, shape):
        self._to_peers(ledger, 1, frame_bytes(shape))

    def binary_and(self, ledger, shapes):
        self._to_peers(ledger, 1, sum(2 * frame_bytes(shape) for shape in shapes))
        ledger.add_dealer(sum(frame_bytes(shape) for shape in shapes))

    def masked_ands(self, ledger, layouts):
        """Each layout's words opened once: a shared word's masked share goes to every peer, a private word goes
        from its owner alone; per layout the dealer sends the last party its product shares (one frame)."""
        sent = [0] * self.parties
        receives = [False] * self.parties
        for layout in layouts:
            for shape, owner in layout.masks:
                for rank in range(self.parties):
                    if owner in (SHARED, rank):
                        sent[rank] += (self.parties - 1) * frame_bytes(shape)
                    receives[rank] |= owner != rank
            total = sum(math.prod(layout.product_shape(k)) for k in range(len(layout.products)))
            ledger.add_dealer(frame_bytes((total,)))
        phases = [Phases(1) if receives[rank] else Phases(0, closes_with_send=sent[rank] > 0)
                  for rank in range(self.parties)]
        ledger.add(max(phase.rounds for phase in phases), sent, phases)

    def a2b(self, ledger, shape):
        inputs = [CostBinary(ledger, shape, owner=rank) for rank in range(self.parties)]
        words = carry_save(ledger.binary_and, inputs)
        if len(words) > 1:
            add(ledger.binary_and, words[0], words[1])

    def b2a(self, ledger, shape):
        self._to_peers(ledger, 1, frame_bytes(shape[1:]))
        ledger.add_dealer(frame_bytes(shape))

    def random_one_hot(self, ledger, count, bits):
        ledger.add_dealer(frame_bytes((count, 1 << bits)))
