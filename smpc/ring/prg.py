"""Cryptographically secure pseudo-random generator: AES-128 in counter mode.

Every share, mask and triple in smpc is drawn from a :class:`PRG`. Two parties that
hold the same key and draw the same sequence of requests get the same values, which
is how pairwise zero-sharings and seed-compressed dealer output work.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16
_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)  # constant plaintext: AES-CTR of zeros is the key stream


class PRG:
    """AES-128-CTR key stream, read as uint64 ring elements or bytes.

    The key must be 16 bytes from a secure source (:func:`fresh_key`) or derived with
    :func:`derive_key`. The stream continues across calls; it is not thread-safe, so
    each party owns its own generators.
    """

    def __init__(self, key: bytes):
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            raise ValueError(f"PRG key must be {KEY_BYTES} bytes")
        cipher = Cipher(algorithms.AES(bytes(key)), modes.CTR(bytes(16)))
        self._encryptor = cipher.encryptor()
        self.bytes_drawn = 0

    @classmethod
    def fresh(cls) -> "PRG":
        """A generator keyed from the operating system's CSPRNG."""
        return cls(fresh_key())

    def random_bytes(self, nbytes: int) -> np.ndarray:
        """``nbytes`` pseudo-random bytes as a uint8 array."""
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        out = np.empty(nbytes + 16, dtype=np.uint8)
        view = memoryview(out)
        for start in range(0, nbytes, _CHUNK):
            stop = min(start + _CHUNK, nbytes)
            src = _ZEROS if stop - start == _CHUNK else _ZEROS[: stop - start]
            self._encryptor.update_into(src, view[start : stop + 15])
        self.bytes_drawn += nbytes
        return out[:nbytes]

    def random_ring(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """Uniformly random elements of Z_2^64 (uint64) of the given shape."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        count = int(np.prod(shape, dtype=np.int64))
        return self.random_bytes(8 * count).view(np.uint64).reshape(shape)

    def random_bits(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """Uniformly random bits (uint64 values 0 or 1) of the given shape: every bit of the key stream is one
        (a byte makes eight), so n bits cost n / 8 bytes of AES."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        count = int(np.prod(shape, dtype=np.int64))
        bits = np.unpackbits(self.random_bytes((count + 7) // 8), count=count)
        return bits.astype(np.uint64).reshape(shape)


def fresh_key() -> bytes:
    """A new 128-bit key from ``os.urandom``."""
    return os.urandom(KEY_BYTES)


def derive_key(secret: bytes, label: str) -> bytes:
    """A 128-bit key derived from ``secret`` for the purpose named by ``label``.

    Used to turn one agreed secret (an X25519 shared secret, or a debugging seed) into
    independent keys; SHA-256 over an unambiguous encoding is a sound KDF for a secret
    that is already uniformly random.
    """
    label_bytes = label.encode()
    material = len(secret).to_bytes(4, "big") + secret + label_bytes
    return hashlib.sha256(b"smpc-kdf-v1" + material).digest()[:KEY_BYTES]
