"""``PublicKey``: the Paillier public key users meet, the raw key with array encryption (``pk.encrypt``).

:class:`~smpc.he.paillier_keys.RawPublicKey` holds the numbers, the raw layer and the formats, which the
array modules are written against; this subclass adds their entry points.
"""

from __future__ import annotations

from smpc.he.encrypted_array import EncryptedArray, encrypt_array
from smpc.he.packing import PackedEncryptedArray, encrypt_packed
from smpc.he.paillier_keys import RawPublicKey


class PublicKey(RawPublicKey):
    """A Paillier public key ``n`` (``g = n + 1``): encryption, homomorphic operations, the raw layer."""

    # ---- encryption of arrays (fixed point) ----
    def encrypt(self, x, *, frac_bits=None, bound_bits=None, random_bytes=None) -> EncryptedArray:
        """Encrypt an array (any shape): floats with ``frac_bits`` (default 16), integers exactly.

        Randomness is the fast fixed-base ``h_s^a`` (see :mod:`smpc.he.djn` for the security argument),
        computed as :mod:`smpc.he.randomness` finds cheapest for this batch and key (a fresh public key
        without its private key starts with phe's ``r^n``); the result is a standard Paillier
        ciphertext (phe decrypts it). ``bound_bits`` tightens the public bound on
        ``|round(x 2^frac_bits)|``; ``random_bytes(k)`` replaces ``os.urandom`` in tests.
        """
        return encrypt_array(self, x, frac_bits=frac_bits, bound_bits=bound_bits, random_bytes=random_bytes)

    def encrypt_packed(self, x, *, additions: int = 15, frac_bits=None, bound_bits=None,
                       random_bytes=None) -> PackedEncryptedArray:
        """Encrypt with several values per ciphertext, allowing ``additions`` later additions (see packing)."""
        return encrypt_packed(self, x, additions=additions, frac_bits=frac_bits, bound_bits=bound_bits,
                              random_bytes=random_bytes)
