"""Exceptions of :mod:`smpc.he`; messages name the problem and the index, never a secret or a plaintext."""

from smpc.exceptions import SmpcError


class PaillierError(SmpcError):
    """Base class of every error :mod:`smpc.he.paillier` raises on purpose."""


class InsecureKeyError(PaillierError, ValueError):
    """A key below 2048 bits was asked for (or loaded) without ``insecure=True``."""


class KeyMismatchError(PaillierError, ValueError):
    """Operands, or a ciphertext and a key, belong to different Paillier keys."""


class EncodingError(PaillierError, ValueError):
    """A plaintext cannot be encoded: not finite, not a number, or of an unsupported type."""


class PlaintextOverflowError(PaillierError, ValueError):
    """A plaintext, a packed slot or an addition budget would overflow its space."""


class DecryptionError(PaillierError, ValueError):
    """A ciphertext decrypted outside its array's bound: wrong key, corrupted or forged."""


class SerializationError(PaillierError, ValueError):
    """A serialized key or ciphertext array is malformed or fails validation."""


class InvalidKeyError(PaillierError, ValueError):
    """A key's numbers fail validation: n is not a product of two suitable primes, or p, q are not its factors."""


class InputTypeError(PaillierError, TypeError):
    """A loader was given a Python object of the wrong type (not JSON text, bytes or a phe object)."""
