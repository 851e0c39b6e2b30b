"""Transformer non-linearities (erf, GELU, SiLU, layer norm, masked softmax, attention) written once against the
shared-tensor interface; on plain numpy arrays they compute the exact functions in float64.

=========================  ==============================================  ====================================
function                   method (shared)                                 online rounds
=========================  ==============================================  ====================================
erf                        pieces of 1/2 on [-4, 4], lookup                tanh's
gelu (approximate="none")  x Phi(x), Phi by pieces of 1/2 on [-6, 6]       sigmoid's + M
gelu (approximate="tanh")  x Phi~(x), torch's tanh form of Phi, the same   sigmoid's + M
silu                       x sigmoid(x)                                    sigmoid's + M
layer_norm                 exact ring variance, its octave, inv_sqrt       inv_sqrt's + C + M + 2T + 2
masked_softmax             public mask (exact, local), then softmax        softmax's
=========================  ==============================================  ====================================

Rounds: those of the :mod:`smpc.mpc.functions` function named (its ROUNDS table), plus C one comparison (a clamp is one
batched ReLU: the same rounds), M one fixed-point product (2 rounds in both protocols), T one truncation (additive
1, aby3 2), a bare number that many products with an integer tensor (1 round each); exact on the additive protocol
(the tests assert them), upper bounds on aby3 (a comparison after another step takes one round fewer there;
:func:`smpc.cost` counts it exactly). :func:`scaled_dot_product_attention` adds 2M + T (q k^T, the scale,
probabilities times v) to masked_softmax's rounds.

Errors (:data:`ERRORS`, quoted in each docstring and asserted by tests/test_transformer_functions.py) are the
largest measured against the exact float64 function of the fixed-point input on dense grids, on the additive
protocol (2 and 3 parties) and aby3, rounded up; one unit is 2^-16. erf and Phi are evaluated as exp and sigmoid
are (:func:`smpc.mpc.functions.piecewise`: a clamp, the piece by one truncation, its coefficients by one table
lookup); GELU and SiLU then multiply by x, so their error grows with |x| (a unit of Phi times x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.special

from smpc.mpc import arrays, functions
from smpc.mpc.tensor_core import SharedTensorCore, concatenate
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS

ULP = 2.0**-DEFAULT_FRAC_BITS

ERF_CLAMP = 4.0  # erf(4) = 1 - 1.5e-8
GELU_CLAMP = 6.0
GELU_TANH = math.sqrt(2.0 / math.pi)
GELU_TANH_CUBE = 0.044715
#: masked scores become (additive masks are floored at) this public value: after softmax's max subtraction
#: they lie below -18, where the shared exp is exactly 0 (as MASK_FLOOR of smpc.nn.importers.ops)
MASK_FLOOR = -1e4
#: layer_norm: octaves 4^e of V = n^2 (var + eps), e in [LN_LOW, LN_HIGH] (V >= 2^-32, the ring's last bit, and
#: V < 2^30, where n^2 (var + eps) 2^32 still fits the ring); V 4^-e 2^(LN_SHIFT) stays below 2^62
LN_LOW, LN_HIGH, LN_SHIFT = -16, 14, 28
LN_GAIN = 14  # n (x - mean) carries 2^(LN_GAIN - e) before the product with 1 / sqrt(V 4^-e)


@dataclass(frozen=True)
class Bound:
    """A measured maximum error (rounded up): ``absolute`` plus ``relative`` times |x| (the input: gelu and silu
    multiply the shared sigmoid's absolute error, up to 1.5 units even far in its tails, by x) or times |f|
    (layer_norm's output), as ``of`` says."""

    absolute: float
    relative: float = 0.0
    of: str = "x"

    def describe(self) -> str:
        text = f"{self.absolute / ULP:g} units ({self.absolute:.2g})"
        return text + (f" + {self.relative:.2g} |{self.of}|" if self.relative else "")

    def allowed(self, magnitude=0.0) -> np.ndarray:
        """The error allowed where |x| (or |f|, as ``of`` says) is ``magnitude``."""
        return self.absolute + self.relative * np.abs(np.asarray(magnitude, dtype=np.float64))


@dataclass(frozen=True)
class Cost:
    """Online rounds: those of the :mod:`smpc.mpc.functions` function ``base`` (its own table) plus comparisons
    (C), fixed-point products (M), truncations (T) and products with an integer tensor (1 round each)."""

    base: str
    comparisons: int
    products: int
    truncations: int
    integer_products: int

    def describe(self) -> str:
        terms = [("C", self.comparisons), ("M", self.products), ("T", self.truncations)]
        text = " + ".join(f"{count if count > 1 else ''}{name}" for name, count in terms if count)
        text = f"{text} + {self.integer_products}" if self.integer_products else text
        return f"{self.base}'s + {text}" if text else f"{self.base}'s"

    def count(self, base: int, comparison: int, product: int, truncation: int) -> int:
        """The total for measured rounds of the base function, one comparison, product and truncation."""
        return (base + self.comparisons * comparison + self.products * product + self.truncations * truncation
                + self.integer_products)


#: measured maximum errors on shared values with 16 fraction bits (docstrings quote them; tests assert them)
ERRORS = {
    "erf": Bound(1.5 * ULP),
    "gelu": Bound(2 * ULP, 1.5 * ULP),
    "gelu_tanh": Bound(2 * ULP, 1.5 * ULP),
    "silu": Bound(3 * ULP, 1.5 * ULP),
    "layer_norm": Bound(4 * ULP, 3e-05, of="f"),
}

#: online rounds with default options (docstrings quote them; tests assert them on the additive protocol)
ROUNDS = {
    "erf": Cost("tanh", 0, 0, 0, 0),
    "gelu": Cost("sigmoid", 0, 1, 0, 0),
    "gelu_tanh": Cost("sigmoid", 0, 1, 0, 0),
    "silu": Cost("sigmoid", 0, 1, 0, 0),
    "layer_norm": Cost("inv_sqrt", 1, 1, 2, 2),
}


# --- element-wise functions ------------------------------------------------------------------------------------
def erf(x):
    """The error function, for every x (|x| < 2^30, the fixed-point range).

    Shared: x clamped to [-4, 4] (erf(4) = 1 - 1.5e-8), then pieces of 1/2, each a degree-6 polynomial looked
    up by the piece (:func:`smpc.mpc.functions.piecewise`). Rounds: tanh's. Measured error: 1.5 units (2.3e-05).
    """
    x = _prepare(x)
    if not arrays.is_shared(x):  # floats: scipy's exact erf; shared: a piecewise polynomial (numpy has no erf)
        return _exact_erf(x)
    return functions.piecewise(x, _exact_erf, -ERF_CLAMP, ERF_CLAMP, width=0.5)


def gelu(x, approximate: str = "none"):
    """torch's GELU: x Phi(x) (``approximate="none"``) or x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2 ("tanh").

    Shared: x times Phi (or torch's tanh form of it) at x clamped to [-6, 6] (Phi(-6) = 1e-9), by pieces of 1/2,
    each a degree-6 polynomial looked up by the piece (:func:`smpc.mpc.functions.piecewise`). Rounds:
    sigmoid's + M. Measured error: 2 units (3.1e-05) + 2.3e-05 |x| (both forms).
    """
    _check_approximate(approximate)
    x = _prepare(x)
    # floats: the exact formulas; shared: x times Phi by one piecewise polynomial (Phi through erf(x / sqrt 2) would
    # cost one truncation more and the tanh form a tanh of a cubic: two products more)
    if not arrays.is_shared(x):
        if approximate == "tanh":
            return 0.5 * x * (1.0 + np.tanh(GELU_TANH * (x + GELU_TANH_CUBE * x**3)))
        return 0.5 * x * (1.0 + _exact_erf(x / math.sqrt(2.0)))
    phi = _phi_tanh if approximate == "tanh" else _phi
    return x * functions.piecewise(x, phi, -GELU_CLAMP, GELU_CLAMP, width=0.5)


def _phi(x):
    """The standard normal distribution function."""
    return 0.5 * (1.0 + _exact_erf(x / math.sqrt(2.0)))


def _phi_tanh(x):
    """torch's tanh approximation of Phi."""
    return 0.5 * (1.0 + np.tanh(GELU_TANH * (x + GELU_TANH_CUBE * x**3)))


def silu(x):
    """x sigmoid(x) (torch's SiLU, swish). Shared: the shared sigmoid and one product.

    Rounds: sigmoid's + M. Measured error: 3 units (4.6e-05) + 2.3e-05 |x|.
    """
    x = _prepare(x)
    return x * arrays.sigmoid(x)


# --- layer norm ---------------------------------------------------------------------------------------------------
def layer_norm(x, normalized_ndim: int = 1, weight=None, bias=None, eps: float = 1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last ``normalized_ndim`` axes (biased variance), as
    torch's layer_norm; ``weight`` and ``bias`` (public or shared) have the shape of those axes.

    Shared, with n the row length and U the ring integers of x (x 2^f), everything up to one square root is
    exact: V = n^2 (var + eps) 2^2f = n sum U^2 - (sum U)^2 + n^2 eps 2^2f (products of ring integers, one round,
    no truncation; eps enters to 2^-2f, not rounded to 2^-f) and n (x - mean) = n x - sum x. One comparison
    of V with the powers 4^e finds its octave (e in [-16, 14]); integer tables looked up by those bits give
    2^(28 - 2e) and 2^(14 - e), multiplied in one round with V and with n (x - mean) (exact). The mantissa
    Y = V 4^-e in [1, 4] (one truncation: 1 unit) goes to :func:`smpc.mpc.functions.inv_sqrt`, clamped to the
    range [1, 4] (the clamp cuts at most that unit), and z = (x - mean) / sqrt(var + eps) = n (x - mean) 2^-e /
    sqrt(Y) is one fixed-point product, then times the integer table rint(weight 2^S) and one truncation.
    So the output keeps its relative precision for every std, tiny or large (no fixed-point var + eps, whose
    2^-16 grid would cost a row of std 0.01 about 15 %), and a constant row gives exactly 0 (then + bias).

    Range: V must stay below 2^30 (the ring's 2^62 with 2f = 32 fraction bits): n std < 2^15 (768 features: std
    < 42). Rounds: inv_sqrt's + C + M + 2T + 2 (weight and bias included; a shared weight adds M).
    Measured error: 4 units (6.1e-05) + 3e-05 |f| before weight and bias (f: the normalized value).
    """
    x = _prepare(x)
    _check_int("normalized_ndim", normalized_ndim, 1, 64)
    if len(x.shape) < normalized_ndim:
        raise ValueError(f"layer_norm: input of shape {tuple(x.shape)} has fewer than {normalized_ndim} axes")
    normalized = tuple(x.shape[len(x.shape) - normalized_ndim:])
    for name, value in (("weight", weight), ("bias", bias)):
        shape = None if value is None else tuple(np.shape(value))
        if shape is not None and shape != normalized:
            raise ValueError(f"layer_norm: {name} of shape {shape} does not match the normalized shape "
                             f"{normalized} of an input of shape {tuple(x.shape)}")
    if not eps >= 0:
        raise ValueError(f"layer_norm: eps must be non-negative, got {eps!r}")
    axes = tuple(range(len(x.shape) - normalized_ndim, len(x.shape)))
    if not arrays.is_shared(x):  # floats: the textbook formula; shared: the ring-exact variance below
        return _exact_layer_norm(x, axes, weight, bias, eps)
    if arrays.is_shared(weight):  # a public weight rides in the last integer table for free; a shared one costs M
        out = _shared_layer_norm(x, axes, None, eps) * weight
    else:
        out = _shared_layer_norm(x, axes, weight, eps)
    return out if bias is None else out + bias


def _shared_layer_norm(x: SharedTensorCore, axes: tuple, weight, eps: float) -> SharedTensorCore:
    """((x - mean) r) * weight (public weight or None) for a shared x, as layer_norm's docstring says."""
    n = int(np.prod([x.shape[a] for a in axes]))
    frac = x.frac_bits
    rows = x.reshape(-1, n)
    total = rows.sum(axis=1, keepdims=True)  # ring: sum U
    both = concatenate([rows, total], axis=1)  # one round for every U^2 and (sum U)^2
    squares = _ring_integers(both) * both  # ring U^2, read with frac f: exact
    scaled = squares[:, :n].sum(axis=1, keepdims=True) * n - squares[:, n:]  # ring n^2 var 2^2f
    if eps:  # ring n^2 (var + eps) 2^2f: eps enters to 2^-2f, not rounded to the 2^-f grid (1e-12 stays)
        eps_ring = int(round(n * n * eps * 2.0 ** (2 * frac)))
        scaled = _with_scale(_ring_integers(scaled) + eps_ring, frac)
    # octave of V = n^2 (var + eps): 4^e <= V < 4^(e+1), from one comparison of the exact value
    bits = scaled >= (4.0 ** np.arange(LN_LOW + 1, LN_HIGH + 1) * 2.0**frac).reshape(-1, 1, 1)
    exponents = np.arange(LN_LOW, LN_HIGH + 1)
    shift = _lookup(bits, 2 ** (LN_SHIFT - 2 * exponents))  # 2^(s - 2e): V 4^-e 2^s fits 2^62
    gain = _lookup(bits, 2 ** (LN_GAIN - exponents))  # 2^(g - e)
    centred = rows * n - total  # n (x - mean), exact
    columns = concatenate([gain + np.zeros((rows.shape[0], n), dtype=np.int64), shift], axis=1)
    products = concatenate([centred, scaled], axis=1) * columns  # integer products: one round, exact
    mantissa = products[:, n:].truncate(LN_SHIFT + frac)  # Y = V 4^-e in [1, 4], to 1 unit
    inverse = functions.inv_sqrt(mantissa, low=0, high=2)  # 1 / sqrt(Y) = 2^e / sqrt(V)
    core = products[:, :n] * inverse  # n (x - mean) 2^(g - e) 2^e / (n std) = z 2^g
    w = np.ones(x.shape[len(x.shape) - len(axes):]) if weight is None else np.asarray(weight, dtype=np.float64)
    largest = max(float(np.max(np.abs(w))), 2.0**-10) * math.sqrt(n)  # bound on |z w|: |z| <= sqrt(n)
    scale = max(0, min(30, 61 - frac - LN_GAIN - math.ceil(math.log2(largest))))  # |z w| 2^(f + g + S) < 2^61
    table = np.rint(w.reshape(-1) * 2.0**scale).astype(np.int64)
    return (core * table).truncate(LN_GAIN + scale).reshape(x.shape)


def _lookup(bits: SharedTensorCore, table: np.ndarray) -> SharedTensorCore:
    """table[i] at the interval index i = sum of the thermometer ``bits``: table[0] + sum_j b_j (table[j] -
    table[j-1]), local (a linear map of the shared bits with public integer coefficients)."""
    steps = np.diff(table)
    total = bits[0] * int(steps[0]) + int(table[0])
    for j in range(1, len(steps)):
        total = bits[j] * int(steps[j]) + total
    return total


def _exact_layer_norm(x, axes, weight, bias, eps):
    centred = x - x.mean(axis=axes, keepdims=True)
    out = centred / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


# --- attention -----------------------------------------------------------------------------------------------------
def masked_softmax(x, mask=None, axis: int = -1, *, is_causal: bool = False):
    """softmax(x + mask) along ``axis`` with masked positions exactly 0.

    ``mask`` is public and broadcasts to x: boolean (True: keep, as torch's scaled_dot_product_attention) or
    additive floats (-inf allowed). ``is_causal`` (``axis`` -1 only) keeps the lower triangle of the last two
    axes (torch's tril, top-left aligned). Masked scores become :data:`MASK_FLOOR` (-1e4) by an exact product
    with the 0/1 mask; additive masks are floored at it; the softmax (shared: :func:`smpc.mpc.functions.softmax`,
    4 units; arrays: exact) then gives exactly 0 there. A row that masks every position gives equal weights
    (torch gives NaN). Rounds: softmax's (the mask is local).
    """
    x = _prepare(x)
    return arrays.softmax(_apply_mask(x, mask, axis, is_causal), axis=axis)


def scaled_dot_product_attention(q, k, v, mask=None, is_causal: bool = False, scale: float | None = None):
    """softmax(q k^T scale + mask) v as torch's scaled_dot_product_attention (default scale 1 / sqrt(E)).

    q (..., L, E), k (..., S, E), v (..., S, Ev), each public or shared; ``mask`` and ``is_causal`` as in
    :func:`masked_softmax` (not both, as torch). Shared scores are divided by the public 1 / scale (one
    truncation with a precise reciprocal). Rounds: masked_softmax's + 2M + T.
    """
    return attention_with_weights(q, k, v, mask, is_causal, scale)[0]


def attention_with_weights(q, k, v, mask=None, is_causal: bool = False, scale: float | None = None):
    """(output, attention probabilities) of :func:`scaled_dot_product_attention` (MultiheadAttention returns both)."""
    q, k, v = (_prepare(t) for t in (q, k, v))
    if min(len(q.shape), len(k.shape), len(v.shape)) < 2:
        raise ValueError("scaled_dot_product_attention: q, k and v need at least 2 axes (..., length, features)")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: q {tuple(q.shape)}, k {tuple(k.shape)} and v "
                         f"{tuple(v.shape)} need q and k of equal features and k and v of equal length")
    if mask is not None and is_causal:
        raise ValueError("scaled_dot_product_attention: pass either mask or is_causal, not both (as torch)")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if not scale > 0:
        raise ValueError(f"scaled_dot_product_attention: scale must be positive, got {scale!r}")
    keys = k.transpose(tuple(range(len(k.shape) - 2)) + (len(k.shape) - 1, len(k.shape) - 2))
    scores = q @ keys
    scores = scores / (1.0 / scale)  # shared: one truncation by a precise reciprocal, not the 16-bit scale
    probabilities = masked_softmax(scores, mask, -1, is_causal=is_causal)
    return probabilities @ v, probabilities


def _apply_mask(x, mask, axis: int, is_causal: bool):
    if is_causal:
        if axis not in (-1, len(x.shape) - 1) or len(x.shape) < 2:
            raise ValueError("masked_softmax: is_causal masks the last two axes; use axis=-1")
        length, source = x.shape[-2:]
        causal = np.tril(np.ones((length, source), dtype=bool))
        mask = causal if mask is None else _combine(mask, causal)
    if mask is None:
        return x
    if not arrays.is_public(mask):
        raise TypeError(f"masked_softmax: the mask must be a public array, got {type(mask).__name__}")
    mask = np.asarray(mask)
    try:
        fits = np.broadcast_shapes(mask.shape, tuple(x.shape)) == tuple(x.shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"masked_softmax: a mask of shape {mask.shape} does not broadcast to scores of shape "
                         f"{tuple(x.shape)}")
    if mask.dtype == np.bool_:
        return np.where(np.broadcast_to(mask, tuple(x.shape)), x, MASK_FLOOR)  # shared: exact and local
    if mask.dtype.kind not in "fiu":
        raise TypeError(f"masked_softmax: the mask must be boolean or float, got dtype {mask.dtype}")
    return x + np.maximum(mask.astype(np.float64), MASK_FLOOR)


def _combine(mask, keep: np.ndarray) -> np.ndarray:
    """A public mask and a boolean keep-mask as one mask (boolean if both are)."""
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        return mask & keep
    return mask + np.where(keep, 0.0, -np.inf)


# --- plumbing -------------------------------------------------------------------------------------------------------
_prepare = arrays.as_float


def _ring_integers(x: SharedTensorCore) -> SharedTensorCore:
    """The same shared ring elements read as an integer tensor (scale 2^0): a product with it keeps the other
    operand's scale, so U * x carries 2f fraction bits' worth of ring value and nothing is truncated."""
    return arrays.with_frac(x, 0)


def _with_scale(x: SharedTensorCore, frac_bits: int) -> SharedTensorCore:
    """The same shared ring elements read with ``frac_bits`` fraction bits."""
    return arrays.with_frac(x, frac_bits)


def _exact_erf(x: np.ndarray) -> np.ndarray:
    return scipy.special.erf(x)


def _check_approximate(approximate) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _check_int(name: str, value, lowest: int, highest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lowest <= value <= highest:
        raise ValueError(f"{name} must be an integer in [{lowest}, {highest}], got {value!r}")
