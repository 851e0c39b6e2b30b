import numpy as np
import pytest

from smpc.ring import PRG, derive_key, fresh_key
from smpc.ring.prg import SEGMENT_BLOCKS, SEGMENT_BYTES


def test_same_key_same_stream_across_call_boundaries():
    key = fresh_key()
    one, two = PRG(key), PRG(key)
    whole = one.random_ring(3000)
    parts = np.concatenate([two.random_ring(1000), two.random_ring((10, 100)).ravel(), two.random_ring(1000)])
    assert np.array_equal(whole, parts)


def test_large_draws_cross_chunk_boundaries_consistently():
    key = fresh_key()
    big = PRG(key).random_bytes(3 * (1 << 20) + 5)
    pieces = PRG(key)
    joined = np.concatenate([pieces.random_bytes((1 << 20) + 3), pieces.random_bytes(2 * (1 << 20) + 2)])
    assert np.array_equal(big, joined)


def test_matches_the_segmented_counter_reference():
    # segment j is AES under K_j = AES_K(j) of the counter blocks 0, 1, ... (128-bit little-endian), computed here
    # block by block with separate ciphers, across the first segment boundary and from an odd position
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes(range(16))
    master = Cipher(algorithms.AES(key), modes.ECB()).encryptor()

    def block(number):
        segment, index = divmod(number, SEGMENT_BLOCKS)
        segment_key = master.update(segment.to_bytes(16, "little"))
        return Cipher(algorithms.AES(segment_key), modes.ECB()).encryptor().update(index.to_bytes(16, "little"))

    prg = PRG(key)
    assert prg.random_bytes(64).tobytes() == b"".join(block(i) for i in range(4))
    prg.random_bytes(SEGMENT_BYTES - 64 - 24 + 3)  # to 21 bytes before the boundary
    expected = b"".join(block(i) for i in range(SEGMENT_BLOCKS - 2, SEGMENT_BLOCKS + 3))[32 - 21 : 32 - 21 + 50]
    drawn = prg.random_bytes(50)
    assert drawn.tobytes() == expected and drawn.ctypes.data % 8 == 0


def test_draws_of_every_length_continue_the_stream():
    key = fresh_key()
    whole = PRG(key).random_bytes(3 * SEGMENT_BYTES + 77)
    pieces, lengths = PRG(key), [1, 15, 16, 17, 8, 3, SEGMENT_BYTES, 5, 2 * SEGMENT_BYTES - 40, 0, 12]
    joined = np.concatenate([pieces.random_bytes(n) for n in lengths])
    assert np.array_equal(whole[: joined.size], joined) and pieces.bytes_drawn == joined.size


def test_different_keys_differ_and_output_looks_uniform():
    a, b = PRG.fresh().random_ring(100_000), PRG.fresh().random_ring(100_000)
    assert not np.array_equal(a, b)
    bits = np.unpackbits(a.view(np.uint8))
    assert abs(bits.mean() - 0.5) < 0.005
    top = PRG.fresh().random_bits(100_000)
    assert set(np.unique(top)) == {0, 1} and abs(top.mean() - 0.5) < 0.01


def test_derive_key_separates_labels_and_secrets():
    secret = b"s" * 32
    assert derive_key(secret, "pair 0 1") != derive_key(secret, "pair 0 2")
    assert derive_key(secret, "x") != derive_key(b"t" * 32, "x")
    assert len(derive_key(secret, "x")) == 16


@pytest.mark.parametrize("key", [b"short", b"x" * 17, "a string of 16 b"])
def test_bad_keys(key):
    with pytest.raises(ValueError, match="16 bytes"):
        PRG(key)


def test_negative_length():
    with pytest.raises(ValueError, match="nbytes"):
        PRG.fresh().random_bytes(-1)
