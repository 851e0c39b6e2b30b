"""Batch kernels on gmpy2 integers, run in the calling process or in a worker process of :mod:`_parallel`.

Everything here takes and returns plain integers and bytes (pickled only between our own processes).
A worker keeps the fixed-base tables of the last few keys it has seen (:func:`_table`).
"""

from __future__ import annotations

from collections import OrderedDict

import gmpy2
from gmpy2 import mpz

from smpc.he import djn
from smpc.he.multiexp import multiexp

_TABLES: OrderedDict = OrderedDict()  # per process: n -> fixed-base table (a cache, never shared)
_MAX_TABLES = 4


def _table(n: mpz) -> list[list[mpz]]:
    table = _TABLES.get(n)
    if table is None:
        table = djn.build_table(n)
        _TABLES[n] = table
        while len(_TABLES) > _MAX_TABLES:
            _TABLES.popitem(last=False)
    _TABLES.move_to_end(n)
    return table


def encrypt_chunk(n, messages: list, exponents: bytes, table=None) -> list[mpz]:
    """``(1 + m n) h_s^a mod n^2`` for each message ``m`` in [0, n) and each ``a`` (consecutive exponent bytes)."""
    n = mpz(n)
    n2 = n * n
    table = _table(n) if table is None else table
    step = djn.exponent_bytes(n)
    out = []
    for i, m in enumerate(messages):
        r = djn.fixed_base_power(table, exponents[i * step : (i + 1) * step], n2)
        # (1 + m n) r = r + n (m r mod n)  (mod n^2): one short product instead of a product mod n^2
        out.append((r + n * (m * r % n)) % n2)
    return out


def full_randomizers(n, rs: list) -> list[mpz]:
    """``r^n mod n^2`` for each ``r`` (gmpy2 releases the GIL here, so threads run in parallel)."""
    n = mpz(n)
    return gmpy2.powmod_base_list(rs, n, n * n)


def powmod_chunk(bases: list, exponents: list, modulus) -> list[mpz]:
    """``b^e mod modulus`` pairwise (negative ``e``: the inverse's power)."""
    modulus = mpz(modulus)
    return [gmpy2.powmod(b, e, modulus) for b, e in zip(bases, exponents)]


def multiexp_chunk(tasks: list, modulus) -> list[list[mpz]]:
    """:func:`multiexp` on each ``(bases, exponents)`` task."""
    return [multiexp(bases, exponents, modulus) for bases, exponents in tasks]
