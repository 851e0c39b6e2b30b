"""Fused element-wise ring kernels (mod 2^64) for the protocols' hottest passes: one pass over memory where numpy
would make five to ten (Beaver products, truncations, the dealer's corrections, random one-hot rows).

Each function takes and returns uint64 arrays and computes exactly what its numpy form in the docstring says;
nothing here knows about parties. The kernels run single-threaded without the GIL: the parties and the dealer
are threads of their own.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_LOW = np.uint64((1 << 63) - 1)


def _flat(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.uint64).reshape(-1)


def masked_sum(x: np.ndarray, r: np.ndarray, bias: int = 0) -> np.ndarray:
    """x + r + bias (a new array of x's shape; x and r of one shape)."""
    out = np.empty(x.shape, np.uint64)
    _masked_sum(_flat(x), _flat(r), np.uint64(bias & ((1 << 64) - 1)), out.reshape(-1))
    return out


def truncation_finish(c: np.ndarray, r_msb: np.ndarray, r_low_shifted: np.ndarray, bits: int, bias_bits: int,
                      leader: bool) -> np.ndarray:
    """A truncation pair's last step on the opened c (one shape for all): with w = r_msb - 2 (c >> 63) r_msb,
    w 2^(63 - bits) - r_low_shifted, and at the ``leader`` also + (c >> 63) 2^(63 - bits) + ((c mod 2^63) >> bits)
    - 2^(bias_bits - bits)."""
    out = np.empty(c.shape, np.uint64)
    _truncation_finish(_flat(c), _flat(r_msb), _flat(r_low_shifted), np.uint64(bits), np.uint64(bias_bits),
                       leader, out.reshape(-1))
    return out


def truncation_correction(r: np.ndarray, msb_others: np.ndarray, low_others: np.ndarray, bits: int) -> np.ndarray:
    """The dealer's correction of a truncation pair, stacked: [(r >> 63) - msb_others, ((r mod 2^63) >> bits) -
    low_others], shape (2, *r.shape)."""
    out = np.empty((2, *r.shape), np.uint64)
    _truncation_correction(_flat(r), _flat(msb_others), _flat(low_others), np.uint64(bits), out.reshape(2, -1))
    return out


def beaver_mul_finish(e: np.ndarray, f: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                      leader: bool) -> np.ndarray:
    """An element-wise Beaver product's share: c + e b + a f, and + e f at the ``leader``. e and a have one shape,
    f, b and c another, which is e's or e's with leading axes added (e broadcast along them: :func:`leading_copies`)."""
    copies = leading_copies(e.shape, c.shape)
    if copies is None or f.shape != c.shape:
        raise ValueError(f"beaver_mul_finish: shapes {e.shape} and {c.shape} do not broadcast along leading axes")
    out = np.empty(c.shape, np.uint64)
    _beaver_mul_finish(_flat(e), _flat(f).reshape(copies, -1), _flat(a), _flat(b).reshape(copies, -1),
                       _flat(c).reshape(copies, -1), leader, out.reshape(copies, -1))
    return out


def leading_copies(small: tuple, large: tuple) -> int | None:
    """How many copies of an array of shape ``small`` make one of shape ``large`` by broadcasting along leading
    axes (1 for equal shapes), or None if ``large`` is not ``small`` with leading axes added."""
    small, large = tuple(small), tuple(large)
    if len(small) > len(large) or large[len(large) - len(small):] != small:
        return None
    copies = 1
    for dim in large[: len(large) - len(small)]:
        copies *= dim
    return copies


def shifted_and_finish(e_x: np.ndarray, shift_x: tuple, e_y: np.ndarray, shift_y: tuple, a_x: np.ndarray | None,
                       a_y: np.ndarray | None, c: np.ndarray, leader: bool) -> np.ndarray:
    """A boolean Beaver AND's share of X = S(x) and Y = T(y) from the opened e_x = x ^ a_x and e_y = y ^ a_y (one
    shape for all), with S and T shifts given as (left, right) amounts (x << left) >> right:
    c ^ (S(e_x) & T(a_y)) ^ (S(a_x) & T(e_y)), and ^ (S(e_x) & T(e_y)) at the ``leader``. A mask share of None is
    zero (a mask that only another party holds)."""
    out = np.empty(c.shape, np.uint64)
    empty = np.zeros(1, np.uint64)
    _shifted_and_finish(_flat(e_x), np.uint64(shift_x[0]), np.uint64(shift_x[1]), _flat(e_y), np.uint64(shift_y[0]),
                        np.uint64(shift_y[1]), empty if a_x is None else _flat(a_x), a_x is not None,
                        empty if a_y is None else _flat(a_y), a_y is not None, _flat(c), leader, out.reshape(-1))
    return out


def shifted_and_xor(a_x: np.ndarray, shift_x: tuple, a_y: np.ndarray, shift_y: tuple,
                    others: np.ndarray | None) -> np.ndarray:
    """S(a_x) & T(a_y) ^ others (one shape for all; shifts as :func:`shifted_and_finish` takes them; None: no
    others), as a new array: the dealer's correction of a shifted AND triple."""
    out = np.empty(a_x.shape, np.uint64)
    _shifted_and_xor(_flat(a_x), np.uint64(shift_x[0]), np.uint64(shift_x[1]), _flat(a_y), np.uint64(shift_y[0]),
                     np.uint64(shift_y[1]), np.zeros(1, np.uint64) if others is None else _flat(others),
                     others is not None, out.reshape(-1))
    return out


def pack_masked_bits(bits: list, masks: np.ndarray) -> np.ndarray:
    """Bit j of word i is bit 0 of bits[j][i] ^ masks[j][i] (up to 64 arrays of words of one shape; ``masks``
    stacked, shape (len(bits), *shape))."""
    out = np.empty(masks.shape[1:], np.uint64)
    stacked = np.stack([_flat(bit) for bit in bits]) if bits else np.zeros((0, out.size), np.uint64)
    _pack_masked_bits(stacked, masks.reshape(len(bits), -1), out.reshape(-1))
    return out


def unpack_dabit_shares(opened: np.ndarray, r_arith: np.ndarray, leader: bool) -> np.ndarray:
    """Arithmetic shares of bits b_j from the opened packed c = b ^ r (bit j of each word) and shares of the dabits
    r_j: r_j (1 - 2 c_j), and + c_j at the ``leader``; shape (count, *opened.shape) like ``r_arith``."""
    out = np.empty(r_arith.shape, np.uint64)
    count = r_arith.shape[0]
    _unpack_dabit_shares(_flat(opened), np.ascontiguousarray(r_arith).reshape(count, -1), leader,
                         out.reshape(count, -1))
    return out


def masked_parity(words: np.ndarray, mask: int) -> np.ndarray:
    """The parity of the bits of ``words & mask`` (words 0/1 of the same shape)."""
    out = np.empty(words.shape, np.uint64)
    _masked_parity(_flat(words), np.uint64(mask), out.reshape(-1))
    return out


def spread_bit(words: np.ndarray) -> np.ndarray:
    """Bit 0 of every word copied into all 64 positions: 0 - (words & 1)."""
    out = np.empty(words.shape, np.uint64)
    _spread_bit(_flat(words), out.reshape(-1))
    return out


def plane_bit_times(plane: np.ndarray, x: np.ndarray, c: np.ndarray, s: np.ndarray, rs: np.ndarray) -> np.ndarray:
    """d x + (1 - 2d)(c s - rs) for d the bits of a bit plane (bit i of word i // 64 for element i) and flat
    x, c, s, rs of one size."""
    out = np.empty(x.shape, np.uint64)
    _plane_bit_times(_flat(plane), _flat(x), _flat(c), _flat(s), _flat(rs), out.reshape(-1))
    return out


def plane_bit_share(plane: np.ndarray, s: np.ndarray, leader: bool) -> np.ndarray:
    """s (1 - 2d), and + d at the ``leader``, for d the bits of a bit plane and a flat s."""
    out = np.empty(s.shape, np.uint64)
    _plane_bit_share(_flat(plane), _flat(s), leader, out.reshape(-1))
    return out


def product_minus(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a b - c, written into c (a C-contiguous uint64 array of a's shape), which is returned."""
    _product_minus(_flat(a), _flat(b), c.reshape(-1))
    return c


def negated_one_hot(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """e_r - rows in place for (n, 2^m) rows (C-contiguous uint64) and offsets r (taken mod 2^m); returns rows."""
    _negated_one_hot(rows, _flat(offsets))
    return rows


@njit(cache=True, nogil=True)
def _masked_sum(x, r, bias, out):  # pragma: no cover (compiled)
    for i in range(out.size):
        out[i] = x[i] + r[i] + bias


@njit(cache=True, nogil=True)
def _truncation_finish(c, r_msb, r_low, bits, bias_bits, leader, out):  # pragma: no cover (compiled)
    one = np.uint64(1)
    scale = one << (np.uint64(63) - bits)
    low = np.uint64((1 << 63) - 1)
    bias = one << (bias_bits - bits)
    for i in range(out.size):
        top = c[i] >> np.uint64(63)
        y = (r_msb[i] - np.uint64(2) * top * r_msb[i]) * scale - r_low[i]
        if leader:
            y += top * scale + ((c[i] & low) >> bits) - bias
        out[i] = y


@njit(cache=True, nogil=True)
def _truncation_correction(r, msb_others, low_others, bits, out):  # pragma: no cover (compiled)
    low = np.uint64((1 << 63) - 1)
    for i in range(r.size):
        out[0, i] = (r[i] >> np.uint64(63)) - msb_others[i]
        out[1, i] = ((r[i] & low) >> bits) - low_others[i]


@njit(cache=True, nogil=True)
def _beaver_mul_finish(e, f, a, b, c, leader, out):  # pragma: no cover (compiled)
    for j in range(out.shape[0]):
        for i in range(e.size):
            z = c[j, i] + e[i] * b[j, i] + a[i] * f[j, i]
            if leader:
                z += e[i] * f[j, i]
            out[j, i] = z


@njit(cache=True, nogil=True)
def _shifted_and_finish(e_x, lx, rx, e_y, ly, ry, a_x, has_ax, a_y, has_ay, c, leader,
                        out):  # pragma: no cover (compiled)
    for i in range(out.size):
        ex = (e_x[i] << lx) >> rx
        ey = (e_y[i] << ly) >> ry
        z = c[i]
        if has_ay:
            z ^= ex & ((a_y[i] << ly) >> ry)
        if has_ax:
            z ^= ((a_x[i] << lx) >> rx) & ey
        if leader:
            z ^= ex & ey
        out[i] = z


@njit(cache=True, nogil=True)
def _shifted_and_xor(a_x, lx, rx, a_y, ly, ry, others, has_others, out):  # pragma: no cover (compiled)
    for i in range(out.size):
        z = ((a_x[i] << lx) >> rx) & ((a_y[i] << ly) >> ry)
        if has_others:
            z ^= others[i]
        out[i] = z


@njit(cache=True, nogil=True)
def _pack_masked_bits(bits, masks, out):  # pragma: no cover (compiled)
    one = np.uint64(1)
    for i in range(out.size):
        word = np.uint64(0)
        for j in range(bits.shape[0]):
            word |= ((bits[j, i] ^ masks[j, i]) & one) << np.uint64(j)
        out[i] = word


@njit(cache=True, nogil=True)
def _unpack_dabit_shares(opened, r_arith, leader, out):  # pragma: no cover (compiled)
    one = np.uint64(1)
    for j in range(r_arith.shape[0]):
        for i in range(opened.size):
            c = (opened[i] >> np.uint64(j)) & one
            share = r_arith[j, i] * (one - np.uint64(2) * c)
            if leader:
                share += c
            out[j, i] = share


@njit(cache=True, nogil=True)
def _masked_parity(words, mask, out):  # pragma: no cover (compiled)
    for i in range(out.size):
        w = words[i] & mask
        w ^= w >> np.uint64(32)
        w ^= w >> np.uint64(16)
        w ^= w >> np.uint64(8)
        w ^= w >> np.uint64(4)
        w ^= w >> np.uint64(2)
        w ^= w >> np.uint64(1)
        out[i] = w & np.uint64(1)


@njit(cache=True, nogil=True)
def _spread_bit(words, out):  # pragma: no cover (compiled)
    for i in range(out.size):
        out[i] = np.uint64(0) - (words[i] & np.uint64(1))


@njit(cache=True, nogil=True)
def _plane_bit_times(plane, x, c, s, rs, out):  # pragma: no cover (compiled)
    one = np.uint64(1)
    for i in range(out.size):
        d = (plane[i >> 6] >> np.uint64(i & 63)) & one
        out[i] = d * x[i] + (one - np.uint64(2) * d) * (c[i] * s[i] - rs[i])


@njit(cache=True, nogil=True)
def _plane_bit_share(plane, s, leader, out):  # pragma: no cover (compiled)
    one = np.uint64(1)
    for i in range(out.size):
        d = (plane[i >> 6] >> np.uint64(i & 63)) & one
        share = s[i] * (one - np.uint64(2) * d)
        if leader:
            share += d
        out[i] = share


@njit(cache=True, nogil=True)
def _product_minus(a, b, c):  # pragma: no cover (compiled)
    for i in range(c.size):
        c[i] = a[i] * b[i] - c[i]


@njit(cache=True, nogil=True)
def _negated_one_hot(rows, offsets):  # pragma: no cover (compiled)
    width = rows.shape[1]
    mask = np.uint64(width - 1)
    for i in range(rows.shape[0]):
        for j in range(width):
            rows[i, j] = np.uint64(0) - rows[i, j]
        rows[i, offsets[i] & mask] += np.uint64(1)


def warmup() -> None:
    """Compile (or load from numba's cache) every kernel here on tiny inputs."""
    one = np.ones(2, np.uint64)
    masked_sum(one, one, 1)
    truncation_finish(one, one, one, 3, 62, True)
    truncation_correction(one, one, one, 3)
    beaver_mul_finish(one, one, one, one, one, True)
    beaver_mul_finish(one, np.ones((3, 2), np.uint64), one, np.ones((3, 2), np.uint64), np.ones((3, 2), np.uint64),
                      True)
    product_minus(one, one, one.copy())
    shifted_and_finish(one, (1, 0), one, (0, 2), one, None, one, True)
    shifted_and_xor(one, (1, 0), one, (0, 2), one)
    masked_parity(one, 3)
    plane_bit_times(one[:1], one, one, one, one)
    plane_bit_share(one[:1], one, True)
    spread_bit(one)
    pack_masked_bits([one, one], np.ones((2, 2), np.uint64))
    unpack_dabit_shares(one, np.ones((2, 2), np.uint64), True)
    negated_one_hot(np.ones((2, 4), np.uint64), one)
