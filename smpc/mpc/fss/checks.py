"""Checks shared by the DCFs (:mod:`.bit_dcf`, :mod:`.word_dcf`): bit widths, party numbers and public inputs."""

from __future__ import annotations

import numpy as np

MAX_BITS = 64


def check_bits(bits) -> None:
    """A DCF's input length: an integer in 1..64."""
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"DCF input bits must be an integer in 1..{MAX_BITS}, got {bits!r}")


def check_party(party) -> None:
    """A DCF party: 0 or 1."""
    if not isinstance(party, (int, np.integer)) or isinstance(party, bool) or party not in (0, 1):
        raise ValueError(f"party must be 0 or 1, got {party!r}")


def check_inputs(values, name: str, bits: int) -> np.ndarray:
    """One public input (or alpha) per comparison: a one-dimensional uint64 array of ``bits``-bit values,
    returned C-contiguous."""
    if not isinstance(values, np.ndarray) or values.dtype != np.uint64:
        got = values.dtype if isinstance(values, np.ndarray) else type(values).__name__
        raise TypeError(f"{name} must be a uint64 numpy array, got {got}")
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per comparison), got shape {values.shape}")
    if bits < MAX_BITS and values.size and int(values.max()) >> bits:
        raise ValueError(f"{name} has values of more than {bits} bits (the DCF's input length)")
    return np.ascontiguousarray(values)


def check_eval(party, keys, key_type: type, x, chunk) -> np.ndarray:
    """An evaluation's arguments: party ``party``'s own keys of ``key_type``, one ``x`` per comparison (returned
    C-contiguous) and a positive ``chunk``."""
    check_party(party)
    if not isinstance(keys, key_type):
        raise TypeError(f"keys must be {key_type.__name__}, got {type(keys).__name__}")
    if keys.party != party:
        raise ValueError(f"these are party {keys.party}'s DCF keys, evaluated as party {party}")
    x = check_inputs(x, "x", keys.bits)
    if x.shape[0] != keys.count:
        raise ValueError(f"x has {x.shape[0]} elements but the keys are for {keys.count} comparisons")
    if not isinstance(chunk, (int, np.integer)) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    return x


def key_count(seed) -> int:
    """Comparisons in a key whose root seeds are ``seed`` ((m, 2) uint64), or -1 if it is not such an array (the
    field check then names it)."""
    return seed.shape[0] if isinstance(seed, np.ndarray) and seed.ndim == 2 else -1


def check_key_fields(bits: int, seed, fields: dict) -> None:
    """Every key field ``name: (array, expected shape)`` is a uint64 array of its shape (shapes made from
    :func:`key_count` of ``seed``)."""
    m = key_count(seed)
    for name, (array, shape) in fields.items():
        if not isinstance(array, np.ndarray) or array.dtype != np.uint64 or array.shape != shape or m < 0:
            got = f"{array.dtype}{list(array.shape)}" if isinstance(array, np.ndarray) else type(array).__name__
            raise ValueError(f"DCF key field {name} is {got}, expected uint64{list(shape)} (bits={bits}, "
                             f"seed (m, 2) = {getattr(seed, 'shape', None)!r})")
