"""Key agreement, key derivation, share encryption and mask expansion for secure aggregation.

Bonawitz et al., CCS 2017, section 4 (and figure 4): every client has two X25519 key
pairs, (c_PK, c_SK) to encrypt the Shamir shares it sends through the server
(authenticated encryption: AES-256-GCM) and (s_PK, s_SK) whose agreement with a
neighbour seeds their pairwise mask. Keys come from HKDF-SHA256 over the X25519 shared
secret with a label naming the purpose and the pair; masks are the AES-128 key stream
of :class:`smpc.ring.prg.PRG` read as ring elements.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from smpc.fl.shamir import SHARE_BYTES
from smpc.ring.prg import KEY_BYTES, PRG

KEY_BYTES_X25519 = 32
#: bytes a client advertises: c_PK then s_PK
PUBLIC_BYTES = 2 * KEY_BYTES_X25519
_NONCE_BYTES = 12
_TAG_BYTES = 16
_IDS = struct.Struct("!II")
_PLAIN_BYTES = _IDS.size + 2 * SHARE_BYTES
#: bytes of one encrypted share pair (nonce, ciphertext of sender|receiver|s-share|b-share, tag)
CIPHERTEXT_BYTES = _NONCE_BYTES + _PLAIN_BYTES + _TAG_BYTES
_LABEL = b"smpc-secagg-v1 "


class KeyAgreementError(ValueError):
    """A peer's public key is unusable (X25519 gave the all-zero secret: a low-order point)."""


class ShareDecryptionError(ValueError):
    """An encrypted share failed authentication or names the wrong pair of clients."""


@dataclass(frozen=True)
class ClientKeys:
    """A client's two key pairs: ``encryption`` (c) for shares, ``masking`` (s) for pairwise masks."""

    encryption: X25519PrivateKey
    masking: X25519PrivateKey

    @classmethod
    def generate(cls) -> "ClientKeys":
        """Fresh key pairs from the operating system's CSPRNG (via ``cryptography``)."""
        return cls(X25519PrivateKey.generate(), X25519PrivateKey.generate())

    def public_bytes(self) -> bytes:
        """c_PK followed by s_PK, 64 bytes (AdvertiseKeys, Bonawitz et al. round 0)."""
        return self.encryption.public_key().public_bytes_raw() + self.masking.public_key().public_bytes_raw()


def split_public(advertised: bytes) -> tuple[bytes, bytes]:
    """``(c_PK, s_PK)`` from the 64 advertised bytes."""
    if len(advertised) != PUBLIC_BYTES:
        raise ValueError(f"advertised keys are {PUBLIC_BYTES} bytes, got {len(advertised)}")
    return advertised[:KEY_BYTES_X25519], advertised[KEY_BYTES_X25519:]


def private_to_int(key: X25519PrivateKey) -> int:
    """The 32 private-key bytes as an integer, to be Shamir-shared."""
    return int.from_bytes(key.private_bytes_raw(), "big")


def private_from_int(value: int) -> X25519PrivateKey:
    """The private key a reconstructed integer stands for."""
    if not 0 <= value < 1 << (8 * KEY_BYTES_X25519):
        raise ValueError("a reconstructed private key does not fit in 32 bytes")
    return X25519PrivateKey.from_private_bytes(value.to_bytes(KEY_BYTES_X25519, "big"))


def mask_seed(private: X25519PrivateKey, peer_public: bytes, a: int, b: int) -> bytes:
    """The PRG key of the pairwise mask between clients ``a`` and ``b`` (symmetric in the pair)."""
    low, high = sorted((a, b))
    return _derive(private, peer_public, KEY_BYTES, b"mask %d %d" % (low, high))


def share_key(private: X25519PrivateKey, peer_public: bytes, a: int, b: int) -> bytes:
    """The AES-256-GCM key for shares travelling between clients ``a`` and ``b``."""
    low, high = sorted((a, b))
    return _derive(private, peer_public, 32, b"shares %d %d" % (low, high))


def encrypt_shares(key: bytes, sender: int, receiver: int, s_share: int, b_share: int) -> bytes:
    """Encrypt ``sender | receiver | share of s_SK | share of b`` (Bonawitz et al., round 1)."""
    plain = _IDS.pack(sender, receiver) + s_share.to_bytes(SHARE_BYTES, "big") + b_share.to_bytes(SHARE_BYTES, "big")
    nonce = os.urandom(_NONCE_BYTES)  # the key serves both directions of the pair: never reuse a nonce
    return nonce + AESGCM(key).encrypt(nonce, plain, _LABEL + b"shares")


def decrypt_shares(key: bytes, sender: int, receiver: int, blob: bytes) -> tuple[bytes, bytes]:
    """The encoded (s-share, b-share) in ``blob``, after checking it is authentic and for this pair."""
    if len(blob) != CIPHERTEXT_BYTES:
        raise ShareDecryptionError(f"an encrypted share pair has {CIPHERTEXT_BYTES} bytes, got {len(blob)}")
    try:
        plain = AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _LABEL + b"shares")
    except InvalidTag:
        raise ShareDecryptionError(f"the shares from client {sender} failed authentication") from None
    if _IDS.unpack(plain[: _IDS.size]) != (sender, receiver):
        raise ShareDecryptionError(f"the shares from client {sender} were addressed to another pair of clients")
    body = plain[_IDS.size :]
    return body[:SHARE_BYTES], body[SHARE_BYTES:]


def expand_mask(seed: bytes, size: int, dtype: np.dtype) -> np.ndarray:
    """``size`` uniformly random ring elements of ``dtype`` from the PRG keyed by ``seed``."""
    dtype = np.dtype(dtype)
    return PRG(seed).random_bytes(size * dtype.itemsize).view(dtype)


def _derive(private: X25519PrivateKey, peer_public: bytes, length: int, purpose: bytes) -> bytes:
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        raise KeyAgreementError("X25519 agreement with an advertised public key failed (low-order point)") from None
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=_LABEL + purpose).derive(shared)
