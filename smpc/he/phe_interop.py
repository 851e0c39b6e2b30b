"""Conversion between :class:`EncryptedArray` and python-paillier's (``phe``) ``EncryptedNumber``.

phe encodes ``value = mantissa * 16^exponent`` with a per-number exponent and negative mantissas as
``n - |m|`` (``max_int = n // 3``), under ``g = n + 1`` as ours; so a ciphertext is the same object on
both sides and only the scale differs. From phe, every number is brought to the smallest exponent
``e`` (and at most 0) by homomorphic multiplication by ``16^(e_i - e)`` (phe's ``decrease_exponent_to``),
giving ``frac_bits = -4 e``. To phe, an array whose ``frac_bits`` is not a multiple of 4 is first
multiplied by ``2^(4 - frac_bits % 4)``; the exponent is ``-frac_bits / 4``.

Shapes travel as nesting: :func:`array_to_phe` gives nested lists of the array's shape (as
``ndarray.tolist()``; a 0-d array gives one number), and :func:`ciphertexts_from_phe` reads the shape back
from the nesting, so ``from_phe(a.to_phe(), pk)`` has ``a``'s shape. :meth:`EncryptedArray.to_phe` and
:meth:`EncryptedArray.from_phe` call these (phe itself is imported only then: an optional dependency).
"""

from __future__ import annotations

import numpy as np

from smpc.he import array_ops, raw
from smpc.he.encoding import MAX_FRAC_BITS, check_bound_fits
from smpc.he.errors import EncodingError, InputTypeError, KeyMismatchError, SerializationError

#: phe numbers carry no bound: by default a mantissa is assumed below 2^64 (phe's float64 and int64 encodings)
DEFAULT_PHE_BOUND_BITS = 64


def ciphertexts_from_phe(numbers, public_key, *, shape=None,
                         bound_bits: int | None = None) -> tuple[np.ndarray, int, int, bool]:
    """What an :class:`~smpc.he.encrypted_array.EncryptedArray` of phe ``EncryptedNumber`` values (one, a flat
    list, or nested lists) holds: (ciphertexts as an object array, frac_bits, bound_bits, integer).

    ``public_key`` is a checked key. The shape is the nesting's (as numpy reads it), or ``shape`` when
    given (same number of values).
    ``bound_bits`` bounds every mantissa (``|m| < 2^bound_bits``, default 64); decryption raises if
    one is larger, so pass a larger bound (up to ``public_key.max_bits``) for big integers or phe sums.
    """
    import phe

    items = _object_array(numbers, shape)
    flat = items.reshape(-1).tolist()
    for index, x in enumerate(flat):
        if not isinstance(x, phe.EncryptedNumber):
            raise InputTypeError(f"element at flat index {index} is a {type(x).__name__}, not a phe.EncryptedNumber")
        if getattr(x.public_key, "n", None) != public_key.n:
            raise KeyMismatchError(f"phe number at flat index {index} is encrypted under another key "
                                   f"than {public_key.fingerprint}")
        if isinstance(x.exponent, bool) or not isinstance(x.exponent, int):
            raise SerializationError(f"phe number at flat index {index} has a non-integer exponent")
    exponents = [int(x.exponent) for x in flat]
    target = min(min(exponents, default=0), 0)
    shifts = [4 * (e - target) for e in exponents]
    if -4 * target > MAX_FRAC_BITS:
        raise SerializationError(f"a phe exponent of {target} needs {-4 * target} fraction bits "
                                 f"(at most {MAX_FRAC_BITS})")
    bound = (DEFAULT_PHE_BOUND_BITS if bound_bits is None else _check_bound_bits(bound_bits)) + max(shifts, default=0)
    check_bound_fits(bound, public_key.max_bits, "these phe numbers (their exponents differ too much, or bound_bits)")
    cts = raw.validate(public_key, [_ciphertext(x, index) for index, x in enumerate(flat)])
    for shift in set(shifts) - {0}:
        where = [i for i, s in enumerate(shifts) if s == shift]
        for i, c in zip(where, raw.mul_plain(public_key, [cts[i] for i in where], 1 << shift)):
            cts[i] = c
    return array_ops.objects(cts, items.shape), -4 * target, bound, target == 0


def _object_array(numbers, shape) -> np.ndarray:
    """``numbers`` (one, a list or nested lists) as an object array; ragged nesting is refused."""
    try:
        items = np.empty(np.shape(numbers), dtype=object)
        items[...] = numbers
    except ValueError:
        raise SerializationError("phe numbers must be one number, a list, or regularly nested lists") from None
    if shape is None:
        return items
    try:
        return items.reshape(shape)
    except (ValueError, TypeError):
        raise SerializationError(f"{items.size} phe numbers do not fill shape {shape!r}") from None


def _ciphertext(number, index: int) -> int:
    value = number.ciphertext(be_secure=False)
    if isinstance(value, bool) or not isinstance(value, int) and type(value) is not raw.MPZ:
        raise SerializationError(f"phe number at flat index {index} has a ciphertext that is not an integer")
    return value


def _check_bound_bits(bound_bits) -> int:
    if isinstance(bound_bits, bool) or not isinstance(bound_bits, (int, np.integer)) or bound_bits < 1:
        raise EncodingError(f"bound_bits must be a positive integer, got {bound_bits!r}")
    return int(bound_bits)


def array_to_phe(array):
    """Nested lists of the array's shape (C order) of phe ``EncryptedNumber`` with exponent ``-frac_bits / 4``.

    A 0-d array gives a single ``EncryptedNumber``, as ``ndarray.tolist()`` gives a scalar.
    """
    import phe

    extra = -array.frac_bits % 4
    if extra:
        array = array_ops.rescale(array, array.frac_bits + extra)
    phe_key = phe.PaillierPublicKey(int(array.public_key.n))
    exponent = -(array.frac_bits // 4)
    cts = array.raw_ciphertexts()
    numbers = np.empty(cts.shape, dtype=object)
    numbers.reshape(-1)[:] = [phe.EncryptedNumber(phe_key, int(c), exponent) for c in cts.reshape(-1)]
    return numbers.tolist()
