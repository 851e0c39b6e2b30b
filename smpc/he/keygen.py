"""Fresh Paillier key pairs from the CSPRNG."""

from __future__ import annotations

import secrets

import gmpy2
from gmpy2 import mpz

from smpc.he._parallel import Parallelism
from smpc.he.paillier_keys import check_bits
from smpc.he.private_key import PrivateKey
from smpc.he.public_key import PublicKey


def keygen(bits: int = 2048, *, insecure: bool = False,
           parallelism: Parallelism | None = None) -> tuple[PublicKey, PrivateKey]:
    """A fresh key pair ``(PublicKey, PrivateKey)``; primes are ``next_prime`` of CSPRNG odd numbers."""
    check_bits(bits, insecure)
    while True:
        p, q = _random_prime(bits // 2), _random_prime(bits - bits // 2)
        n = p * q
        if p == q or n.bit_length() != bits or gmpy2.gcd(n, (p - 1) * (q - 1)) != 1:
            continue
        if abs(p - q).bit_length() < bits // 2 - 64:  # Fermat factoring needs p and q close; redraw
            continue
        public = PublicKey(n, insecure=insecure, parallelism=parallelism)
        return public, PrivateKey(public, p, q)


def _random_prime(bits: int) -> mpz:
    nbytes = (bits + 7) // 8
    while True:
        candidate = mpz(int.from_bytes(secrets.token_bytes(nbytes), "big")) >> (8 * nbytes - bits)
        candidate |= (3 << (bits - 2)) | 1  # top two bits set: the product has exactly p.bits + q.bits bits
        prime = gmpy2.next_prime(candidate)
        if prime.bit_length() == bits:
            return prime
