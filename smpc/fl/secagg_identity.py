"""Long-term client identities for secure aggregation against an active server: Ed25519 signatures.

Bonawitz et al., CCS 2017, section 4 (the active-adversary version of figure 4): every client holds a
long-term signing key whose verification key was registered at enrolment (a PKI the server cannot
change). Two things are signed, each bound to the run's session id and a purpose label:

- in AdvertiseKeys, the client's id and its two fresh public keys (c_PK | s_PK): a server that substitutes
  its own keys for a client's (to decrypt the shares sent to it, or to learn its pairwise masks) is caught
  by every neighbour that checks the signature;
- in ConsistencyCheck, the survivor list U3 the server announced: each client signs the list it was shown,
  and before unmasking checks that at least t clients of its neighbourhood signed the same list, so the
  server cannot call a client dropped to some clients and alive to others without being caught.

:class:`Enrolment` is the registry of verification keys (public); a client's signing key is its own 32
raw private bytes (:func:`enrol` makes fresh ones for simulations; deployments load each from the site's
own file).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_BYTES = 64
VERIFY_KEY_BYTES = 32
SIGNING_KEY_BYTES = 32
SESSION_BYTES = 16
_LABEL = b"smpc-secagg-v2 "
_COUNT = struct.Struct("!I")


@dataclass(frozen=True)
class Enrolment:
    """The verification key (32 raw Ed25519 bytes) of every client, client ``c`` at index ``c``."""

    keys: tuple[bytes, ...]

    def __post_init__(self):
        keys = tuple(self.keys)
        if any(not isinstance(k, bytes) or len(k) != VERIFY_KEY_BYTES for k in keys):
            raise ValueError(f"an enrolment holds one {VERIFY_KEY_BYTES}-byte Ed25519 verification key per client")
        if len(set(keys)) != len(keys):
            raise ValueError("two clients are enrolled with the same verification key")
        object.__setattr__(self, "keys", keys)

    @classmethod
    def of(cls, signing_keys: Sequence[bytes]) -> "Enrolment":
        """The registry of the clients whose signing keys are given (simulations, tests)."""
        return cls(tuple(_private(k).public_key().public_bytes_raw() for k in signing_keys))

    def __len__(self) -> int:
        return len(self.keys)

    def verifies(self, client: int, signature: bytes, statement: bytes) -> bool:
        """Whether ``signature`` is client ``client``'s signature of ``statement``."""
        if not 0 <= client < len(self.keys) or len(signature) != SIGNATURE_BYTES:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.keys[client]).verify(signature, statement)
        except (InvalidSignature, ValueError):  # a forged signature, or a registered key that is no curve point
            return False
        return True


def enrol(n_clients: int) -> tuple[list[bytes], Enrolment]:
    """Fresh signing keys for ``n_clients`` clients (from the OS CSPRNG) and their enrolment."""
    keys = [Ed25519PrivateKey.generate().private_bytes_raw() for _ in range(n_clients)]
    return keys, Enrolment.of(keys)


def new_session() -> bytes:
    """A fresh run identifier (16 bytes from the OS CSPRNG): signatures from one run do not verify in another."""
    return os.urandom(SESSION_BYTES)


def sign(signing_key: bytes, statement: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``statement``."""
    return _private(signing_key).sign(statement)


def keys_statement(session: bytes, client: int, advertised: bytes) -> bytes:
    """What a client signs in AdvertiseKeys: the session, its id and c_PK | s_PK."""
    return _LABEL + b"keys " + session + _COUNT.pack(client) + advertised


def survivors_statement(session: bytes, survivors: Sequence[int], signer_keys: bytes) -> bytes:
    """What a client signs in ConsistencyCheck: the session, the sorted survivor list U3 and the signer's own
    fresh keys of this run (c_PK | s_PK), so that a confirmation cannot be replayed in another run even
    under the same session id (the server picks it; the clients' keys are new every run)."""
    return (_LABEL + b"survivors " + session + _COUNT.pack(len(survivors))
            + b"".join(_COUNT.pack(c) for c in survivors) + signer_keys)


def check_signing_keys(signing_keys: Sequence[bytes], enrolment: Enrolment) -> list[bytes]:
    """The clients' signing keys, checked to match the enrolment one by one (``ValueError`` naming a client)."""
    keys = list(signing_keys)
    if len(keys) != len(enrolment):
        raise ValueError(f"{len(keys)} signing keys for {len(enrolment)} enrolled clients")
    for c, key in enumerate(keys):
        if _private(key).public_key().public_bytes_raw() != enrolment.keys[c]:
            raise ValueError(f"client {c}'s signing key does not match its enrolled verification key")
    return keys


def _private(signing_key: bytes) -> Ed25519PrivateKey:
    if not isinstance(signing_key, bytes) or len(signing_key) != SIGNING_KEY_BYTES:
        raise ValueError(f"a signing key is {SIGNING_KEY_BYTES} raw Ed25519 private-key bytes")
    return Ed25519PrivateKey.from_private_bytes(signing_key)
