"""Hazmat: Paillier on plain integers modulo n and on lists of gmpy2 ciphertexts, for protocols.

Nothing here knows fixed point, shapes or bounds, and nothing checks that a result still means what
its caller thinks: plaintexts are integers in [0, n) and every operation is modulo n. Protocols (the
dealer-free Beaver triples) build on these functions; users meet :class:`~smpc.he.paillier.EncryptedArray`.
The same functions are methods of :class:`~smpc.he.paillier.PublicKey` (``pk.raw_add`` ...), and
decryption is ``sk.raw_decrypt_ints``.

Circuit privacy: a ciphertext computed from your private operands (``mul_plain``, ``dot``, ``matmul``)
and sent to the key owner must first go through :func:`rerandomize` with ``full=True`` (the default).
The fast randomness of :func:`encrypt_ints` lives in a subgroup the key owner can recognize (see
:mod:`smpc.he.djn`); it hides plaintexts from everyone without the key, not operands from the owner.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import gmpy2
import numpy as np
from gmpy2 import mpz

from smpc.he import _kernels, lanes, multiexp, randomness
from smpc.he.errors import PlaintextOverflowError, SerializationError

RandomBytes = Callable[[int], bytes]
MPZ = type(mpz(0))


def to_int_list(values, name: str = "values") -> list[int]:
    """Python ints from a sequence or integer array (uint64 ring elements included); floats are refused."""
    array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if array.dtype.kind not in "iuO":
        raise TypeError(f"{name} must be integers, got dtype {array.dtype}")
    out = []
    for index, v in enumerate(array.reshape(-1).tolist()):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) and type(v) is not MPZ:
            raise TypeError(f"{name} must be integers; the element at index {index} is a {type(v).__name__}")
        out.append(int(v))
    return out


def encrypt_ints(pk, values, *, full: bool = False, random_bytes: RandomBytes | None = None) -> list[mpz]:
    """Ciphertexts of integers in [0, n): fast randomness (:mod:`smpc.he.randomness`), or ``full``: r^n, r uniform."""
    messages = to_int_list(values)
    for index, m in enumerate(messages):
        if not 0 <= m < pk.n:
            raise PlaintextOverflowError(f"raw plaintext at index {index} is not in [0, n)")
    if full:
        factors = randomness.full_randomizers(pk.n, len(messages), random_bytes or os.urandom, pk.parallelism)
    else:
        factors = pk.randomness.factors(len(messages), random_bytes, pk.parallelism)
    n, n2 = pk.n, pk.nsquare
    # (1 + m n) r = r + n (m r mod n)  (mod n^2): one short product instead of a product mod n^2
    return [(r + n * (m * r % n)) % n2 for m, r in zip(messages, factors)]


def validate(pk, ciphertexts) -> list[mpz]:
    """The ciphertexts as mpz, each checked to lie in [1, n^2) and be coprime with n (else SerializationError)."""
    out = []
    for index, c in enumerate(to_int_list(ciphertexts, "ciphertexts")):
        c = mpz(c)
        if not 0 < c < pk.nsquare:
            raise SerializationError(f"ciphertext at index {index} is not in [1, n^2)")
        if gmpy2.gcd(c, pk.n) != 1:
            raise SerializationError(f"ciphertext at index {index} is not coprime with n")
        out.append(c)
    return out


def add(pk, a: Sequence, b: Sequence) -> list[mpz]:
    """Ciphertexts of ``a_i + b_i mod n``: pairwise products mod n^2."""
    _same_length(a, b)
    n2 = pk.nsquare
    return [x * y % n2 for x, y in zip(a, b)]


def add_plain(pk, ciphertexts: Sequence, values) -> list[mpz]:
    """Ciphertexts of ``a_i + v_i mod n`` for plain integers ``v`` (any sign): ``c (1 + v n)``."""
    plain = to_int_list(values)
    _same_length(ciphertexts, plain)
    n, n2 = pk.n, pk.nsquare
    return [(c + n * ((v % n) * c % n)) % n2 for c, v in zip(ciphertexts, plain)]


def negate(pk, ciphertexts: Sequence) -> list[mpz]:
    """Ciphertexts of ``-a_i mod n``: inverses mod n^2."""
    n2 = pk.nsquare
    return [gmpy2.invert(c, n2) for c in ciphertexts]


def mul_plain(pk, ciphertexts: Sequence, values) -> list[mpz]:
    """Ciphertexts of ``a_i k_i mod n`` for plain integers ``k`` (one scalar, or one per ciphertext; any sign)."""
    cts = list(ciphertexts)
    par = pk.parallelism
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool) or type(values) is MPZ:
        k = int(values)
        if par.use_for(len(cts)):
            chunks = par.thread_map(gmpy2.powmod_base_list, [(chunk, k, pk.nsquare) for chunk in par.split(cts)])
            return [c for chunk in chunks for c in chunk]
        return gmpy2.powmod_base_list(cts, k, pk.nsquare) if cts else []
    exponents = to_int_list(values)
    _same_length(cts, exponents)
    if par.use_for(len(cts)):  # powmod_chunk releases the GIL in every exponentiation
        calls = [(b, e, pk.nsquare) for b, e in zip(par.split(cts), par.split(exponents))]
        return [c for chunk in par.thread_map(_kernels.powmod_chunk, calls) for c in chunk]
    return _kernels.powmod_chunk(cts, exponents, pk.nsquare)


def dot(pk, ciphertexts: Sequence, matrix) -> list[mpz]:
    """``out[j] = prod_i c_i^B[i][j] mod n^2``: ciphertexts of ``sum_i a_i B[i][j] mod n`` (B plain, k x r)."""
    exponents = _int_matrix(matrix, "matrix")
    if len(exponents) != len(ciphertexts):
        raise ValueError(f"dot of {len(ciphertexts)} ciphertexts with a matrix of {len(exponents)} rows")
    return run_multiexp(pk, [(list(ciphertexts), exponents)])[0]


def matmul(pk, ciphertexts, matrix) -> np.ndarray:
    """``Enc(A) @ B`` for ciphertexts of A (m x k) and plain integers B (k x r): an object array (m x r)."""
    cts = np.asarray(ciphertexts, dtype=object)
    exponents = _int_matrix(matrix, "matrix")
    if cts.ndim != 2 or cts.shape[1] != len(exponents):
        raise ValueError(f"matmul of ciphertexts of shape {cts.shape} with a matrix of {len(exponents)} rows")
    rows = run_multiexp(pk, [(list(row), exponents) for row in cts])
    return _object_matrix(rows, (cts.shape[0], len(exponents[0]) if exponents else 0))


def rmatmul(pk, matrix, ciphertexts) -> np.ndarray:
    """``B @ Enc(A)`` for plain integers B (m x k) and ciphertexts of A (k x r): an object array (m x r)."""
    cts = np.asarray(ciphertexts, dtype=object)
    rows = _int_matrix(matrix, "matrix")
    if cts.ndim != 2 or any(len(row) != cts.shape[0] for row in rows):
        raise ValueError(f"matmul of a plain matrix with {cts.shape[0] if cts.ndim else 0} rows expected")
    transposed = [list(col) for col in zip(*rows)] if rows else []
    columns = run_multiexp(pk, [(list(cts[:, j]), transposed) for j in range(cts.shape[1])])
    return _object_matrix(columns, (cts.shape[1], len(rows))).T.copy()


def rerandomize(pk, ciphertexts: Sequence, *, full: bool = True, random_bytes: RandomBytes | None = None) -> list[mpz]:
    """The same plaintexts under fresh randomness: ``c r^n`` with r uniform (``full``), or ``c h_s^a`` (fast).

    Use ``full=True`` before a ciphertext computed from your private operands goes to the key owner.
    """
    cts = list(ciphertexts)
    if full:
        factors = randomness.full_randomizers(pk.n, len(cts), random_bytes or os.urandom, pk.parallelism)
    else:
        factors = pk.randomness.factors(len(cts), random_bytes, pk.parallelism)
    n2 = pk.nsquare
    return [c * r % n2 for c, r in zip(cts, factors)]


def run_multiexp(pk, tasks: list) -> list[list[mpz]]:
    """:func:`smpc.he.multiexp.multiexp` on each ``(bases, exponents)`` task.

    Enough outputs to fill the SIMD lanes of every worker (and exponents below 2^62) go to
    :func:`~smpc.he.multiexp.multiexp_lanes` on the threads; the rest runs in gmpy2 products in the
    calling thread (they hold the GIL, so threads would not help them).
    """
    par = pk.parallelism
    outputs = sum(len(exponents[0]) if len(exponents) else 0 for _, exponents in tasks)
    terms = sum(len(bases) * (len(exps[0]) if exps else 0) for bases, exps in tasks)
    if (par.use_for(terms) and outputs >= par.workers * lanes.LANES
            and multiexp.exponent_bits(tasks) <= multiexp.MAX_LANE_BITS):
        return multiexp.multiexp_lanes(tasks, pk.nsquare, par)
    return _kernels.multiexp_chunk(tasks, pk.nsquare)


def _int_matrix(matrix, name: str) -> list[list[int]]:
    array = np.asarray(matrix) if not isinstance(matrix, np.ndarray) else matrix
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {array.ndim} dimensions")
    flat = to_int_list(array, name)
    cols = array.shape[1]
    return [flat[i * cols : (i + 1) * cols] for i in range(array.shape[0])]


def _object_matrix(rows: list[list], shape: tuple[int, int]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for i, row in enumerate(rows):
        out[i, :] = row
    return out


def _same_length(a, b) -> None:
    if len(a) != len(b):
        raise ValueError(f"operands have different lengths: {len(a)} and {len(b)}")
