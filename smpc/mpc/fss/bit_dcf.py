"""A distributed comparison function (DCF) with a one-bit output, for batches: XOR shares of [x < alpha].

Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar and Rathee, "Function Secret Sharing for Mixed-Mode and Fixed-Point
Secure Computation", EUROCRYPT 2021 (eprint 2020/1392), section 3: the tree construction of the DCF, here for
f_alpha(x) = [x < alpha] on n-bit inputs with the output group G = Z_2 (payload beta = 1). In Z_2 every "+" and
"-" of the construction is an XOR and the signs (-1)^b drop out; the two parties' outputs XOR to the bit. Vectorized
over a batch of m independent comparisons, each with its own alpha; input bits are taken most significant first.

**One AES block per node.** A node's seed s expands into its left and right child with one fixed-key AES block
each (:mod:`.fixed_key`): child j in {0 (left), 1 (right)} is G_j(s) = AES_K(s XOR j) XOR (s XOR j), 128 bits
read as the child's seed (bits 2..127, the low two bits cleared), its control bit t (bit 0) and its value bit v
(bit 1). Seeds have their low two bits clear, so the two tweaks give distinct AES inputs. The security parameter
is lambda = 126 (the seed's random bits), under the assumption that AES_K behaves as a random permutation (the
correlation robustness of fixed-key AES: Guo, Katz, Wang and Yu, IEEE S&P 2020).

**Gen** (the dealer, both parties' keys). Party b starts from a random seed s_b and control bit t_b = b. At each
level both parties expand both children. On the side that leaves alpha's path ("lose") the seed correction s_CW
makes the two parties' children equal from there on, and the value correction V_CW makes their value bits there
XOR to [lose is the left side] (x < alpha exactly when x leaves alpha's path to the left) XOR what alpha's path
has accumulated so far (V_alpha). The control-bit corrections t_CW^L, t_CW^R keep t_0 XOR t_1 = 1 exactly on
alpha's path. Per level: s_CW (lambda bits), t_CW^L, t_CW^R and V_CW (one bit each).

**Eval** (each party). Walk x's path: one AES block per level (the chosen child's), apply the corrections where
the control bit is set, and XOR v XOR t V_CW into the output at every level; at the leaf XOR t CW_final. Off
alpha's path the two parties' states agree, so their later terms cancel.

**The leaf.** BCG+21 end with CW_{n+1} = Convert(s_1) - Convert(s_0) - V_alpha of the leaf seeds. Here the leaf's
seed is never expanded: CW_final = V_alpha (its only job is to cancel the path's sum at x = alpha, where
t_0 XOR t_1 = 1), and the last level needs no seed correction. CW_final hides alpha all the same: V_alpha includes
the other party's value bit of the last level's kept child, a PRG output that appears nowhere else in a key.

Cost per comparison: eval runs n AES blocks (one per level); gen runs 4 per level (both children, both parties).
Every AES call covers one level of a chunk of the batch, and numba kernels apply the corrections.

Key layout (struct of arrays over the batch; :class:`BitDCFKeys`). Both parties' keys share the corrections (they
are the same in BCG+21); only ``seed`` differs.

===========  ==============================  ===========================================================
field        shape, dtype                    content
===========  ==============================  ===========================================================
``seed``     (m, 2) uint64                   s_b: word 0 the low half, its low two bits clear
``seed_cw``  (n - 1, m, 2) uint64            s_CW of levels 0 .. n - 2, level 0 the top bit's (low two bits clear)
``bits_cw``  (3 n + 1, ceil(m / 64)) uint64  bit planes, comparison j at bit j % 64 of word j // 64:
                                             t_CW^L of level i in plane 3i, t_CW^R in 3i + 1, V_CW in
                                             3i + 2, CW_final in plane 3n
===========  ==============================  ===========================================================

:func:`key_bytes`: one party's bytes for m comparisons, 16 m + 16 (n - 1) m + 8 (3n + 1) ceil(m / 64), about
16 n + 3n / 8 per comparison (1031.75 bytes for n = 63).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from smpc.mpc.fss import checks
from smpc.mpc.fss.fixed_key import FixedKeyAES
from smpc.ring.bitslice import bit_planes_into, plane_words

MAX_BITS = checks.MAX_BITS
DEFAULT_CHUNK = 1 << 14  # comparisons evaluated together (a multiple of 64): one AES call per level per chunk

_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_ALL = ~np.uint64(0)
_SEED = ~np.uint64(3)  # clears the places of the control bit (bit 0) and the value bit (bit 1) in word 0


def key_bytes(count: int, bits: int = MAX_BITS) -> int:
    """One party's key bytes for ``count`` comparisons of ``bits``-bit inputs."""
    _check_bits(bits)
    return 16 * count + 16 * (bits - 1) * count + 8 * (3 * bits + 1) * plane_words(count)


class BitDCFKeys:
    """One party's DCF keys for a batch (the layout is in the module docstring); arrays are not copied."""

    __slots__ = ("party", "bits", "seed", "seed_cw", "bits_cw")

    def __init__(self, party: int, bits: int, seed: np.ndarray, seed_cw: np.ndarray, bits_cw: np.ndarray):
        _check_party(party)
        _check_bits(bits)
        m = checks.key_count(seed)
        expected = {"seed": (seed, (m, 2)), "seed_cw": (seed_cw, (bits - 1, m, 2)),
                    "bits_cw": (bits_cw, (3 * bits + 1, plane_words(max(m, 0))))}
        checks.check_key_fields(bits, seed, expected)
        self.party, self.bits = int(party), int(bits)
        self.seed, self.seed_cw, self.bits_cw = seed, seed_cw, bits_cw

    @property
    def count(self) -> int:
        """Comparisons in the batch."""
        return self.seed.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes of this party's key: ``key_bytes(count, bits)``."""
        return self.seed.nbytes + self.seed_cw.nbytes + self.bits_cw.nbytes


def gen(alpha: np.ndarray, prg, bits: int = MAX_BITS) -> tuple[BitDCFKeys, BitDCFKeys]:
    """Both parties' keys for ``[x < alpha[j]]`` (unsigned ``bits``-bit comparison), j over the batch.

    ``alpha``: uint64 (m,), each below 2^bits. ``prg``: the CSPRNG the root seeds come from
    (:class:`smpc.ring.prg.PRG`).
    """
    _check_bits(bits)
    alpha = _check_inputs(alpha, "alpha", bits)
    if not callable(getattr(prg, "random_ring", None)):
        raise TypeError(f"prg must be an smpc.ring.prg.PRG (the CSPRNG), got {type(prg).__name__}")
    m = alpha.shape[0]
    seeds = prg.random_ring((2, m, 2))
    seeds[:, :, 0] &= _SEED
    seed_cw = np.empty((bits - 1, m, 2), np.uint64)
    bits_cw = np.zeros((3 * bits + 1, plane_words(m)), np.uint64)
    aes = FixedKeyAES()
    full = np.empty(8 * min(m, DEFAULT_CHUNK), np.uint64)  # (comparison, party, child, word), flat
    buffer = aes.buffer(full)
    spare = np.empty(2 * min(m, DEFAULT_CHUNK), np.uint64)  # the last level's seed corrections (not kept)
    for start in range(0, m, DEFAULT_CHUNK):
        stop = min(start + DEFAULT_CHUNK, m)
        count, words = stop - start, plane_words(stop - start)
        blocks = full[: 8 * count]
        alpha_planes = np.empty((64, words), np.uint64)
        bit_planes_into(alpha[start:stop], alpha_planes)
        state = np.zeros((3, words), np.uint64)  # party 0's control bits, party 1's, V_alpha
        _set_valid(state[1], count)
        _fill_gen_inputs(seeds[0, start:stop].reshape(-1), seeds[1, start:stop].reshape(-1), blocks)
        permute = aes.permuter(blocks, buffer)
        for level in range(bits):
            cw = seed_cw[level, start:stop].reshape(-1) if level < bits - 1 else spare[: 2 * count]
            _gen_level(permute(), blocks, alpha_planes, bits - 1 - level, cw, bits_cw, level,
                       start >> 6, state)
        bits_cw[3 * bits, start >> 6 : (start >> 6) + words] = state[2]
    return BitDCFKeys(0, bits, seeds[0], seed_cw, bits_cw), BitDCFKeys(1, bits, seeds[1], seed_cw, bits_cw)


def eval(party: int, keys: BitDCFKeys, x: np.ndarray, chunk: int = DEFAULT_CHUNK) -> np.ndarray:  # noqa: A001
    """This party's XOR shares of ``[x < alpha]``, packed: bit j % 64 of word j // 64 (uint64, ceil(m / 64) words;
    the bits past m are 0). :func:`smpc.ring.bitslice.plane_to_bits` unpacks them.

    ``x``: uint64 (m,), the public inputs (each below 2^bits), one per comparison of ``keys``. The batch is walked
    ``chunk`` comparisons at a time, rounded up to a multiple of 64 (one AES call per level per chunk, so the state
    stays in cache).
    """
    x = checks.check_eval(party, keys, BitDCFKeys, x, chunk)
    chunk = plane_words(int(chunk)) * 64
    bits, m = keys.bits, keys.count
    out = np.zeros(plane_words(m), np.uint64)
    aes = FixedKeyAES()
    full = np.empty(2 * min(m, chunk), np.uint64)  # (comparison, word), flat: the AES inputs
    buffer = aes.buffer(full)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        count, words, first = stop - start, plane_words(stop - start), start >> 6
        blocks = full[: 2 * count]
        x_planes = np.empty((64, words), np.uint64)
        bit_planes_into(x[start:stop], x_planes)
        state = np.zeros((2, words), np.uint64)  # the control bits, the output bits
        if party == 1:
            _set_valid(state[0], count)
        _fill_eval_inputs(keys.seed[start:stop].reshape(-1), x_planes[bits - 1], blocks)
        permute = aes.permuter(blocks, buffer)
        for level in range(bits - 1):
            _eval_level(permute(), blocks, keys.seed_cw[level, start:stop].reshape(-1),
                        keys.bits_cw, level, x_planes, bits - 1 - level, first, state)
        _eval_last(permute(), blocks, keys.bits_cw, bits - 1, x_planes[0], first, state,
                   out[first : first + words])
    return out


# --- numba kernels ------------------------------------------------------------------------------------------------
# The state of a chunk is kept as bit planes over its comparisons (word w, bit i: comparison 64 w + i), like the
# keys' bit corrections, so each level's bit logic is a few word operations per 64 comparisons; the per-comparison
# loops only touch the AES blocks and gather their control and value bits. Flat arrays let numba vectorize them.
@njit(nogil=True, cache=True)
def _set_valid(words, count):
    """words = the bits of comparisons 0 .. count - 1 set, the rest clear."""
    for w in range(words.shape[0]):
        left = count - 64 * w
        words[w] = _ALL if left >= 64 else (_ONE << np.uint64(left)) - _ONE


@njit(nogil=True, cache=True, error_model="numpy")
def _fill_gen_inputs(seeds_0, seeds_1, blocks):
    """Both children's AES inputs s_b XOR side, both parties: blocks[8 j + 4 b + 2 side + word]."""
    for j in range(seeds_0.shape[0] >> 1):
        for b in range(2):
            low = seeds_1[2 * j] if b else seeds_0[2 * j]
            high = seeds_1[2 * j + 1] if b else seeds_0[2 * j + 1]
            at = 8 * j + 4 * b
            blocks[at] = low
            blocks[at + 1] = high
            blocks[at + 2] = low ^ _ONE
            blocks[at + 3] = high


@njit(nogil=True, cache=True, error_model="numpy")
def _gen_level(permuted, blocks, alpha_planes, shift, seed_cw, bits_cw, level, first, state):
    """One level of Gen for a chunk: its corrections out (``seed_cw``, flat; planes 3 level .. 3 level + 2 of
    ``bits_cw`` from word ``first``), both parties' next AES inputs into ``blocks``, ``state`` (t_0, t_1, V_alpha
    as planes) advanced. Alpha's bit 1 keeps the right child; the lost (left) side then carries the output 1."""
    m = blocks.shape[0] >> 3
    for w in range((m + 63) >> 6):  # (a bound numba can vectorize the inner loop under)
        g = w << 6
        n = min(64, m - g)
        a_word = alpha_planes[shift, w]
        t_0, t_1 = state[0, w], state[1, w]
        t0l = t0r = t1l = t1r = v0l = v0r = v1l = v1r = _ZERO
        for i in range(n):
            j = g + i
            place = np.uint64(i)
            right = _ZERO - ((a_word >> place) & _ONE)  # all ones where the kept child is the right one
            on_0 = _ZERO - ((t_0 >> place) & _ONE)
            on_1 = _ZERO - ((t_1 >> place) & _ONE)
            p = 8 * j  # party 0's left, right block; party 1's from p + 4
            q = p + 4
            low_0l, high_0l = permuted[p] ^ blocks[p], permuted[p + 1] ^ blocks[p + 1]
            low_0r, high_0r = permuted[p + 2] ^ blocks[p + 2], permuted[p + 3] ^ blocks[p + 3]
            low_1l, high_1l = permuted[q] ^ blocks[q], permuted[q + 1] ^ blocks[q + 1]
            low_1r, high_1r = permuted[q + 2] ^ blocks[q + 2], permuted[q + 3] ^ blocks[q + 3]
            t0l |= (low_0l & _ONE) << place
            t0r |= (low_0r & _ONE) << place
            t1l |= (low_1l & _ONE) << place
            t1r |= (low_1r & _ONE) << place
            v0l |= ((low_0l >> _ONE) & _ONE) << place
            v0r |= ((low_0r >> _ONE) & _ONE) << place
            v1l |= ((low_1l >> _ONE) & _ONE) << place
            v1r |= ((low_1r >> _ONE) & _ONE) << place
            cw_low = ((low_0l ^ low_1l) & right | (low_0r ^ low_1r) & ~right) & _SEED  # the lost side's
            cw_high = (high_0l ^ high_1l) & right | (high_0r ^ high_1r) & ~right
            low_0 = ((low_0r & right | low_0l & ~right) & _SEED) ^ (cw_low & on_0)  # the kept side's, corrected
            high_0 = (high_0r & right | high_0l & ~right) ^ (cw_high & on_0)
            low_1 = ((low_1r & right | low_1l & ~right) & _SEED) ^ (cw_low & on_1)
            high_1 = (high_1r & right | high_1l & ~right) ^ (cw_high & on_1)
            blocks[p], blocks[p + 1], blocks[p + 2], blocks[p + 3] = low_0, high_0, low_0 ^ _ONE, high_0
            blocks[q], blocks[q + 1], blocks[q + 2], blocks[q + 3] = low_1, high_1, low_1 ^ _ONE, high_1
            seed_cw[2 * j] = cw_low
            seed_cw[2 * j + 1] = cw_high
        valid = _ALL >> np.uint64(64 - n)
        t_cw_l = (t0l ^ t1l ^ ~a_word) & valid
        t_cw_r = (t0r ^ t1r ^ a_word) & valid
        v_lose = (v0l ^ v1l) & a_word | (v0r ^ v1r) & ~a_word
        v_keep = (v0r ^ v1r) & a_word | (v0l ^ v1l) & ~a_word
        v_cw = (v_lose ^ state[2, w] ^ a_word) & valid
        state[2, w] ^= v_keep ^ v_cw
        t_cw_keep = t_cw_r & a_word | t_cw_l & ~a_word
        state[0, w] = (t0r & a_word | t0l & ~a_word) ^ (t_cw_keep & t_0)
        state[1, w] = (t1r & a_word | t1l & ~a_word) ^ (t_cw_keep & t_1)
        word = first + w
        bits_cw[3 * level, word] = t_cw_l
        bits_cw[3 * level + 1, word] = t_cw_r
        bits_cw[3 * level + 2, word] = v_cw


@njit(nogil=True, cache=True, error_model="numpy")
def _fill_eval_inputs(seeds, sides, blocks):
    """The first level's AES inputs: the root seed XOR x's top bit (the chosen child's tweak)."""
    for j in range(seeds.shape[0] >> 1):
        blocks[2 * j] = seeds[2 * j] ^ ((sides[j >> 6] >> np.uint64(j & 63)) & _ONE)
        blocks[2 * j + 1] = seeds[2 * j + 1]


@njit(nogil=True, cache=True, error_model="numpy")
def _eval_level(permuted, blocks, seed_cw, bits_cw, level, x_planes, shift, first, state):
    """One level of Eval along x's path for a chunk (not the last), then its next level's AES inputs.

    ``state``: the control bits and the output bits as planes. No branch on a control bit (a coin flip per
    comparison): the corrections are masked in.
    """
    m = blocks.shape[0] >> 1
    for w in range((m + 63) >> 6):  # (a bound numba can vectorize the inner loop under)
        g = w << 6
        n = min(64, m - g)
        t = state[0, w]
        sides = x_planes[shift - 1, w]  # the next level's
        controls = values = _ZERO
        for i in range(n):
            k = 2 * (g + i)
            place = np.uint64(i)
            low = permuted[k] ^ blocks[k]
            on = _ZERO - ((t >> place) & _ONE)
            controls |= (low & _ONE) << place
            values |= ((low >> _ONE) & _ONE) << place
            blocks[k] = ((low & _SEED) ^ (seed_cw[k] & on)) | ((sides >> place) & _ONE)
            blocks[k + 1] = permuted[k + 1] ^ blocks[k + 1] ^ (seed_cw[k + 1] & on)
        _advance(bits_cw, level, first + w, x_planes[shift, w], state, w, t, controls, values)


@njit(nogil=True, cache=True, error_model="numpy")
def _eval_last(permuted, blocks, bits_cw, level, x_planes_last, first, state, out):
    """The last level's control and value bits, then the leaf's t CW_final: the output bits into ``out``."""
    m = blocks.shape[0] >> 1
    for w in range((m + 63) >> 6):  # (a bound numba can vectorize the inner loop under)
        g = w << 6
        n = min(64, m - g)
        t = state[0, w]
        controls = values = _ZERO
        for i in range(n):
            k = 2 * (g + i)
            place = np.uint64(i)
            low = permuted[k] ^ blocks[k]
            controls |= (low & _ONE) << place
            values |= ((low >> _ONE) & _ONE) << place
        _advance(bits_cw, level, first + w, x_planes_last[w], state, w, t, controls, values)
        out[w] = state[1, w] ^ (bits_cw[3 * level + 3, first + w] & state[0, w])


@njit(nogil=True, cache=True, inline="always")
def _advance(bits_cw, level, word, sides, state, w, t, controls, values):
    """t' = t_side XOR t t_CW^side and output ^= v_side XOR t V_CW, 64 comparisons at a time."""
    t_cw = bits_cw[3 * level, word] & ~sides | bits_cw[3 * level + 1, word] & sides
    state[1, w] ^= values ^ (bits_cw[3 * level + 2, word] & t)
    state[0, w] = controls ^ (t_cw & t)


# --- checks (shared with word_dcf) --------------------------------------------------------------------------------
_check_bits, _check_party, _check_inputs = checks.check_bits, checks.check_party, checks.check_inputs
