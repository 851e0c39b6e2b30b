"""Exact Z_2^64 and Z_2^128 matrix products on an int8 matrix product (torch's oneDNN kernel; Intel AMX where the
CPU has it), used in place of the numba kernels where it is faster (:func:`preferred`).

A word of 8D bits (D = 8 or 16) is written as D signed base-256 digits, each in [-128, 127] (a byte of 128 or more
becomes byte - 256 and carries one into the next byte; the carry out of the top digit is dropped, mod 2^(8D)). Then

    a * b mod 2^(8D) = sum over p < D of 2^(8p) C_p,   C_p = sum over i + j = p of a_i * b_j,

and for matrices C_p is one int8 matrix product: a's digit planes 0..p side by side against b's digit planes p..0
(an inner dimension of (p + 1) k). Each term is at most 2^14 in size, so C_p is exact in int32 while D k 2^14 < 2^31
(k up to 8191 for Z_2^128 and 16383 for Z_2^64; a longer k is cut into pieces). The result comes from the C_p by
carrying from the lowest digit up. Every step is integer arithmetic: the result is exact whatever kernel the int8
product runs on, and :func:`available` checks that it is (no saturating 16-bit sums) before any product uses it.

torch is an optional dependency; it is imported only here, on the first product large enough to use it.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np
from numba import njit

from smpc.ring import cpu
from smpc.ring.kernel_choice import PARALLEL_LOCK


def max_k(digits: int) -> int:
    """The longest inner dimension k whose D-digit product sums stay exact in int32."""
    return (2**31 - 1) // (digits * 2**14)


# The int8 product runs well on large products (AMX tiles of 16 rows; each operand's packing amortised). Measured
# on this project's Xeon (2 cores, AMX), int8 against numba: Z_2^128 1000^3 0.15 s / 0.33 s, 512^3 27 / 43 ms,
# 128 x 1152 @ 1152 x 784 29 / 38 ms, but 256^3 6.0 / 5.5 ms and 64 x 1000 @ 1000 x 1000 25 / 21 ms; Z_2^64
# 2000^3 0.31 / 0.59 s, 1000^3 60 / 71 ms, 512^3 11 / 9.8 ms. So, per word size (limbs): the least of m and n,
# the least m k n, and the least k with which a product runs here.
_MIN_SIDE = {1: 768, 2: 128}
_MIN_MACS = {1: 400_000_000, 2: 50_000_000}
_MIN_K = 128

ENV = "SMPC_INT8_GEMM"  # "0": never use it; "1": use it wherever torch passes the self-test; unset: where AMX is


# ------------------------------------------------------------------------------ digits
_HALF = np.uint64(0x8080808080808080)  # 128 in every byte


@njit(nogil=True, cache=True)
def _digits(lo, hi, nwords, reverse, out):  # pragma: no cover (compiled)
    """out[r, blk(d) k + p] = digit d of the word (lo, hi)[r, p], blk(d) = d, or D - 1 - d when ``reverse``.

    The balanced digits of x are the bytes of y = x + (128 in every byte), each less 128: x = sum (y_d - 128) 256^d
    mod 2^(8D), and y_d - 128 as an int8 is y_d XOR 128. So no carry chain runs along the digits."""
    rows, k = lo.shape
    ndig = 8 * nwords
    ylo = np.empty(k, np.uint64)
    yhi = np.empty(k, np.uint64)
    for r in range(rows):
        for p in range(k):
            low = lo[r, p] + _HALF
            ylo[p] = low
            yhi[p] = hi[r, p] + _HALF + np.uint64(low < _HALF)
        for d in range(ndig):
            base = (ndig - 1 - d if reverse else d) * k
            shift = np.uint64(8 * (d % 8))
            y = ylo if d < 8 else yhi
            for p in range(k):
                out[r, base + p] = np.int8(np.int64((y[p] >> shift) & np.uint64(255)) - 128)


@njit(nogil=True, cache=True)
def _combine(c, nwords, out):  # pragma: no cover (compiled)
    """out[i] (its nwords limbs) = sum over p of c[p, i] 2^(8p), carried from the lowest digit up."""
    ndig, count = c.shape
    for i in range(count):
        carry = np.int64(0)
        lo = np.uint64(0)
        hi = np.uint64(0)
        for p in range(ndig):
            t = np.int64(c[p, i]) + carry
            byte = np.uint64(t & 255)
            carry = t >> 8
            if p < 8:
                lo |= byte << np.uint64(8 * p)
            else:
                hi |= byte << np.uint64(8 * (p - 8))
        out[i, 0] = lo
        if nwords == 2:
            out[i, 1] = hi


@njit(nogil=True, cache=True)
def _add_into(acc, part, nwords):  # pragma: no cover (compiled)
    """acc += part mod 2^(64 nwords), both (count, nwords) limb arrays (the pieces of a long k)."""
    for i in range(acc.shape[0]):
        lo = acc[i, 0] + part[i, 0]
        if nwords == 2:
            acc[i, 1] = acc[i, 1] + part[i, 1] + np.uint64(lo < part[i, 0])
        acc[i, 0] = lo


def digit_planes(lo: np.ndarray, hi: np.ndarray | None, reverse: bool) -> np.ndarray:
    """The (rows, D k) int8 digit planes of (rows, k) words (``hi`` None: 64-bit words, D = 8; else 128-bit,
    D = 16): digit d's plane at columns [d k, (d + 1) k), or at [(D - 1 - d) k, (D - d) k) when ``reverse``."""
    nwords = 1 if hi is None else 2
    out = np.empty((lo.shape[0], 8 * nwords * lo.shape[1]), np.int8)
    _digits(lo, lo if hi is None else hi, nwords, reverse, out)
    return out


# ------------------------------------------------------------------------------ availability
@functools.lru_cache(maxsize=1)
def _torch():
    """torch, or None when it is not installed or its int8 product is missing or not exact here."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    if not hasattr(torch, "_int_mm"):
        return None
    return torch if _self_test(torch) else None


def _self_test(torch) -> bool:
    """True when the int8 product is exact at the extremes this module reaches (sums near 2^31, every digit -128)
    and, called as :func:`_positions` calls it (strided a, transposed b, ``out=``), on random digits."""
    k = 8 * max_k(8)
    try:
        low = torch.full((16, k), -128, dtype=torch.int8)
        if not bool((torch._int_mm(low, low.t().contiguous()) == k * 2**14).all()):
            return False
        rng = np.random.default_rng(0)
        kk, ndig = 37, 16
        ad = rng.integers(-128, 128, (33, ndig * kk), dtype=np.int8)
        btd = rng.integers(-128, 128, (19, ndig * kk), dtype=np.int8)
        got = _positions(torch, ad, btd, kk, ndig)
        a64, b64 = ad.astype(np.int64), btd.astype(np.int64)
        for p in range(ndig):
            want = a64[:, : (p + 1) * kk] @ b64[:, (ndig - 1 - p) * kk :].T
            if not np.array_equal(got[p], want):
                return False
        return True
    except (RuntimeError, TypeError, ValueError):
        return False


@functools.lru_cache(maxsize=1)
def enabled() -> bool:
    """Whether products may run here: torch installed and exact, and the CPU has AMX-INT8 (``SMPC_INT8_GEMM=1``
    drops the AMX condition, ``=0`` turns the path off)."""
    setting = os.environ.get(ENV, "")
    if setting == "0" or importlib.util.find_spec("torch") is None:
        return False
    if setting != "1" and "amx_int8" not in cpu.flags():
        return False
    return _torch() is not None


def available() -> bool:
    """Whether torch is installed here with an exact int8 product (whatever the CPU)."""
    return _torch() is not None


def preferred(m: int, k: int, n: int, nwords: int) -> bool:
    """Whether an (m x k) @ (k x n) product in Z_2^(64 nwords) should run here (see _MIN_SIDE)."""
    return (min(m, n) >= _MIN_SIDE[nwords] and m * k * n >= _MIN_MACS[nwords] and k >= _MIN_K
            and enabled())


# ------------------------------------------------------------------------------ products
def _positions(torch, ad: np.ndarray, btd: np.ndarray, k: int, ndig: int) -> np.ndarray:
    """(D, m, n) int32: C_p for p < D from a's digit planes (m, D k) and b's reversed ones (n, D k) (the int8
    product reads b column-major as fast as row-major, so b's planes need no transpose)."""
    m, n = ad.shape[0], btd.shape[0]
    out = np.empty((ndig, m, n), np.int32)
    ta, tb, tout = torch.from_numpy(ad), torch.from_numpy(btd), torch.from_numpy(out)
    for p in range(ndig):
        torch._int_mm(ta[:, : (p + 1) * k], tb[:, (ndig - 1 - p) * k :].t(), out=tout[p])
    return out


def _one_product(torch, a_lo, a_hi, bt_lo, bt_hi, nwords: int) -> np.ndarray:
    """(m * n, nwords) limbs of a @ bt.T mod 2^(64 nwords) for one (m, k) a and (n, k) bt, k within max_k."""
    k = a_lo.shape[1]
    ad = digit_planes(a_lo, a_hi, reverse=False)
    btd = digit_planes(bt_lo, bt_hi, reverse=True)
    positions = _positions(torch, ad, btd, k, 8 * nwords)
    out = np.empty((positions.shape[1] * positions.shape[2], nwords), np.uint64)
    _combine(positions.reshape(8 * nwords, -1), nwords, out)
    return out


def _product(a_lo, a_hi, bt_lo, bt_hi, nwords: int) -> np.ndarray:
    """(m * n, nwords) limbs of a @ bt.T mod 2^(64 nwords); a long k is cut into pieces whose products are added."""
    torch = _torch()
    if torch is None:
        raise RuntimeError("int8_gemm: torch with an exact int8 matrix product is not available here")
    k = a_lo.shape[1]
    step = max_k(8 * nwords)
    total = None
    with PARALLEL_LOCK:  # the int8 product uses every core, like a parallel numba launch
        for p0 in range(0, k, step):
            cut = slice(p0, min(p0 + step, k))
            part = _one_product(torch, a_lo[:, cut], None if a_hi is None else a_hi[:, cut], bt_lo[:, cut],
                                None if bt_hi is None else bt_hi[:, cut], nwords)
            if total is None:
                total = part
            else:
                _add_into(total, part, nwords)
    return total


def planes_product128(a0: np.ndarray, a1: np.ndarray, bt0: np.ndarray, bt1: np.ndarray, ia: np.ndarray,
                      ib: np.ndarray) -> np.ndarray:
    """As :func:`smpc.ring.ring128.planes_product`: a[ia[t]] @ b[ib[t]] mod 2^128 from limb planes a0, a1
    (A, m, k) and b's transposes bt0, bt1 (B, n, k); returns (len(ia), m, n, 2)."""
    nb, m, n = ia.shape[0], a0.shape[1], bt0.shape[1]
    out = np.empty((nb, m, n, 2), np.uint64)
    for t in range(nb):
        i, j = ia[t], ib[t]
        out[t] = _product(a0[i], a1[i], bt0[j], bt1[j], 2).reshape(m, n, 2)
    return out


def matmul64(a3: np.ndarray, bt3: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """a3[ia[t]] @ bt3[ib[t]].T mod 2^64 for t over the batch: a3 (A, m, k), bt3 (B, n, k) uint64 (any strides);
    returns (len(ia), m, n)."""
    nb, m, n = ia.shape[0], a3.shape[1], bt3.shape[1]
    out = np.empty((nb, m, n), np.uint64)
    for t in range(nb):
        out[t] = _product(a3[ia[t]], None, bt3[ib[t]], None, 1)[:, 0].reshape(m, n)
    return out


def warmup() -> None:
    """Compile (or load from numba's cache) the digit kernels on tiny inputs (no torch needed)."""
    x = np.arange(1, 7, dtype=np.uint64).reshape(2, 3)
    digit_planes(x, x, reverse=True)
    digit_planes(x, None, reverse=False)
    for nwords in (1, 2):
        acc = np.zeros((4, nwords), np.uint64)
        _combine(np.zeros((8 * nwords, 4), np.int32), nwords, acc)
        _add_into(acc, acc.copy(), nwords)


__all__ = ["available", "digit_planes", "enabled", "matmul64", "max_k", "planes_product128", "preferred",
           "warmup"]
