"""spdz2k's cost per step (N parties, the dealer of authenticated material): rounds, bytes each party sends (every
opening goes to every peer as Z_2^128 limbs, 16 bytes per element), the dealer's replies to the last party, and the
MAC checks that the openings trigger (:mod:`.mac_check`: 4 rounds each)."""

from __future__ import annotations

import math

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.cost import CostTheory, Ledger
from smpc.mpc.spdz2k import compare, mac_check
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
    Comparisons and conversions are not available under spdz2k yet."""

    def __init__(self, parties: int):
        super().__init__(parties)
        self.pending = 0

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
        self._to_peers(ledger, 1, frame_bytes(_limbs(shape)))
        ledger.add_dealer(frame_bytes((2, *_limbs(shape))))
        self.pending += math.prod(shape)
        self.mac_check(ledger)

    def _beaver(self, ledger, shape_x, shape_y) -> None:
        """An integer Beaver product (no truncation)."""
        self.product(ledger, shape_x, shape_y, tuple(np.broadcast_shapes(shape_x, shape_y)), truncated=False)

    def sign(self, ledger, count, with_product):
        """:mod:`.compare`: per batch, open x + r, five tree levels of stacked products (each pair's two and the top
        pair's other variant's two), the last merge of both variants (7 rounds); with ``with_product``, one more
        product of x and the bit (flat)."""
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

    def binary_and(self, ledger, shapes):
        raise ProtocolError("binary sharing is not available under spdz2k yet")

    def a2b(self, ledger, shape):
        raise ProtocolError("binary sharing is not available under spdz2k yet")

    def b2a(self, ledger, shape):
        raise ProtocolError("binary sharing is not available under spdz2k yet")
