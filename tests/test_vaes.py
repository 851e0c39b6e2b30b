"""AES-128 on VAES (smpc.ring.vaes): FIPS-197's key schedule and example, agreement with OpenSSL on every length,
and the DCF's fixed-key AES equal on both paths."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from smpc.mpc.fss import fixed_key
from smpc.ring import vaes

needs_vaes = pytest.mark.skipif(not vaes.available(), reason="this CPU has no VAES/AVX-512 (OpenSSL serves it)")

FIPS_KEY = bytes(range(16))  # FIPS-197 appendix C.1
FIPS_PLAIN = bytes.fromhex("00112233445566778899aabbccddeeff")
FIPS_CIPHER = bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")


def _openssl(key: bytes, data: bytes) -> bytes:
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(data)


def test_sbox_and_key_schedule_follow_fips_197():
    box = vaes.sbox()
    assert (box[0x00], box[0x01], box[0x53], box[0xFF]) == (0x63, 0x7C, 0xED, 0x16)
    assert sorted(box) == list(range(256))
    # FIPS-197 appendix A.1: the key 2b7e1516 28aed2a6 abf71588 09cf4f3c; its last round key d014f9a8 c9ee2589
    # e13f0cc8 b6630ca6.
    schedule = vaes.expand_key(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"))
    assert schedule.shape == (11, 2)
    assert schedule[10].astype("<u8").tobytes().hex() == "d014f9a8c9ee2589e13f0cc8b6630ca6"


@pytest.mark.parametrize("key", [b"", b"x" * 15, b"x" * 17, "k" * 16])
def test_bad_keys_are_refused(key):
    with pytest.raises(ValueError, match="16-byte key"):
        vaes.expand_key(key)


@needs_vaes
def test_fips_197_example():
    src = np.frombuffer(FIPS_PLAIN * 5, dtype=np.uint64).copy()
    dst = np.empty_like(src)
    vaes.ecb_encrypt(vaes.expand_key(FIPS_KEY), src, dst)
    assert dst.tobytes() == FIPS_CIPHER * 5


@needs_vaes
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 70), st.binary(min_size=16, max_size=16), st.integers(0, 2**32))
def test_every_length_agrees_with_openssl(blocks, key, seed):
    """Lengths around the kernel's groups of 4 blocks and its steps of 16, the padded tail included."""
    src = np.random.default_rng(seed).integers(0, 2**64, 2 * blocks, dtype=np.uint64)
    dst = np.empty_like(src)
    vaes.ecb_encrypt(vaes.expand_key(key), src, dst)
    assert dst.tobytes() == _openssl(key, src.tobytes())


def test_not_available_without_the_cpu_flags(monkeypatch):
    from smpc.ring import cpu

    monkeypatch.setattr(cpu, "flags", lambda: frozenset({"aes", "avx2"}))
    vaes.available.cache_clear()
    try:
        assert not vaes.available()
    finally:
        vaes.available.cache_clear()


@pytest.mark.parametrize("blocks_count", [37, vaes.MIN_BYTES // 16 + 3])
def test_fixed_key_aes_is_the_same_on_both_paths(monkeypatch, blocks_count):
    """Below vaes.MIN_BYTES OpenSSL runs; from it on the VAES kernel (where the CPU has it): the same blocks."""
    blocks = np.random.default_rng(3).integers(0, 2**64, (blocks_count, 2), dtype=np.uint64)
    want = np.frombuffer(_openssl(fixed_key.FIXED_KEY, blocks.tobytes()), dtype=np.uint64).reshape(blocks_count, 2)
    assert np.array_equal(fixed_key.FixedKeyAES().permute(blocks), want)
    monkeypatch.setattr(fixed_key, "_round_keys", lambda: None)
    aes = fixed_key.FixedKeyAES()
    permute = aes.permuter(blocks, aes.buffer(blocks))
    assert np.array_equal(permute(), want)
    blocks[0] ^= np.uint64(1)  # the permuter reads its blocks again at every call
    assert not np.array_equal(permute(), want)


def test_a_permuter_refuses_blocks_it_cannot_read_in_place():
    blocks = np.zeros((8, 2), np.uint64)[::2]
    aes = fixed_key.FixedKeyAES()
    with pytest.raises(ValueError, match="C-contiguous"):
        aes.permuter(blocks, aes.buffer(np.zeros((8, 2), np.uint64)))


@needs_vaes
def test_the_prg_stream_is_the_same_on_both_paths(monkeypatch):
    """The VAES counter kernel gives the PRG the very stream OpenSSL's ECB on counter blocks gives, across segment
    boundaries and at every offset, and small (OpenSSL) and large (VAES) draws interleave in one stream."""
    from smpc.ring import prg as prg_module

    key = bytes(range(3, 19))
    sizes = (1, 15, 16, 17, 64, 63, prg_module.SEGMENT_BYTES - 200, 1000, 2 * prg_module.SEGMENT_BYTES + 5, 0, 7,
             70_000, 3, 65_536, 65_535, 100_001)

    def stream(threshold: int) -> list[bytes]:
        monkeypatch.setattr(vaes, "MIN_BYTES", threshold)
        generator = prg_module.PRG(key)
        return [generator.random_bytes(n).tobytes() for n in sizes]

    openssl_only = stream(1 << 62)
    assert stream(0) == openssl_only  # every draw on VAES
    assert stream(1 << 16) == openssl_only  # the default rule: both paths, one stream


@needs_vaes
@pytest.mark.parametrize("nbytes", [0, 16, 48, 64, 80, 1024 + 32])
def test_counter_stream_equals_ecb_on_counter_blocks(nbytes):
    schedule = vaes.expand_key(FIPS_KEY)
    counters = np.zeros((nbytes // 16, 2), np.uint64)
    counters[:, 0] = np.arange(7, 7 + nbytes // 16, dtype=np.uint64)
    out = np.empty(nbytes + 3, np.uint8)[3:]
    vaes.counter_stream(schedule, 7, out)
    assert out.tobytes() == _openssl(FIPS_KEY, counters.astype("<u8").tobytes())
    with pytest.raises(ValueError, match="whole 16-byte blocks"):
        vaes.counter_stream(schedule, 0, np.empty(nbytes + 5, np.uint8))


def _reference_key_schedule(key: bytes) -> np.ndarray:
    """FIPS-197 5.2 in plain Python, word by word (RotWord, SubWord, Rcon), from the library's S-box."""
    box = vaes.sbox()
    words = [list(key[4 * i : 4 * i + 4]) for i in range(4)]
    rcon = 1
    for i in range(4, 44):
        temp = list(words[i - 1])
        if i % 4 == 0:
            temp = [box[b] for b in temp[1:] + temp[:1]]
            temp[0] ^= rcon
            rcon = (rcon << 1) ^ (0x11B if rcon & 0x80 else 0)
        words.append([a ^ b for a, b in zip(words[i - 4], temp)])
    return np.frombuffer(bytes(b for word in words for b in word), dtype="<u8").astype(np.uint64).reshape(11, 2)


def test_the_compiled_key_schedule_equals_the_reference():
    for key in (bytes(16), bytes(range(16)), bytes([255] * 16), bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")):
        assert np.array_equal(vaes.expand_key(key), _reference_key_schedule(key))
