"""Paillier encryption of numpy arrays on gmpy2: keys, encrypted and packed arrays, phe interop.

``pk, sk = keygen(2048)``; ``a = pk.encrypt(x)``; ``sk.decrypt(a @ w + b)``. Fast encryption uses a
fixed base with a short exponent (:mod:`smpc.he.djn`; by GMP or a comb, :mod:`smpc.he.randomness`),
decryption uses CRT, large batches use every core on threads (:class:`Parallelism`; no worker
processes, so scripts need no main guard), and ``pk.encrypt_packed`` puts many values in one ciphertext
(:mod:`smpc.he.packing`). Ciphertexts are standard Paillier (g = n + 1), so phe reads ours and we read
phe's (:meth:`EncryptedArray.from_phe`, :meth:`EncryptedArray.to_phe`). Integer-level operations for
protocols are the ``raw_*`` methods of the keys (:mod:`smpc.he.raw`, hazmat).
"""

from smpc.he._parallel import DEFAULT as DEFAULT_PARALLELISM
from smpc.he._parallel import Parallelism
from smpc.he.encrypted_array import EncryptedArray
from smpc.he.errors import (
    DecryptionError,
    EncodingError,
    InputTypeError,
    InsecureKeyError,
    InvalidKeyError,
    KeyMismatchError,
    PaillierError,
    PlaintextOverflowError,
    SerializationError,
)
from smpc.he.packing import PackedEncryptedArray
from smpc.he.keygen import keygen
from smpc.he.private_key import PrivateKey
from smpc.he.public_key import PublicKey

__all__ = [
    "DEFAULT_PARALLELISM",
    "DecryptionError",
    "EncodingError",
    "EncryptedArray",
    "InputTypeError",
    "InsecureKeyError",
    "InvalidKeyError",
    "KeyMismatchError",
    "PackedEncryptedArray",
    "PaillierError",
    "Parallelism",
    "PlaintextOverflowError",
    "PrivateKey",
    "PublicKey",
    "SerializationError",
    "keygen",
]
