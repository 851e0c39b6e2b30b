"""Function secret sharing: the DCF (smpc.mpc.fss.dcf) and the masked sign/ReLU gadget (smpc.mpc.fss.compare).

Every check is exact: the two parties' outputs add up (mod 2^64) to beta * [x < alpha], or to msb(x) and ReLU(x),
at the edges (0, alpha - 1, alpha, alpha + 1, 2^n - 1, alpha = 0 and 2^n - 1) and at random points.
"""

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from smpc.mpc.fss import compare, dcf
from smpc.mpc.fss.fixed_key import FIXED_KEY, FixedKeyAES
from smpc.ring.prg import PRG

SIZES = (0, 1, 7, 64, 1000)
SIGN_EDGES = np.array([0, 1, -1, 2**62, -(2**62), 2**63 - 1, -(2**63), 2**62 - 1, -(2**62) - 1], np.int64)


def _top(bits: int) -> int:
    return (1 << bits) - 1


def _alphas(rng, bits: int, size: int) -> np.ndarray:
    """Half edges (0, 1, 2^n - 2, 2^n - 1), half uniform n-bit values."""
    top = _top(bits)
    edges = np.array([0, 1, top - 1, top], np.uint64)
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


def _reconstruct(keys_0, keys_1, x) -> np.ndarray:
    return dcf.eval(0, keys_0, x) + dcf.eval(1, keys_1, x)


def _expected(alpha, beta, x) -> np.ndarray:
    below = (x < alpha).astype(np.uint64)
    return beta * (below if beta.ndim == 1 else below[:, None])


# --- the DCF -------------------------------------------------------------------------------------------------------
@given(bits=st.sampled_from([8, 16, 64]), size=st.sampled_from(SIZES), width=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**32))
def test_dcf_outputs_add_up_to_beta_below_alpha(bits, size, width, seed):
    rng = np.random.default_rng(seed)
    alpha = _alphas(rng, bits, size)
    beta_shape = (size,) if width == 1 else (size, width)
    beta = rng.integers(0, 2**64 - 1, beta_shape, dtype=np.uint64, endpoint=True)
    keys_0, keys_1 = dcf.gen(alpha, beta, PRG.fresh(), bits)
    for x in (_points(rng, alpha, bits), alpha, (alpha - np.uint64(1)) & np.uint64(_top(bits))):
        assert np.array_equal(_reconstruct(keys_0, keys_1, x), _expected(alpha, beta, x))


@pytest.mark.parametrize("alpha", [0, 1, 2, 127, 128, 129, 200, 254, 255])
def test_dcf_brute_force_every_8_bit_input(alpha):
    x = np.arange(256, dtype=np.uint64)
    alphas = np.full(256, alpha, np.uint64)
    beta = PRG.fresh().random_ring(256)
    keys_0, keys_1 = dcf.gen(alphas, beta, PRG.fresh(), 8)
    assert np.array_equal(_reconstruct(keys_0, keys_1, x), beta * (x < alpha).astype(np.uint64))


def test_dcf_every_pair_of_3_bit_values_in_one_batch():
    alpha, x = (a.reshape(-1).astype(np.uint64) for a in np.meshgrid(np.arange(8), np.arange(8)))
    beta = np.arange(1, 65, dtype=np.uint64)
    keys_0, keys_1 = dcf.gen(alpha, beta, PRG.fresh(), 3)
    assert np.array_equal(_reconstruct(keys_0, keys_1, x), _expected(alpha, beta, x))


def test_dcf_one_bit_and_full_64_bit_edges():
    top = np.uint64(2**64 - 1)
    alpha = np.array([0, 1, 0, 1, 0, top, top, top, 2**63, 2**63], np.uint64)
    x = np.array([0, 0, 1, 1, top, top, top - np.uint64(1), 0, 2**63 - 1, 2**63], np.uint64)
    beta = np.full(alpha.size, 7, np.uint64)
    for bits in (1, 64):
        keep = slice(0, 4) if bits == 1 else slice(None)
        keys_0, keys_1 = dcf.gen(alpha[keep], beta[keep], PRG.fresh(), bits)
        assert np.array_equal(_reconstruct(keys_0, keys_1, x[keep]), _expected(alpha[keep], beta[keep], x[keep]))


def test_dcf_chunked_evaluation_matches_whole_batch():
    rng = np.random.default_rng(3)
    alpha = _alphas(rng, 64, 1000)
    keys_0, _ = dcf.gen(alpha, np.ones(1000, np.uint64), PRG.fresh())
    x = _points(rng, alpha, 64)
    assert np.array_equal(dcf.eval(0, keys_0, x, chunk=7), dcf.eval(0, keys_0, x, chunk=1 << 20))


def test_dcf_batch_of_several_chunks_with_a_partial_last_one():
    rng = np.random.default_rng(4)
    size = 2 * dcf.DEFAULT_CHUNK + 5
    alpha = _alphas(rng, 16, size)
    beta = rng.integers(0, 2**64 - 1, (size, 2), dtype=np.uint64, endpoint=True)
    keys_0, keys_1 = dcf.gen(alpha, beta, PRG.fresh(), 16)
    x = _points(rng, alpha, 16)
    assert np.array_equal(_reconstruct(keys_0, keys_1, x), _expected(alpha, beta, x))


def test_dcf_keys_are_deterministic_in_the_prg_key():
    alpha = np.arange(50, dtype=np.uint64)
    first = dcf.gen(alpha, alpha, PRG(bytes(16)), 16)
    again = dcf.gen(alpha, alpha, PRG(bytes(16)), 16)
    for one, two in zip(first, again):
        assert all(np.array_equal(getattr(one, f), getattr(two, f))
                   for f in ("seed", "seed_cw", "value_cw", "control_cw", "final_cw"))


@pytest.mark.parametrize("bits,width", [(1, 1), (8, 1), (16, 2), (63, 1), (63, 2), (64, 1), (64, 3)])
def test_key_bytes_match_the_arrays(bits, width):
    keys_0, keys_1 = dcf.gen(np.zeros(10, np.uint64), np.zeros((10, width), np.uint64), PRG.fresh(), bits)
    assert keys_0.nbytes == keys_1.nbytes == 10 * dcf.key_bytes(bits, width)
    assert dcf.key_bytes(64, 1) == 16 + 64 * 24 + 16 + 8 == 1576


def test_fixed_key_permutation_is_aes_ecb_under_the_public_key():
    blocks = PRG.fresh().random_ring((5, 3, 2))
    reference = Cipher(algorithms.AES(FIXED_KEY), modes.ECB()).encryptor().update(blocks.tobytes())
    assert FixedKeyAES().permute(blocks).tobytes() == reference
    assert FixedKeyAES().permute(np.zeros((0, 2), np.uint64)).shape == (0, 2)


# --- what one key shows --------------------------------------------------------------------------------------------
def _bit_means(array: np.ndarray) -> np.ndarray:
    """The frequency of every bit position of a uint64 (or uint8) array over its comparisons (axis -2 or 0)."""
    return np.unpackbits(array.view(np.uint8), axis=-1, bitorder="little").mean(axis=-2)


def test_each_key_alone_looks_uniform_and_does_not_follow_alpha():
    """A modest check, not a proof: over 8000 comparisons, the bits of one party's seeds and correction words are
    balanced for alpha = 0 and for alpha = 2^64 - 1 alike, and no level's control correction agrees with alpha's
    bit at that level more often than chance."""
    m = 8000
    beta = np.ones(m, np.uint64)
    low, high = (dcf.gen(np.full(m, a, np.uint64), beta, PRG.fresh())[1] for a in (0, 2**64 - 1))
    for keys in (low, high):
        seed_bits = _bit_means(keys.seed)
        assert np.all(np.abs(seed_bits[1:] - 0.5) < 0.04) and seed_bits[0] == 0  # bit 0: the control bit's place
        assert np.all(np.abs(_bit_means(keys.seed_cw)[:, 1:] - 0.5) < 0.04)
        assert np.all(np.abs(_bit_means(keys.value_cw) - 0.5) < 0.04)
        assert np.all(np.abs(_bit_means(keys.final_cw) - 0.5) < 0.04)
        assert np.all(np.abs(_bit_means(keys.control_cw) - 0.5) < 0.04)
    alpha = PRG.fresh().random_ring(m)
    keys_0, keys_1 = dcf.gen(alpha, beta, PRG.fresh())
    alpha_bits = np.unpackbits(alpha.view(np.uint8).reshape(m, 8)[:, ::-1], axis=1)  # most significant first
    controls = np.unpackbits(keys_0.control_cw, axis=1, bitorder="little")
    for side in (0, 1):
        agreement = (controls[:, side::2] == alpha_bits).mean(axis=0)
        assert np.all(np.abs(agreement - 0.5) < 0.04)
    assert not np.array_equal(keys_0.seed, keys_1.seed)
    assert np.mean(keys_0.seed == keys_1.seed) < 0.01


# --- the sign bit and ReLU of a masked value -------------------------------------------------------------------------
def _open(masks: np.ndarray, x: np.ndarray) -> np.ndarray:
    """c = x + r, opened from the parties' shares x_b + r_b (x split at random)."""
    x_0 = PRG.fresh().random_ring(x.size)
    return (x_0 + masks[0]) + ((x - x_0) + masks[1])


@given(size=st.sampled_from(SIZES), seed=st.integers(0, 2**32), with_product=st.booleans())
def test_sign_bit_and_relu_exact_at_edges_and_random_values(size, seed, with_product):
    rng = np.random.default_rng(seed)
    values = np.concatenate([SIGN_EDGES, rng.integers(-(2**63), 2**63 - 1, size, np.int64, endpoint=True),
                             rng.integers(-(2**20), 2**20, size, np.int64)])
    x = values.view(np.uint64)
    masks, keys_0, keys_1 = compare.deal_sign(PRG.fresh(), x.size, with_product)
    c = _open(masks, x)
    msb = compare.eval_sign(0, keys_0, c) + compare.eval_sign(1, keys_1, c)
    assert np.array_equal(msb, (values < 0).astype(np.uint64))
    if with_product:
        (msb_0, relu_0), (msb_1, relu_1) = compare.eval_relu(0, keys_0, c), compare.eval_relu(1, keys_1, c)
        assert np.array_equal(msb_0 + msb_1, msb)
        assert np.array_equal((relu_0 + relu_1).view(np.int64), np.maximum(values, 0))


def test_sign_material_sizes_and_uniform_masks():
    masks, keys_0, keys_1 = compare.deal_sign(PRG.fresh(), 3000, with_product=True)
    assert keys_0.nbytes == keys_1.nbytes == 3000 * compare.sign_key_bytes(True) == 3000 * 2088
    assert compare.sign_key_bytes(False) == 1568
    assert np.all(np.abs(_bit_means(masks[0].reshape(-1, 1)) - 0.5) < 0.05)
    assert np.array_equal(masks[0], keys_0.mask) and np.array_equal(masks[1], keys_1.mask)
    empty_masks, empty, _ = compare.deal_sign(PRG.fresh(), 0)
    assert empty_masks.shape == (2, 0) and compare.eval_sign(0, empty, np.zeros(0, np.uint64)).shape == (0,)


# --- bad input -----------------------------------------------------------------------------------------------------
def test_bad_input_is_refused_with_the_problem_named():
    prg = PRG.fresh()
    alpha = np.arange(4, dtype=np.uint64)
    keys_0, keys_1 = dcf.gen(alpha, alpha, prg, 8)
    with pytest.raises(TypeError, match="alpha must be a uint64"):
        dcf.gen(alpha.astype(np.int64), alpha, prg, 8)
    with pytest.raises(ValueError, match="alpha must be one-dimensional"):
        dcf.gen(alpha.reshape(2, 2), alpha, prg, 8)
    with pytest.raises(ValueError, match="alpha has values of more than 8 bits"):
        dcf.gen(alpha + np.uint64(256), alpha, prg, 8)
    with pytest.raises(ValueError, match=r"beta must have shape \(4,\)"):
        dcf.gen(alpha, alpha[:3], prg, 8)
    with pytest.raises(TypeError, match="beta must be a uint64"):
        dcf.gen(alpha, [1, 2, 3, 4], prg, 8)
    with pytest.raises(ValueError, match="payload width"):
        dcf.gen(alpha, np.zeros((4, dcf.MAX_WIDTH + 1), np.uint64), prg, 8)
    for bits in (0, 65, True, 8.0):
        with pytest.raises(ValueError, match="input bits"):
            dcf.gen(alpha, alpha, prg, bits)
    with pytest.raises(TypeError, match="prg must be"):
        dcf.gen(alpha, alpha, np.random.default_rng(), 8)
    for party in (2, -1, True, "0"):
        with pytest.raises(ValueError, match="party must be 0 or 1"):
            dcf.eval(party, keys_0, alpha)
    with pytest.raises(ValueError, match="party 0's DCF keys, evaluated as party 1"):
        dcf.eval(1, keys_0, alpha)
    with pytest.raises(ValueError, match="x has 3 elements but the keys are for 4"):
        dcf.eval(1, keys_1, alpha[:3])
    with pytest.raises(TypeError, match="x must be a uint64"):
        dcf.eval(1, keys_1, alpha.astype(np.float64))
    with pytest.raises(ValueError, match="x has values of more than 8 bits"):
        dcf.eval(1, keys_1, alpha << np.uint64(8))
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        dcf.eval(1, keys_1, alpha, chunk=0)
    with pytest.raises(TypeError, match="keys must be DCFKeys"):
        dcf.eval(0, {"seed": keys_0.seed}, alpha)
    with pytest.raises(ValueError, match="key field seed_cw"):
        dcf.DCFKeys(0, 8, keys_0.seed, keys_0.seed_cw[:4], keys_0.value_cw, keys_0.control_cw, keys_0.final_cw)


def test_bad_input_to_the_sign_gadget_is_refused():
    masks, keys_0, _ = compare.deal_sign(PRG.fresh(), 5)
    c = masks[0]
    with pytest.raises(ValueError, match="with_product=True"):
        compare.eval_relu(0, keys_0, c)
    with pytest.raises(TypeError, match="c .* must be a uint64"):
        compare.eval_sign(0, keys_0, c.view(np.int64))
    with pytest.raises(ValueError, match=r"c has shape \(4,\) but the sign keys are for \(5,\)"):
        compare.eval_sign(0, keys_0, c[:4])
    with pytest.raises(ValueError, match="party must be 0 or 1"):
        compare.eval_sign(3, keys_0, c)
    with pytest.raises(TypeError, match="keys must be SignKeys"):
        compare.eval_sign(0, keys_0.dcf, c)
    with pytest.raises(ValueError, match="count must be a non-negative integer"):
        compare.deal_sign(PRG.fresh(), -1)
    with pytest.raises(TypeError, match="prg must be"):
        compare.deal_sign(None, 3)
