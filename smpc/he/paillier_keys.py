"""The Paillier public key's numbers and raw layer: validation, the raw_* operations on integers mod n, formats.

:class:`RawPublicKey` is what the array modules (:mod:`smpc.he.encrypted_array`, :mod:`smpc.he.packing`) need
of a key; :class:`smpc.he.public_key.PublicKey` adds their encryption entry points (``pk.encrypt``).
``n = p q`` has exactly ``bits`` bits and ``g = n + 1``. Keys below 2048 bits need ``insecure=True``.
A key's ``fingerprint`` (SHA-256 of n, 128 bits in hex) names it in errors and serialized arrays;
``repr`` of a private key shows only that fingerprint, and no error message carries p, q or a plaintext.
"""

from __future__ import annotations

import hashlib

import gmpy2
from gmpy2 import mpz

from smpc.he import raw, serialization
from smpc.he._parallel import DEFAULT, Parallelism
from smpc.he.errors import InputTypeError, InsecureKeyError, InvalidKeyError, SerializationError
from smpc.he.randomness import Randomness

MIN_SECURE_BITS = 2048
MIN_INSECURE_BITS = 256
MAX_BITS = 8192
_SMALL_PRIMES = 2 * 3 * 5 * 7 * 11 * 13 * 17 * 19 * 23 * 29 * 31 * 37 * 41 * 43 * 47


def check_bits(bits, insecure: bool) -> int:
    """Validate a key size: an integer, >= 2048 unless ``insecure``, and within [256, 8192]."""
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise TypeError(f"bits must be an integer, got {type(bits).__name__}")
    if not MIN_INSECURE_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in [{MIN_INSECURE_BITS}, {MAX_BITS}], got {bits}")
    if bits < MIN_SECURE_BITS and not insecure:
        raise InsecureKeyError(f"a {bits}-bit Paillier key is insecure: use >= {MIN_SECURE_BITS} bits, "
                               "or pass insecure=True (tests only)")
    return bits


def fingerprint(n) -> str:
    """SHA-256 of n, first 128 bits in hex."""
    n = mpz(n)
    data = b"smpc-paillier-key-v1" + int(n).to_bytes((n.bit_length() + 7) // 8, "big")
    return hashlib.sha256(data).hexdigest()[:32]


class RawPublicKey:
    """A Paillier public key ``n`` (``g = n + 1``): its numbers, the raw layer and its formats (users meet
    :class:`smpc.he.public_key.PublicKey`, this class with array encryption)."""

    def __init__(self, n, *, insecure: bool = False, parallelism: Parallelism | None = None):
        if isinstance(n, bool) or not isinstance(n, int) and type(n) is not raw.MPZ:
            raise InputTypeError(f"n must be an integer, got {type(n).__name__}")
        n = mpz(n)
        if not MIN_INSECURE_BITS <= n.bit_length() <= MAX_BITS:
            raise InvalidKeyError(f"n has {n.bit_length()} bits; a Paillier modulus has {MIN_INSECURE_BITS} "
                                  f"to {MAX_BITS}")
        check_bits(n.bit_length(), insecure)
        if n % 2 == 0 or gmpy2.gcd(n, _SMALL_PRIMES) != 1 or gmpy2.is_square(n) or gmpy2.is_prime(n, 16):
            raise InvalidKeyError("n is not a valid Paillier modulus (a product of two large distinct primes)")
        self.n = n
        self.nsquare = n * n
        self.g = n + 1
        self.bits = n.bit_length()
        self.insecure = insecure
        #: |plaintext| < 2^max_bits: the signed range phe also uses (max_int = n // 3)
        self.max_bits = (n // 3).bit_length() - 1
        self.fingerprint = fingerprint(n)
        self.parallelism = DEFAULT if parallelism is None else parallelism
        #: the encryption randomness of this key (its DJN base and comb, built when they pay off)
        self.randomness = Randomness(n)

    def __repr__(self) -> str:
        return f"PublicKey(bits={self.bits}, fingerprint={self.fingerprint!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RawPublicKey) and other.n == self.n

    def __hash__(self) -> int:
        return hash(("smpc.paillier.PublicKey", int(self.n)))

    def __reduce__(self):
        return (_rebuild_public_key, (type(self), int(self.n), self.insecure))

    def with_parallelism(self, parallelism: Parallelism) -> "RawPublicKey":
        """The same key, spreading its large batches with ``parallelism`` (shares its encryption randomness state)."""
        key = type(self)(self.n, insecure=self.insecure, parallelism=parallelism)
        key.randomness = self.randomness
        return key

    # ---- hazmat: integers mod n (see smpc.he.raw) ----
    def raw_encrypt_ints(self, values, *, full: bool = False, random_bytes=None) -> list:
        """Ciphertexts (gmpy2 mpz) of integers in [0, n); see :func:`smpc.he.raw.encrypt_ints`."""
        return raw.encrypt_ints(self, values, full=full, random_bytes=random_bytes)

    def raw_validate(self, ciphertexts) -> list:
        """Ciphertexts checked to lie in [1, n^2) and be coprime with n (for input from a peer)."""
        return raw.validate(self, ciphertexts)

    def raw_add(self, a, b) -> list:
        """Pairwise homomorphic addition of two ciphertext lists."""
        return raw.add(self, a, b)

    def raw_add_plain(self, ciphertexts, values) -> list:
        """Add plain integers (any sign, mod n) to ciphertexts."""
        return raw.add_plain(self, ciphertexts, values)

    def raw_negate(self, ciphertexts) -> list:
        """Ciphertexts of the negated plaintexts (mod n)."""
        return raw.negate(self, ciphertexts)

    def raw_mul_plain(self, ciphertexts, values) -> list:
        """``c^k mod n^2``: multiply by plain integers (one scalar, or one per ciphertext; any sign)."""
        return raw.mul_plain(self, ciphertexts, values)

    def raw_dot(self, ciphertexts, matrix) -> list:
        """``out[j] = prod_i c_i^B[i][j]``: a vector of ciphertexts times a plain integer matrix."""
        return raw.dot(self, ciphertexts, matrix)

    def raw_matmul(self, ciphertexts, matrix):
        """``Enc(A) @ B`` for a 2-D array of ciphertexts and a plain integer matrix (object array out)."""
        return raw.matmul(self, ciphertexts, matrix)

    def raw_rmatmul(self, matrix, ciphertexts):
        """``B @ Enc(A)`` for a plain integer matrix and a 2-D array of ciphertexts (object array out)."""
        return raw.rmatmul(self, matrix, ciphertexts)

    def raw_rerandomize(self, ciphertexts, *, full: bool = True, random_bytes=None) -> list:
        """Fresh randomness for the same plaintexts (``full``: uniform ``r^n``, for circuit privacy)."""
        return raw.rerandomize(self, ciphertexts, full=full, random_bytes=random_bytes)

    # ---- formats ----
    def to_json(self) -> str:
        """The documented JSON form (see :mod:`smpc.he.serialization`)."""
        return serialization.dump("smpc.paillier.PublicKey", {"n": serialization.to_hex(self.n)})

    @classmethod
    def from_json(cls, text, *, insecure: bool = False, parallelism: Parallelism | None = None) -> "RawPublicKey":
        """Load and validate a public key document."""
        doc = serialization.load(text, "smpc.paillier.PublicKey", {"n"}, max_chars=serialization.MAX_KEY_CHARS)
        n = serialization.hex_field(doc, "n", MAX_BITS)
        return checked_key(lambda: cls(n, insecure=insecure, parallelism=parallelism))

    def to_phe(self):
        """The same key as a ``phe.PaillierPublicKey``."""
        import phe

        return phe.PaillierPublicKey(int(self.n))

    @classmethod
    def from_phe(cls, phe_public_key, *, insecure: bool = False, parallelism: Parallelism | None = None):
        """Our key for a ``phe.PaillierPublicKey`` (phe also uses g = n + 1)."""
        import phe

        if not isinstance(phe_public_key, phe.PaillierPublicKey):
            raise InputTypeError(f"expected a phe.PaillierPublicKey, got {type(phe_public_key).__name__}")
        n = phe_public_key.n
        if isinstance(n, bool) or not isinstance(n, int) and type(n) is not raw.MPZ:
            raise InvalidKeyError(f"the phe key's n is a {type(n).__name__}, not an integer")
        if phe_public_key.g != n + 1:
            raise InvalidKeyError("only keys with g = n + 1 are supported (phe always uses it)")
        return cls(n, insecure=insecure, parallelism=parallelism)


def _rebuild_public_key(cls, n: int, insecure: bool) -> RawPublicKey:
    return cls(n, insecure=insecure)


def check_public_key(public_key) -> None:
    """``public_key`` must be a :class:`~smpc.he.paillier.PublicKey` (an :class:`InputTypeError` otherwise)."""
    if not isinstance(public_key, RawPublicKey):
        raise InputTypeError(f"expected a smpc.he.paillier.PublicKey, got {type(public_key).__name__}")


def checked_key(make):
    """Run a key constructor on loaded numbers, turning its validation errors into SerializationError."""
    try:
        return make()
    except (InvalidKeyError, InputTypeError) as error:
        raise SerializationError(f"invalid key: {error}") from None
