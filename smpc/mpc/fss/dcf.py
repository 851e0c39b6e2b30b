"""A distributed comparison function (DCF) for batches: keys for beta * [x < alpha] on n-bit inputs, in Z_2^64.

Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar and Rathee, "Function Secret Sharing for Mixed-Mode and Fixed-Point
Secure Computation", EUROCRYPT 2021 (eprint 2020/1392), section 3: the tree construction of the DCF for
f_{alpha,beta}(x) = beta if x < alpha else 0, with payload group G = (Z_2^64)^width. Vectorized over a batch of m
independent comparisons, each with its own alpha and beta; bits are taken most significant first.

**Gen** (the dealer). Each party b starts from a random seed s_b (127 bits; bit 0 is the control bit's place) and
control bit t_b = b. At each level both parties' seeds expand with :mod:`.fixed_key`'s PRG into a left and a right
child (seed, control bit) and a left and right value v (``width`` words each). On the side that leaves alpha's path
("lose"), a seed correction makes the two parties' children equal from there on, and a value correction V_CW makes
the two value shares there add up to beta (if the lost side is left, i.e. below alpha) or 0, minus what alpha's path
has accumulated so far (V_alpha). The control-bit corrections keep t_0 XOR t_1 = 1 exactly on alpha's path. A final
correction cancels the leaf value at x = alpha itself.

**Eval** (each party). Walk x's path: expand the seed, keep the child x's bit picks, apply the corrections where
the control bit is set, and add (-1)^b (v + t V_CW) at every level; finally (-1)^b (Convert(s) + t CW_final).
Off alpha's path the two parties' states agree, so their later terms cancel: the sum is beta * [x < alpha].

Cost per comparison: eval runs 2 AES blocks per level (the chosen child's seed block and the block holding its
values; ``width`` 1 or 2) plus ``ceil(width / 2) + 1`` at the end; gen runs ``2 (2 + width)`` per level for both
parties. Every AES call covers one level of the whole batch (or of a chunk of it), and numba kernels apply the
corrections.

Key layout (struct of arrays over the batch; :class:`DCFKeys`). Both parties' keys share the correction words
(they are the same in BCG+21); only ``seed`` differs.

===============  ===================  =========================================================================
field            shape, dtype         content
===============  ===================  =========================================================================
``seed``         (m, 2) uint64        s_b: 128-bit seed, word 0 the low half, bit 0 clear
``seed_cw``      (n, m, 2) uint64     s_CW per level (bit 0 clear)
``value_cw``     (n, m, width) uint64 V_CW per level
``control_cw``   (m, ceil(n/4)) uint8 t_CW^L of level i at bit 2i, t_CW^R at bit 2i + 1 (little-endian bits)
``final_cw``     (m, width) uint64    CW_{n+1}
===============  ===================  =========================================================================

:func:`key_bytes` gives one party's bytes per comparison: 16 + n (16 + 8 width) + ceil(n / 4) + 8 width.
Convert(v) is the identity on a 64-bit word; Convert(s) of a leaf seed is its left values under the PRG (so it is
uniform in all 64 bits of every payload word).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numba import njit

from smpc.mpc.fss.fixed_key import FixedKeyAES

MAX_BITS = 64
MAX_WIDTH = 8  # payload words per comparison
DEFAULT_CHUNK = 1 << 15  # comparisons evaluated together: one AES call per level per chunk

_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_CLEAR = ~np.uint64(1)  # clears the control bit's place in word 0


def key_bytes(bits: int = MAX_BITS, width: int = 1) -> int:
    """One party's key bytes per comparison for ``bits``-bit inputs and ``width`` payload words."""
    _check_bits(bits)
    _check_width(width)
    return 16 + bits * (16 + 8 * width) + _control_bytes(bits) + 8 * width


@dataclass(frozen=True, eq=False)
class DCFKeys:
    """One party's DCF keys for a batch (the layout is in the module docstring); arrays are not copied."""

    party: int
    bits: int
    seed: np.ndarray
    seed_cw: np.ndarray
    value_cw: np.ndarray
    control_cw: np.ndarray
    final_cw: np.ndarray

    def __post_init__(self):
        _check_party(self.party)
        _check_bits(self.bits)
        m, width = self.final_cw.shape if getattr(self.final_cw, "ndim", 0) == 2 else (-1, -1)
        expected = {
            "seed": ((m, 2), np.uint64),
            "seed_cw": ((self.bits, m, 2), np.uint64),
            "value_cw": ((self.bits, m, width), np.uint64),
            "control_cw": ((m, _control_bytes(self.bits)), np.uint8),
            "final_cw": ((m, width), np.uint64),
        }
        for name, (shape, dtype) in expected.items():
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != shape or width < 1:
                got = f"{array.dtype}{list(array.shape)}" if isinstance(array, np.ndarray) else type(array).__name__
                raise ValueError(f"DCF key field {name} is {got}, expected {np.dtype(dtype)}{list(shape)} "
                                 f"(bits={self.bits}, final_cw (m, width) = {self.final_cw.shape!r})")

    @property
    def count(self) -> int:
        """Comparisons in the batch."""
        return self.final_cw.shape[0]

    @property
    def width(self) -> int:
        """Payload words per comparison."""
        return self.final_cw.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes of this party's key (its own seed and the correction words): ``count * key_bytes(...)``."""
        return sum(a.nbytes for a in (self.seed, self.seed_cw, self.value_cw, self.control_cw, self.final_cw))


def gen(alpha: np.ndarray, beta: np.ndarray, prg, bits: int = MAX_BITS) -> tuple[DCFKeys, DCFKeys]:
    """Both parties' keys for ``beta[j] * [x < alpha[j]]`` (unsigned ``bits``-bit comparison), j over the batch.

    ``alpha``: uint64 (m,), each below 2^bits. ``beta``: uint64 (m,) or (m, width) for a payload of ``width``
    words. ``prg``: the CSPRNG the seeds come from (:class:`smpc.ring.prg.PRG`).
    """
    _check_bits(bits)
    alpha = _check_inputs(alpha, "alpha", bits)
    beta = _check_beta(beta, alpha.shape[0])
    m, width = beta.shape
    if not callable(getattr(prg, "random_ring", None)):
        raise TypeError(f"prg must be an smpc.ring.prg.PRG (the CSPRNG), got {type(prg).__name__}")
    seeds = prg.random_ring((2, m, 2))
    seeds[:, :, 0] &= _CLEAR
    seed_cw = np.empty((bits, m, 2), np.uint64)
    value_cw = np.empty((bits, m, width), np.uint64)
    control_cw = np.zeros((m, _control_bytes(bits)), np.uint8)
    final_cw = np.empty((m, width), np.uint64)
    aes = FixedKeyAES()
    inputs = np.empty((2, min(m, DEFAULT_CHUNK), 2 + width, 2), np.uint64)
    buffer = aes.buffer(inputs)
    for start in range(0, m, DEFAULT_CHUNK):
        stop = min(start + DEFAULT_CHUNK, m)
        chunk = slice(start, stop)
        state = seeds[:, chunk].copy()
        controls = np.zeros((2, stop - start), np.uint64)
        controls[1] = 1
        v_alpha = np.zeros((stop - start, width), np.uint64)
        blocks = inputs if stop - start == inputs.shape[1] else np.empty((2, stop - start, 2 + width, 2), np.uint64)
        for level in range(bits):
            _fill_gen_inputs(state, blocks)
            _gen_level(aes.permute(blocks, buffer), blocks, alpha[chunk], np.uint64(bits - 1 - level), beta[chunk],
                       state, controls, v_alpha, seed_cw[level, chunk], value_cw[level, chunk], control_cw[chunk],
                       level)
        _fill_gen_inputs(state, blocks)
        _gen_final(aes.permute(blocks, buffer), blocks, controls, v_alpha, final_cw[chunk])
    return tuple(DCFKeys(b, bits, seeds[b], seed_cw, value_cw, control_cw, final_cw) for b in (0, 1))


def eval(party: int, keys: DCFKeys, x: np.ndarray, chunk: int = DEFAULT_CHUNK) -> np.ndarray:  # noqa: A001
    """This party's shares of ``beta * [x < alpha]``: uint64 (m,) for a payload of one word, else (m, width).

    ``x``: uint64 (m,), the public inputs (each below 2^bits), one per comparison of ``keys``. The batch is
    walked ``chunk`` comparisons at a time (one AES call per level per chunk, so the state stays in cache).
    """
    _check_party(party)
    if not isinstance(keys, DCFKeys):
        raise TypeError(f"keys must be DCFKeys, got {type(keys).__name__}")
    if keys.party != party:
        raise ValueError(f"these are party {keys.party}'s DCF keys, evaluated as party {party}")
    x = _check_inputs(x, "x", keys.bits)
    if x.shape[0] != keys.count:
        raise ValueError(f"x has {x.shape[0]} elements but the keys are for {keys.count} comparisons")
    if not isinstance(chunk, (int, np.integer)) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    out = np.zeros((keys.count, keys.width), np.uint64)
    aes = FixedKeyAES()
    buffer = np.empty(min(keys.count, int(chunk)) * 16 * (2 + (keys.width + 1) // 2), np.uint8)
    for start in range(0, keys.count, int(chunk)):
        _eval_chunk(aes, keys, x, start, min(start + int(chunk), keys.count), out, buffer)
    return out[:, 0] if keys.width == 1 else out


def _eval_chunk(aes: FixedKeyAES, keys: DCFKeys, x: np.ndarray, start: int, stop: int, out: np.ndarray,
                buffer: np.ndarray) -> None:
    bits, width, count = keys.bits, keys.width, stop - start
    sign = _ONE if keys.party == 0 else ~np.uint64(0)
    x = x[start:stop]
    controls = np.full(count, keys.party, np.uint64)
    control_cw = keys.control_cw[start:stop].reshape(-1)
    value = out[start:stop].reshape(-1)
    inputs = np.empty(count * 2 * (1 + (width + 1) // 2), np.uint64)
    _fill_eval_inputs(keys.seed[start:stop], x, np.uint64(bits - 1), width, inputs)
    eval_level = _eval_level_kernel(width)
    for level in range(bits):
        last = level == bits - 1
        eval_level(aes.permute(inputs, buffer), inputs, x, np.uint64(bits - 1 - level), controls, value,
                    keys.seed_cw[level, start:stop].reshape(-1), keys.value_cw[level, start:stop].reshape(-1),
                    control_cw, level, sign, np.uint64(0 if last else bits - 2 - level), last)
    _eval_final(aes.permute(inputs, buffer), inputs, controls, value, keys.final_cw[start:stop].reshape(-1), sign)


# --- numba kernels ------------------------------------------------------------------------------------------------
# Blocks of a node's expansion (tweaks): 0 the left child's seed, 1 the right one's, 2 + q the q-th value block.
# Value word p (0 <= p < 2 width) sits in value block p // 2, half p % 2; side sigma's words are p = sigma width + k.
# Eval expands only what x's path needs: the block of sigma's seed (tweak sigma), then the ceil(width / 2) value
# blocks from the one holding word sigma width (tweaks 2 + first, ...); the leaf's Convert takes sigma = 0.
@njit(nogil=True, cache=True)
def _fill_gen_inputs(seeds, inputs):
    """inputs[b, j, q] = s_b[j] XOR q for every block q of the expansion (both parties)."""
    for b in range(2):
        for j in range(seeds.shape[1]):
            low = seeds[b, j, 0]
            high = seeds[b, j, 1]
            for q in range(inputs.shape[2]):
                inputs[b, j, q, 0] = low ^ np.uint64(q)
                inputs[b, j, q, 1] = high


@njit(nogil=True, cache=True)
def _gen_level(permuted, inputs, alpha, shift, beta, seeds, controls, v_alpha, seed_cw, value_cw, control_cw,
               level):
    """One level of BCG+21's Gen for every comparison: corrections out, both parties' states advanced."""
    width = beta.shape[1]
    for j in range(alpha.shape[0]):
        a = (alpha[j] >> shift) & _ONE
        keep = np.int64(a)  # 0: left, 1: right
        lose = 1 - keep
        cw_low = ((permuted[0, j, lose, 0] ^ inputs[0, j, lose, 0]) ^ (permuted[1, j, lose, 0] ^ inputs[1, j, lose, 0]))
        cw_low &= _CLEAR
        cw_high = (permuted[0, j, lose, 1] ^ inputs[0, j, lose, 1]) ^ (permuted[1, j, lose, 1] ^ inputs[1, j, lose, 1])
        t_left = ((permuted[0, j, 0, 0] ^ inputs[0, j, 0, 0]) ^ (permuted[1, j, 0, 0] ^ inputs[1, j, 0, 0])) & _ONE
        t_right = ((permuted[0, j, 1, 0] ^ inputs[0, j, 1, 0]) ^ (permuted[1, j, 1, 0] ^ inputs[1, j, 1, 0])) & _ONE
        t_left ^= a ^ _ONE
        t_right ^= a
        sign = _ONE - _TWO * controls[1, j]  # (-1)^{t_1}
        for k in range(width):
            p_lose = lose * width + k
            p_keep = keep * width + k
            q_lose, h_lose = 2 + p_lose // 2, p_lose % 2
            q_keep, h_keep = 2 + p_keep // 2, p_keep % 2
            v0_lose = permuted[0, j, q_lose, h_lose] ^ inputs[0, j, q_lose, h_lose]
            v1_lose = permuted[1, j, q_lose, h_lose] ^ inputs[1, j, q_lose, h_lose]
            v0_keep = permuted[0, j, q_keep, h_keep] ^ inputs[0, j, q_keep, h_keep]
            v1_keep = permuted[1, j, q_keep, h_keep] ^ inputs[1, j, q_keep, h_keep]
            v_cw = sign * (v1_lose - v0_lose - v_alpha[j, k])
            if lose == 0:
                v_cw += sign * beta[j, k]
            v_alpha[j, k] = v_alpha[j, k] - v1_keep + v0_keep + sign * v_cw
            value_cw[j, k] = v_cw
        seed_cw[j, 0] = cw_low
        seed_cw[j, 1] = cw_high
        t_keep = t_right if keep == 1 else t_left
        for b in range(2):
            low = permuted[b, j, keep, 0] ^ inputs[b, j, keep, 0]
            high = permuted[b, j, keep, 1] ^ inputs[b, j, keep, 1]
            t_next = low & _ONE
            low &= _CLEAR
            if controls[b, j] != 0:
                low ^= cw_low
                high ^= cw_high
                t_next ^= t_keep
            seeds[b, j, 0] = low
            seeds[b, j, 1] = high
            controls[b, j] = t_next
        place = 2 * level
        control_cw[j, place >> 3] |= np.uint8(t_left << np.uint64(place & 7))
        control_cw[j, (place + 1) >> 3] |= np.uint8(t_right << np.uint64((place + 1) & 7))


@njit(nogil=True, cache=True)
def _gen_final(permuted, inputs, controls, v_alpha, final_cw):
    """CW_{n+1} = (-1)^{t_1} (Convert(s_1) - Convert(s_0) - V_alpha), Convert = the left value words."""
    width = final_cw.shape[1]
    for j in range(final_cw.shape[0]):
        sign = _ONE - _TWO * controls[1, j]
        for k in range(width):
            q, h = 2 + k // 2, k % 2
            convert0 = permuted[0, j, q, h] ^ inputs[0, j, q, h]
            convert1 = permuted[1, j, q, h] ^ inputs[1, j, q, h]
            final_cw[j, k] = sign * (convert1 - convert0 - v_alpha[j, k])


@njit(nogil=True, cache=True)
def _fill_eval_inputs(seeds, x, shift, width, inputs):
    """The first level's inputs, flat: per comparison its child's seed block, then the blocks of its value words."""
    stride = inputs.shape[0] // x.shape[0]
    for j in range(x.shape[0]):
        _fill_one(seeds[j, 0], seeds[j, 1], (x[j] >> shift) & _ONE, width, stride, inputs, j * stride)


@njit(nogil=True, cache=True, inline="always")
def _fill_one(low, high, sigma, width, stride, inputs, at):
    first = (np.int64(sigma) * width) >> 1
    inputs[at] = low ^ sigma
    inputs[at + 1] = high
    for q in range(1, stride // 2):
        inputs[at + 2 * q] = low ^ np.uint64(1 + first + q)
        inputs[at + 2 * q + 1] = high


@functools.lru_cache(maxsize=None)
def _eval_level_kernel(width: int):
    """The level kernel compiled for one payload width (a constant: its loops unroll; ~1.7x faster than generic)."""
    stride = 2 * (1 + (width + 1) // 2)

    @njit(nogil=True)
    def eval_level(permuted, inputs, x, shift, controls, value, seed_cw, value_cw, control_cw, level, sign,
                   next_shift, last):
        count = x.shape[0]
        control_bytes = control_cw.shape[0] // count
        for j in range(count):
            at = j * stride
            side = np.int64((x[j] >> shift) & _ONE)
            t = controls[j]
            keep = _ZERO - t  # all ones where t = 1
            base = at + 2 + side * width - 2 * ((side * width) >> 1)  # side's first value word
            for k in range(width):
                v = (permuted[base + k] ^ inputs[base + k]) + (value_cw[j * width + k] & keep)
                value[j * width + k] += sign * v
            low = permuted[at] ^ inputs[at]
            high = permuted[at + 1] ^ inputs[at + 1] ^ (seed_cw[2 * j + 1] & keep)
            place = 2 * level + side
            t_cw = np.uint64(control_cw[j * control_bytes + (place >> 3)] >> (place & 7)) & _ONE
            controls[j] = (low & _ONE) ^ (t_cw & t)
            low = (low & _CLEAR) ^ (seed_cw[2 * j] & keep)
            _fill_one(low, high, _ZERO if last else (x[j] >> next_shift) & _ONE, width, stride, inputs, at)

    eval_level.__doc__ = _EVAL_LEVEL_DOC
    return eval_level


_EVAL_LEVEL_DOC = """One level of BCG+21's Eval along x's path, then this chunk's inputs for the next level (or leaf).

Flat arrays (the blocks of comparison j start at word j * stride) and no branches: the control bit is a coin flip
per comparison, so the corrections are masked in. The next level's input blocks hold the seed, so no separate seed
array is kept.
"""


@njit(nogil=True, cache=True)
def _eval_final(permuted, inputs, controls, value, final_cw, sign):
    """value += (-1)^b (Convert(s) + t CW_{n+1}) at the leaf (the left value words: offsets 2 .. 2 + width)."""
    count = controls.shape[0]
    width = value.shape[0] // count
    stride = inputs.shape[0] // count
    for j in range(count):
        keep = _ZERO - controls[j]
        for k in range(width):
            at = j * stride + 2 + k
            value[j * width + k] += sign * ((permuted[at] ^ inputs[at]) + (final_cw[j * width + k] & keep))


# --- checks -------------------------------------------------------------------------------------------------------
def control_bytes(bits: int) -> int:
    """Bytes of one comparison's packed control-bit corrections."""
    return _control_bytes(bits)


def _control_bytes(bits: int) -> int:
    return (2 * bits + 7) // 8


def _check_bits(bits) -> None:
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"DCF input bits must be an integer in 1..{MAX_BITS}, got {bits!r}")


def _check_width(width) -> None:
    if not isinstance(width, (int, np.integer)) or isinstance(width, bool) or not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"DCF payload width must be an integer in 1..{MAX_WIDTH}, got {width!r}")


def _check_party(party) -> None:
    if not isinstance(party, (int, np.integer)) or isinstance(party, bool) or party not in (0, 1):
        raise ValueError(f"party must be 0 or 1, got {party!r}")


def _check_inputs(values, name: str, bits: int) -> np.ndarray:
    if not isinstance(values, np.ndarray) or values.dtype != np.uint64:
        got = values.dtype if isinstance(values, np.ndarray) else type(values).__name__
        raise TypeError(f"{name} must be a uint64 numpy array, got {got}")
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per comparison), got shape {values.shape}")
    if bits < MAX_BITS and values.size and int(values.max()) >> bits:
        raise ValueError(f"{name} has values of more than {bits} bits (the DCF's input length)")
    return np.ascontiguousarray(values)


def _check_beta(beta, count: int) -> np.ndarray:
    if not isinstance(beta, np.ndarray) or beta.dtype != np.uint64:
        got = beta.dtype if isinstance(beta, np.ndarray) else type(beta).__name__
        raise TypeError(f"beta must be a uint64 numpy array, got {got}")
    if beta.ndim == 1:
        beta = beta.reshape(-1, 1)
    if beta.ndim != 2 or beta.shape[0] != count:
        raise ValueError(f"beta must have shape ({count},) or ({count}, width) to match alpha's {count} "
                         f"comparisons, got {beta.shape}")
    _check_width(beta.shape[1])
    return np.ascontiguousarray(beta)
