"""Simultaneous multi-exponentiation mod N: ``out[j] = prod_i bases[i]^exponents[i][j]`` (Straus's method).

Every output shares one chain of squarings, and every base gets one small table of its powers
``b^0 .. b^(2^w - 1)``, built once and reused for all outputs; a ``bits``-bit exponent then costs
``bits / w`` table multiplications instead of ``bits`` squarings plus about ``bits / 5`` multiplications
for an exponentiation of its own. Negative exponents go to a second accumulator, inverted once at the
end. This is the kernel of encrypted matrix products (``Enc(A) @ B`` and ``B @ Enc(A)``).
"""

from __future__ import annotations

from typing import Sequence

import gmpy2
from gmpy2 import mpz

MAX_TABLE_ENTRIES = 1 << 16  # table memory cap: at 2048 bits an entry is 512 bytes, so 32 MB


def choose_window(bits: int, outputs: int, bases: int) -> int:
    """The window minimizing table building plus table multiplications, within the memory cap."""
    best, best_cost = 1, None
    for w in range(1, 9):
        if w > 1 and bases << w > MAX_TABLE_ENTRIES:
            break
        cost = (1 << w) - 2 + outputs * -(-bits // w)
        if best_cost is None or cost < best_cost:
            best, best_cost = w, cost
    return best


def multiexp(bases: Sequence, exponents: Sequence[Sequence[int]], modulus) -> list[mpz]:
    """``[prod_i bases[i]^exponents[i][j] mod modulus for j]``; bases must be units, exponents signed ints."""
    modulus = mpz(modulus)
    outputs = len(exponents[0]) if len(exponents) else 0
    magnitudes = [[abs(int(e)) for e in row] for row in exponents]
    bits = max((e.bit_length() for row in magnitudes for e in row), default=0)
    if bits == 0:
        return [mpz(1)] * outputs
    w = choose_window(bits, outputs, len(bases))
    mask = (1 << w) - 1
    tables = [_powers(mpz(b), mask, modulus) if any(row) else None for b, row in zip(bases, magnitudes)]
    negative = [[int(e) < 0 for e in row] for row in exponents]
    terms = [(tables[i], magnitudes[i], negative[i]) for i in range(len(bases)) if tables[i] is not None]
    shifts = list(range(w * (-(-bits // w) - 1), -1, -w))
    return [_one_output(terms, j, shifts, w, mask, modulus) for j in range(outputs)]


def _powers(base: mpz, mask: int, modulus: mpz) -> list[mpz]:
    table = [mpz(1), base % modulus]
    for _ in range(2, mask + 1):
        table.append(table[-1] * base % modulus)
    return table


def _one_output(terms, j: int, shifts: list[int], w: int, mask: int, modulus: mpz) -> mpz:
    pos = neg = None
    for shift in shifts:
        if pos is not None:
            for _ in range(w):
                pos = pos * pos % modulus
        if neg is not None:
            for _ in range(w):
                neg = neg * neg % modulus
        for table, magnitudes, negative in terms:
            digit = (magnitudes[j] >> shift) & mask
            if not digit:
                continue
            if negative[j]:
                neg = table[digit] if neg is None else neg * table[digit] % modulus
            else:
                pos = table[digit] if pos is None else pos * table[digit] % modulus
    result = mpz(1) if pos is None else pos
    if neg is not None:
        result = result * gmpy2.invert(neg, modulus) % modulus
    return result
