"""Non-linear functions (exp, log, reciprocal, sqrt, sigmoid, softmax, ...) written once against the shared-tensor
interface: they run on any protocol's shared tensors, and on plain numpy arrays (same approximation, in float64).

===========  ============================================  ==============================  ======================
function     method                                        default input range             online rounds
===========  ============================================  ==============================  ======================
exp          e^i by lookup times a degree-7 e^v            [-12, 16]; clamped outside      C + 7T + 5
sigmoid      degree-6 polynomial per unit piece (lookup)   all x (clamped to +-12)         C + 8T + 7
tanh         degree-6 polynomial per half-unit piece       all x (clamped to +-7)          C + 8T + 7
log          octaves + degree-7 polynomial                 [2^-16, 2^32), clamped          B + 3M + 2T + 4
reciprocal   octaves + polynomial seed + 1 Newton step     +-[2^-16, 2^15), clamped        B + 4M + 3T + 5
divide       x times reciprocal's mantissa part, 2^-k      +-[2^-16, 2^16), |x/y| < 2^30   B + 5M + 3T + 5
inv_sqrt     octaves + polynomial seed + 1 Newton step     [2^-16, 2^32), clamped          B + 5M + 3T + 5
sqrt         m / sqrt(m) 2^(k/2), as inv_sqrt              [0, 2^32), clamped              B + 5M + 3T + 5
softmax      exp(x - max) / sum                            all x                           max + C + B + 5M + 10T + 9
log_softmax  x - max - log(sum exp(x - max))               all x                           max + C + B + 3M + 9T + 8
===========  ============================================  ==============================  ======================

Rounds: C is one comparison, B one bit length (:func:`smpc.mpc.bit_length.leading_one`: an A2B, six ANDs and a
B2A), M one fixed-point product (2 rounds in both protocols), T one truncation (additive 1, aby3 2), a bare
number that many one-round steps (products with an integer tensor, table lookups), max the rounds of
``x.max(axis)``: exact on the additive protocol (the tests assert them), upper bounds on aby3, whose
comparison (8 rounds alone) takes 7 after another step: its first receive continues that step's last round.
:func:`smpc.cost` follows this and gives every protocol's rounds exactly. exp, sigmoid and tanh clamp their
input (two comparisons in one batch), find the piece by one truncation and read its coefficients with one
table lookup (:func:`smpc.mpc.one_hot.lookup`). The octave functions (log, sqrt, inv_sqrt, reciprocal, divide)
find the position of the input's leading one bit (B) and read every function of the octave (2^-k, k ln 2,
clamp values) from tables selected by it: no comparison at all. A clamp of more than
``smpc.mpc.tensor_core.SIGN_BATCH`` (2^22) elements runs as consecutive pieces, so memory stays bounded and C
counts once per piece.
Errors (:data:`ERRORS`, quoted in each docstring and asserted by tests/test_functions.py) are the largest
measured against the exact function of the fixed-point input on dense grids over the stated ranges, on the
additive protocol (2 and 3 parties) and aby3, rounded up; one unit is 2^-16.

Why not CrypTen's iterations (exp by (1 + x/2^n)^(2^n), log by Householder steps on exp, reciprocal by Newton
from an exp seed): with 16 fraction bits, n squarings multiply the last bit's error by 2^n (0.4 % for n = 8),
and the iterations converge on a bounded range only. Here x is placed in a piece of public breakpoints (by
a truncation and a table lookup, or by a batch of comparisons); every public function of that piece (a
coefficient, 2^-k, k ln 2, a clamp value) is then a lookup or a *linear*, local map of the comparison bits,
and a short polynomial does the rest: errors of one to four units, out-of-range inputs clamped.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Union

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from smpc.mpc import arrays
from smpc.mpc.arrays import integer_part as _integer_part, ring_integers as _ring_integers, truncate as _truncate
from smpc.mpc.arrays import with_frac as _with_frac
from smpc.mpc.bit_length import leading_one
from smpc.mpc.one_hot import lookup, select, width_bits
from smpc.mpc.tensor_core import SharedTensorCore
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS

Tensor = Union[SharedTensorCore, np.ndarray]

LN2 = math.log(2.0)
ULP = 2.0**-DEFAULT_FRAC_BITS
SCALE_CAP = 40  # extra fraction bits of a table or coefficient (keeps integer tables below 2^62)
SUM_EXTRA_BITS = 8  # softmax sums exp values that carry this many more fraction bits
LOG_DEGREE = 7  # log m on [1, 2] to 2.6e-7
WIDE_BITS = 24  # fraction bits of exp's powers of v (|v| < 1, so products stay below 2^48)
EXP_COEFFICIENT_BITS = 30  # exp's polynomial coefficients as integers (terms below e 2^54)
Q_BITS = 20  # fraction bits of e^v before the product with the looked-up e^(low + i)


@dataclass(frozen=True)
class Tolerance:
    """Measured maximum errors (rounded up): absolute where |f(x)| <= 1, relative where |f(x)| > 1."""

    absolute: float
    relative: float = 0.0

    def describe(self) -> str:
        text = f"{self.absolute / ULP:g} units ({self.absolute:.2g}) absolute where |f| <= 1"
        return text + (f", {self.relative:.2g} relative where |f| > 1" if self.relative else "")

    def allowed(self, exact) -> np.ndarray:
        """The error allowed at each exact value."""
        exact = np.abs(np.asarray(exact, dtype=np.float64))
        return np.where(exact <= 1, self.absolute, self.relative * exact)


@dataclass(frozen=True)
class Rounds:
    """Online rounds: comparisons (C), fixed-point products (M), truncations (T), one-round steps (products with
    an integer tensor, table lookups) and calls of ``x.max`` (max)."""

    comparisons: int
    products: int
    truncations: int
    integer_products: int
    maxima: int = 0
    bit_lengths: int = 0

    def describe(self) -> str:
        terms = [("max", self.maxima), ("C", self.comparisons), ("B", self.bit_lengths), ("M", self.products),
                 ("T", self.truncations)]
        text = " + ".join(f"{count if count > 1 else ''}{name}" for name, count in terms if count)
        return f"{text} + {self.integer_products}" if self.integer_products else text

    def count(self, comparison: int, product: int, truncation: int, maximum: int = 0, bit_length: int = 0) -> int:
        """The total for measured rounds of one comparison, product, truncation, max and bit length."""
        return (self.maxima * maximum + self.comparisons * comparison + self.products * product
                + self.truncations * truncation + self.integer_products + self.bit_lengths * bit_length)


#: measured maximum errors with 16 fraction bits and default options (docstrings quote them; tests assert them)
ERRORS = {
    "exp": Tolerance(1.25 * ULP, 2e-05),
    "sigmoid": Tolerance(1.5 * ULP),
    "tanh": Tolerance(1.75 * ULP),
    "log": Tolerance(2 * ULP, 3.5e-05),
    "reciprocal": Tolerance(2.5 * ULP, 4e-05),
    "divide": Tolerance(4 * ULP, 7e-05),
    "inv_sqrt": Tolerance(2.5 * ULP, 5e-05),
    "sqrt": Tolerance(3 * ULP, 5e-05),
    "softmax": Tolerance(4 * ULP),
    "log_softmax": Tolerance(3 * ULP, 5e-05),
}

#: online rounds with default options (docstrings quote them; tests assert them on the additive protocol)
ROUNDS = {
    "exp": Rounds(1, 0, 7, 5),
    "sigmoid": Rounds(1, 0, 8, 7),
    "tanh": Rounds(1, 0, 8, 7),
    "log": Rounds(0, 3, 2, 4, bit_lengths=1),
    "reciprocal": Rounds(0, 4, 3, 5, bit_lengths=1),
    "divide": Rounds(0, 5, 3, 5, bit_lengths=1),
    "inv_sqrt": Rounds(0, 5, 3, 5, bit_lengths=1),
    "sqrt": Rounds(0, 5, 3, 5, bit_lengths=1),
    "softmax": Rounds(1, 5, 10, 9, maxima=1, bit_lengths=1),
    "log_softmax": Rounds(1, 3, 9, 8, maxima=1, bit_lengths=1),
}


# --- public functions ---------------------------------------------------------------------------------------
def exp(x: Tensor, *, low: int | None = None, high: int = 16, degree: int = 7) -> Tensor:
    """e^x for low <= x <= high (defaults -12 and 16: e^-12 is below half a unit, e^16 = 8.9e6).

    Outside: x <= low - 1 gives exactly 0 (e^low is below half a unit by default; masked softmax scores need
    the exact 0), x > high gives e^high; ``high`` <= 20. With x clamped to [low - 1, high], e^x = e^(low - 1 + i)
    e^v, i = x - low + 1 rounded by one truncation (down, or up with the probability of the fraction) and
    v = x - low + 1 - i in (-1, 1): e^(low - 1 + i) is one table lookup (0 for i = 0; in two
    columns of different scales, so large values keep their relative and small ones their absolute
    precision), e^v a degree-``degree`` Chebyshev polynomial with public coefficients on powers of v kept
    to 24 fraction bits (each level of their product tree an integer product and a truncation). Rounds:
    C + ceil(log2 degree) (T + 1) + 4T + 2, by default C + 7T + 5.
    Measured error: 1.25 units (1.9e-05) absolute where |f| <= 1, 2e-05 relative where |f| > 1.
    """
    x, frac = _prepare(x)
    return _exp(x, frac, low, high, degree)


def sigmoid(x: Tensor, *, limit: int = 12, degree: int = 6) -> Tensor:
    """1 / (1 + e^-x) for every x (|x| < 2^45, as every comparison needs).

    x is clamped to [-limit, limit] (error there at most e^-limit: 6.1e-6 by default). On each piece
    [j, j+1) a degree-``degree`` Chebyshev interpolant of the sigmoid, its coefficients looked up.
    Rounds: C + (degree + 2) T + degree + 1, by default C + 8T + 7.
    Measured error: 1.5 units (2.3e-05) absolute where |f| <= 1.
    """
    x, frac = _prepare(x)
    _check_int("limit", limit, 1, 64)
    _check_int("degree", degree, 1, 12)
    table = _overlapping_fits(_logistic, -limit, limit, 1.0, degree)
    return _piecewise(x, frac, table, -limit, limit, 1.0)


def tanh(x: Tensor, *, limit: int = 7, degree: int = 6) -> Tensor:
    """tanh(x) for every x (|x| < 2^45).

    x is clamped to [-limit, limit] (error there at most 2 e^(-2 limit): 1.7e-6 by default). On each
    half-unit piece a degree-``degree`` Chebyshev interpolant of tanh, its coefficients looked up.
    Rounds: C + (degree + 2) T + degree + 1, by default C + 8T + 7.
    Measured error: 1.75 units (2.7e-05) absolute where |f| <= 1.
    """
    x, frac = _prepare(x)
    _check_int("limit", limit, 1, 32)
    _check_int("degree", degree, 1, 12)
    table = _overlapping_fits(np.tanh, -limit, limit, 0.5, degree)
    return _piecewise(x, frac, table, -limit, limit, 0.5)


def piecewise(x: Tensor, fn: Callable, low: float, high: float, *, width: float = 1.0, degree: int = 6) -> Tensor:
    """fn(clamp(x, low, high)) by pieces of ``width`` (a power of two, at most 1), each a degree-``degree``
    Chebyshev interpolant fitted on two widths, its coefficients read by one table lookup (as exp, sigmoid and
    tanh are made; see the module docstring). ``fn`` must be a numpy function (vectorised), smooth on [low,
    high]; at most 63 pieces. Rounds: C + (degree + 2) T + degree + 1. The error is fn's fit error (below a
    unit for smooth functions of modest derivatives at the defaults) plus about 1.5 units of fixed-point noise.
    """
    x, frac = _prepare(x)
    _check_int("degree", degree, 1, 12)
    if not (0 < width <= 1 and math.log2(width).is_integer()):
        raise ValueError(f"piecewise: width must be a power of two in (0, 1], got {width!r}")
    pieces = (high - low) / width
    if not (pieces.is_integer() and 1 <= pieces <= 63):
        raise ValueError(f"piecewise: [low, high] = [{low}, {high}] must span 1 to 63 whole pieces of {width}")
    table = _overlapping_fits(fn, float(low), float(high), float(width), degree)
    return _piecewise(x, frac, table, low, high, width)


def log(x: Tensor, *, low: int | None = None, high: int = 32, degree: int = LOG_DEGREE) -> Tensor:
    """Natural logarithm for 2^low <= x < 2^high (defaults 2^-16, one unit, and 2^32).

    Outside, x is clamped: x < 2^low (zero and negative x included) gives low ln 2 (-11.09), x >= 2^high
    gives high ln 2. Octave reduction x = m 2^k, m in [1, 2) (the bit length of x, one product with the
    table 2^-k), then a degree-``degree`` Chebyshev interpolant of log m, plus the table k ln 2.
    Rounds: B + ceil(log2 degree) M + 2T + 4, by default B + 3M + 2T + 4.
    Measured error: 2 units (3.1e-05) absolute where |f| <= 1, 3.5e-05 relative where |f| > 1.
    """
    x, frac = _prepare(x)
    return _log(x, frac, low, high, degree)


def reciprocal(x: Tensor, *, low: int | None = None, high: int | None = None, signed: bool = True,
               degree: int = 4, iterations: int = 1) -> Tensor:
    """1 / x for 2^low <= |x| < 2^high (defaults 2^-16 and 2^15).

    Outside, |x| is clamped: 0 < |x| < 2^low gives +-2^-low (x = 0 gives +2^-low), |x| >= 2^high gives
    +-2^-high (by default 2^-15, at most one unit from 1 / x). ``signed=False`` (for positive x) spares two
    products; negative x then read as 2^low.
    Octave reduction |x| = m 2^k, a degree-``degree`` Chebyshev seed for 1/m, ``iterations`` Newton
    steps y <- y (2 - m y) (Ercegovac and Lang, "Digital Arithmetic", 2004, chapter 7), times the
    tables 2^-k and sign(x). Rounds: B + (ceil(log2 degree) + 2 iterations) M + 3T + 5, by default
    B + 4M + 3T + 5. Measured error: 2.5 units (3.8e-05) absolute where |f| <= 1, 4e-05 relative where |f| > 1.
    """
    x, frac = _prepare(x)
    high = frac - 1 if high is None else high  # 2^15: 32 octave positions, and at most 1 unit lost above it
    octaves, inverse, rest = _inverse(x, frac, low, high, signed, degree, iterations, bounded=True)
    out = octaves.rescale(inverse, 2.0**rest, output_bound=2.0 ** (1 - octaves.k.min()))
    return octaves.finish(out, 2.0 ** -float(octaves.k.min()))


def divide(x: Tensor | float, y: Tensor, *, low: int | None = None, high: int | None = None, signed: bool = True,
           degree: int = 4, iterations: int = 1) -> Tensor:
    """x / y for 2^low <= |y| < 2^high (defaults 2^-16 and 2^16) and |x / y| < 2^(46 - high) (2^30).

    ``x`` may be shared or public. A public ``y`` goes to the shared tensor's division by a public value;
    shapes must broadcast. y is clamped as in :func:`reciprocal` (y = 0 reads as 2^low), whose options
    these are. x / y = (x 2^max(-k, 0) / m) sign(y) 2^min(-k, 0): the quotient keeps its significant bits
    even where 1 / y alone would not (small x and y, or large y). Rounds: those of reciprocal + M, by
    default B + 5M + 3T + 5. Measured error: 4 units (6.1e-05) absolute where |f| <= 1, 7e-05 relative where |f| > 1.
    """
    if arrays.is_shared(x) and not arrays.is_shared(y):  # a public divisor: one truncation, no octaves
        _check_shapes(x.shape, np.shape(y))
        return x / y
    y, frac = _prepare(y)
    _check_shapes(np.shape(x), y.shape)
    return _divide(x, y, frac, low, high, signed, degree, iterations)


def _divide(x, y, frac, low, high, signed, degree, iterations, positive: bool = False) -> Tensor:
    """x / y as :func:`divide` says; ``positive``: y is known to be positive (no fix for negative y)."""
    octaves, inverse, rest = _inverse(y, frac, low, high, signed, degree, iterations, bounded=False)
    out = octaves.rescale(inverse * x, 2.0**rest)
    if positive or octaves.negative is None:
        return out
    return octaves.finish(out, x * 2.0 ** -float(octaves.k.min()))


def inv_sqrt(x: Tensor, *, low: int | None = None, high: int = 32, degree: int = 4, iterations: int = 1) -> Tensor:
    """1 / sqrt(x) for 2^low <= x < 2^high (defaults 2^-16 and 2^32).

    Outside, x is clamped: x < 2^low (zero and negative x included) gives 2^(-low/2) = 256, x >= 2^high
    gives 2^(-high/2). Octave reduction x = m 2^k (where low and high have the parity of the fraction bits, as
    by default: k even and m in [1, 4), pairs of positions indexing the tables, so the one-hot rows are half as
    long), a degree-``degree`` Chebyshev seed for m^-1/2, ``iterations`` Newton steps y <- y (3 - m y^2) / 2
    (Ercegovac and Lang, chapter 7), times the table 2^(-k/2).
    Rounds: B + (ceil(log2 degree) + 3 iterations) M + 3T + 5, by default B + 5M + 3T + 5.
    Measured error: 2.5 units (3.8e-05) absolute where |f| <= 1, 5e-05 relative where |f| > 1.
    """
    x, frac = _prepare(x)
    low, high = _octave_range(frac, low, high)

    def later(k, inside):
        up_table, rest = _split_table(-k / 2)
        return [up_table, _rescale_table(2.0 ** (rest - 1), frac, 2.0 ** (1 - k.min() / 2))[0]]

    octaves, seed = _seeded(x, frac, low, high, False, _inverse_root, degree, iterations, later=later,
                            step=_octave_step(frac, low, high))
    up, rest = octaves.split(-octaves.k / 2)
    twice = _inv_sqrt_newton(octaves.mantissa, seed, iterations, up)  # 2^(up + 1) / sqrt(m)
    out = octaves.rescale(twice, 2.0 ** (rest - 1), output_bound=2.0 ** (1 - octaves.k.min() / 2))
    return octaves.finish(out, 2.0 ** (-low / 2))


def sqrt(x: Tensor, *, low: int | None = None, high: int = 32, degree: int = 4, iterations: int = 1) -> Tensor:
    """Square root for 0 <= x < 2^high (default 2^32), exactly 0 at 0.

    Outside: x < 2^low (default 2^-16, so zero and negative x) gives 0, x >= 2^high gives 2^(high/2).
    sqrt(x) = m / sqrt(m) 2^(k/2) with the octaves, seed and Newton steps of :func:`inv_sqrt`; the product with m
    rides in their rounds. Rounds: as inv_sqrt, by default B + 5M + 3T + 5.
    Measured error: 3 units (4.6e-05) absolute where |f| <= 1, 5e-05 relative where |f| > 1.
    """
    x, frac = _prepare(x)
    low, high = _octave_range(frac, low, high)

    def later(k, inside):
        up_table, rest = _split_table(k / 2)
        values = np.where(~inside & (k == k.min()), 0.0, 2.0 ** (rest - 1))  # as :attr:`_Octaves.below`
        return [up_table, _rescale_table(values, frac, 2.0 ** (1 + k.max() / 2))[0]]

    octaves, seed = _seeded(x, frac, low, high, False, _inverse_root, degree, iterations, zero_mantissa=0,
                            later=later, step=_octave_step(frac, low, high))
    up, rest = octaves.split(octaves.k / 2)
    m = octaves.mantissa  # 0 at x = 0, so the result is exactly 0 there
    twice = _inv_sqrt_newton(m, seed, iterations, m, up)  # 2^(up + 1) m / sqrt(m)
    values = np.where(octaves.below, 0.0, 2.0 ** (rest - 1))
    out = octaves.rescale(twice, values, output_bound=2.0 ** (1 + octaves.k.max() / 2))
    return octaves.finish(out, 0.0)


def softmax(x: Tensor, axis: int = -1, *, low: int | None = None, degree: int = 6) -> Tensor:
    """exp(x - max) / sum(exp(x - max)) along ``axis``, for any x (|x| < 2^44: x - max is compared).

    Differences x - max below ``low`` (default -18 with 16 fraction bits) count as 0; ``low`` and ``degree`` go to
    :func:`exp` on [low, 0], which here keeps 8 more fraction bits so that the sum (in [1, n] for n
    elements) does not add up n rounding errors; the division then needs only the octaves of [1, n].
    Rounds: max + exp's + divide's, by default max + C + B + 5M + 10T + 9.
    Measured error: 4 units (6.1e-05) absolute where |f| <= 1.
    """
    x, axis, frac = _prepare_axis(x, axis)
    low = _sum_low(frac) if low is None else low
    numerator = _exp(x - _max(x, axis), frac, low, 0, degree, extra_bits=SUM_EXTRA_BITS, clamp_high=False)
    total = numerator.sum(axis=axis, keepdims=True)
    high = SUM_EXTRA_BITS + _length_bits(x, axis)
    return _divide(numerator, total, frac, SUM_EXTRA_BITS, high, False, 4, 1, positive=True)  # total >= 1


def log_softmax(x: Tensor, axis: int = -1, *, low: int | None = None, degree: int = 6) -> Tensor:
    """x - max - log(sum(exp(x - max))) along ``axis``, for any x (|x| < 2^44).

    exp as in :func:`softmax` (8 more fraction bits), then :func:`log` of the sum on the octaves of [1, n].
    Rounds: max + exp's + log's, by default max + C + B + 3M + 9T + 8.
    Measured error: 3 units (4.6e-05) absolute where |f| <= 1, 5e-05 relative where |f| > 1.
    """
    x, axis, frac = _prepare_axis(x, axis)
    low = _sum_low(frac) if low is None else low
    shifted = x - _max(x, axis)
    numerator = _exp(shifted, frac, low, 0, degree, extra_bits=SUM_EXTRA_BITS, clamp_high=False)
    total = numerator.sum(axis=axis, keepdims=True)
    high = SUM_EXTRA_BITS + _length_bits(x, axis)
    return shifted - _log(total, frac, SUM_EXTRA_BITS, high, LOG_DEGREE, shift=SUM_EXTRA_BITS, positive=True)


def _sum_low(frac: int) -> int:
    """Where a softmax term may count as 0: e^low below half a unit of the sum's finer scale, so that n
    clamped terms lose at most n 2^-(frac + SUM_EXTRA_BITS + 1) (with -12, 1000 terms could lose 1e-3)."""
    return math.floor(-(frac + SUM_EXTRA_BITS + 1) * LN2)


def _exp(x: Tensor, frac: int, low: int | None, high: int, degree: int, extra_bits: int = 0,
         clamp_high: bool = True) -> Tensor:
    """e^x 2^extra_bits (the last truncation keeps ``extra_bits`` more fraction bits)."""
    _check_int("high", high, -63, 20)
    low = math.floor(-(frac + 1) * LN2) if low is None else low
    _check_int("low", low, -64, high - 1)
    _check_int("degree", degree, 1, 12)
    # the clamp keeps one piece below low, whose value is 0: x <= low - 1 (masked softmax scores) gives
    # index 0 exactly, so exactly 0
    floor = low - 1
    t = _clamp(x, floor, high if clamp_high else None) - floor
    index = _integer_part(t)
    v = t - index  # in (-1, 1), exact: e^x = e^(floor + index) e^v
    # e^v by a polynomial with public coefficients on powers kept to WIDE_BITS fraction bits, to Q_BITS bits
    powers = _wide_powers(v, frac, degree)
    coefficients = _scaled_ints(_fit(np.exp, degree, -1.0, 1.0), EXP_COEFFICIENT_BITS)
    q = sum(p * int(c) for p, c in zip(powers, coefficients[1:])) + (int(coefficients[0]) << WIDE_BITS)
    q = _truncate(q, WIDE_BITS + EXP_COEFFICIENT_BITS - Q_BITS)  # e^v 2^Q_BITS, an integer tensor
    # e^(low + i) from one lookup, in two columns of different scales (large values keep their relative
    # precision, small ones their absolute), each times q: one round, then one truncation each
    values = np.exp(floor + np.arange(high - floor + 1, dtype=np.float64))
    values[0] = 0.0
    big_bits = math.floor(60 - math.log2(values.max() * math.e) - Q_BITS)
    threshold = 2.0 ** (21 - big_bits)
    small_bits = math.floor(60 - math.log2(threshold * math.e) - Q_BITS)
    big = np.where(values >= threshold, values, 0.0)
    small = np.where(values >= threshold, 0.0, values)
    table = np.stack([_scaled_ints(big, big_bits), _scaled_ints(small, small_bits)], axis=1)
    scales = _move_last_first(_table_lookup(index, table))  # (2, *shape) integer tensor
    products = scales * q  # integer products, q broadcast against both columns (opened once): one round
    out = (_truncate(products[0], big_bits + Q_BITS - frac - extra_bits)
           + _truncate(products[1], small_bits + Q_BITS - frac - extra_bits))
    return _with_frac(out, frac)


def _log(x: Tensor, frac: int, low: int | None, high: int | None, degree: int, shift: int = 0,
         positive: bool = False) -> Tensor:
    """log(x 2^-shift) for x in [2^low, 2^high); ``positive``: x is known to be positive."""
    low, high = _octave_range(frac, low, high)
    _check_int("degree", degree, 1, 12)
    octaves = _Octaves.of(x, frac, low, high, signed=False)
    u = 2 * octaves.mantissa - 3  # m in [1, 2] -> u in [-1, 1], exact
    out = _polynomial(u, frac, _fit(np.log, degree, 1.0, 2.0), octaves.selection, (octaves.k - shift) * LN2)
    return out if positive else octaves.finish(out, (low - shift) * LN2)


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def _inverse_root(m):
    return m**-0.5


# --- plumbing: the same code on shared tensors and numpy arrays --------------------------------------------
def _prepare(x) -> tuple[Tensor, int]:
    """A fixed-point shared tensor (integer ones are converted) or a float64 array, and its fraction bits."""
    x = arrays.as_float(x)
    return x, arrays.frac_bits(x)


def _prepare_axis(x, axis: int) -> tuple[Tensor, int, int]:
    x, frac = _prepare(x)
    return x, normalize_axis_index(axis, x.ndim), frac


def _stack(items: list) -> Tensor:
    return np.stack(items)


def _products(lefts: list, rights: list) -> list:
    """lefts[i] * rights[i] for every i, in one round (stacked) for shared operands; an operand common to every
    product is broadcast against the others' stack (opened once)."""
    if len(lefts) == 1:
        return [lefts[0] * rights[0]]
    if all(left is lefts[0] for left in lefts):
        both = lefts[0] * _stack(rights)
    elif all(right is rights[0] for right in rights):
        both = _stack(lefts) * rights[0]
    else:
        both = _stack(lefts) * _stack(rights)
    return _unstack(both)


def _max(x: Tensor, axis: int) -> Tensor:
    return np.max(x, axis=axis, keepdims=True)


def _scale_bits(bound: float, frac: int) -> int:
    """The most extra fraction bits S (<= SCALE_CAP) with bound * 2^(S + frac) < 2^61."""
    scale = min(SCALE_CAP, math.floor(61 - frac - math.log2(max(bound, 1e-9))))
    if scale < 0:
        raise ValueError(f"values up to {bound:.3g} do not fit with {frac} fraction bits; narrow the range")
    return scale


def _scaled_ints(values, scale: int) -> np.ndarray:
    return np.rint(np.asarray(values, dtype=np.float64) * 2.0**scale).astype(np.int64)


# --- polynomials ---------------------------------------------------------------------------------------------
# Chebyshev interpolation is within a small factor of the best (minimax) polynomial and converges
# geometrically for analytic functions: Trefethen, "Approximation Theory and Approximation Practice",
# SIAM 2013, chapters 8 and 16. Coefficients are taken in the monomial basis of u in [-1, 1].
@lru_cache(maxsize=None)
def _fit(fn: Callable, degree: int, a: float, b: float) -> np.ndarray:
    """Monomial coefficients (u^0..u^degree) of the Chebyshev interpolant of fn((a+b)/2 + (b-a)/2 u)."""
    mid, half = (a + b) / 2, (b - a) / 2
    interpolant = np.polynomial.Chebyshev.interpolate(lambda u: fn(mid + half * u), degree)
    coefficients = interpolant.convert(kind=np.polynomial.Polynomial).coef
    return np.pad(coefficients, (0, degree + 1 - len(coefficients)))


def _wide_powers(v: Tensor, frac: int, degree: int) -> list:
    """[v, v^2, ..., v^degree] of a fixed-point |v| < 1, as integer tensors scaled by 2^WIDE_BITS (more fraction
    bits than v's): the product tree of :func:`_powers` on ring integers, each level one integer product and one
    truncation by WIDE_BITS (the same rounds as fixed-point products), so a power errs by 2^-WIDE_BITS."""
    first = _ring_integers(v, frac) * (1 << (WIDE_BITS - frac))  # exact
    powers = [first]
    while len(powers) < degree:
        count = min(len(powers), degree - len(powers))
        # u^n * u^i = u^(n+i) for i = 1..count: u^n broadcast against the stacked u^i, one product (u^n opened once)
        level = _truncate(powers[-1] * (powers[0] if count == 1 else _stack(powers[:count])), WIDE_BITS)
        powers += [level] if count == 1 else _unstack(level)
    return powers


def _powers(u: Tensor, degree: int) -> list:
    """[u, u^2, ..., u^degree] by a product tree: ceil(log2 degree) rounds of (batched) products."""
    powers = [u]
    while len(powers) < degree:
        count = min(len(powers), degree - len(powers))
        powers += _products([powers[-1]] * count, powers[:count])  # u^n * u^i = u^(n+i)
    return powers


def _polynomial(u: Tensor, frac: int, coefficients: np.ndarray, selection=None, values=None,
                reach: float = 1.0) -> Tensor:
    """sum_i c_i u^i for public c_i and |u| <= ``reach`` (+ ``values`` picked by a ``selection`` of
    :func:`_select`): local products with the coefficients scaled to integers by 2^S, then one truncation by S."""
    terms = np.abs(coefficients) * float(reach) ** np.arange(len(coefficients))
    bound = float(np.sum(terms)) + (0.0 if values is None else float(np.max(np.abs(values))))
    scale = _scale_bits(bound, frac)
    ints = _scaled_ints(coefficients, scale)
    total = sum(p * int(c) for p, c in zip(_powers(u, len(ints) - 1), ints[1:])) + int(ints[0])
    if values is not None:
        total = total + _pick(selection, _scaled_ints(values, scale))
    return _truncate(total, scale)


# --- piecewise polynomials on equal pieces (exp, sigmoid, tanh) ---------------------------------------------
# x is clamped to [low, high] (one batched ReLU pair), its piece index i is one truncation of t = (x - low) / width
# (floor(t), or floor(t) + 1 with the probability of t's fraction: the stochastic rounding of the exact truncation),
# and the coefficients of piece i come from one table lookup (:func:`smpc.mpc.one_hot.lookup`: a dealer-made
# random one-hot rotated by the opened i - r, one round, no comparison per piece). Because i may be one above
# floor(t), each piece's polynomial in v = t - i is fitted on v in [-1, 1): two widths, so either rounding is right.
@lru_cache(maxsize=None)
def _overlapping_fits(fn: Callable, low: float, high: float, width: float, degree: int) -> np.ndarray:
    """(pieces + 1, degree + 1) monomial coefficients in v of fn(low + (i + v) width), fitted (Chebyshev) on
    v in [-1, 1] within [low, high]: [0, 1] for the first piece, [-1, 0] for the last (i = pieces: x = high)."""
    pieces = round((high - low) / width)
    rows = []
    for i in range(pieces + 1):
        start, stop = (-1.0 if i > 0 else 0.0), (1.0 if i < pieces else 0.0)
        g = functools.partial(_at_piece, fn, low, width, i)
        rows.append(_fit_in(g, degree, start, stop))
    return np.array(rows)


def _at_piece(fn: Callable, low: float, width: float, i: int, v):
    return fn(low + (i + v) * width)


def _fit_in(fn: Callable, degree: int, a: float, b: float) -> np.ndarray:
    """Monomial coefficients (v^0..v^degree) in v itself of the Chebyshev interpolant of fn on [a, b]."""
    interpolant = np.polynomial.Chebyshev.interpolate(fn, degree, domain=[a, b])
    coefficients = interpolant.convert(kind=np.polynomial.Polynomial, domain=[-1, 1], window=[-1, 1]).coef
    return np.pad(coefficients, (0, degree + 1 - len(coefficients)))


def _piecewise(x: Tensor, frac: int, table: np.ndarray, low: float, high: float, width: float,
               clamp_high: bool = True, extra_bits: int = 0) -> Tensor:
    """The piecewise polynomial ``table`` (rows of :func:`_overlapping_fits`) at x clamped to [low, high]
    (``clamp_high=False``: to [low, ..), for inputs known to be <= high); the result carries ``extra_bits`` more
    fraction bits.

    The looked-up coefficients (integers scaled by 2^S) are combined by Horner's rule on v's ring integers:
    each step one product of integers and one truncation by frac, so the accumulator keeps S fraction bits
    (errors of 2^-S per step) and a degree-d polynomial costs d products of n elements (the power tree and the
    terms would cost 2d - 1). Rounds: one ReLU (the clamp), T (the index), 1 (the lookup), d (1 + T), T.
    """
    degree = table.shape[1] - 1
    bound = float(np.max(np.sum(np.abs(table), axis=1)))  # |partial sums| for |v| < 1
    scale = min(SCALE_CAP, math.floor(61 - frac - math.log2(max(bound, 1e-9))))  # acc 2^S v 2^f < 2^61
    if scale < frac + extra_bits:
        raise ValueError(f"values up to {bound:.3g} leave no room for {extra_bits} extra bits")
    t = _clamp(x, low, high if clamp_high else None) - low
    if width != 1:
        t = t * round(1 / width)  # exact: widths are 2^-j
    index = _integer_part(t)
    v = _ring_integers(t - index, frac)  # v 2^frac, v in (-1, 1): exact
    coefficients = _move_last_first(_table_lookup(index, _scaled_ints(table, scale)))  # integer tensor
    total = coefficients[degree]
    for k in range(degree - 1, -1, -1):
        total = _truncate(total * v, frac) + coefficients[k]  # integer product: one round, then a truncation
    return _with_frac(_truncate(total, scale - frac - extra_bits), frac)


def _clamp(x: Tensor, low: float, high: float | None) -> Tensor:
    """x clamped to [low, high] (high None: no upper bound): one batched ReLU on shared tensors, exact."""
    return np.clip(x, low, high)


def _table_lookup(index: Tensor, table: np.ndarray) -> Tensor:
    """table[index] (shape index.shape + table.shape[1:]): one lookup round on shared indices."""
    if arrays.is_shared(index):  # a shared index cannot index: a rotated random one-hot (one round)
        return lookup(index, table)
    return table[index.astype(np.int64)].astype(np.float64)


def _move_last_first(t: Tensor) -> Tensor:
    return np.transpose(t, (t.ndim - 1,) + tuple(range(t.ndim - 1)))


# --- octave reduction (log, reciprocal, divide, sqrt, inv_sqrt) -------------------------------------------------
# Range reduction x = m 2^k as in libm (Muller, "Elementary Functions: Algorithms and Implementation", 3rd ed.,
# 2016, chapter 11); k is never revealed: the position of x's leading one bit (one bit decomposition and a
# prefix OR, :mod:`smpc.mpc.bit_length`) selects every function of k by a table lookup.
POSITIONS = 64  # a ring value's leading one lies at a position 0..63


@dataclass
class _Octaves:
    """x = m 2^k: the position p of x's leading one bit selects, per p (or per pair of positions p >> 1, for
    ``step`` 2), the exponent ``k`` and whether x is ``inside`` the range (else it reads as 2^k: clamped), and
    gives the mantissa m = |x| 2^-k in [1, 2^step] (1 outside the range) and, for signed octaves, the sign bit (a
    shared 0/1, else None)."""

    selection: object
    k: np.ndarray
    inside: np.ndarray
    sign: Tensor | None
    mantissa: Tensor
    frac: int
    negative: Tensor | None = None

    @classmethod
    def of(cls, x: Tensor, frac: int, low: int, high: int, signed: bool, zero_mantissa: int = 1,
           later: Callable | None = None, step: int = 1) -> "_Octaves":
        """The octaves of x; ``later(k, inside)``: the tables the caller will look up (:meth:`split`,
        :meth:`rescale`), looked up now with the mantissa's in one pass over the one-hot rows, which are then
        released (:meth:`smpc.mpc.one_hot.Selection.plan`). ``step`` 2 (where :func:`_octave_step` allows it):
        the tables are indexed by pairs of positions, so the one-hot rows are half as long."""
        # positions of the leading one, clamped to one below the range (x < 2^low) and its top (x >= 2^high)
        lowest, highest = max(low + frac - 1, 0), min(high + frac, POSITIONS - 1)
        shift = step - 1
        first, last = lowest >> shift, highest >> shift
        # index j: x in [2^(e_j), 2^(e_j + step)), e_j = j step - frac
        exponent = (np.arange(first, last + 1) << shift) - frac
        inside = (exponent >= low) & (exponent + shift < high)
        k = exponent.clip(low, high)  # below 2^low (x = 0 included) clamps to 2^low, from 2^high on to 2^high
        position, sign, zero = _leading_one(x, frac, signed, lowest, highest, shift)
        selection = _select(position - first, len(exponent))
        # m = |x| 2^(S-k) / 2^S inside, 1 outside or at x = 0 (or ``zero_mantissa``): one lookup of two columns,
        # one product, one truncation
        scale = max(high, 0)
        to_unit = np.where(inside, 2.0 ** (scale - k), 0).astype(np.int64)
        one = np.where(inside, 0, 2**scale).astype(np.int64)
        mantissa_table = np.stack([to_unit, one], axis=1)
        if later is not None and not isinstance(selection, np.ndarray):
            selection.plan([mantissa_table, *later(k, inside)], release=True)
        factor, offset = _unstack(_move_last_first(_pick(selection, mantissa_table)))
        magnitude = x
        if sign is not None:  # |x|, and x = 0 alone counts as zero (not x = -2^-frac): one round for both
            signed_x, signed_zero = _products([sign, sign], [x, zero])
            magnitude, zero = x - signed_x * 2, zero - signed_zero
        mantissa = _truncate(magnitude * factor + offset + zero * (zero_mantissa << scale), scale)
        # unsigned, a negative x (top bit set) reads as 2^high here and as 2^low in the end (:meth:`finish`)
        return cls(selection, k, inside, sign if signed else None, mantissa, frac, None if signed else sign)

    def finish(self, out: Tensor, at_low) -> Tensor:
        """The output, with ``at_low`` (the function at 2^low) where an unsigned x was negative: one product."""
        if self.negative is None:
            return out
        return out + self.negative * (at_low - out)

    @property
    def below(self) -> np.ndarray:
        """The positions read as 2^low (x below it, or negative for unsigned octaves)."""
        return ~self.inside & (self.k == self.k.min())

    def split(self, exponent: np.ndarray) -> tuple[Tensor, np.ndarray]:
        """2^exponent per position as a fixed-point lookup of 2^(whole part, if positive) and the rest."""
        table, rest = _split_table(exponent)
        return _pick(self.selection, table), rest

    def rescale(self, core: Tensor, values: np.ndarray, output_bound: float | None = None) -> Tensor:
        """core * values[position] (times the sign, for signed octaves): one product with an integer table
        scaled by 2^S (:func:`_rescale_table`), one truncation (and one product with the sign bit)."""
        table, scale = _rescale_table(values, self.frac, output_bound)
        out = _truncate(core * _pick(self.selection, table), scale)
        return out if self.sign is None else _signed(out, self.sign)


def _split_table(exponent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`_Octaves.split`'s table 2^(whole part of the exponent, if positive) and the rest of the exponent."""
    whole = np.floor(np.maximum(exponent, 0))
    return 2.0**whole, exponent - whole


def _rescale_table(values: np.ndarray, frac: int, output_bound: float | None) -> tuple[np.ndarray, int]:
    """:meth:`_Octaves.rescale`'s integer table values 2^S, and S: S makes the powers of two in ``values`` exact
    integers, and is larger where |output| <= ``output_bound`` still keeps the product below 2^(61 - frac) (more
    digits for irrational values)."""
    smallest = float(np.min(np.abs(values[values != 0]), initial=1.0))
    scale = max(0, math.ceil(-math.log2(smallest)))
    if output_bound is not None:
        scale = max(scale, _scale_bits(output_bound, frac))
    return _scaled_ints(values, scale), scale


def _leading_one(x: Tensor, frac: int, signed: bool, lowest: int, highest: int,
                 shift: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """The position of the leading one of x's ring value (of |x| - 1 for negative x if ``signed``) clamped to
    [lowest, highest] and shifted right by ``shift``, the sign bit and the no-one bit:
    :func:`smpc.mpc.bit_length.leading_one`, or the same on numpy."""
    if arrays.is_shared(x):  # shared: a bit decomposition and a prefix OR; floats: frexp on the ring integers
        return leading_one(x, signed, lowest, highest, shift)
    raw = np.rint(x * 2.0**frac).astype(np.int64)
    words = np.where(raw < 0, -raw - 1, raw).view(np.uint64) if signed else raw.view(np.uint64)
    position = np.frexp(words.astype(np.float64))[1] - 1  # may be one too high where rounding reached 2^(p+1)
    position = np.where(position < 0, 0, position)
    too_high = (np.uint64(1) << position.astype(np.uint64)) > words
    position = np.where(too_high & (position > 0), position - 1, position).clip(lowest, highest) >> shift
    return position, (raw < 0).astype(np.float64), (words == 0).astype(np.float64)


def _signed(t: Tensor, sign: Tensor) -> Tensor:
    """t where the sign bit is 0, -t where it is 1: t - 2 (sign t), one product with an integer tensor."""
    return t - (sign * t) * 2


def _select(index: Tensor, size: int):
    """Shared indices made ready for lookups (one round; :func:`smpc.mpc.one_hot.select`), or numpy indices."""
    # a shared index is made ready for lookups (one round); a public one indexes as it is
    return select(index, size) if arrays.is_shared(index) else np.asarray(index, dtype=np.int64)


def _pick(selection, table: np.ndarray) -> Tensor:
    """table[index] for a selection of :func:`_select` (local), shape index.shape + table.shape[1:]."""
    if isinstance(selection, np.ndarray):
        return np.asarray(table, dtype=np.float64)[selection]
    return selection.lookup(table)


def _unstack(t: Tensor) -> list:
    return [t[i] for i in range(t.shape[0])]


def _octave_range(frac: int, low: int | None, high: int | None, default_high: int = 32) -> tuple[int, int]:
    low = -frac if low is None else low
    high = default_high if high is None else high
    _check_int("low", low, -frac, 60 - frac)
    _check_int("high", high, low + 1, 60 - frac)
    return low, high


def _seeded(x, frac, low, high, signed, fn, degree, iterations, zero_mantissa: int = 1,
            later: Callable | None = None, step: int = 1) -> tuple[_Octaves, Tensor]:
    """The octaves of x (``later``, ``step``: as :meth:`_Octaves.of` takes them) and a degree-``degree``
    Chebyshev seed for fn(m), m in [1, 2^step], on u = 2m - 1 - 2^step (local)."""
    _check_int("degree", degree, 1, 12)
    _check_int("iterations", iterations, 1, 8)
    octaves = _Octaves.of(x, frac, low, high, signed=bool(signed), zero_mantissa=zero_mantissa, later=later,
                          step=step)
    top = 2**step
    reach = top - 1  # |u| <= reach; the fit's coefficients are in u / reach
    coefficients = _fit(fn, degree, 1.0, float(top)) / float(reach) ** np.arange(degree + 1)
    return octaves, _polynomial(2 * octaves.mantissa - (1 + top), frac, coefficients, reach=reach)


def _octave_step(frac: int, low: int, high: int) -> int:
    """2 where pairs of positions can index the octave tables (each pair wholly inside the range or wholly
    outside: low + frac and high + frac even) and halve the one-hot rows, else 1."""
    lowest, highest = max(low + frac - 1, 0), min(high + frac, POSITIONS - 1)
    if (low + frac) % 2 or (high + frac) % 2:
        return 1
    return 2 if width_bits((highest >> 1) - (lowest >> 1) + 1) < width_bits(highest - lowest + 1) else 1


def _inverse(x, frac, low, high, signed, degree, iterations, bounded: bool) -> tuple[_Octaves, Tensor, np.ndarray]:
    """The octaves of x, r = 2^max(-k, 0) / m, and the exponents min(-k, 0) left for the output table (which the
    caller rescales by with the output bound 2^(1 - min k) if ``bounded``, else none: its table is planned)."""
    low, high = _octave_range(frac, low, high, default_high=frac)

    def later(k, inside):
        up_table, rest = _split_table(-k.astype(np.float64))
        return [up_table, _rescale_table(2.0**rest, frac, 2.0 ** (1 - k.min()) if bounded else None)[0]]

    octaves, y = _seeded(x, frac, low, high, signed, np.reciprocal, degree, iterations, later=later)
    up, rest = octaves.split(-octaves.k.astype(np.float64))
    m = octaves.mantissa
    for _ in range(iterations - 1):
        y = y * (2 - m * y)
    my, scaled = _products([m, up], [y, y])  # the last step also multiplies by 2^max(-k, 0), same rounds
    return octaves, scaled * (2 - my), rest


def _inv_sqrt_newton(m: Tensor, y: Tensor, iterations: int, up: Tensor, up_with: Tensor | None = None) -> Tensor:
    """Newton steps 2y <- y (3 - m y^2) towards 1/sqrt(m), halving between steps; the last step also
    multiplies by ``up`` (times ``up_with``, if given) without extra rounds. Returns 2 up up_with / sqrt(m)."""
    for _ in range(iterations - 1):
        y = _truncate(y * (3 - m * (y * y)), 1)
    if up_with is None:
        square = y * y
    else:
        square, up = _products([y, up], [y, up_with])
    cube, scaled = _products([m, y], [square, up])
    return scaled * (3 - cube)


# --- checks -----------------------------------------------------------------------------------------------
def _check_int(name: str, value, lowest: int, highest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lowest <= value <= highest:
        raise ValueError(f"{name} must be an integer in [{lowest}, {highest}], got {value!r}")


def _check_shapes(shape_x: tuple, shape_y: tuple) -> None:
    try:
        np.broadcast_shapes(shape_x, shape_y)
    except ValueError:
        raise ValueError(f"cannot divide a tensor of shape {shape_x} by one of shape {shape_y}") from None


def _length_bits(x: Tensor, axis: int) -> int:
    """The bits of the axis length n: sums of n values in (0, 1] lie below 2^bits."""
    return max(1, int(x.shape[axis]).bit_length())
