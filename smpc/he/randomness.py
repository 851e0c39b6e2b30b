"""The encryption randomness of one public key: ``r^n``, or DJN's ``h_s^a`` by GMP or by a comb, chosen per batch.

Every Paillier encryption multiplies by an n-th residue. Standard Paillier (and phe) draws a uniform
``r`` and computes ``r^n mod n^2``: one exponentiation with an n-bit exponent. The fast randomness of
:mod:`smpc.he.djn` is ``h_s^a`` with a ``ceil(bits/2)``-bit ``a``: half that work by GMP, and far
less by a Lim-Lee comb (:mod:`smpc.he.comb`) once the comb's tables exist. A :class:`Randomness`
belongs to a key (copies made by ``with_parallelism`` share it) and picks, for each batch, what
costs least, counted in Montgomery products of the comb kernel (:data:`GMP_PER_BIT` and
:data:`SQUARE_PER_BIT` convert GMP's work; measured on a 2048-bit key), the work spread over the
key's threads:

1. Until the base ``h_s`` is known, ``r^n``. Key generation and a private key hand the base over
   (derived by CRT for a few milliseconds); a public key alone derives it, one full exponentiation,
   once it has encrypted :data:`BASE_AFTER` values: every ``h_s^a`` by GMP saves half of one.
2. Then ``h_s^a`` by GMP (``gmpy2.powmod_exp_list``, which releases the GIL: a batch runs on every
   core), or by the key's comb, or by a new comb. A comb is (re)built for a batch of at least
   :data:`COMB_MIN` values when, spread over the values this key has encrypted in such batches
   (the best guess of what is to come), its building and use cost less than the alternatives; its
   rows and blocks are those that minimize that cost within :data:`MAX_TABLE_BYTES`.

The choice changes only the speed: ``h_s^a`` is the same number by GMP and by any comb, and the
random bytes drawn are the same (``exponent_bytes`` per value). Nothing runs in another process,
so no program needs an ``if __name__ == "__main__":`` guard to encrypt.
"""

from __future__ import annotations

import os
import threading

import gmpy2
from gmpy2 import mpz

from smpc.he import comb, djn, lanes

#: a GMP exponentiation mod n^2 costs about this many comb products per exponent bit (CPU time,
#: 2048-bit keys; the kernel compiled for AVX-512 and for AVX2 ran alike)
GMP_PER_BIT = 1.05
#: a squaring inside GMP's exponentiation (building a comb's powers), per bit, in comb products
SQUARE_PER_BIT = 0.9
#: per value and method: limb conversion and index extraction, in comb products
VALUE_OVERHEAD = 3.0
BASE_AFTER = 3
COMB_MIN = 16
MAX_TABLE_BYTES = 40 << 20
_ROWS = range(1, 17)
_BLOCKS = range(1, 65)


class Randomness:
    """The randomizers (n-th residues mod n^2) of encryptions under ``n``; thread-safe, shared by copies of a key."""

    def __init__(self, n):
        self.n = mpz(n)
        self.nsquare = self.n * self.n
        self.exponent_bytes = djn.exponent_bytes(self.n)
        self.exponent_bits = 8 * self.exponent_bytes
        self._lock = threading.Lock()
        self._base: mpz | None = None
        self._comb: comb.Comb | None = None
        self._encrypted = 0  # values this key has encrypted
        self._batched = 0  # of them, those in batches of at least COMB_MIN

    def offer_base(self, compute) -> None:
        """Take ``h_s`` from ``compute()`` (CRT, knowing p and q) unless known; it equals :func:`djn.derive_base`."""
        with self._lock:
            if self._base is None:
                self._base = mpz(compute())

    @property
    def base(self) -> mpz:
        """``h_s`` (derived now if nobody handed it over)."""
        with self._lock:
            return self._known_base()

    def _known_base(self) -> mpz:
        if self._base is None:
            self._base = djn.derive_base(self.n)
        return self._base

    def factors(self, count: int, random_bytes=None, parallelism=None) -> list[mpz]:
        """``count`` randomizers: ``h_s^a`` for uniform ``exponent_bytes``-byte ``a``, or ``r^n`` (see the module)."""
        if count == 0:
            return []
        draw = random_bytes or os.urandom
        workers = 1 if parallelism is None else parallelism.workers
        with self._lock:
            method = self._choose(count, workers, parallelism)
            self._encrypted += count
        if method == "full":
            return full_randomizers(self.n, count, draw, parallelism)
        exponents = draw(self.exponent_bytes * count)
        if len(exponents) != self.exponent_bytes * count:
            raise ValueError("random_bytes returned the wrong number of bytes")
        if method == "gmp":
            return self.gmp_powers(exponents, count, parallelism)
        return method(exponents, count, parallelism)

    def gmp_powers(self, exponents: bytes, count: int, parallelism=None) -> list[mpz]:
        """``h_s^a`` for ``count`` little-endian exponents by ``gmpy2.powmod_exp_list`` (threads from 2 values)."""
        step = len(exponents) // count
        values = [int.from_bytes(exponents[i * step : (i + 1) * step], "little") for i in range(count)]
        base = self.base
        if parallelism is None or parallelism.workers < 2 or count < 2:
            return gmpy2.powmod_exp_list(base, values, self.nsquare)
        chunks = parallelism.split(values)
        results = parallelism.thread_map(gmpy2.powmod_exp_list, [(base, chunk, self.nsquare) for chunk in chunks])
        return [value for chunk in results for value in chunk]

    def comb(self, rows: int, blocks: int, parallelism=None) -> comb.Comb:
        """A comb of the base with ``rows`` and ``blocks`` (not kept; for tests and benchmarks)."""
        return comb.Comb(self.base, self.nsquare, self.exponent_bits, rows, blocks, parallelism)

    # ---- the cost model (under the lock) ----
    def _choose(self, count: int, workers: int, parallelism):
        if self._base is None and self._encrypted + count < BASE_AFTER:
            return "full"
        self._known_base()
        options = [(self._gmp_cost(count, workers), "gmp")]
        if self._comb is not None:
            current = self._comb
            options.append((self._comb_cost(current.rows, current.blocks, count, workers), current))
        best_cost, best = min(options, key=lambda option: option[0])
        if count < COMB_MIN:
            return best
        self._batched += count
        scale = self._batched / count
        built = self._best_new_comb(count, workers, scale)
        if built is not None and built[0] < best_cost * scale:
            self._comb = None  # release the old tables before the new ones are built
            self._comb = comb.Comb(self._base, self.nsquare, self.exponent_bits, built[1], built[2], parallelism)
            return self._comb
        return best

    def _gmp_cost(self, count: int, workers: int) -> float:
        parallel = workers if count > 1 else 1
        return -(-count // parallel) * self.exponent_bits * GMP_PER_BIT

    def _comb_cost(self, rows: int, blocks: int, count: int, workers: int) -> float:
        groups = -(-count // lanes.LANES)
        rounds = -(-groups // min(workers, groups))
        products = rounds * lanes.LANES * comb.products_per_value(self.exponent_bits, rows, blocks)
        return products + count * VALUE_OVERHEAD

    def _build_cost(self, rows: int, blocks: int, workers: int) -> float:
        tables = -(-blocks // workers)
        return self.exponent_bits * SQUARE_PER_BIT + tables * comb.build_products(rows, 1)

    def _best_new_comb(self, count: int, workers: int, scale: float):
        """``(cost over the expected volume, rows, blocks)`` of the cheapest comb within the memory cap."""
        best = None
        for rows in _ROWS:
            for blocks in _BLOCKS:
                if comb.table_bytes(self.nsquare, rows, blocks) > MAX_TABLE_BYTES:
                    break
                cost = self._build_cost(rows, blocks, workers) + scale * self._comb_cost(rows, blocks, count, workers)
                if best is None or cost < best[0]:
                    best = (cost, rows, blocks)
        return best


def full_randomizers(n, count: int, draw, parallelism=None) -> list[mpz]:
    """``r^n mod n^2`` for ``count`` uniform units r (each drawn with 128 extra bits, then reduced mod n)."""
    n = mpz(n)
    width = (n.bit_length() + 7) // 8 + 16
    rs = []
    while len(rs) < count:
        data = draw(width * (count - len(rs)))
        if len(data) != width * (count - len(rs)):
            raise ValueError("random_bytes returned the wrong number of bytes")
        for i in range(0, len(data), width):
            r = mpz(int.from_bytes(data[i : i + width], "big")) % n
            if r > 1 and gmpy2.gcd(r, n) == 1:
                rs.append(r)
    if not rs:
        return []
    nsquare = n * n
    if parallelism is None or parallelism.workers < 2 or len(rs) < 2:
        return gmpy2.powmod_base_list(rs, n, nsquare)
    chunks = parallelism.thread_map(gmpy2.powmod_base_list, [(chunk, n, nsquare) for chunk in parallelism.split(rs)])
    return [r for chunk in chunks for r in chunk]
