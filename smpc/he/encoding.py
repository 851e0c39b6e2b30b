"""Fixed-point plaintexts for Paillier: arrays to signed Python integers with a public magnitude bound, and back.

A value ``x`` with ``f`` fraction bits is the integer ``round(x * 2^f)`` (as :mod:`smpc.ring.fixed_point`,
but unbounded). Every encoded array carries ``bound_bits``: each ``|v| < 2^bound_bits``. The bound is
taken from the format, never from the values (floats: 2^62 as in the ring encoding; integers: their
dtype's width), so a bound travelling with a ciphertext reveals nothing about the data.
Errors name the index of a bad value, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc.he.errors import DecryptionError, EncodingError, PlaintextOverflowError
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS, MAGNITUDE_BITS, max_magnitude

#: plain float operands (not encrypted) are encoded with DEFAULT_FRAC_BITS: |x| < 2^46
PLAIN_FLOAT_BITS = MAGNITUDE_BITS - DEFAULT_FRAC_BITS
#: the most fraction bits an encrypted array may carry (a loaded document or phe exponents claiming more are refused)
MAX_FRAC_BITS = 1 << 16


@dataclass(frozen=True)
class Encoded:
    """Signed integers (object array of Python ints), their fraction bits and bound, integer-ness."""

    values: np.ndarray
    frac_bits: int
    bound_bits: int
    integer: bool


def encode_for_encryption(x, frac_bits: int | None = None, bound_bits: int | None = None) -> Encoded:
    """Encode an array to encrypt: integers exactly (0 fraction bits by default), floats with 16 by default.

    ``bound_bits`` (optional) tightens the public bound; every value must then satisfy
    ``|round(x * 2^f)| < 2^bound_bits``.
    """
    array = _as_array(x)
    integer_data = array.dtype.kind in "biuO"
    if frac_bits is None:
        frac_bits = 0 if integer_data else DEFAULT_FRAC_BITS
    limit = max_magnitude(frac_bits)  # validates frac_bits (an integer in [0, 30])
    if integer_data:
        values, bits = _integers(array)
        encoded = Encoded(_shift(values, frac_bits), frac_bits, bits + frac_bits, frac_bits == 0)
    else:
        _check_floats(array, limit, "encrypt")
        values = _object_ints(np.rint(array.astype(np.float64) * float(2**frac_bits)), array.shape)
        encoded = Encoded(values, frac_bits, MAGNITUDE_BITS, False)
    if bound_bits is None:
        return encoded
    _check_bound_bits(bound_bits)
    _check_within(encoded.values, bound_bits)
    return Encoded(encoded.values, frac_bits, bound_bits, encoded.integer)


def encode_plain(x, frac_bits: int) -> Encoded:
    """Encode a public operand at ``frac_bits`` (floats: rounded at min(frac_bits, 16) bits; |x| < 2^46)."""
    array = _as_array(x)
    if array.dtype.kind in "biuO":
        values, bits = _integers(array)
        return Encoded(_shift(values, frac_bits), frac_bits, bits + frac_bits, frac_bits == 0)
    _check_floats(array, float(2**PLAIN_FLOAT_BITS), "use as a plain operand")
    rounding = min(frac_bits, DEFAULT_FRAC_BITS)
    scaled = _object_ints(np.rint(array.astype(np.float64) * float(2**rounding)), array.shape)
    return Encoded(_shift(scaled, frac_bits - rounding), frac_bits, PLAIN_FLOAT_BITS + frac_bits, False)


def native_frac_bits(x) -> int:
    """Fraction bits a plain operand brings to a product: 0 for integers, 16 for floats."""
    return 0 if _as_array(x).dtype.kind in "biuO" else DEFAULT_FRAC_BITS


def is_integer_data(x) -> bool:
    """Whether ``x`` is integer (or boolean) data."""
    return _as_array(x).dtype.kind in "biuO"


def decode(values: list, shape: tuple, frac_bits: int, bound_bits: int, integer: bool) -> np.ndarray:
    """Centered plaintexts to an array: int64 (or Python ints beyond int64) if ``integer``, else float64.

    Raises :class:`DecryptionError` naming the index if a value is not below ``2^bound_bits`` in
    magnitude: a ciphertext that is not what its array says (wrong key, corrupted, forged).
    """
    limit = 1 << bound_bits
    for index, v in enumerate(values):
        if not -limit < v < limit:
            position = np.unravel_index(index, shape) if shape else ()
            raise DecryptionError(
                f"decrypted value at index {tuple(int(i) for i in position)} exceeds the array's bound of "
                f"2^{bound_bits}: wrong key, or a corrupted or forged ciphertext"
            )
    if integer and frac_bits == 0:
        return _integer_array(values, shape, bound_bits)
    if bound_bits <= 53:  # exact in float64; ldexp also takes fraction bits beyond float's exponent range
        return np.ldexp(np.array(values, dtype=np.float64), -frac_bits).reshape(shape)
    scale = 1 << frac_bits
    return np.array([v / scale for v in values], dtype=np.float64).reshape(shape)


def check_bound_fits(bound_bits: int, max_bits: int, what: str) -> None:
    """Raise :class:`PlaintextOverflowError` if a result's bound leaves the plaintext space."""
    if bound_bits > max_bits:
        raise PlaintextOverflowError(
            f"{what} could overflow the plaintext space: its values are bounded by 2^{bound_bits}, "
            f"the key holds signed values below 2^{max_bits} (use a larger key, or tighter bound_bits)"
        )


def _as_array(x) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype.kind not in "biufO":
        raise EncodingError(f"cannot encode data of dtype {array.dtype}: use integer or float arrays")
    if array.dtype.kind == "O":
        for index, v in enumerate(array.flat):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) and not _is_mpz(v):
                raise EncodingError(f"object arrays must hold integers; the element at flat index {index} does not")
    return array


def _is_mpz(v) -> bool:
    return type(v).__name__ == "mpz"


def _integers(array: np.ndarray) -> tuple[np.ndarray, int]:
    """Python ints and the bound from the dtype (object arrays: from the values, which are the caller's)."""
    if array.dtype.kind == "b":
        return array.astype(np.int64).astype(object).reshape(array.shape), 1
    if array.dtype.kind in "iu":
        return array.astype(object).reshape(array.shape), 8 * array.dtype.itemsize
    values = np.frompyfunc(int, 1, 1)(array) if array.size else array.astype(object)
    values = np.asarray(values, dtype=object).reshape(array.shape)
    bits = max((abs(v).bit_length() for v in values.flat), default=0)
    return values, max(bits, 1)


def _object_ints(rounded, shape: tuple) -> np.ndarray:
    """Rounded floats (an array or a numpy scalar) as an object array of Python ints."""
    return np.asarray(rounded, dtype=np.float64).astype(np.int64).astype(object).reshape(shape)


def _shift(values: np.ndarray, bits: int) -> np.ndarray:
    return values if bits == 0 else np.asarray(values * (1 << bits), dtype=object).reshape(values.shape)


def _check_floats(array: np.ndarray, limit: float, action: str) -> None:
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise EncodingError(f"cannot {action} the value at index {index}: it is not finite")
    too_large = np.abs(values) >= limit
    if too_large.any():
        index = tuple(int(i) for i in np.argwhere(too_large)[0])
        raise PlaintextOverflowError(f"cannot {action} the value at index {index}: |x| must be below {limit:.6g}")


def _check_bound_bits(bound_bits) -> None:
    if not isinstance(bound_bits, (int, np.integer)) or isinstance(bound_bits, bool) or bound_bits < 1:
        raise ValueError(f"bound_bits must be a positive integer, got {bound_bits!r}")


def _check_within(values: np.ndarray, bound_bits: int) -> None:
    limit = 1 << int(bound_bits)
    for index, v in enumerate(values.flat):
        if not -limit < v < limit:
            position = tuple(int(i) for i in np.unravel_index(index, values.shape)) if values.shape else ()
            raise PlaintextOverflowError(f"the value at index {position} does not fit bound_bits={bound_bits}")


def _integer_array(values: list, shape: tuple, bound_bits: int) -> np.ndarray:
    if bound_bits <= 63 or all(-(1 << 63) <= v < (1 << 63) for v in values):
        return np.array(values, dtype=np.int64).reshape(shape)
    out = np.empty(len(values), dtype=object)
    out[:] = [int(v) for v in values]
    return out.reshape(shape)
