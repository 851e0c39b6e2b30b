"""Batch helpers on gmpy2 integers for :mod:`smpc.he.raw`, run in the calling thread or on :mod:`_parallel`'s threads.

Only :func:`powmod_chunk` is worth spreading over threads: each of its exponentiations goes through
``gmpy2.powmod_exp_list``, which releases the GIL. :func:`multiexp_chunk` is a Python loop of gmpy2
products and holds it.
"""

from __future__ import annotations

import gmpy2
from gmpy2 import mpz

from smpc.he.multiexp import multiexp


def powmod_chunk(bases: list, exponents: list, modulus) -> list[mpz]:
    """``b^e mod modulus`` pairwise (negative ``e``: the inverse's power), each without the GIL."""
    modulus = mpz(modulus)
    return [gmpy2.powmod_exp_list(b, [e], modulus)[0] for b, e in zip(bases, exponents)]


def multiexp_chunk(tasks: list, modulus) -> list[list[mpz]]:
    """:func:`multiexp` on each ``(bases, exponents)`` task."""
    return [multiexp(bases, exponents, modulus) for bases, exponents in tasks]
