"""Montgomery arithmetic modulo one odd N for many numbers at once, in SIMD lanes (numba, nogil).

The layout is :mod:`smpc.he.montgomery`'s: 28-bit limbs, limb-major, :data:`LANES` numbers per
group; products are Montgomery's ``a b / R mod N`` without a final subtraction (inputs and outputs
below ``2N``, ``4N < R = 2^(28 L)``). Above :data:`MAX_PLAIN_LIMBS` limbs (``N`` above 3358 bits,
every ``n^2`` of a 2048-bit key or more) a column of 64-bit sums could overflow, so the columns are
carried every :data:`SWEEP_ROWS` rows.

Table-driven exponentiation (:func:`evaluate`) serves both of this package's batch exponentiations:
a table holds numbers in Montgomery form ``x R mod N``; every lane of a group follows one schedule
of steps (``squarings`` squarings, then one product by a table entry per block, the entries picked
per lane), and one product by 1 at the end leaves Montgomery form. The fixed-base comb of
encryption (:mod:`smpc.he.comb`) and Straus's multi-exponentiation of matrix products
(:func:`smpc.he.multiexp.multiexp_lanes`) only fill the tables and the indices differently. Every
kernel releases the GIL, so groups spread over threads.
"""

from __future__ import annotations

from typing import Sequence

import gmpy2
import numpy as np
from gmpy2 import mpz
from numba import njit

LIMB_BITS = 28
LANES = 32  # numbers per kernel group: small enough that a few hundred numbers fill two cores
MAX_PLAIN_LIMBS = 120  # up to here columns of 2 * 120 limb products stay below 2^64 without carrying
SWEEP_ROWS = 64  # beyond it, 64 rows of two products each (< 2^57) fit a column between carries
_MASK = (1 << LIMB_BITS) - 1


class Modulus:
    """An odd modulus N > 2 prepared for the kernels: its limbs, ``-N^-1 mod 2^28``, Montgomery constants."""

    def __init__(self, modulus):
        n = mpz(modulus)
        if n < 3 or n % 2 == 0:
            raise ValueError("the modulus must be odd and at least 3")
        self.value = n
        self.limbs = limb_count(n)
        self.n = to_limbs([n], self.limbs)[0]
        self.n0 = np.uint64(int(-gmpy2.invert(n, 1 << LIMB_BITS) % (1 << LIMB_BITS)))
        self.unit = np.zeros((self.limbs, LANES), dtype=np.uint32)  # plain 1 in every lane
        self.unit[0, :] = 1
        self._shift = LIMB_BITS * self.limbs

    def montgomery(self, values: Sequence) -> np.ndarray:
        """``x R mod N`` of every value, as ``(count, limbs)`` limbs (the rows a table holds)."""
        n, shift = self.value, self._shift
        return to_limbs([(mpz(v) << shift) % n for v in values], self.limbs)

    def values(self, out: np.ndarray, count: int) -> list[mpz]:
        """The first ``count`` lanes of kernel output ``(groups, limbs, LANES)``, reduced below N."""
        n = self.value
        return [v - n if v >= n else v for v in from_lanes(out, count)]

    def run(self, tables, indices, squarings: int, parallelism=None) -> np.ndarray:
        """:func:`evaluate` on every group of ``indices``, the groups split over ``parallelism``'s threads."""
        groups = indices.shape[0]
        out = np.empty((groups, self.limbs, LANES), dtype=np.uint32)
        parts = 1 if parallelism is None else min(parallelism.workers, groups)
        if parts > 1:
            bounds = [groups * k // parts for k in range(parts + 1)]
            calls = [(tables, indices[lo:hi], squarings, self.n, self.n0, self.unit, out[lo:hi])
                     for lo, hi in zip(bounds, bounds[1:])]
            parallelism.thread_map(evaluate, calls)
        elif groups:
            evaluate(tables, indices, squarings, self.n, self.n0, self.unit, out)
        return out


def limb_count(modulus) -> int:
    """Limbs of a Montgomery number modulo ``modulus``: ``4 N < R = 2^(28 limbs)``."""
    return -(-(mpz(modulus).bit_length() + 2) // LIMB_BITS)


def to_limbs(values: Sequence, limbs: int) -> np.ndarray:
    """Non-negative integers below ``2^(28 limbs)`` as ``(count, limbs)`` uint32 limbs, little-endian."""
    pairs = -(-limbs // 2)
    data = b"".join(int(v).to_bytes(7 * pairs, "little") for v in values)
    raw = np.zeros((len(values), pairs, 8), dtype=np.uint8)
    raw[:, :, :7] = np.frombuffer(data, dtype=np.uint8).reshape(len(values), pairs, 7)
    words = raw.view("<u8").reshape(len(values), pairs)
    out = np.empty((len(values), 2 * pairs), dtype=np.uint32)
    out[:, 0::2] = words & np.uint64(_MASK)
    out[:, 1::2] = words >> np.uint64(LIMB_BITS)
    return np.ascontiguousarray(out[:, :limbs])


def from_lanes(out: np.ndarray, count: int) -> list[mpz]:
    """The first ``count`` lanes of ``(groups, limbs, LANES)`` limbs as integers (7 bytes per limb pair)."""
    limbs = out.shape[1]
    rows = np.ascontiguousarray(out.transpose(0, 2, 1).reshape(-1, limbs)[:count], dtype=np.uint64)
    if limbs % 2:
        rows = np.concatenate([rows, np.zeros((count, 1), dtype=np.uint64)], axis=1)
    pairs = rows[:, 0::2] | (rows[:, 1::2] << np.uint64(LIMB_BITS))
    raw = np.ascontiguousarray(pairs, dtype="<u8").view(np.uint8).reshape(count, -1, 8)[:, :, :7].tobytes()
    width = len(raw) // max(count, 1)
    return [mpz(int.from_bytes(raw[i * width : (i + 1) * width], "little")) for i in range(count)]


def groups_of(lanes_first: np.ndarray) -> np.ndarray:
    """``(steps, blocks, count)`` indices as ``(groups, steps, blocks, LANES)``, missing lanes pointing at entry 0."""
    steps, blocks, count = lanes_first.shape
    groups = -(-count // LANES)
    padded = np.zeros((steps, blocks, groups * LANES), dtype=np.int32)
    padded[:, :, :count] = lanes_first
    return np.ascontiguousarray(padded.reshape(steps, blocks, groups, LANES).transpose(2, 0, 1, 3))


# ---- kernels: limbs uint32, lanes last, C-contiguous ----

@njit(nogil=True, cache=True)
def mont_mul(a, b, n, n0, out, t, m):
    """``out = a b / R mod N`` lane by lane (below 2N for inputs below 2N); ``t``, ``m`` are scratch."""
    limbs = n.shape[0]
    mask, shift = np.uint64(_MASK), np.uint64(LIMB_BITS)
    t[:] = 0
    b0 = b[0]
    for i in range(limbs):
        ai, ti = a[i], t[i]
        for lane in range(LANES):
            m[lane] = ((ti[lane] + np.uint64(ai[lane]) * np.uint64(b0[lane])) & mask) * n0 & mask
        for j in range(limbs):
            bj, tij, nj = b[j], t[i + j], np.uint64(n[j])
            for lane in range(LANES):
                tij[lane] += np.uint64(ai[lane]) * np.uint64(bj[lane]) + np.uint64(m[lane]) * nj
        following = t[i + 1]
        for lane in range(LANES):
            following[lane] += ti[lane] >> shift
        if limbs > MAX_PLAIN_LIMBS and i % SWEEP_ROWS == SWEEP_ROWS - 1:
            for c in range(i + 1, i + limbs):
                low, high = t[c], t[c + 1]
                for lane in range(LANES):
                    high[lane] += low[lane] >> shift
                    low[lane] &= mask
    for k in range(limbs - 1):
        low, high, row = t[limbs + k], t[limbs + k + 1], out[k]
        for lane in range(LANES):
            high[lane] += low[lane] >> shift
            row[lane] = low[lane] & mask
    low, row = t[2 * limbs - 1], out[limbs - 1]
    for lane in range(LANES):
        row[lane] = low[lane]  # below 2^28: the result is below 2N < R


@njit(nogil=True, cache=True)
def gather(table, index, out):
    """Column ``lane`` of ``out`` = row ``index[lane]`` of ``table``."""
    limbs = out.shape[0]
    for lane in range(LANES):
        entry = table[index[lane]]
        for k in range(limbs):
            out[k, lane] = entry[k]


@njit(nogil=True, cache=True)
def evaluate(tables, indices, squarings, n, n0, unit, out):
    """``out[g]`` for every group ``g`` of ``indices`` ``(groups, steps, blocks, LANES)``, left in plain form.

    Lane by lane: the first step's entries multiplied, then for every further step ``squarings``
    squarings and one product by the entry of each block; then one product by 1.
    """
    limbs = n.shape[0]
    steps, blocks = indices.shape[1], indices.shape[2]
    acc = np.empty((limbs, LANES), dtype=np.uint32)
    tmp = np.empty((limbs, LANES), dtype=np.uint32)
    x = np.empty((limbs, LANES), dtype=np.uint32)
    t = np.empty((2 * limbs, LANES), dtype=np.uint64)
    m = np.empty(LANES, dtype=np.uint32)
    for g in range(indices.shape[0]):
        gather(tables, indices[g, 0, 0], acc)
        for step in range(steps):
            if step > 0:
                for _ in range(squarings):
                    mont_mul(acc, acc, n, n0, tmp, t, m)
                    acc, tmp = tmp, acc
            for s in range(1 if step == 0 else 0, blocks):
                gather(tables, indices[g, step, s], x)
                mont_mul(acc, x, n, n0, tmp, t, m)
                acc, tmp = tmp, acc
        mont_mul(acc, unit, n, n0, out[g], t, m)


@njit(nogil=True, cache=True)
def subset_products(powers, one, n, n0, table):
    """``table[I] = prod_{r in I} powers[r]`` for every ``I < 2^rows``, generation by generation of the top bit."""
    limbs, rows = n.shape[0], powers.shape[0]
    a = np.empty((limbs, LANES), dtype=np.uint32)
    b = np.empty((limbs, LANES), dtype=np.uint32)
    c = np.empty((limbs, LANES), dtype=np.uint32)
    t = np.empty((2 * limbs, LANES), dtype=np.uint64)
    m = np.empty(LANES, dtype=np.uint32)
    index = np.empty(LANES, dtype=np.int64)
    table[0] = one
    for r in range(rows):
        table[1 << r] = powers[r]
    for top_bit in range(1, rows):
        top = 1 << top_bit
        for start in range(top + 1, 2 * top, LANES):
            for lane in range(LANES):
                entry = start + lane
                index[lane] = entry - top if entry < 2 * top else 0
            for lane in range(LANES):
                a[:, lane] = table[top]
            gather(table, index, b)
            mont_mul(a, b, n, n0, c, t, m)
            for lane in range(min(LANES, 2 * top - start)):
                table[start + lane] = c[:, lane]


@njit(nogil=True, cache=True)
def power_tables(firsts, one, n, n0, width, table):
    """``table[i 2^w + d] = firsts[i]^d`` for ``d < 2^w`` (Montgomery form), lanes running over ``i``."""
    limbs, count = n.shape[0], firsts.shape[0]
    size = 1 << width
    x = np.empty((limbs, LANES), dtype=np.uint32)
    acc = np.empty((limbs, LANES), dtype=np.uint32)
    tmp = np.empty((limbs, LANES), dtype=np.uint32)
    t = np.empty((2 * limbs, LANES), dtype=np.uint64)
    m = np.empty(LANES, dtype=np.uint32)
    for start in range(0, count, LANES):
        used = min(LANES, count - start)
        for lane in range(LANES):
            x[:, lane] = firsts[start + lane] if lane < used else one
        acc[:] = x
        for lane in range(used):
            table[(start + lane) * size] = one
            if size > 1:
                table[(start + lane) * size + 1] = x[:, lane]
        for d in range(2, size):
            mont_mul(acc, x, n, n0, tmp, t, m)
            acc, tmp = tmp, acc
            for lane in range(used):
                table[(start + lane) * size + d] = acc[:, lane]
