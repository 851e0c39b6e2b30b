"""Simultaneous multi-exponentiation mod N: ``out[j] = prod_i bases[i]^exponents[i][j]`` (Straus's method).

Every output shares one chain of squarings, and every base gets one small table of its powers
``b^0 .. b^(2^w - 1)``, built once and reused for all outputs; a ``bits``-bit exponent then costs
``bits / w`` table multiplications instead of ``bits`` squarings plus about ``bits / 5`` multiplications
for an exponentiation of its own. Negative exponents go to a second accumulator, inverted once at the
end. This is the kernel of encrypted matrix products (``Enc(A) @ B`` and ``B @ Enc(A)``).

:func:`multiexp` runs in gmpy2 products (holding the GIL); :func:`multiexp_lanes` does the same work
in SIMD lanes (:mod:`smpc.he.lanes`), one output per lane, on threads, for the large products that
fill the lanes.
"""

from __future__ import annotations

from typing import Sequence

import gmpy2
import numpy as np
from gmpy2 import mpz

from smpc.he import lanes

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


#: the lane kernel reads exponents through int64, so it takes magnitudes below 2^62; gmpy2 takes the rest
MAX_LANE_BITS = 62
#: the power tables of one batch of tasks (a base and its inverse, 2^w powers each) stay below this
MAX_LANE_TABLE_BYTES = 32 << 20


def multiexp_lanes(tasks: list, modulus, parallelism=None) -> list[list[mpz]]:
    """:func:`multiexp` on each ``(bases, exponents)`` task, one output per SIMD lane, groups on the threads.

    Each step of :func:`smpc.he.lanes.evaluate` is ``w`` squarings and one product per base, by an
    entry of the base's table of powers ``b^0 .. b^(2^w - 1)`` (:func:`smpc.he.lanes.power_tables`);
    lanes of one group may belong to different tasks, the entries being picked lane by lane.
    Negative exponents are shifted: with ``M = 2^bits`` above every magnitude, ``prod_i b_i^(e_ij)
    = prod_i b_i^(e_ij + M) * (prod_i b_i)^-M``, one inversion per task instead of one per base.
    Tasks go in batches whose tables fit :data:`MAX_LANE_TABLE_BYTES`. Exponents must be below
    ``2^62`` in magnitude and bases units modulo ``modulus``; the results equal :func:`multiexp`'s.
    """
    mod = lanes.Modulus(modulus)
    bits = exponent_bits(tasks)
    if bits > MAX_LANE_BITS:
        raise ValueError(f"exponents of {bits} bits: the lane kernel takes at most {MAX_LANE_BITS}")
    if bits == 0:
        return [[mpz(1)] * (len(exponents[0]) if len(exponents) else 0) for _, exponents in tasks]
    shifted = [(bases, _shift(exponents, bits)) for bases, exponents in tasks]
    width = _lane_window(shifted, bits + 1)
    entry_bytes = (1 << width) * mod.limbs * 4
    results, batch, batch_bases = [], [], 0
    for task in shifted:
        if batch and (batch_bases + len(task[0])) * entry_bytes > MAX_LANE_TABLE_BYTES:
            results += _lane_batch(batch, mod, width, bits + 1, parallelism)
            batch, batch_bases = [], 0
        batch.append(task)
        batch_bases += len(task[0])
    if batch:
        results += _lane_batch(batch, mod, width, bits + 1, parallelism)
    n = mod.value
    for index, (bases, exponents) in enumerate(tasks):
        if any(int(e) < 0 for row in exponents for e in row):
            product = mpz(1)
            for base in bases:
                product = product * base % n
            correction = gmpy2.powmod(gmpy2.invert(product, n), mpz(1) << bits, n)
            results[index] = [value * correction % n for value in results[index]]
    return results


def exponent_bits(tasks: list) -> int:
    """The bit length of the largest exponent magnitude over all tasks."""
    return max((abs(int(e)).bit_length() for _, exponents in tasks for row in exponents for e in row), default=0)


def _shift(exponents, bits: int) -> list[list[int]]:
    """The exponents plus ``2^bits`` if any is negative (then all are in [0, 2^(bits+1))), else as they are."""
    rows = [[int(e) for e in row] for row in exponents]
    if not any(e < 0 for row in rows for e in row):
        return rows
    offset = 1 << bits
    return [[e + offset for e in row] for row in rows]


def _lane_window(tasks: list, bits: int) -> int:
    """The window minimizing table products (per base) plus step products (per output), in lanes."""
    best, best_cost = 1, None
    for width in range(1, 9):
        steps = -(-bits // width)
        cost = 0
        for bases, exponents in tasks:
            outputs = len(exponents[0]) if len(exponents) else 0
            cost += len(bases) * ((1 << width) - 2) + outputs * steps * (width + len(bases))
        if best_cost is None or cost < best_cost:
            best, best_cost = width, cost
    return best


def _lane_batch(tasks: list, mod, width: int, bits: int, parallelism) -> list[list[mpz]]:
    counts = [len(exponents[0]) if len(exponents) else 0 for _, exponents in tasks]
    firsts = [base for bases, _ in tasks for base in bases]
    table_rows = mod.montgomery(firsts)
    one = mod.montgomery([1])[0]
    size = 1 << width
    tables = np.empty((len(firsts) * size, mod.limbs), dtype=np.uint32)
    parts = 1 if parallelism is None else max(1, min(parallelism.workers, -(-len(firsts) // lanes.LANES)))
    bounds = [lanes.LANES * (-(-len(firsts) * k // parts) // lanes.LANES) for k in range(parts + 1)]
    bounds[-1] = len(firsts)
    calls = [(table_rows[lo:hi], one, mod.n, mod.n0, width, tables[lo * size : hi * size])
             for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
    if parallelism is not None and len(calls) > 1:
        parallelism.thread_map(lanes.power_tables, calls)
    else:
        for call in calls:
            lanes.power_tables(*call)
    out = mod.run(tables, _lane_indices(tasks, width, bits), width, parallelism)
    values = mod.values(out, sum(counts))
    results, start = [], 0
    for count in counts:
        results.append(values[start : start + count])
        start += count
    return results


def _lane_indices(tasks: list, width: int, bits: int) -> np.ndarray:
    """Table rows ``(groups, steps, blocks, LANES)``: lane = output, block = base, digits from the top."""
    steps = -(-bits // width)
    blocks = max(len(bases) for bases, _ in tasks)
    mask = (1 << width) - 1
    columns, first = [], 0
    for bases, exponents in tasks:
        exps = np.array(exponents, dtype=np.int64).reshape(len(bases), -1)  # non-negative, below 2^63
        rows = (first + np.arange(len(bases), dtype=np.int64)).reshape(-1, 1) << width
        index = np.zeros((steps, blocks, exps.shape[1]), dtype=np.int64)
        for step in range(steps):
            index[step, : len(bases)] = rows + ((exps >> (width * (steps - 1 - step))) & mask)
        columns.append(index)
        first += len(bases)
    return lanes.groups_of(np.concatenate(columns, axis=2).astype(np.int32))
