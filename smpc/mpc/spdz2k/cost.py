"""spdz2k's cost per step (N parties, the dealer of authenticated material): rounds, bytes each party sends (every
opening goes to every peer as Z_2^128 limbs, 16 bytes per element), the dealer's replies to the last party, and the
MAC checks that the openings trigger (:mod:`.mac_check`: 4 rounds each)."""

from __future__ import annotations

import math

import numpy as np

from smpc.mpc.circuits.adders import prefix_carries
from smpc.mpc.cost import CostBinary, CostTheory, Ledger
from smpc.mpc.spdz2k import compare, fss, mac_check
from smpc.net.wire import frame_bytes


def _limbs(shape) -> tuple[int, ...]:
    return (*tuple(shape), 2)


def check_bytes_per_peer() -> int:
    """One MAC check's bytes to each peer: the coin's commitment and log digest, the seed with a view hash, the
    commitment to z, z and its nonce with a view hash (uint8 frames)."""
    return (frame_bytes((64,), 1) + frame_bytes((64,), 1) + frame_bytes((32,), 1) + frame_bytes((64,), 1))


class Spdz2kCost(CostTheory):
    """Beaver products with authenticated triples (1 round), authenticated truncation pairs (1 round), openings
    (1 round, then the MAC check: 4 rounds), and a MAC check whenever more than
    :data:`~smpc.mpc.spdz2k.mac_check.CHECK_EVERY` opened elements wait (a run's theory counts them in order).
    Comparisons: :meth:`sign`."""

    def __init__(self, parties: int, comparisons: str = "auto"):
        super().__init__(parties)
        self.fss = comparisons == "fss" or (comparisons == "auto" and parties == 2)
        self.max_by_relu = self.fss  # x msb(x) comes from the same two openings
        self.pending = 0  # opened elements logged for the arithmetic check
        self.bit_pending = 0  # ... and for the bit domain's

    def _to_peers(self, ledger: Ledger, rounds: int, per_peer: int) -> None:
        ledger.add(rounds, [(self.parties - 1) * per_peer] * self.parties)

    def _logged(self, ledger: Ledger, elements: int) -> None:
        self.pending += elements
        if self.pending > mac_check.CHECK_EVERY:
            self.mac_check(ledger)

    def mac_check(self, ledger: Ledger) -> None:
        """One batched MAC check."""
        self._to_peers(ledger, 4, check_bytes_per_peer())
        self.pending = 0

    def product(self, ledger, shape_x, shape_y, shape_z, truncated):
        self._to_peers(ledger, 1, frame_bytes(_limbs(shape_x)) + frame_bytes(_limbs(shape_y)))
        sizes = math.prod(shape_x) + math.prod(shape_y) + 2 * math.prod(shape_z)
        ledger.add_dealer(frame_bytes((2 * sizes,)))
        # per party: op(e, b), op(a, f) and the same two on the MAC shares; op(a, b) at the dealer
        ledger.add_ring_products(4 * self.parties + 1)
        self._logged(ledger, math.prod(shape_x) + math.prod(shape_y))
        if truncated:
            self.truncation(ledger, shape_z)

    def truncation(self, ledger, shape):
        self._to_peers(ledger, 1, frame_bytes(_limbs(shape)))
        ledger.add_dealer(frame_bytes((5, *_limbs(shape))))
        self._logged(ledger, math.prod(shape))

    def opening(self, ledger, shape):
        """x + 2^64 t opened, then both domains' checks (the bit domain's only if it logged anything)."""
        self._to_peers(ledger, 1, frame_bytes(_limbs(shape)))
        ledger.add_dealer(frame_bytes((2, *_limbs(shape))))
        if self.bit_pending:
            self._to_peers(ledger, 4, check_bytes_per_peer())
            self.bit_pending = 0
        self.pending += math.prod(shape)
        self.mac_check(ledger)

    def partial_opening(self, ledger, shape):
        """A value with uniform upper bits opened and logged (1 round, no check)."""
        self._to_peers(ledger, 1, frame_bytes(_limbs(shape)))
        self.pending += math.prod(shape)

    def _bits_logged(self, ledger: Ledger, elements: int) -> None:
        self.bit_pending += elements
        if self.bit_pending > mac_check.CHECK_EVERY:
            self._to_peers(ledger, 4, check_bytes_per_peer())
            self.bit_pending = 0

    def binary_and(self, ledger, shapes):
        """One Beaver round on every plane of every pair (64 words per word, 8 bytes each)."""
        planes = [(64, *shape) for shape in shapes]
        self._to_peers(ledger, 1, sum(2 * frame_bytes(shape) for shape in planes))
        ledger.add_dealer(sum(frame_bytes((4, *shape)) for shape in planes))
        self._bits_logged(ledger, sum(2 * math.prod(shape) for shape in planes))

    def a2b(self, ledger, shape):
        """An edaBit: open x + r (1 round), then the Kogge-Stone carries with the public c (6 rounds)."""
        count = math.prod(shape)
        self._to_peers(ledger, 1, frame_bytes(_limbs(shape)))
        ledger.add_dealer(frame_bytes((130 * count,)))
        self.pending += count
        prefix_carries(ledger.binary_and, CostBinary(ledger, shape), CostBinary(ledger, shape))

    def b2a(self, ledger, shape):
        """daBits: the masked bits opened in the bit domain (1 round, a word per bit)."""
        count = math.prod(shape)
        ledger.add_dealer(frame_bytes((6 * count,)) + frame_bytes((2, *shape)))
        self._to_peers(ledger, 1, frame_bytes(shape))
        self.bit_pending += count
        self._bits_logged(ledger, 0)

    def setup_dealer_bytes(self, input_shapes) -> int:
        """The two MAC keys' shares (alpha, beta), then each input's authenticated mask (the last party's value and
        MAC shares)."""
        return frame_bytes((2,)) + frame_bytes((1,)) + sum(frame_bytes((2, *_limbs(shape))) for shape in input_shapes)

    def random_one_hot(self, ledger, count, bits):
        ledger.add_dealer(frame_bytes((2 * count + 4 * count * (1 << bits),)))

    def _beaver(self, ledger, shape_x, shape_y) -> None:
        """An integer Beaver product (no truncation)."""
        self.product(ledger, shape_x, shape_y, tuple(np.broadcast_shapes(shape_x, shape_y)), truncated=False)

    def sign(self, ledger, count, with_product):
        """Two parties, :mod:`.fss`: per batch, open c = x + r (logged), then E (the bit domain's, logged): 2 rounds,
        with or without the product. More parties (or ``comparisons="circuit"``), :mod:`.compare`: per batch, open
        x + r, five tree levels of stacked products (each pair's two and the top pair's other variant's two), the
        last merge of both variants (7 rounds); with ``with_product``, one more product of x and the bit (flat)."""
        if self.fss:
            for start in range(0, count, fss.BATCH):
                size = min(fss.BATCH, count - start)
                ledger.add_dealer(sum(frame_bytes((fss.reply_words(rank, size, with_product),)) for rank in (0, 1)))
                self._to_peers(ledger, 1, frame_bytes((size, 2)))
                self._logged(ledger, size)
                self._to_peers(ledger, 1, frame_bytes((size,)))
                self._bits_logged(ledger, size)
            return
        for start in range(0, count, compare.BATCH):
            size = min(compare.BATCH, count - start)
            self._to_peers(ledger, 1, frame_bytes((size, 2)))
            ledger.add_dealer(frame_bytes((129, size, 2)))
            self.pending += size
            rows = 64
            for _ in range(compare.LEVELS - 1):
                rows //= 2
                self._beaver(ledger, (2, rows + 1, size), (2, rows + 1, size))
            self._beaver(ledger, (2, size), (2, size))
        if with_product:
            self._beaver(ledger, (count,), (count,))

