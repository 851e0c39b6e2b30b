"""Conversion between :class:`EncryptedArray` and python-paillier's (``phe``) ``EncryptedNumber``.

phe encodes ``value = mantissa * 16^exponent`` with a per-number exponent and negative mantissas as
``n - |m|`` (``max_int = n // 3``), under ``g = n + 1`` as ours; so a ciphertext is the same object on
both sides and only the scale differs. From phe, every number is brought to the smallest exponent
``e`` (and at most 0) by homomorphic multiplication by ``16^(e_i - e)`` (phe's ``decrease_exponent_to``),
giving ``frac_bits = -4 e``. To phe, an array whose ``frac_bits`` is not a multiple of 4 is first
multiplied by ``2^(4 - frac_bits % 4)``; the exponent is ``-frac_bits / 4``.
"""

from __future__ import annotations

import numpy as np

from smpc.he import array_ops, raw
from smpc.he.errors import KeyMismatchError

#: phe numbers carry no bound: by default a mantissa is assumed below 2^64 (phe's float64 and int64 encodings)
DEFAULT_PHE_BOUND_BITS = 64


def array_from_phe(numbers, public_key, *, shape=None, bound_bits: int | None = None):
    """An :class:`EncryptedArray` from phe ``EncryptedNumber`` values (a flat list, or nested lists).

    ``bound_bits`` bounds every mantissa (``|m| < 2^bound_bits``, default 64); decryption raises if
    one is larger, so pass a larger bound (up to ``public_key.max_bits``) for big integers or phe sums.
    """
    import phe

    from smpc.he.encrypted_array import EncryptedArray

    items = np.empty(np.shape(numbers), dtype=object)
    items[...] = numbers
    if shape is not None:
        items = items.reshape(shape)
    flat = items.reshape(-1).tolist()
    for index, x in enumerate(flat):
        if not isinstance(x, phe.EncryptedNumber):
            raise TypeError(f"element at flat index {index} is a {type(x).__name__}, not a phe.EncryptedNumber")
        if x.public_key.n != public_key.n:
            raise KeyMismatchError(f"phe number at flat index {index} is encrypted under another key "
                                   f"than {public_key.fingerprint}")
    cts = raw.validate(public_key, [x.ciphertext(be_secure=False) for x in flat])
    exponents = [int(x.exponent) for x in flat]
    target = min(min(exponents, default=0), 0)
    shifts = [4 * (e - target) for e in exponents]
    for shift in set(shifts) - {0}:
        where = [i for i, s in enumerate(shifts) if s == shift]
        for i, c in zip(where, raw.mul_plain(public_key, [cts[i] for i in where], 1 << shift)):
            cts[i] = c
    bound = (DEFAULT_PHE_BOUND_BITS if bound_bits is None else bound_bits) + max(shifts, default=0)
    return EncryptedArray(public_key, array_ops.objects(cts, items.shape), -4 * target, bound, target == 0)


def array_to_phe(array) -> list:
    """A flat list (C order) of phe ``EncryptedNumber`` with exponent ``-frac_bits / 4``."""
    import phe

    extra = -array.frac_bits % 4
    if extra:
        array = array_ops.rescale(array, array.frac_bits + extra)
    phe_key = phe.PaillierPublicKey(int(array.public_key.n))
    exponent = -(array.frac_bits // 4)
    return [phe.EncryptedNumber(phe_key, int(c), exponent) for c in array.raw_ciphertexts().reshape(-1)]
