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

from smpc.he import _kernels, djn
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
    """Ciphertexts of integers in [0, n): fast fixed-base randomness, or ``full=True`` for ``r^n``, r uniform."""
    messages = to_int_list(values)
    for index, m in enumerate(messages):
        if not 0 <= m < pk.n:
            raise PlaintextOverflowError(f"raw plaintext at index {index} is not in [0, n)")
    if not full:
        return _fast_encrypt(pk, messages, random_bytes)
    n, n2 = pk.n, pk.nsquare
    factors = _full_randomizers(pk, len(messages), random_bytes)
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
    if par.use_for(len(cts)):
        calls = [(b, e, pk.nsquare) for b, e in zip(par.split(cts), par.split(exponents))]
        return [c for chunk in par.process_map(_kernels.powmod_chunk, calls) for c in chunk]
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
        factors = _full_randomizers(pk, len(cts), random_bytes)
    else:
        factors = _fast_encrypt(pk, [0] * len(cts), random_bytes)
    n2 = pk.nsquare
    return [c * r % n2 for c, r in zip(cts, factors)]


def run_multiexp(pk, tasks: list) -> list[list[mpz]]:
    """:func:`smpc.he.multiexp.multiexp` on each ``(bases, exponents)`` task, over the workers when large."""
    par = pk.parallelism
    terms = sum(len(bases) * (len(exps[0]) if exps else 0) for bases, exps in tasks)
    if not par.use_for(terms):
        return _kernels.multiexp_chunk(tasks, pk.nsquare)
    if len(tasks) >= par.workers:
        chunks = par.process_map(_kernels.multiexp_chunk, [(chunk, pk.nsquare) for chunk in par.split(tasks)])
        return [out for chunk in chunks for out in chunk]
    return [_split_task(pk, bases, exps) for bases, exps in tasks]


def _split_task(pk, bases: list, exponents: list) -> list[mpz]:
    """One large multi-exponentiation over the workers: by output columns if enough, else by bases."""
    par = pk.parallelism
    outputs = len(exponents[0]) if exponents else 0
    if outputs >= par.workers:
        columns = par.split(list(range(outputs)))
        parts = [[[row[j] for j in cols] for row in exponents] for cols in columns]
        results = par.process_map(_kernels.multiexp_chunk, [([(bases, part)], pk.nsquare) for part in parts])
        return [c for result in results for c in result[0]]
    calls = [([(b, e)], pk.nsquare) for b, e in zip(par.split(bases), par.split(exponents))]
    partials = [result[0] for result in par.process_map(_kernels.multiexp_chunk, calls)]
    n2 = pk.nsquare
    out = partials[0]
    for partial in partials[1:]:
        out = [x * y % n2 for x, y in zip(out, partial)]
    return out


def _fast_encrypt(pk, messages: list[int], random_bytes: RandomBytes | None) -> list[mpz]:
    step = djn.exponent_bytes(pk.n)
    exponents = (random_bytes or os.urandom)(step * len(messages))
    if len(exponents) != step * len(messages):
        raise ValueError("random_bytes returned the wrong number of bytes")
    par = pk.parallelism
    if not par.use_for(len(messages)):
        return _kernels.encrypt_chunk(pk.n, messages, exponents, pk.fixed_base_table())
    calls, start = [], 0
    for chunk in par.split(messages, 2 * par.workers):
        calls.append((pk.n, chunk, exponents[start * step : (start + len(chunk)) * step]))
        start += len(chunk)
    return [c for chunk in par.process_map(_kernels.encrypt_chunk, calls) for c in chunk]


def _full_randomizers(pk, count: int, random_bytes: RandomBytes | None) -> list[mpz]:
    """``r^n mod n^2`` for ``count`` uniform units r (each r drawn with 128 extra bits, then reduced mod n)."""
    width = (pk.n.bit_length() + 7) // 8 + 16
    draw = random_bytes or os.urandom
    rs = []
    while len(rs) < count:
        data = draw(width * (count - len(rs)))
        for i in range(0, len(data) - width + 1, width):
            r = mpz(int.from_bytes(data[i : i + width], "big")) % pk.n
            if r > 1 and gmpy2.gcd(r, pk.n) == 1:
                rs.append(r)
    par = pk.parallelism
    if not par.use_for(count):
        return _kernels.full_randomizers(pk.n, rs) if rs else []
    chunks = par.thread_map(_kernels.full_randomizers, [(pk.n, chunk) for chunk in par.split(rs)])
    return [r for chunk in chunks for r in chunk]


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
