"""Function secret sharing: the one-bit DCF (smpc.mpc.fss.bit_dcf) and the masked sign gadget (smpc.mpc.fss.compare).

Every check is exact: the two parties' outputs XOR to [x < alpha], or add up (mod 2^64) to msb(x) and x msb(x), at
the edges (0, alpha - 1, alpha, alpha + 1, 2^n - 1, alpha = 0 and 2^n - 1) and at random points.
"""

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from smpc.mpc.fss import bit_dcf, compare, wire
from smpc.mpc.fss.fixed_key import FIXED_KEY, FixedKeyAES
from smpc.ring.bitslice import plane_to_bits, plane_words
from smpc.ring.prg import PRG

SIZES = (0, 1, 7, 64, 65, 1000)
SIGN_EDGES = np.array([0, 1, -1, 2**62, -(2**62), 2**63 - 1, -(2**63), 2**62 - 1, -(2**62) - 1], np.int64)


def _top(bits: int) -> int:
    return (1 << bits) - 1


def _alphas(rng, bits: int, size: int) -> np.ndarray:
    """Half edges (0, 1, 2^n - 2, 2^n - 1), half uniform n-bit values."""
    top = _top(bits)
    edges = np.array([0, 1, max(top - 1, 0), top], np.uint64)
    uniform = rng.integers(0, top, size, dtype=np.uint64, endpoint=True)
    return np.where(rng.random(size) < 0.5, edges[rng.integers(0, 4, size)], uniform)


def _points(rng, alpha: np.ndarray, bits: int) -> np.ndarray:
    """Per comparison one of 0, alpha - 1, alpha, alpha + 1, 2^n - 1 or a uniform value (mod 2^n)."""
    top = np.uint64(_top(bits))
    size = alpha.size
    choices = np.stack([
        np.zeros(size, np.uint64), (alpha - np.uint64(1)) & top, alpha, (alpha + np.uint64(1)) & top,
        np.full(size, top, np.uint64), rng.integers(0, int(top), size, dtype=np.uint64, endpoint=True),
    ])
    return choices[rng.integers(0, len(choices), size), np.arange(size)]


def _reconstruct(keys_0, keys_1, x, chunk=bit_dcf.DEFAULT_CHUNK) -> np.ndarray:
    words = bit_dcf.eval(0, keys_0, x, chunk) ^ bit_dcf.eval(1, keys_1, x, chunk)
    assert words.shape == (plane_words(x.size),) and words.dtype == np.uint64
    if x.size % 64:
        assert words[-1] >> np.uint64(x.size % 64) == 0  # the bits past the batch are 0
    return plane_to_bits(words, x.size)


def _below(alpha, x) -> np.ndarray:
    return (x < alpha).astype(np.uint64)


# --- the DCF -------------------------------------------------------------------------------------------------------
@given(bits=st.sampled_from([1, 2, 8, 16, 63, 64]), size=st.sampled_from(SIZES), seed=st.integers(0, 2**32))
def test_dcf_outputs_xor_to_x_below_alpha(bits, size, seed):
    rng = np.random.default_rng(seed)
    alpha = _alphas(rng, bits, size)
    keys_0, keys_1 = bit_dcf.gen(alpha, PRG.fresh(), bits)
    for x in (_points(rng, alpha, bits), alpha, (alpha - np.uint64(1)) & np.uint64(_top(bits))):
        assert np.array_equal(_reconstruct(keys_0, keys_1, x), _below(alpha, x))


@pytest.mark.parametrize("alpha", [0, 1, 2, 127, 128, 129, 200, 254, 255])
def test_dcf_brute_force_every_8_bit_input(alpha):
    x = np.arange(256, dtype=np.uint64)
    alphas = np.full(256, alpha, np.uint64)
    keys_0, keys_1 = bit_dcf.gen(alphas, PRG.fresh(), 8)
    assert np.array_equal(_reconstruct(keys_0, keys_1, x), _below(alpha, x))


def test_dcf_every_pair_of_3_bit_values_in_one_batch():
    alpha, x = (a.reshape(-1).astype(np.uint64) for a in np.meshgrid(np.arange(8), np.arange(8)))
    keys_0, keys_1 = bit_dcf.gen(alpha, PRG.fresh(), 3)
    assert np.array_equal(_reconstruct(keys_0, keys_1, x), _below(alpha, x))


def test_dcf_one_bit_and_full_64_bit_edges():
    top = np.uint64(2**64 - 1)
    alpha = np.array([0, 1, 0, 1, 0, top, top, top, 2**63, 2**63], np.uint64)
    x = np.array([0, 0, 1, 1, top, top, top - np.uint64(1), 0, 2**63 - 1, 2**63], np.uint64)
    for bits in (1, 64):
        keep = slice(0, 4) if bits == 1 else slice(None)
        keys_0, keys_1 = bit_dcf.gen(alpha[keep], PRG.fresh(), bits)
        assert np.array_equal(_reconstruct(keys_0, keys_1, x[keep]), _below(alpha[keep], x[keep]))


def test_dcf_chunked_evaluation_matches_whole_batch():
    rng = np.random.default_rng(3)
    alpha = _alphas(rng, 64, 1000)
    keys_0, _ = bit_dcf.gen(alpha, PRG.fresh())
    x = _points(rng, alpha, 64)
    whole = bit_dcf.eval(0, keys_0, x, chunk=1 << 20)
    for chunk in (1, 7, 64, 130):  # rounded up to whole words of 64 comparisons
        assert np.array_equal(bit_dcf.eval(0, keys_0, x, chunk=chunk), whole)


def test_dcf_batch_of_several_chunks_with_a_partial_last_one():
    rng = np.random.default_rng(4)
    size = 2 * bit_dcf.DEFAULT_CHUNK + 5
    alpha = _alphas(rng, 16, size)
    keys_0, keys_1 = bit_dcf.gen(alpha, PRG.fresh(), 16)
    x = _points(rng, alpha, 16)
    assert np.array_equal(_reconstruct(keys_0, keys_1, x), _below(alpha, x))


def test_dcf_keys_are_deterministic_in_the_prg_key():
    alpha = np.arange(50, dtype=np.uint64)
    first = bit_dcf.gen(alpha, PRG(bytes(16)), 16)
    again = bit_dcf.gen(alpha, PRG(bytes(16)), 16)
    for one, two in zip(first, again):
        assert all(np.array_equal(getattr(one, f), getattr(two, f)) for f in ("seed", "seed_cw", "bits_cw"))


@pytest.mark.parametrize("bits,count", [(1, 10), (8, 64), (16, 65), (63, 10), (63, 1000), (64, 3)])
def test_key_bytes_match_the_arrays(bits, count):
    keys_0, keys_1 = bit_dcf.gen(np.zeros(count, np.uint64), PRG.fresh(), bits)
    assert keys_0.nbytes == keys_1.nbytes == bit_dcf.key_bytes(count, bits)
    # per comparison: the seed, 62 seed corrections, 3 bits per level and the final bit (1031.75 bytes)
    assert bit_dcf.key_bytes(64, 63) == 64 * (16 + 62 * 16) + 190 * 8


def test_fixed_key_permutation_is_aes_ecb_under_the_public_key():
    blocks = PRG.fresh().random_ring((5, 3, 2))
    reference = Cipher(algorithms.AES(FIXED_KEY), modes.ECB()).encryptor().update(blocks.tobytes())
    assert FixedKeyAES().permute(blocks).tobytes() == reference
    assert FixedKeyAES().permute(np.zeros((0, 2), np.uint64)).shape == (0, 2)
    # a permuter redoes the permutation of the same buffers at each call, seeing their new contents
    aes, flat = FixedKeyAES(), blocks.reshape(-1, 2).copy()
    permute = aes.permuter(flat, aes.buffer(flat))
    assert permute().tobytes() == reference
    flat ^= np.uint64(1)
    again = Cipher(algorithms.AES(FIXED_KEY), modes.ECB()).encryptor().update(flat.tobytes())
    assert permute().tobytes() == again
    with pytest.raises(ValueError, match="at least"):
        aes.permuter(flat, np.empty(flat.nbytes, np.uint8))


# --- what one key shows --------------------------------------------------------------------------------------------
def _bit_means(array: np.ndarray) -> np.ndarray:
    """The frequency of every bit position of a uint64 array over its comparisons (axis -2)."""
    return np.unpackbits(array.view(np.uint8), axis=-1, bitorder="little").mean(axis=-2)


def _plane_means(planes: np.ndarray, count: int) -> np.ndarray:
    """The frequency of a set bit in every plane (over its first ``count`` comparisons)."""
    return np.unpackbits(planes.view(np.uint8), axis=-1, bitorder="little")[:, :count].mean(axis=-1)


def test_each_key_alone_looks_uniform_and_does_not_follow_alpha():
    """A modest check, not a proof: over 8000 comparisons, the bits of one party's seeds and corrections are
    balanced for alpha = 0 and for alpha = 2^64 - 1 alike, and no level's control correction agrees with alpha's
    bit at that level more often than chance."""
    m = 8000
    low, high = (bit_dcf.gen(np.full(m, a, np.uint64), PRG.fresh())[1] for a in (0, 2**64 - 1))
    for keys in (low, high):
        seed_bits = _bit_means(keys.seed)
        assert np.all(np.abs(seed_bits[2:] - 0.5) < 0.04) and seed_bits[0] == seed_bits[1] == 0
        assert np.all(np.abs(_bit_means(keys.seed_cw)[:, 2:] - 0.5) < 0.04)
        assert np.all(np.abs(_plane_means(keys.bits_cw, m) - 0.5) < 0.04)
    alpha = PRG.fresh().random_ring(m)
    keys_0, keys_1 = bit_dcf.gen(alpha, PRG.fresh())
    alpha_bits = np.unpackbits(alpha.view(np.uint8).reshape(m, 8)[:, ::-1], axis=1)  # most significant first
    for side in (0, 1):
        controls = np.unpackbits(keys_0.bits_cw[side:-1:3].view(np.uint8), axis=1, bitorder="little")[:, :m]
        agreement = (controls.T == alpha_bits).mean(axis=0)
        assert np.all(np.abs(agreement - 0.5) < 0.04)
    assert keys_0.bits_cw is keys_1.bits_cw and keys_0.seed_cw is keys_1.seed_cw  # the corrections are shared
    assert np.mean(keys_0.seed == keys_1.seed) < 0.01


# --- the sign bit and x msb(x) of a masked value -------------------------------------------------------------------
def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = PRG.fresh().random_ring(x.size)
    return first, x - first


def _run_gadget(keys, x: np.ndarray):
    """Both parties' steps, the openings done here: (shares of msb(x), shares of x msb(x) or None)."""
    shares = _split(x)
    c = (shares[0] + keys[0].mask) + (shares[1] + keys[1].mask)
    e = compare.masked_sign(0, keys[0], c) ^ compare.masked_sign(1, keys[1], c)
    msb = [compare.sign(b, keys[b], e) for b in (0, 1)]
    if not keys[0].with_product:
        return msb, None
    return msb, [compare.times_sign(b, keys[b], shares[b], c, e) for b in (0, 1)]


@given(size=st.sampled_from(SIZES), seed=st.integers(0, 2**32), with_product=st.booleans())
def test_sign_bit_and_its_product_exact_at_edges_and_random_values(size, seed, with_product):
    rng = np.random.default_rng(seed)
    values = np.concatenate([SIGN_EDGES, rng.integers(-(2**63), 2**63 - 1, size, np.int64, endpoint=True),
                             rng.integers(-(2**20), 2**20, size, np.int64)])
    x = values.view(np.uint64)
    keys = compare.deal_sign(PRG.fresh(), x.size, with_product)
    msb, product = _run_gadget(keys, x)
    assert np.array_equal(msb[0] + msb[1], (values < 0).astype(np.uint64))
    if with_product:
        assert np.array_equal((product[0] + product[1]).view(np.int64), np.minimum(values, 0))


def test_the_dealer_splits_its_shares_between_the_prgs_and_the_reply():
    prgs = [PRG(bytes([rank]) * 16) for rank in (0, 1)]
    drawn = [compare.draw_shares(PRG(bytes([rank]) * 16), rank, 100, True) for rank in (0, 1)]
    keys = compare.deal_keys(PRG.fresh(), tuple(compare.draw_shares(prg, b, 100, True) for b, prg in enumerate(prgs)))
    for rank in (0, 1):  # a party draws what the dealer drew for it, in the same order
        assert np.array_equal(drawn[rank].mask, keys[rank].mask)
        assert np.array_equal(drawn[rank].top_xor, keys[rank].shares.top_xor)
    assert drawn[1].dabit is None and drawn[1].dabit_product is None  # party 1's come in the reply
    assert np.array_equal(drawn[0].dabit, keys[0].shares.dabit)
    r = keys[0].mask + keys[1].mask
    s = keys[0].shares.dabit + keys[1].shares.dabit
    assert set(np.unique(s).tolist()) == {0, 1}  # a bit, shared additively
    assert np.array_equal(keys[0].shares.dabit_product + keys[1].shares.dabit_product, r * s)
    u = plane_to_bits(keys[0].shares.top_xor ^ keys[1].shares.top_xor, 100)
    assert np.array_equal(u, s ^ (r >> np.uint64(63)))
    for rank in (0, 1):
        unpacked = wire.unpack(rank, wire.pack(keys[rank]), drawn[rank])
        assert all(np.array_equal(getattr(unpacked.dcf, f), getattr(keys[rank].dcf, f))
                   for f in ("seed", "seed_cw", "bits_cw"))
        assert np.array_equal(unpacked.shares.dabit_product, keys[rank].shares.dabit_product)


def test_sign_material_sizes():
    keys_0, keys_1 = compare.deal_sign(PRG.fresh(), 3000, with_product=True)
    assert keys_0.nbytes == keys_1.nbytes == compare.sign_key_bytes(3000, True)
    assert compare.sign_key_bytes(64, False) == 64 * (8 + 8 + 16 + 62 * 16) + 8 + 190 * 8  # 1048 B per element
    assert compare.sign_key_bytes(64, True) == compare.sign_key_bytes(64, False) + 64 * 8
    assert wire.reply_words(0, 64, True) * 8 == bit_dcf.key_bytes(64, compare.LOW_BITS)
    assert wire.reply_words(1, 64, True) == wire.reply_words(0, 64, True) + 128
    empty_0, empty_1 = compare.deal_sign(PRG.fresh(), 0)
    assert compare.masked_sign(0, empty_0, np.zeros(0, np.uint64)).shape == (0,)
    assert compare.sign(1, empty_1, np.zeros(0, np.uint64)).shape == (0,)


# --- bad input -----------------------------------------------------------------------------------------------------
def test_bad_input_is_refused_with_the_problem_named():
    prg = PRG.fresh()
    alpha = np.arange(4, dtype=np.uint64)
    keys_0, keys_1 = bit_dcf.gen(alpha, prg, 8)
    with pytest.raises(TypeError, match="alpha must be a uint64"):
        bit_dcf.gen(alpha.astype(np.int64), prg, 8)
    with pytest.raises(ValueError, match="alpha must be one-dimensional"):
        bit_dcf.gen(alpha.reshape(2, 2), prg, 8)
    with pytest.raises(ValueError, match="alpha has values of more than 8 bits"):
        bit_dcf.gen(alpha + np.uint64(256), prg, 8)
    for bits in (0, 65, True, 8.0):
        with pytest.raises(ValueError, match="input bits"):
            bit_dcf.gen(alpha, prg, bits)
    with pytest.raises(TypeError, match="prg must be"):
        bit_dcf.gen(alpha, np.random.default_rng(), 8)
    for party in (2, -1, True, "0"):
        with pytest.raises(ValueError, match="party must be 0 or 1"):
            bit_dcf.eval(party, keys_0, alpha)
    with pytest.raises(ValueError, match="party 0's DCF keys, evaluated as party 1"):
        bit_dcf.eval(1, keys_0, alpha)
    with pytest.raises(ValueError, match="x has 3 elements but the keys are for 4"):
        bit_dcf.eval(1, keys_1, alpha[:3])
    with pytest.raises(TypeError, match="x must be a uint64"):
        bit_dcf.eval(1, keys_1, alpha.astype(np.float64))
    with pytest.raises(ValueError, match="x has values of more than 8 bits"):
        bit_dcf.eval(1, keys_1, alpha << np.uint64(8))
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        bit_dcf.eval(1, keys_1, alpha, chunk=0)
    with pytest.raises(TypeError, match="keys must be BitDCFKeys"):
        bit_dcf.eval(0, {"seed": keys_0.seed}, alpha)
    with pytest.raises(ValueError, match="key field seed_cw"):
        bit_dcf.BitDCFKeys(0, 8, keys_0.seed, keys_0.seed_cw[:4], keys_0.bits_cw)
    with pytest.raises(ValueError, match="key field bits_cw"):
        bit_dcf.BitDCFKeys(0, 8, keys_0.seed, keys_0.seed_cw, keys_0.bits_cw[1:])


def test_bad_input_to_the_sign_gadget_is_refused():
    keys_0, keys_1 = compare.deal_sign(PRG.fresh(), 5)
    c = keys_0.mask
    e = compare.masked_sign(0, keys_0, c)
    with pytest.raises(ValueError, match="with_product=True"):
        compare.times_sign(0, keys_0, c, c, e)
    with pytest.raises(TypeError, match="c .* must be a uint64"):
        compare.masked_sign(0, keys_0, c.view(np.int64))
    with pytest.raises(ValueError, match=r"c has shape \(4,\) but the sign keys are for \(5,\)"):
        compare.masked_sign(0, keys_0, c[:4])
    with pytest.raises(ValueError, match="party must be 0 or 1"):
        compare.masked_sign(3, keys_0, c)
    with pytest.raises(ValueError, match="party 1's sign keys, used as party 0"):
        compare.sign(0, keys_1, e)
    with pytest.raises(TypeError, match="keys must be SignKeys"):
        compare.masked_sign(0, keys_0.dcf, c)
    with pytest.raises(ValueError, match="e must be the 1 packed uint64 words of 5 bits"):
        compare.sign(0, keys_0, np.zeros(2, np.uint64))
    with pytest.raises(ValueError, match="count must be a non-negative integer"):
        compare.deal_sign(PRG.fresh(), -1)
    with pytest.raises(TypeError, match="prg must be"):
        compare.deal_sign(None, 3)
    with pytest.raises(ValueError, match="party 1's sign keys for 5 elements are 825 uint64 words"):
        wire.unpack(1, np.zeros(824, np.uint64), keys_1.shares)
