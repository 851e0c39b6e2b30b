"""Fixed-base exponentiation for encryption: ``g^a mod N`` for many exponents ``a`` by a Lim-Lee comb.

Lim and Lee ("More flexible exponentiation with precomputation", CRYPTO '94, section 3) cut an
``l``-bit exponent into ``h`` rows of ``A = v b`` bits and every row into ``v`` blocks of ``b`` bits,
and precompute, for every block ``s``, the ``2^h`` products ``G_s[I] = prod_{r in I} g^(2^(r A + s b))``.
One exponentiation is then ``b - 1`` squarings and ``v b`` table products: step ``t`` (from ``b - 1``
down to 0) squares the accumulator and multiplies it by ``G_s[I]`` for every block ``s``, where bit
``r`` of ``I`` is bit ``r A + s b + t`` of the exponent. Small ``h`` and ``v`` give a table that is
built in milliseconds (for a few hundred values); large ones save products per value (for
thousands). :class:`Comb` takes ``(h, v)``; :mod:`smpc.he.randomness` chooses them.

The powers ``g^(2^(r A + s b))`` come from GMP; the tables and the exponentiations run in SIMD lanes
(:mod:`smpc.he.lanes`), on threads. Results equal ``gmpy2.powmod``'s.
"""

from __future__ import annotations

import gmpy2
import numpy as np
from gmpy2 import mpz

from smpc.he import lanes
from smpc.he.lanes import LANES


def layout(exponent_bits: int, rows: int, blocks: int) -> tuple[int, int]:
    """``(b, A)``: bits per block and per row of a comb with ``rows`` rows and ``blocks`` blocks."""
    row_bits = -(-exponent_bits // rows)
    step_bits = -(-row_bits // blocks)
    return step_bits, step_bits * blocks


def products_per_value(exponent_bits: int, rows: int, blocks: int) -> int:
    """Montgomery products of one exponentiation (about): ``b - 1`` squarings and ``v b`` table products."""
    step_bits, _ = layout(exponent_bits, rows, blocks)
    return step_bits - 1 + step_bits * blocks


def table_bytes(modulus, rows: int, blocks: int) -> int:
    """Memory of a comb's tables."""
    return 4 * blocks * (1 << rows) * lanes.limb_count(modulus)


def build_products(rows: int, blocks: int) -> int:
    """Lane products spent building the tables (whole lane groups per generation, as the kernel runs)."""
    groups = sum(-(-((1 << top) - 1) // LANES) for top in range(1, rows))
    return blocks * groups * LANES


class Comb:
    """Tables of a Lim-Lee comb for base ``base`` modulo an odd ``modulus``, and batch exponentiation.

    ``exponent_bits`` bounds the exponents (unsigned, little-endian bytes); ``rows`` is h (at most 16)
    and ``blocks`` is v. The tables are built on ``parallelism``'s threads when it has several.
    """

    def __init__(self, base, modulus, exponent_bits: int, rows: int, blocks: int, parallelism=None):
        if not 1 <= rows <= 16 or blocks < 1 or exponent_bits < 1:
            raise ValueError(f"a comb needs 1 <= rows <= 16, blocks >= 1 and exponent bits >= 1, got "
                             f"{rows}, {blocks}, {exponent_bits}")
        self.modulus = lanes.Modulus(modulus)
        self.exponent_bits, self.rows, self.blocks = exponent_bits, rows, blocks
        self.step_bits, self.row_bits = layout(exponent_bits, rows, blocks)
        self.tables = self._build(mpz(base) % self.modulus.value, parallelism)

    @property
    def nbytes(self) -> int:
        return self.tables.nbytes

    def _build(self, base: mpz, parallelism) -> np.ndarray:
        """``G_s[I]`` in Montgomery form, block after block: the powers by GMP, their products in lanes."""
        mod = self.modulus
        positions = sorted((r * self.row_bits + s * self.step_bits, r, s)
                           for r in range(self.rows) for s in range(self.blocks))
        powers = [None] * (self.rows * self.blocks)
        value, done = base, 0
        for position, r, s in positions:
            value = gmpy2.powmod(value, mpz(1) << (position - done), mod.value)  # position - done squarings
            done = position
            powers[s * self.rows + r] = value
        powers = mod.montgomery(powers).reshape(self.blocks, self.rows, mod.limbs)
        one = mod.montgomery([1])[0]
        size = 1 << self.rows
        tables = np.empty((self.blocks * size, mod.limbs), dtype=np.uint32)
        calls = [(powers[s], one, mod.n, mod.n0, tables[s * size : (s + 1) * size]) for s in range(self.blocks)]
        if parallelism is not None and parallelism.workers > 1 and self.blocks > 1:
            parallelism.thread_map(lanes.subset_products, calls)
        else:
            for call in calls:
                lanes.subset_products(*call)
        return tables

    def __call__(self, exponents: bytes, count: int, parallelism=None) -> list[mpz]:
        """``[base^a_i mod N]`` for ``count`` exponents, each ``len(exponents) // count`` bytes little-endian."""
        if count == 0:
            return []
        out = self.modulus.run(self.tables, self.indices(exponents, count), 1, parallelism)
        return self.modulus.values(out, count)

    def indices(self, exponents: bytes, count: int) -> np.ndarray:
        """Table rows ``(groups, b, v, LANES)``: step ``k`` uses bit ``b - 1 - k`` of every block."""
        width = len(exponents) // count
        if width * count != len(exponents) or 8 * width > self.rows * self.row_bits:
            raise ValueError(f"{len(exponents)} exponent bytes do not make {count} exponents of at most "
                             f"{self.rows * self.row_bits} bits")
        data = np.frombuffer(exponents, dtype=np.uint8).reshape(count, width)
        bits = np.zeros((count, self.rows * self.row_bits), dtype=np.uint8)
        bits[:, : 8 * width] = np.unpackbits(data, axis=1, bitorder="little")
        bits = bits.reshape(count, self.rows, self.blocks, self.step_bits)
        weights = (np.int32(1) << np.arange(self.rows, dtype=np.int32)).reshape(1, -1, 1, 1)
        index = (bits.astype(np.int32) * weights).sum(axis=1, dtype=np.int32)  # (count, v, b)
        index += (np.arange(self.blocks, dtype=np.int32) << self.rows).reshape(1, -1, 1)  # block s's table
        return lanes.groups_of(index[:, :, ::-1].transpose(2, 1, 0))
