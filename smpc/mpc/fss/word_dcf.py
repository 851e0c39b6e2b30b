"""A distributed comparison function (DCF) whose output is a pair of 64-bit words: additive shares of beta [x < alpha].

Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar and Rathee, "Function Secret Sharing for Mixed-Mode and Fixed-Point
Secure Computation", EUROCRYPT 2021 (eprint 2020/1392), section 3: the tree DCF for f(x) = beta [x < alpha] with
an abelian output group, here G = Z_2^64 x Z_2^64 (two uint64 words, each added mod 2^64), for batches of m
comparisons, each with its own alpha and its own payload beta. The one-bit DCF of :mod:`.bit_dcf` is the same tree
over Z_2; here the signs of the construction matter: party 1's output enters negated, and a correction is scaled by
(-1)^{t_1}. Its use (:mod:`smpc.mpc.spdz2k.fss`): with beta = (1, MAC key) the two parties' outputs are an
authenticated bit, so a party that changes its output is caught by a MAC check.

**Two AES blocks per node.** From a seed s (two uint64 words, the low two bits clear), child j in {0, 1} (left,
right) has the block G_j(s) = AES_K(s XOR j) XOR (s XOR j), read as its seed (the low two bits cleared) and its
control bit t (bit 0), and the value block V_j(s) = AES_K(s XOR (2 + j)) XOR (s XOR (2 + j)), read as a G element
(Convert is the identity on its 128 bits). The four tweaks of a seed are distinct AES inputs (:mod:`.fixed_key`).

**Gen** (the dealer). Party b starts from a random seed and t_b = b, V_alpha = 0. At each level, with a = alpha's
bit (keep the child a, lose the other), from both parties' four blocks:

    s_CW = s_0^lose XOR s_1^lose,   t_CW^L = t_0^L XOR t_1^L XOR a XOR 1,   t_CW^R = t_0^R XOR t_1^R XOR a,
    V_CW = (-1)^{t_1} (v_1^lose - v_0^lose - V_alpha + a beta),
    V_alpha <- V_alpha - v_1^keep + v_0^keep + (-1)^{t_1} V_CW  (= v_0^keep - v_1^keep + v_1^lose - v_0^lose + a beta),
    s_b <- s_b^keep XOR t_b s_CW,   t_b <- t_b^keep XOR t_b t_CW^keep.

(x < alpha exactly when x leaves alpha's path to the left, where alpha goes right: a = 1, lose = left.) The leaf:
CW_final = (-1)^{t_1} (-V_alpha).

**Eval** (party b). V = 0; along x's path, per level: expand the chosen child's two blocks,
V <- V + (-1)^b (v + t V_CW), then s <- s' XOR t s_CW, t <- t' XOR t t_CW^side; at the leaf
V <- V + (-1)^b t CW_final. On alpha's path t_0 XOR t_1 = 1 and t_0 - t_1 = (-1)^{t_1}, so the two outputs' sum
there is V_alpha, which CW_final cancels at x = alpha; where x leaves the path, the level's term gives
-V_alpha + a beta, and below it the parties' states are equal, so their later terms cancel.

**The leaf's seed is never expanded.** BCG+21's last correction is (-1)^{t_1} (Convert(s_1) - Convert(s_0) -
V_alpha); both Convert terms drop out here, with the leaf expansion in Eval. Correctness is unchanged (they cancel
off the path and are folded into CW_final on it). CW_final still hides alpha from either party: V_alpha contains
v_0^keep - v_1^keep of the last level, the value block of the kept child of the other party's last seed, a PRG
output that appears in no other part of the key (as in :mod:`.bit_dcf`'s argument for its one-bit leaf). So the
last level needs no seed correction either.

Cost per comparison of n-bit inputs: Eval 2 n AES blocks; Gen 8 n (both children, both blocks, both parties). Every
AES call covers a level of a chunk of the batch; numba kernels do the rest, one element at a time.

Key layout (:class:`WordDCFKeys`; both parties' keys hold the same corrections, only ``seed`` differs):

=============  ==============================  ===========================================================
field          shape, dtype                    content
=============  ==============================  ===========================================================
``seed``       (m, 2) uint64                   s_b: word 0 the low half, its low two bits clear
``seed_cw``    (n, m, 2) uint64                s_CW of every level (level 0: the top bit's) in bits 2..127, and in
                                               bits 0 and 1 of word 0, t_CW^L and t_CW^R (the last level's s_CW
                                               is 0: its children's seeds are never expanded)
``value_cw``   (n, m, 2) uint64                V_CW of every level
``final_cw``   (m, 2) uint64                   CW_final
=============  ==============================  ===========================================================

:func:`key_bytes`: 8 * :func:`words_for`, 32 n + 32 bytes per comparison (2,048 for n = 63).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
from numba import njit

from smpc.mpc.fss import checks
from smpc.mpc.fss.fixed_key import FixedKeyAES
from smpc.ring.bitslice import plane_words
from smpc.ring.kernel_choice import nthreads

MAX_BITS = checks.MAX_BITS
DEFAULT_CHUNK = 1 << 13  # comparisons expanded together (a multiple of 64): one AES call per level per chunk
MAX_THREADS = 8  # Gen and Eval share a batch's chunks out between at most this many threads (numba's, if fewer)

_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_SEED = ~np.uint64(3)  # clears the control bit's place (bit 0) and bit 1 in word 0


def words_for(count: int, bits: int = MAX_BITS) -> int:
    """uint64 words of one party's key for ``count`` comparisons of ``bits``-bit inputs."""
    _check_bits(bits)
    _check_count(count)
    return 2 * count * (2 * bits + 2)


def key_bytes(count: int, bits: int = MAX_BITS) -> int:
    """One party's key bytes for ``count`` comparisons of ``bits``-bit inputs."""
    return 8 * words_for(count, bits)


class WordDCFKeys:
    """One party's keys for a batch (the layout is in the module docstring); arrays are not copied."""

    __slots__ = ("party", "bits", "seed", "seed_cw", "value_cw", "final_cw")

    def __init__(self, party: int, bits: int, seed: np.ndarray, seed_cw: np.ndarray, value_cw: np.ndarray,
                 final_cw: np.ndarray):
        _check_party(party)
        _check_bits(bits)
        m = checks.key_count(seed)
        expected = {"seed": (seed, (m, 2)), "seed_cw": (seed_cw, (bits, m, 2)),
                    "value_cw": (value_cw, (bits, m, 2)), "final_cw": (final_cw, (m, 2))}
        checks.check_key_fields(bits, seed, expected)
        self.party, self.bits = int(party), int(bits)
        self.seed, self.seed_cw, self.value_cw, self.final_cw = seed, seed_cw, value_cw, final_cw

    @property
    def count(self) -> int:
        """Comparisons in the batch."""
        return self.seed.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes of this party's key: ``key_bytes(count, bits)``."""
        return sum(a.nbytes for a in (self.seed, self.seed_cw, self.value_cw, self.final_cw))

    def to_words(self) -> np.ndarray:
        """The key as one flat uint64 vector of :func:`words_for` words (the fields in the layout's order)."""
        return np.concatenate([np.ascontiguousarray(a).reshape(-1)
                               for a in (self.seed, self.seed_cw, self.value_cw, self.final_cw)])

    @classmethod
    def from_words(cls, party: int, bits: int, count: int, words: np.ndarray) -> "WordDCFKeys":
        """Party ``party``'s key from :meth:`to_words`' vector, its length checked first; the fields are views."""
        expected = words_for(count, bits)
        if not isinstance(words, np.ndarray) or words.dtype != np.uint64 or words.shape != (expected,):
            got = f"{words.dtype}{list(words.shape)}" if isinstance(words, np.ndarray) else type(words).__name__
            raise ValueError(f"a DCF key for {count} comparisons of {bits} bits is uint64[{expected}], got {got}")
        shapes = [(count, 2), (bits, count, 2), (bits, count, 2), (count, 2)]
        fields, at = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            fields.append(words[at : at + size].reshape(shape))
            at += size
        return cls(party, bits, *fields)


def gen(alpha: np.ndarray, payload: np.ndarray, prg, bits: int = MAX_BITS,
        out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[WordDCFKeys, WordDCFKeys]:
    """Both parties' keys for ``payload[j] * [x < alpha[j]]`` (unsigned ``bits``-bit comparison), j over the batch.

    ``alpha``: uint64 (m,), each below 2^bits; ``payload``: uint64 (m, 2); ``prg``: the CSPRNG the root seeds come
    from (:class:`smpc.ring.prg.PRG`). ``out``: two flat uint64 buffers of at least :func:`words_for` words, one
    per party, that the keys are written into in :meth:`WordDCFKeys.to_words`' layout (their first words; the keys
    are views of them), so a dealer sends them without copying 2 KB per comparison twice.
    """
    _check_bits(bits)
    alpha = _check_inputs(alpha, "alpha", bits)
    m = alpha.shape[0]
    if not isinstance(payload, np.ndarray) or payload.dtype != np.uint64 or payload.shape != (m, 2):
        got = f"{payload.dtype}{list(payload.shape)}" if isinstance(payload, np.ndarray) else type(payload).__name__
        raise ValueError(f"payload must be uint64[{m}, 2] (one pair of words per comparison), got {got}")
    if not callable(getattr(prg, "random_ring", None)):
        raise TypeError(f"prg must be an smpc.ring.prg.PRG (the CSPRNG), got {type(prg).__name__}")
    payload = np.ascontiguousarray(payload)
    size = words_for(m, bits)
    if out is None:
        out = (np.empty(size, np.uint64), np.empty(size, np.uint64))
    for buffer in out:
        if not isinstance(buffer, np.ndarray) or buffer.dtype != np.uint64 or buffer.ndim != 1 or (
                buffer.size < size or not buffer.flags.c_contiguous):
            raise ValueError(f"out must be two contiguous flat uint64 buffers of at least {size} words")
    keys = [WordDCFKeys.from_words(party, bits, m, out[party][:size]) for party in (0, 1)]
    for key in keys:
        key.seed[:] = prg.random_ring((m, 2))
        key.seed[:, 0] &= _SEED
    # Comparisons are independent: the chunks are shared out between threads; only the root seeds above came from
    # the CSPRNG.
    _share_out(_gen_chunks, range(0, m, DEFAULT_CHUNK), keys, alpha, payload, bits)
    return keys[0], keys[1]


def _share_out(work: Callable, chunks: range, *args) -> None:
    """``work(*args, starts)`` for every chunk start of ``chunks``, the chunks dealt out between up to numba's
    number of threads (the caller's among them): the AES calls and the kernels release the GIL, and each chunk
    writes only its own comparisons' rows."""
    parts = max(1, min(nthreads(), len(chunks), MAX_THREADS))
    helpers = [_pool().submit(work, *args, chunks[i::parts]) for i in range(1, parts)]
    work(*args, chunks[0::parts])
    for helper in helpers:
        helper.result()


def _gen_chunks(keys: list, alpha: np.ndarray, payload: np.ndarray, bits: int, starts: range) -> None:
    """Gen for the chunks of DEFAULT_CHUNK comparisons starting at ``starts`` (root seeds drawn already)."""
    first, second = keys
    m = alpha.shape[0]
    aes = FixedKeyAES()
    full = np.empty(16 * min(m, DEFAULT_CHUNK), np.uint64)  # (comparison, party, tweak, word), flat
    buffer = aes.buffer(full)
    for start in starts:
        stop = min(start + DEFAULT_CHUNK, m)
        count = stop - start
        blocks = full[: 16 * count]
        t = np.zeros((2, count), np.uint64)  # both parties' control bits
        t[1] = 1
        v_alpha = np.zeros((count, 2), np.uint64)
        _fill_gen_inputs(first.seed[start:stop], second.seed[start:stop], blocks)
        permute = aes.permuter(blocks, buffer)
        for level in range(bits):
            _gen_level(permute(), blocks, alpha[start:stop], np.uint64(bits - 1 - level),
                       payload[start:stop], first.seed_cw, first.value_cw, second.seed_cw, second.value_cw, level,
                       start, t, v_alpha, level < bits - 1)
        _gen_final(t[1], v_alpha, first.final_cw[start:stop], second.final_cw[start:stop])


_pool_lock = threading.Lock()
_threads: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """The threads that share Gen's and Eval's chunks with their callers (made once, on first use)."""
    global _threads
    with _pool_lock:
        if _threads is None:
            _threads = ThreadPoolExecutor(2 * MAX_THREADS, thread_name_prefix="smpc-dcf")
        return _threads


def eval(party: int, keys: WordDCFKeys, x: np.ndarray, chunk: int = DEFAULT_CHUNK) -> np.ndarray:  # noqa: A001
    """This party's additive shares (uint64 (m, 2)) of ``payload[j] * [x[j] < alpha[j]]``: party 0's plus party 1's
    is the payload where x < alpha and (0, 0) elsewhere, word by word mod 2^64.

    ``x``: uint64 (m,), the public inputs (each below 2^bits), one per comparison of ``keys``. The batch is walked
    ``chunk`` comparisons at a time (one AES call per level per chunk, so the state stays in cache).
    """
    x = checks.check_eval(party, keys, WordDCFKeys, x, chunk)
    chunk = plane_words(int(chunk)) * 64
    out = np.zeros((keys.count, 2), np.uint64)
    _share_out(_eval_chunks, range(0, keys.count, chunk), party, keys, x, chunk, out)
    return out


def _eval_chunks(party: int, keys: WordDCFKeys, x: np.ndarray, chunk: int, out: np.ndarray, starts: range) -> None:
    """Eval of the chunks of ``chunk`` comparisons starting at ``starts``, into their rows of ``out``."""
    bits, m = keys.bits, keys.count
    aes = FixedKeyAES()
    full = np.empty(4 * min(m, chunk), np.uint64)  # (comparison, tweak, word), flat: the chosen child's two blocks
    buffer = aes.buffer(full)
    negate = np.uint64(0xFFFFFFFFFFFFFFFF) if party else np.uint64(0)  # party 1's terms enter negated
    for start in starts:
        stop = min(start + chunk, m)
        blocks = full[: 4 * (stop - start)]
        t = np.full(stop - start, party, np.uint64)
        _fill_eval_inputs(keys.seed[start:stop], x[start:stop], np.uint64(bits - 1), blocks)
        permute = aes.permuter(blocks, buffer)
        for level in range(bits):
            _eval_level(permute(), blocks, x[start:stop], np.uint64(bits - 1 - level), keys.seed_cw,
                        keys.value_cw, level, start, t, out[start:stop], negate, level < bits - 1)
        _eval_final(t, keys.final_cw[start:stop], negate, out[start:stop])


# --- numba kernels ------------------------------------------------------------------------------------------------
# One element at a time, no branch on a secret bit: a bit b becomes the mask 0 - b (all ones or zero), selections are
# (x & mask) | (y & ~mask) and a sign (-1)^b is (y ^ mask) - mask.
@njit(nogil=True, cache=True, error_model="numpy")
def _fill_gen_inputs(seeds_0, seeds_1, blocks):
    """Both parties' four AES inputs s XOR tweak: blocks[16 j + 8 b + 2 tweak + word]."""
    for j in range(seeds_0.shape[0]):
        for b in range(2):
            low = seeds_1[j, 0] if b else seeds_0[j, 0]
            high = seeds_1[j, 1] if b else seeds_0[j, 1]
            _set_inputs(blocks, 16 * j + 8 * b, low, high, 4, _ZERO)


@njit(nogil=True, cache=True, inline="always")
def _set_inputs(blocks, at, low, high, tweaks, first):
    """blocks[at + 2 i], blocks[at + 2 i + 1] = (low XOR tweak, high), i over ``tweaks`` tweaks from ``first``:
    0, 1, 2, 3 (Gen: both children's two blocks) or side, 2 + side (Eval: the chosen child's)."""
    step = np.uint64(1) if tweaks == 4 else np.uint64(2)
    tweak = first
    for i in range(tweaks):
        blocks[at + 2 * i] = low ^ tweak
        blocks[at + 2 * i + 1] = high
        tweak += step


@njit(nogil=True, cache=True, error_model="numpy")
def _gen_level(permuted, blocks, alpha, shift, payload, seed_cw, value_cw, seed_cw_1, value_cw_1, level, first, t,
               v_alpha, more):
    """One level of Gen for a chunk starting at comparison ``first``: its corrections out (into both parties' keys),
    both parties' states (``t``, the next level's AES inputs in ``blocks``) and V_alpha advanced."""
    for j in range(alpha.shape[0]):
        g = first + j
        a = (alpha[j] >> shift) & _ONE
        right = _ZERO - a  # all ones where alpha keeps the right child (and x < alpha on the left)
        p = 16 * j
        q = p + 8
        # party b's blocks: left seed block, right seed block, left value, right value (2 words each)
        s0l_lo, s0l_hi = permuted[p] ^ blocks[p], permuted[p + 1] ^ blocks[p + 1]
        s0r_lo, s0r_hi = permuted[p + 2] ^ blocks[p + 2], permuted[p + 3] ^ blocks[p + 3]
        v0l_lo, v0l_hi = permuted[p + 4] ^ blocks[p + 4], permuted[p + 5] ^ blocks[p + 5]
        v0r_lo, v0r_hi = permuted[p + 6] ^ blocks[p + 6], permuted[p + 7] ^ blocks[p + 7]
        s1l_lo, s1l_hi = permuted[q] ^ blocks[q], permuted[q + 1] ^ blocks[q + 1]
        s1r_lo, s1r_hi = permuted[q + 2] ^ blocks[q + 2], permuted[q + 3] ^ blocks[q + 3]
        v1l_lo, v1l_hi = permuted[q + 4] ^ blocks[q + 4], permuted[q + 5] ^ blocks[q + 5]
        v1r_lo, v1r_hi = permuted[q + 6] ^ blocks[q + 6], permuted[q + 7] ^ blocks[q + 7]
        t_0, t_1 = t[0, j], t[1, j]
        on_0, on_1 = _ZERO - t_0, _ZERO - t_1
        # the lost side is the left one where a = 1
        cw_lo = ((s0l_lo ^ s1l_lo) & right | (s0r_lo ^ s1r_lo) & ~right) & _SEED
        cw_hi = (s0l_hi ^ s1l_hi) & right | (s0r_hi ^ s1r_hi) & ~right
        lose_lo = (v1l_lo - v0l_lo) & right | (v1r_lo - v0r_lo) & ~right
        lose_hi = (v1l_hi - v0l_hi) & right | (v1r_hi - v0r_hi) & ~right
        keep_lo = (v0r_lo - v1r_lo) & right | (v0l_lo - v1l_lo) & ~right
        keep_hi = (v0r_hi - v1r_hi) & right | (v0l_hi - v1l_hi) & ~right
        diff_lo = lose_lo - v_alpha[j, 0] + (payload[j, 0] & right)
        diff_hi = lose_hi - v_alpha[j, 1] + (payload[j, 1] & right)
        cw_value_lo = (diff_lo ^ on_1) - on_1  # (-1)^{t_1} diff
        cw_value_hi = (diff_hi ^ on_1) - on_1
        value_cw[level, g, 0] = value_cw_1[level, g, 0] = cw_value_lo
        value_cw[level, g, 1] = value_cw_1[level, g, 1] = cw_value_hi
        v_alpha[j, 0] = keep_lo + lose_lo + (payload[j, 0] & right)  # V_alpha + (-1)^{t_1} V_CW - kept terms
        v_alpha[j, 1] = keep_hi + lose_hi + (payload[j, 1] & right)
        t0l, t0r, t1l, t1r = s0l_lo & _ONE, s0r_lo & _ONE, s1l_lo & _ONE, s1r_lo & _ONE
        t_cw_l = t0l ^ t1l ^ a ^ _ONE
        t_cw_r = t0r ^ t1r ^ a
        stored = (cw_lo if more else _ZERO) | t_cw_l | (t_cw_r << _ONE)
        seed_cw[level, g, 0] = seed_cw_1[level, g, 0] = stored
        seed_cw[level, g, 1] = seed_cw_1[level, g, 1] = cw_hi if more else _ZERO
        t_cw_keep = (t_cw_r & right) | (t_cw_l & ~right)
        t[0, j] = ((t0r & right) | (t0l & ~right)) ^ (t_cw_keep & t_0)
        t[1, j] = ((t1r & right) | (t1l & ~right)) ^ (t_cw_keep & t_1)
        if more:
            low_0 = ((s0r_lo & right | s0l_lo & ~right) & _SEED) ^ (cw_lo & on_0)
            high_0 = (s0r_hi & right | s0l_hi & ~right) ^ (cw_hi & on_0)
            low_1 = ((s1r_lo & right | s1l_lo & ~right) & _SEED) ^ (cw_lo & on_1)
            high_1 = (s1r_hi & right | s1l_hi & ~right) ^ (cw_hi & on_1)
            _set_inputs(blocks, p, low_0, high_0, 4, _ZERO)
            _set_inputs(blocks, q, low_1, high_1, 4, _ZERO)


@njit(nogil=True, cache=True, error_model="numpy")
def _gen_final(t_1, v_alpha, final_cw, final_cw_1):
    """CW_final = (-1)^{t_1} (-V_alpha) = V_alpha where t_1 = 1, -V_alpha where t_1 = 0 (into both keys)."""
    for j in range(t_1.shape[0]):
        keep = _ZERO - t_1[j]
        for w in range(2):
            final_cw[j, w] = final_cw_1[j, w] = (v_alpha[j, w] & keep) | ((_ZERO - v_alpha[j, w]) & ~keep)


@njit(nogil=True, cache=True, error_model="numpy")
def _fill_eval_inputs(seeds, x, shift, blocks):
    """The first level's AES inputs: the root seed XOR the chosen side, then XOR 2 + side."""
    for j in range(seeds.shape[0]):
        side = (x[j] >> shift) & _ONE
        _set_inputs(blocks, 4 * j, seeds[j, 0], seeds[j, 1], 2, side)


@njit(nogil=True, cache=True, error_model="numpy")
def _eval_level(permuted, blocks, x, shift, seed_cw, value_cw, level, first, t, out, negate, more):
    """One level of Eval along x's path for a chunk starting at comparison ``first``: out += (-1)^b (v + t V_CW),
    the control bit and (``more``: not the last level) the next level's AES inputs advanced."""
    for j in range(x.shape[0]):
        g = first + j
        k = 4 * j
        low = permuted[k] ^ blocks[k]
        high = permuted[k + 1] ^ blocks[k + 1]
        v_lo = permuted[k + 2] ^ blocks[k + 2]
        v_hi = permuted[k + 3] ^ blocks[k + 3]
        tj = t[j]
        on = _ZERO - tj
        term_lo = v_lo + (value_cw[level, g, 0] & on)
        term_hi = v_hi + (value_cw[level, g, 1] & on)
        out[j, 0] += (term_lo ^ negate) - negate
        out[j, 1] += (term_hi ^ negate) - negate
        side = (x[j] >> shift) & _ONE
        cw_lo = seed_cw[level, g, 0]
        t[j] = (low & _ONE) ^ ((cw_lo >> side) & tj & _ONE)
        if more:
            nxt = (x[j] >> (shift - _ONE)) & _ONE
            seed_lo = (low & _SEED) ^ (cw_lo & _SEED & on)
            seed_hi = high ^ (seed_cw[level, g, 1] & on)
            _set_inputs(blocks, k, seed_lo, seed_hi, 2, nxt)


@njit(nogil=True, cache=True, error_model="numpy")
def _eval_final(t, final_cw, negate, out):
    """out += (-1)^b t CW_final."""
    for j in range(t.shape[0]):
        on = _ZERO - t[j]
        for w in range(2):
            out[j, w] += ((final_cw[j, w] & on) ^ negate) - negate


# --- checks (shared with bit_dcf) --------------------------------------------------------------------------------
_check_bits, _check_party, _check_inputs = checks.check_bits, checks.check_party, checks.check_inputs


def _check_count(count) -> None:
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
