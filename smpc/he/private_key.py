"""The Paillier private key: CRT decryption of arrays and raw ciphertexts, its JSON format, phe conversion."""

from __future__ import annotations

import gmpy2
from gmpy2 import mpz

from smpc.he import djn, raw, serialization
from smpc.he._parallel import Parallelism
from smpc.he.errors import DecryptionError, InputTypeError, InvalidKeyError, KeyMismatchError
from smpc.he.montgomery import FixedPower
from smpc.he.paillier_keys import MAX_BITS, checked_key
from smpc.he.public_key import PublicKey

#: Miller-Rabin rounds on top of GMP's Baillie-PSW test, for primes that came from outside
PRIME_ROUNDS = 40
#: the bit lengths of p and q may differ by this much (keygen makes them equal)
MAX_PRIME_GAP_BITS = 2
#: p and q must differ by more than 2^(bits/2 - FERMAT_MARGIN_BITS): Fermat's method needs about
#: (q - p)^2 / (8 sqrt(n)) steps, then more than 2^(bits/2 - 203) (hopeless from 1024-bit keys up)
FERMAT_MARGIN_BITS = 100


def check_factors(n, p, q) -> tuple:
    """``(p, q)`` sorted, after checking they are balanced, far apart, distinct probable primes with ``p q = n``.

    Raises :class:`InvalidKeyError` naming the failed condition (never a prime's value).
    """
    p, q = sorted((p, q))
    if p < 3 or p == q or p * q != n:
        raise InvalidKeyError("p and q do not factor this key's n into two distinct primes")
    if q.bit_length() - p.bit_length() > MAX_PRIME_GAP_BITS:
        raise InvalidKeyError(f"p and q have {p.bit_length()} and {q.bit_length()} bits: the primes of a Paillier "
                              f"key must be balanced (bit lengths within {MAX_PRIME_GAP_BITS})")
    if q - p <= 1 << max(0, n.bit_length() // 2 - FERMAT_MARGIN_BITS):
        raise InvalidKeyError(f"p and q are too close (|p - q| <= 2^(bits/2 - {FERMAT_MARGIN_BITS})): close "
                              "primes let Fermat's method factor n, so such keys are refused")
    if not (gmpy2.is_prime(p, PRIME_ROUNDS) and gmpy2.is_prime(q, PRIME_ROUNDS)):
        raise InvalidKeyError("p and q must be primes")
    if gmpy2.gcd(n, (p - 1) * (q - 1)) != 1:
        raise InvalidKeyError("gcd(n, (p - 1)(q - 1)) must be 1 for Paillier with g = n + 1")
    return p, q


class PrivateKey:
    """A Paillier private key (p, q) with its public key; decryption by CRT.

    Decryption computes ``m_p = L_p(c^(p-1) mod p^2) h_p mod p`` and ``m_q`` likewise, with
    ``h_p = L_p(g^(p-1) mod p^2)^-1 mod p`` precomputed, then recombines ``m`` by CRT (Paillier 1999,
    section 7): two exponentiations with half-size exponents and moduli instead of one full one.
    A batch raises all its ciphertexts to one exponent modulo one modulus per half, which
    :class:`~smpc.he.montgomery.FixedPower` does 128 at a time in SIMD lanes; large batches spread both
    halves over the threads. Like phe's, the exponentiation is not constant-time in the secret exponent.
    Every construction (keygen, ``from_json``, ``from_phe``) checks p and q with :func:`check_factors`.
    """

    #: chunks per half and per worker: small enough to even out cores that run at different speeds
    CHUNKS_PER_WORKER = 8

    def __init__(self, public_key: PublicKey, p, q):
        if not isinstance(public_key, PublicKey):
            raise InputTypeError(f"public_key must be a PublicKey, got {type(public_key).__name__}")
        for value in (p, q):
            if isinstance(value, bool) or not isinstance(value, int) and type(value) is not raw.MPZ:
                raise InputTypeError("p and q must be integers")
        p, q = check_factors(public_key.n, mpz(p), mpz(q))
        self.public_key = public_key
        public_key.randomness.offer_base(lambda: djn.derive_base_crt(public_key.n, p, q))  # CRT: a few ms
        self._p, self._q = p, q
        self._psquare, self._qsquare = p * p, q * q
        self._hp = self._h(p, self._psquare)
        self._hq = self._h(q, self._qsquare)
        self._p_inverse = gmpy2.invert(p, q)
        self._powers = (FixedPower(p - 1, self._psquare), FixedPower(q - 1, self._qsquare))

    def _h(self, prime, square):
        x = gmpy2.powmod(self.public_key.g, prime - 1, square)
        return gmpy2.invert((x - 1) // prime, prime)

    @property
    def fingerprint(self) -> str:
        return self.public_key.fingerprint

    def with_parallelism(self, parallelism: Parallelism) -> "PrivateKey":
        """The same key, decrypting large batches with ``parallelism``."""
        return PrivateKey(self.public_key.with_parallelism(parallelism), self._p, self._q)

    def __repr__(self) -> str:
        return f"PrivateKey(bits={self.public_key.bits}, fingerprint={self.fingerprint!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, PrivateKey) and other.public_key == self.public_key

    def __hash__(self) -> int:
        return hash(("smpc.paillier.PrivateKey", self.fingerprint))

    def __reduce__(self):
        raise TypeError("a PrivateKey is not pickled: use to_json() and store the result as a secret")

    def decrypt(self, encrypted):
        """The plaintext array of an :class:`EncryptedArray` or :class:`PackedEncryptedArray`.

        Raises :class:`DecryptionError` if a value falls outside the array's bound (wrong key,
        corrupted or forged ciphertext) and :class:`KeyMismatchError` for another key's array.
        """
        decrypt_with = getattr(encrypted, "_decrypt_with", None)
        if decrypt_with is None:
            raise TypeError(f"expected an EncryptedArray or PackedEncryptedArray, got {type(encrypted).__name__}")
        return decrypt_with(self)

    def raw_decrypt_ints(self, ciphertexts) -> list[int]:
        """Plaintexts in [0, n) of a list of ciphertexts (CRT; SIMD lanes and threads for large batches)."""
        cts = self._checked_ciphertexts(ciphertexts)
        xp, xq = self._crt_powers(cts)
        return [self._combine(a, b, index) for index, (a, b) in enumerate(zip(xp, xq))]

    def _checked_ciphertexts(self, ciphertexts) -> list[mpz]:
        cts = [mpz(c) for c in raw.to_int_list(ciphertexts, "ciphertexts")]
        nsquare = self.public_key.nsquare
        for index, c in enumerate(cts):
            if not 0 < c < nsquare:
                raise DecryptionError(f"ciphertext at index {index} is not in [1, n^2)")
        return cts

    def _crt_powers(self, cts: list[mpz]) -> tuple[list[mpz], list[mpz]]:
        """``c^(p-1) mod p^2`` and ``c^(q-1) mod q^2`` for every ciphertext: both halves, chunked, on the threads."""
        par = self.public_key.parallelism
        if not par.use_for(len(cts)):
            return self._powers[0](cts), self._powers[1](cts)
        parts = self.CHUNKS_PER_WORKER * par.workers
        calls = [(power, chunk) for power in self._powers for chunk in power.chunks(cts, parts)]
        results = par.thread_map(FixedPower.__call__, calls)
        split = sum(1 for power, _ in calls if power is self._powers[0])
        return [x for r in results[:split] for x in r], [x for r in results[split:] for x in r]

    def _combine(self, xp: mpz, xq: mpz, index: int) -> int:
        p, q = self._p, self._q
        lp, rp = divmod(xp - 1, p)
        lq, rq = divmod(xq - 1, q)
        if rp or rq:
            raise DecryptionError(f"ciphertext at index {index} is not coprime with n: not a valid ciphertext")
        mp, mq = lp * self._hp % p, lq * self._hq % q
        return int(mp + p * ((mq - mp) * self._p_inverse % q))

    # ---- formats ----
    def to_json(self) -> str:
        """The documented JSON form: contains p and q, so it is as secret as the key."""
        values = {"n": self.public_key.n, "p": self._p, "q": self._q}
        fields = {name: serialization.to_hex(v) for name, v in values.items()}
        return serialization.dump("smpc.paillier.PrivateKey", fields)

    @classmethod
    def from_json(cls, text, *, insecure: bool = False, parallelism: Parallelism | None = None) -> "PrivateKey":
        """Load and validate a private key document (see :func:`check_factors` for what p and q must satisfy)."""
        doc = serialization.load(text, "smpc.paillier.PrivateKey", {"n", "p", "q"},
                                 max_chars=serialization.MAX_KEY_CHARS)
        n, p, q = (serialization.hex_field(doc, name, MAX_BITS) for name in ("n", "p", "q"))
        public = checked_key(lambda: PublicKey(n, insecure=insecure, parallelism=parallelism))
        return checked_key(lambda: cls(public, p, q))

    def to_phe(self):
        """The same key as a ``phe.PaillierPrivateKey`` (its ``public_key`` is the phe public key)."""
        import phe

        return phe.PaillierPrivateKey(self.public_key.to_phe(), int(self._p), int(self._q))

    @classmethod
    def from_phe(cls, phe_public_key, phe_private_key, *, insecure: bool = False,
                 parallelism: Parallelism | None = None) -> "PrivateKey":
        """Our private key for a phe key pair, its primes checked as on loading (:func:`check_factors`)."""
        import phe

        if not isinstance(phe_private_key, phe.PaillierPrivateKey):
            raise InputTypeError(f"expected a phe.PaillierPrivateKey, got {type(phe_private_key).__name__}")
        public = PublicKey.from_phe(phe_public_key, insecure=insecure, parallelism=parallelism)
        if getattr(phe_private_key.public_key, "n", None) != public.n:
            raise KeyMismatchError("the phe private key belongs to another public key")
        return cls(public, phe_private_key.p, phe_private_key.q)
