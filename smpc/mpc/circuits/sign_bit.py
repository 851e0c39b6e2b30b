"""The sign bit of a masked value: a bit-sliced comparison circuit on dealer randomness.

Used by both protocols to compute msb(x) for additively shared x (comparisons, ReLU).
A helper that knows a random mask r (the trusted dealer, or party 0 in aby3) gives the
computing parties XOR shares of r's 64 bit planes, plus the AND triples of the circuit.
The parties learn c = x + r (uniformly random, so it reveals nothing) and then

    msb(x) = msb(c - r) = c_63 XOR r_63 XOR [c mod 2^63 < r mod 2^63],

the last term a comparison of a public value with shared bits: a tree over the 63 low
bit positions of (lt, eq) pairs, lt = lt_hi XOR (eq_hi AND lt_lo), eq = eq_hi AND eq_lo
(the two terms of lt never both hold, so OR is XOR); compare e.g. the bit-decomposed
comparisons of Damgard et al., TCC 2006, and Escudero et al., CRYPTO 2020, section 4.
Two choices make it cheap:

* Bit slicing: plane i holds bit i of 64 elements in one word, so every gate is a word
  operation on n / 64 words and a tree level on 10^6 elements moves a few hundred KB.
* The first level is local: the helper also shares the products r_{2k+1} AND r_{2k}, and
  with c public every term of a two-bit group is linear in r's bits and those products.

Online cost for n elements: 5 rounds of ANDs (levels 2..6; a shared ``eq_hi`` uses one
mask for both its ANDs), 88 planes of n / 64 words opened in all, i.e. 11 n bytes per
peer. The result is an XOR-shared plane; callers turn it into an arithmetic bit with the
random bit s shared both ways (open msb XOR s: one more round of n / 8 bytes); with
shares of r s as well, the same round gives x * msb(x) (ReLU, abs) with no multiplication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.ring import fused
from smpc.ring.arith import wrapping
from smpc.ring.bitslice import WORD_BITS, plane_to_bits, plane_words, to_bit_planes

LEVELS = 5  # tree levels with ANDs: 32 groups of two bits -> 1
TREE_GROUPS = tuple(16 >> level for level in range(LEVELS))  # pairs merged at each level: 16, 8, 4, 2, 1
PAIRS = 31  # products r_{2k+1} r_{2k}, k = 0..30 (bit 63 is not part of the low comparison)


@dataclass(frozen=True)
class Field:
    """One array of the correlated randomness: its shape, sharing and origin."""

    name: str
    shape: tuple[int, ...]
    xor: bool  # XOR-shared words, else additive shares
    derived: bool  # a function of the random fields: the last party receives a correction


def layout(count: int, with_mask: bool, with_arith_bit: bool, with_product: bool = False) -> list[Field]:
    """The fields for ``count`` elements, in the order every party draws them from its PRG.

    ``with_mask``: the parties hold additive shares of r (the additive protocol opens
    x + r); ``with_arith_bit``: they hold additive shares of the bit s as well;
    ``with_product``: and of r * s, for x * msb(x) without a multiplication round.
    """
    words = plane_words(count)
    fields = [Field("r", (count,), False, False)] if with_mask else []
    fields += [Field("planes", (WORD_BITS, words), True, True), Field("pairs", (PAIRS, words), True, True)]
    for level, groups in enumerate(TREE_GROUPS):
        fields += [
            Field(f"a{level}", (groups, words), True, False),  # mask of eq_hi (both ANDs)
            Field(f"b{level}", (groups, words), True, False),  # mask of lt_lo
            Field(f"d{level}", (groups - 1, words), True, False),  # mask of eq_lo (not the lowest pair)
            Field(f"ab{level}", (groups, words), True, True),
            Field(f"ad{level}", (groups - 1, words), True, True),
        ]
    fields.append(Field("s_bits", (words,), True, False))
    if with_arith_bit:
        fields.append(Field("s", (count,), False, True))
    if with_product:
        fields.append(Field("rs", (count,), False, True))
    return fields


def correction_size(fields: list[Field]) -> int:
    """Words in the last party's correction message."""
    return sum(int(np.prod(f.shape)) for f in fields if f.derived)


class Material:
    """One computing party's shares of the randomness, by field name (plain arrays, no I/O).

    A party that receives corrections has no derived field until :meth:`add_corrections`; reading one before
    raises a :class:`ProtocolError`.
    """

    def __init__(self, fields: list[Field], values: dict[str, np.ndarray]):
        self._fields = fields
        self._values = values

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._values:
            if any(f.name == name for f in self._fields):
                raise ProtocolError(f"sign-bit field {name!r} is derived and its correction was not received yet "
                                    f"(complete the material first)")
            raise KeyError(name)
        return self._values[name]

    def add_corrections(self, flat: np.ndarray) -> None:
        """Take the derived fields from the flat correction (views into ``flat``, in layout order)."""
        size = correction_size(self._fields)
        if flat.shape != (size,):
            raise ProtocolError(f"sign-bit corrections of shape {flat.shape}, expected ({size},)")
        offset = 0
        for f in self._fields:
            if f.derived:
                size = int(np.prod(f.shape))
                self._values[f.name] = flat[offset : offset + size].reshape(f.shape)
                offset += size


def expand(fields: list[Field], prg, derived: bool = True) -> Material:
    """A party's material: every field from ``prg``, the derived ones too unless ``derived`` is False (the party
    that receives corrections: see :meth:`Material.add_corrections`)."""
    values = {f.name: prg.random_ring(f.shape) for f in fields if derived or not f.derived}
    return Material(fields, values)


@wrapping
def deal(fields: list[Field], prgs: list, mask: np.ndarray | None = None) -> np.ndarray:
    """The helper's side: the last party's flat correction (``prgs[i]``: the PRG shared with party i).

    ``mask``: r itself when the parties hold no shares of it (``with_mask=False``).
    """
    totals: dict[str, np.ndarray] = {}
    for index, prg in enumerate(prgs):
        is_last = index == len(prgs) - 1
        for f in fields:
            if f.derived and is_last:
                continue
            drawn = prg.random_ring(f.shape)
            if f.name not in totals:
                totals[f.name] = drawn
            elif f.xor:
                totals[f.name] ^= drawn
            else:
                totals[f.name] += drawn
    truth = _derive(fields, totals, totals["r"] if mask is None else mask)
    out = np.empty(correction_size(fields), np.uint64)
    offset = 0
    for f in fields:  # each correction written into its place in the message
        if f.derived:
            size = int(np.prod(f.shape))
            part = out[offset : offset + size].reshape(f.shape)
            others = totals.get(f.name)
            if others is None:
                part[...] = truth[f.name]
            else:
                (np.bitwise_xor if f.xor else np.subtract)(truth[f.name], others, out=part)
            offset += size
    return out


def _derive(fields: list[Field], random: dict[str, np.ndarray], r: np.ndarray) -> dict[str, np.ndarray]:
    """The true values of the derived fields from those of the random ones."""
    planes = to_bit_planes(r)
    truth = {"planes": planes, "pairs": planes[1 : 2 * PAIRS : 2] & planes[0 : 2 * PAIRS : 2]}
    for level in range(LEVELS):
        a = random[f"a{level}"]
        truth[f"ab{level}"] = a & random[f"b{level}"]
        truth[f"ad{level}"] = a[1:] & random[f"d{level}"]
    names = {f.name for f in fields}
    if "s" in names:
        truth["s"] = plane_to_bits(random["s_bits"], r.size)
    if "rs" in names:
        truth["rs"] = r * truth["s"]
    return truth


def msb_plane(c: np.ndarray, material: Material, open_xor: Callable, leader: bool) -> np.ndarray:
    """This party's XOR share of the plane of msb(c - r), for public ``c`` (flat uint64).

    ``open_xor(arrays)`` opens XOR-shared arrays among the computing parties in one round;
    ``leader`` is the one party that adds public constants.
    """
    c_planes = to_bit_planes(c)
    lt, eq = _first_level(c_planes, material, leader)
    for level in range(LEVELS):
        lt, eq = _tree_level(lt, eq, material, level, open_xor, leader)
    borrow = lt[0]
    out = material["planes"][WORD_BITS - 1] ^ borrow
    if leader:
        out ^= c_planes[WORD_BITS - 1]
    return out


def _first_level(c_planes: np.ndarray, material: Material, leader: bool) -> tuple[np.ndarray, np.ndarray]:
    """(lt, eq) of the 32 two-bit groups (2k+1, 2k), locally.

    For hi bit a, lo bit b (shared), public bits u, v and p = a AND b (shared):
    lt = (a AND NOT u) XOR (NOT v AND (p XOR (NOT u AND b))), eq = p XOR (a AND NOT v)
    XOR (b AND NOT u) XOR (NOT u AND NOT v). Bit 63 is replaced by the neutral a = u = 0.
    """
    planes = material["planes"]
    words = planes.shape[1]
    hi = planes[1::2].copy()
    hi[-1] = 0
    lo = planes[0::2]
    not_u = ~c_planes[1::2]
    not_u[-1] = ~np.uint64(0)
    not_v = ~c_planes[0::2]
    products = np.concatenate([material["pairs"], np.zeros((1, words), np.uint64)])
    lt = (hi & not_u) ^ (not_v & (products ^ (not_u & lo)))
    eq = products ^ (hi & not_v) ^ (lo & not_u)
    if leader:
        eq ^= not_u & not_v
    return lt, eq


def _tree_level(lt, eq, material: Material, level: int, open_xor: Callable, leader: bool):
    """Merge groups (2k+1, 2k): one round of ANDs (eq_hi AND lt_lo; eq_hi AND eq_lo for k > 0)."""
    a, b, d = material[f"a{level}"], material[f"b{level}"], material[f"d{level}"]
    eq_hi, lt_lo, eq_lo = eq[1::2], lt[0::2], eq[2::2]
    groups = a.shape[0]
    opened = open_xor([np.concatenate([eq_hi ^ a, lt_lo ^ b, eq_lo ^ d])])[0]
    e, f, g = opened[:groups], opened[groups : 2 * groups], opened[2 * groups :]
    # Beaver for XOR shares: x & y = c ^ (e & b) ^ (a & f) ^ (e & f), x = e ^ a, y = f ^ b
    and_lt = material[f"ab{level}"] ^ (e & b) ^ (a & f)
    and_eq = material[f"ad{level}"] ^ (e[1:] & d) ^ (a[1:] & g)
    if leader:
        and_lt ^= e & f
        and_eq ^= e[1:] & g
    new_lt = lt[1::2] ^ and_lt
    new_eq = np.empty_like(new_lt)
    new_eq[0] = 0  # the lowest group's eq is never used
    new_eq[1:] = and_eq
    return new_lt, new_eq


@wrapping
def arithmetic_bit(opened_plane: np.ndarray, s_share: np.ndarray, leader: bool) -> np.ndarray:
    """Additive share of b from the opened d = b XOR s and a share of s: b = d + s (1 - 2d)."""
    if s_share.size > WORD_BITS * opened_plane.size:
        raise ProtocolError(f"a plane of {opened_plane.size} words has no bit for each of {s_share.size} elements")
    return fused.plane_bit_share(opened_plane, s_share, leader)


@wrapping
def product_with_bit(opened_plane: np.ndarray, x_share: np.ndarray, masked: np.ndarray,
                     s_share: np.ndarray, rs_share: np.ndarray) -> np.ndarray:
    """Additive share of x * b, where x = c - r, from d = b XOR s opened and shares of s, r s.

    x b = x (d + s - 2 d s) = d x + (1 - 2d)(c s - r s): linear in the shares, no round.
    """
    if x_share.size > WORD_BITS * opened_plane.size:
        raise ProtocolError(f"a plane of {opened_plane.size} words has no bit for each of {x_share.size} elements")
    return fused.plane_bit_times(opened_plane, x_share, masked, s_share, rs_share)
