"""Shamir t-out-of-n secret sharing over the prime field GF(2^521 - 1), with Python integers.

Shamir, "How to Share a Secret", CACM 22(11), 1979: the secret is the constant term of a
random polynomial of degree t-1; a share is the polynomial at a non-zero point x. Any t
shares give the secret by Lagrange interpolation at 0; t-1 shares are independent of it.
Secure aggregation (Bonawitz et al., CCS 2017, section 3, cryptographic primitives) shares each client's mask
private key (256 bits) and self-mask seed (128 bits) this way; the Mersenne prime
2^521 - 1 holds either in one field element.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Sequence

from smpc.exceptions import SmpcError

#: the field modulus, the Mersenne prime 2^521 - 1
PRIME = (1 << 521) - 1
#: bytes of one encoded share (big-endian field element)
SHARE_BYTES = 66

RandBytes = Callable[[int], bytes]


class ShamirError(SmpcError):
    """Bad arguments to Shamir sharing, or too few or malformed shares to reconstruct."""


def random_element(randbytes: RandBytes = os.urandom) -> int:
    """A uniformly random field element (rejection sampling on 521-bit strings)."""
    while True:
        value = int.from_bytes(randbytes(SHARE_BYTES), "big") & PRIME
        if value != PRIME:  # the one 521-bit string that is not a field element
            return value


def split(secret: int, threshold: int, xs: Sequence[int], randbytes: RandBytes = os.urandom) -> list[int]:
    """Shares ``f(x)`` for each ``x`` in ``xs`` of a random ``f`` of degree ``threshold - 1`` with ``f(0) = secret``.

    Shamir 1979: the coefficients other than the constant term are uniform field
    elements from ``randbytes`` (the operating system's CSPRNG unless a test pins it).
    """
    _check_secret(secret)
    _check_points(xs)
    if not isinstance(threshold, int) or isinstance(threshold, bool) or not 1 <= threshold <= len(xs):
        raise ShamirError(f"threshold must be an integer in 1..{len(xs)} (the number of shares), got {threshold!r}")
    coefficients = [secret] + [random_element(randbytes) for _ in range(threshold - 1)]
    return [_evaluate(coefficients, x) for x in xs]


def reconstruct(shares: Mapping[int, int], threshold: int) -> int:
    """The secret from at least ``threshold`` shares ``{x: f(x)}`` (the first ``threshold`` by x are used).

    Raises :class:`ShamirError` naming the counts when fewer than ``threshold`` are given.
    """
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        raise ShamirError(f"threshold must be a positive integer, got {threshold!r}")
    if len(shares) < threshold:
        raise ShamirError(f"reconstruction needs {threshold} shares, got {len(shares)}")
    chosen = sorted(shares.items())[:threshold]
    return interpolate_at_zero(chosen)


def interpolate_at_zero(points: Sequence[tuple[int, int]]) -> int:
    """The value at 0 of the polynomial of degree < len(points) through ``points`` (Lagrange)."""
    xs = [x for x, _ in points]
    _check_points(xs)
    for _, y in points:
        _check_element(y, "share value")
    total = 0
    for i, (x_i, y_i) in enumerate(points):
        numerator, denominator = 1, 1
        for j, x_j in enumerate(xs):
            if j != i:
                numerator = numerator * x_j % PRIME
                denominator = denominator * (x_j - x_i) % PRIME
        total = (total + y_i * numerator * pow(denominator, -1, PRIME)) % PRIME
    return total


def encode_share(value: int) -> bytes:
    """A field element as :data:`SHARE_BYTES` big-endian bytes."""
    _check_element(value, "share value")
    return value.to_bytes(SHARE_BYTES, "big")


def decode_share(data: bytes) -> int:
    """The field element encoded by :func:`encode_share`; rejects wrong lengths and values >= the prime."""
    if len(data) != SHARE_BYTES:
        raise ShamirError(f"an encoded share has {SHARE_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise ShamirError("an encoded share is not a field element (>= 2^521 - 1)")
    return value


def _evaluate(coefficients: list[int], x: int) -> int:
    result = 0
    for coefficient in reversed(coefficients):  # Horner
        result = (result * x + coefficient) % PRIME
    return result


def _check_element(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < PRIME:
        raise ShamirError(f"{what} must be an integer in [0, 2^521 - 1)")


def _check_secret(secret: int) -> None:
    _check_element(secret, "the secret")


def _check_points(xs: Sequence[int]) -> None:
    if not xs:
        raise ShamirError("at least one share point is needed")
    for x in xs:
        if not isinstance(x, int) or isinstance(x, bool) or not 0 < x < PRIME:
            raise ShamirError(f"share points must be integers in [1, 2^521 - 1), got {x!r}")
    if len(set(xs)) != len(xs):
        raise ShamirError("share points must be distinct")
