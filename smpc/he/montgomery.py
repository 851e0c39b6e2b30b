"""One exponent, one odd modulus, many bases: Montgomery exponentiation in SIMD lanes (numba).

Decryption raises every ciphertext to ``p - 1`` modulo ``p^2`` (and to ``q - 1`` modulo ``q^2``): the
exponent and the modulus are the same for the whole batch. GMP (``gmpy2.powmod``) runs one
exponentiation at a time; here :data:`LANES` bases go through the same sequence of Montgomery products
side by side, and the compiler turns each step into vector instructions over the lanes. With AVX-512
this is about 1.3x to 1.5x GMP's speed per core; elsewhere GMP is used (:func:`simd_supported`).

Numbers. A value below ``R = 2^(28 L)`` is ``L`` limbs of :data:`LIMB_BITS` bits, stored limb-major:
``x[k, lane]`` is limb ``k`` of lane ``lane``. Limb products are below ``2^56`` and a column of a
product collects at most ``2 L + 1`` of them (``a_i b_j`` and ``m_i N_j``), so for ``L <= 127`` a
column fits in a uint64 and carries move once per row. Products are Montgomery's ``a b / R mod N``
(Montgomery, "Modular multiplication without trial division", Math. Comp. 44, 1985) without the final
subtraction: with ``4 N < R``, inputs below ``2 N`` give an output below ``2 N`` (Walter, "Montgomery
exponentiation needs no final subtractions", Electronics Letters 35, 1999).

Exponentiation: left-to-right sliding window of :data:`WINDOW` bits over the odd powers
``x, x^3, ..., x^31``, one schedule for every lane. Bases enter as ``x = c mod N``, not in Montgomery
form: the accumulator then holds ``x^k R^-(k-1)`` (squarings and products keep that form), and one
product by ``R^(e-1) mod N`` at the end gives ``x^e mod N``. As with GMP, the sequence of operations
depends on the exponent (not constant-time); results are exact, equal to ``gmpy2.powmod``'s.
"""

from __future__ import annotations

import functools
from typing import Sequence

import gmpy2
import numba
import numpy as np
from gmpy2 import mpz
from numba import njit

LIMB_BITS = 28
LANES = 128  # bases per kernel group: the compiler vectorizes its loops (64 lanes run about 10% slower)
WINDOW = 5
MAX_LIMBS = 120  # columns of 2 * 120 + 1 limb products below 2^56 stay below 2^64
MIN_FILL = 3 * LANES // 4  # a last, partial group this full still goes to the kernel (zeros fill it)
_MASK = (1 << LIMB_BITS) - 1
_PAIR_BYTES = 7  # two 28-bit limbs


@functools.cache
def simd_supported() -> bool:
    """Whether numba compiles for this CPU with AVX-512, where the kernel beats GMP."""
    from llvmlite import binding

    return numba.config.CPU_NAME in (None, "host") and bool(binding.get_host_cpu_features().get("avx512f"))


class FixedPower:
    """``b^exponent mod modulus`` for lists of bases ``b``: whole groups of :data:`LANES` in the SIMD kernel.

    ``simd=None`` uses the kernel where :func:`simd_supported`; ``False`` always uses ``gmpy2``. Bases
    beyond the last whole group, and moduli above ``28 * MAX_LIMBS - 2`` bits, go to ``gmpy2``.
    Exponent and modulus stay inside (for decryption they are secret): the object has no repr of them.
    """

    def __init__(self, exponent, modulus, *, simd: bool | None = None):
        self._exponent, self._modulus = mpz(exponent), mpz(modulus)
        if self._modulus < 3 or self._modulus % 2 == 0:
            raise ValueError("the modulus must be odd and at least 3")
        if self._exponent < 1:
            raise ValueError("the exponent must be positive")
        self._limbs = -(-(self._modulus.bit_length() + 2) // LIMB_BITS)  # 4 N < R
        if simd is None:
            simd = simd_supported()
        self.simd = bool(simd) and self._limbs <= MAX_LIMBS
        if self.simd:
            self._prepare_kernel()

    def _prepare_kernel(self) -> None:
        n, e, limbs = self._modulus, self._exponent, self._limbs
        self._n_limbs = _to_limbs([n], limbs)[0, :, 0].copy()
        self._n0 = np.uint64(int(-gmpy2.invert(n, 1 << LIMB_BITS) % (1 << LIMB_BITS)))
        self._first, self._steps = window_schedule(int(e), WINDOW)
        self._fix = gmpy2.powmod(mpz(1) << (LIMB_BITS * limbs), e - 1, n)  # R^(e-1) mod N

    def __call__(self, bases: Sequence) -> list[mpz]:
        """``[b^exponent mod modulus for b in bases]`` for integer bases."""
        count = self.kernel_count(len(bases))
        out = self._kernel(bases[:count]) if count else []
        rest = bases[count:]
        if rest:
            out += gmpy2.powmod_base_list(list(rest), self._exponent, self._modulus)
        return out

    def kernel_count(self, count: int) -> int:
        """How many of ``count`` bases the kernel takes: whole groups, and a last group filled to :data:`MIN_FILL`."""
        if not self.simd:
            return 0
        tail = count % LANES
        return count if tail >= MIN_FILL else count - tail

    def chunks(self, items: Sequence, parts: int) -> list:
        """``items`` cut into at most ``parts`` contiguous chunks (whole groups but for the last) for separate calls."""
        step = LANES if self.simd else 1
        units = max(1, -(-len(items) // step))
        size = step * -(-units // max(1, min(parts, units)))
        return [items[start : start + size] for start in range(0, len(items), size)] or [items]

    def _kernel(self, bases: Sequence) -> list[mpz]:
        n = self._modulus
        limbs = _to_limbs([b % n for b in bases], self._limbs)
        out = np.empty_like(limbs)
        _power_groups(limbs, self._n_limbs, self._n0, self._first, self._steps, out)
        fix = self._fix
        return [y * fix % n for y in _from_limbs(out, len(bases))]


def window_schedule(exponent: int, width: int) -> tuple[int, np.ndarray]:
    """Left-to-right sliding window: the first odd window's table index, then ``(squarings, index)`` rows.

    Table index ``k`` stands for ``x^(2k + 1)``; index -1 means squarings only (trailing zero bits).
    """
    bits = bin(exponent)[2:]
    steps, first, start, zeros = [], None, 0, 0
    while start < len(bits):
        if bits[start] == "0":
            zeros, start = zeros + 1, start + 1
            continue
        stop = min(start + width, len(bits))
        while bits[stop - 1] == "0":
            stop -= 1
        index = (int(bits[start:stop], 2) - 1) // 2
        if first is None:
            first = index
        else:
            steps.append((zeros + stop - start, index))
        zeros, start = 0, stop
    if zeros:
        steps.append((zeros, -1))
    return first, np.array(steps, dtype=np.int64).reshape(-1, 2)


def _to_limbs(values: Sequence, limbs: int) -> np.ndarray:
    """Values below ``2^(28 limbs)`` as ``(groups, limbs, LANES)`` uint32 limbs (missing lanes 0)."""
    width = _PAIR_BYTES * -(-limbs // 2)
    data = np.frombuffer(b"".join(int(v).to_bytes(width, "little") for v in values), dtype=np.uint8)
    out = np.zeros((-(-len(values) // LANES), limbs, LANES), dtype=np.uint32)
    _unpack(data.reshape(len(values), width), out)
    return out


def _from_limbs(limbs: np.ndarray, count: int) -> list[mpz]:
    """The first ``count`` lanes of ``(groups, limbs, LANES)`` limbs as integers."""
    width = _PAIR_BYTES * -(-limbs.shape[1] // 2)
    data = np.zeros((count, width), dtype=np.uint8)
    _pack(limbs, data)
    raw = data.tobytes()
    return [mpz(int.from_bytes(raw[i * width : (i + 1) * width], "little")) for i in range(count)]


# ---- kernels: arrays are C-contiguous, limbs uint32, lanes last ----

@njit(nogil=True, cache=True)
def _unpack(data, out):
    """Little-endian bytes (7 per limb pair) of value ``v`` into lane ``v % LANES`` of group ``v // LANES``."""
    limbs = out.shape[1]
    mask, shift = np.uint64(_MASK), np.uint64(LIMB_BITS)
    for v in range(data.shape[0]):
        group, lane = v // LANES, v % LANES
        for pair in range((limbs + 1) // 2):
            word = np.uint64(0)
            for k in range(_PAIR_BYTES):
                word |= np.uint64(data[v, _PAIR_BYTES * pair + k]) << np.uint64(8 * k)
            out[group, 2 * pair, lane] = word & mask
            if 2 * pair + 1 < limbs:
                out[group, 2 * pair + 1, lane] = word >> shift


@njit(nogil=True, cache=True)
def _pack(limbs_in, data):
    """Inverse of :func:`_unpack` for the first ``data.shape[0]`` values."""
    limbs = limbs_in.shape[1]
    shift = np.uint64(LIMB_BITS)
    for v in range(data.shape[0]):
        group, lane = v // LANES, v % LANES
        for pair in range((limbs + 1) // 2):
            word = np.uint64(limbs_in[group, 2 * pair, lane])
            if 2 * pair + 1 < limbs:
                word |= np.uint64(limbs_in[group, 2 * pair + 1, lane]) << shift
            for k in range(_PAIR_BYTES):
                data[v, _PAIR_BYTES * pair + k] = (word >> np.uint64(8 * k)) & np.uint64(0xFF)


@njit(nogil=True, cache=True)
def _carry_row(low, high):
    """``high += low >> 28`` in every lane (``low``'s own bits are then multiples of R's limb)."""
    shift = np.uint64(LIMB_BITS)
    for lane in range(LANES):
        high[lane] += low[lane] >> shift


@njit(nogil=True, cache=True)
def _normalize(t, out):
    """Limbs of the upper half ``t[L:2L]`` of a reduced product, carries propagated, into ``out``."""
    limbs = out.shape[0]
    mask = np.uint64(_MASK)
    for k in range(limbs - 1):
        _carry_row(t[limbs + k], t[limbs + k + 1])
        row, column = out[k], t[limbs + k]
        for lane in range(LANES):
            row[lane] = column[lane] & mask
    row, column = out[limbs - 1], t[2 * limbs - 1]
    for lane in range(LANES):
        row[lane] = column[lane]  # below 2^28: the result is below 2 N < R


@njit(nogil=True, cache=True)
def _mont_mul(a, b, n, n0, out, t, m):
    """``out = a b / R mod N`` lane by lane (below 2 N for ``a, b < 2 N``); ``t``, ``m`` are scratch."""
    limbs = n.shape[0]
    mask = np.uint64(_MASK)
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
        _carry_row(ti, t[i + 1])
    _normalize(t, out)


@njit(nogil=True, cache=True)
def _mont_sqr(a, n, n0, out, t, m, twice):
    """``out = a^2 / R mod N`` lane by lane: each cross product once, doubled (``twice`` = 2 a, scratch)."""
    limbs = n.shape[0]
    mask = np.uint64(_MASK)
    t[:] = 0
    for j in range(limbs):
        aj, dj = a[j], twice[j]
        for lane in range(LANES):
            dj[lane] = aj[lane] + aj[lane]
    for i in range(limbs):
        ai, ti, diagonal = a[i], t[i], t[2 * i]
        for lane in range(LANES):
            diagonal[lane] += np.uint64(ai[lane]) * np.uint64(ai[lane])
        for lane in range(LANES):  # column i is complete: later rows only reach columns above 2 i
            m[lane] = (ti[lane] & mask) * n0 & mask
        for j in range(i + 1):
            tij, nj = t[i + j], np.uint64(n[j])
            for lane in range(LANES):
                tij[lane] += np.uint64(m[lane]) * nj
        for j in range(i + 1, limbs):
            dj, tij, nj = twice[j], t[i + j], np.uint64(n[j])
            for lane in range(LANES):
                tij[lane] += np.uint64(ai[lane]) * np.uint64(dj[lane]) + np.uint64(m[lane]) * nj
        _carry_row(ti, t[i + 1])
    _normalize(t, out)


@njit(nogil=True, cache=True)
def _power_groups(bases, n, n0, first, steps, out):
    """``out[g] = bases[g]^e R^-(e-1) mod N`` (below 2 N) for each group, ``e`` given by its window schedule."""
    limbs = n.shape[0]
    table = np.empty((1 << (WINDOW - 1), limbs, LANES), dtype=np.uint32)
    square = np.empty((limbs, LANES), dtype=np.uint32)
    acc = np.empty((limbs, LANES), dtype=np.uint32)
    tmp = np.empty((limbs, LANES), dtype=np.uint32)
    twice = np.empty((limbs, LANES), dtype=np.uint32)
    t = np.empty((2 * limbs, LANES), dtype=np.uint64)
    m = np.empty(LANES, dtype=np.uint32)
    for g in range(bases.shape[0]):
        table[0] = bases[g]
        _mont_sqr(table[0], n, n0, square, t, m, twice)
        for k in range(1, table.shape[0]):  # odd powers x^(2k + 1)
            _mont_mul(table[k - 1], square, n, n0, table[k], t, m)
        acc[:] = table[first]
        for s in range(steps.shape[0]):
            for _ in range(steps[s, 0]):
                _mont_sqr(acc, n, n0, tmp, t, m, twice)
                acc, tmp = tmp, acc
            if steps[s, 1] >= 0:
                _mont_mul(acc, table[steps[s, 1]], n, n0, tmp, t, m)
                acc, tmp = tmp, acc
        out[g] = acc
