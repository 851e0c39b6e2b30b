"""One round of ANDs of XOR-shared words that masks every operand word once, however many ANDs it enters.

A boolean Beaver AND opens e = x ^ a and f = y ^ b for fresh masks a and b (Demmler et al., ABY, NDSS 2015,
section III-B). The circuits here AND words with shifts of themselves or of each other: a Kogge-Stone level
(Kogge and Stone, 1973) forms P & (G << s) and P & (P << s), a prefix OR forms y & (y >> s). Shifts are linear
over XOR, so once x ^ a is open, (x ^ a) << s = (x << s) ^ (a << s) is open too: one mask per word (its
*root*), and one product c = S(a_i) & T(a_j) from the dealer per AND, where S and T are the operands' shifts. A
level of the adder then opens two words rather than four, the prefix OR one rather than two, and the dealer's
and parties' key stream shrinks alike (the same correlated-mask idea as the squaring pairs of arithmetic MPC).

A word that only one party can hold a share of (its *owner*: an A2B's private inputs) gets a mask from that
party's stream alone; only its owner sends it masked. The first AND of a two-party A2B then opens one word
per party rather than two.

Operands say where they come from through :class:`ShiftTracked`: a word made by shifting another one keeps a
reference to the unshifted root and the total shift; everything else is its own root. :func:`layouts` turns a
round's pairs into the :class:`AndLayout` the dealer is asked for and the root words to open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORD_BITS = 64
#: owner of a mask every party holds a share of
SHARED = -1
#: the most values a layout may take to describe (:attr:`AndLayout.description_size`): a dealer request's fields
#: after its type code (:data:`smpc.mpc.correlated.requests.MAX_REQUEST_VALUES` less one)
MAX_DESCRIPTION = 63


@dataclass(frozen=True)
class AndLayout:
    """The masks one round of ANDs opens and the products of their shifts it needs.

    ``masks``: (shape, owner) per masked root word (owner :data:`SHARED`, or the rank whose stream alone makes
    it); ``products``: (i, shift_i, j, shift_j) per AND, the product S_i(a_i) & S_j(a_j) of masks i and j, each
    shifted by its amount as :func:`shift` does (of the broadcast of their shapes).
    """

    masks: tuple[tuple[tuple[int, ...], int], ...]
    products: tuple[tuple[int, int, int, int], ...]

    @property
    def description_size(self) -> int:
        """The values that describe it: the two counts, (owner, ndim, *shape) per mask, four per product."""
        return _description_size([shape for shape, _ in self.masks], len(self.products))

    def product_shape(self, index: int) -> tuple[int, ...]:
        """The shape of product ``index``: its two masks' shapes broadcast."""
        i, _, j, _ = self.products[index]
        return tuple(np.broadcast_shapes(self.masks[i][0], self.masks[j][0]))


class ShiftTracked:
    """Remembers, for a word made by shifts of one word, that root and the total shift (see the module).

    Subclasses call :meth:`_derive` on the result of a shift and may set ``owner`` (the only rank with a
    nonzero share, or None).
    """

    owner: int | None = None
    _root: "ShiftTracked | None" = None
    _shift: int = 0

    @property
    def root(self) -> "ShiftTracked":
        """The word this one is a shift of (itself if it is no shift)."""
        return self if self._root is None else self._root

    @property
    def root_shift(self) -> int:
        """The shift from :attr:`root` to this word: positive left, negative right (logical)."""
        return self._shift

    def _derive(self, result: "ShiftTracked", bits: int) -> "ShiftTracked":
        """Mark ``result`` as this word shifted by ``bits`` (positive left, negative right); returns it."""
        result.owner = self.owner
        total = _combined(self._shift, bits)
        if total is not None:
            result._root, result._shift = self.root, total
        return result


def _description_size(shapes: list, products: int) -> int:
    return 2 + sum(2 + len(shape) for shape in shapes) + 4 * products


def _combined(first: int, then: int) -> int | None:
    """One shift equal to shifting by ``first`` and then by ``then``, or None (opposite directions lose bits
    that a single shift keeps; 64 bits or more empty the word)."""
    if first and then and (first > 0) != (then > 0):
        return None
    total = first + then
    return total if abs(total) < WORD_BITS else None


def layouts(pairs: list) -> list[tuple[AndLayout, list]]:
    """The layouts of ANDing ``pairs`` of :class:`ShiftTracked` words in one round, each with its root words in mask
    order: consecutive pairs grouped while a group's description stays within :data:`MAX_DESCRIPTION` values (a
    word in two groups is masked in each)."""
    groups, roots, masks, index_of, products = [], [], [], {}, []
    for x, y in pairs:
        new_roots = {id(word.root): word.root for word in (x, y) if id(word.root) not in index_of}
        shapes = [shape for shape, _ in masks] + [root.shape for root in new_roots.values()]
        if products and _description_size(shapes, len(products) + 1) > MAX_DESCRIPTION:
            groups.append((AndLayout(tuple(masks), tuple(products)), roots))
            roots, masks, index_of, products = [], [], {}, []
        entry = []
        for word in (x, y):
            root = word.root
            if id(root) not in index_of:
                index_of[id(root)] = len(roots)
                roots.append(root)
                masks.append((tuple(int(d) for d in root.shape), SHARED if root.owner is None else root.owner))
            entry += [index_of[id(root)], word.root_shift]
        products.append(tuple(entry))
    if products:
        groups.append((AndLayout(tuple(masks), tuple(products)), roots))
    return groups


def shift(words: np.ndarray, bits: int) -> np.ndarray:
    """``words`` shifted left by ``bits`` (positive) or logically right (negative), as a new array."""
    if bits >= 0:
        return words << np.uint64(bits)
    return words >> np.uint64(-bits)


def split_shift(bits: int) -> tuple[int, int]:
    """(left, right) amounts, one of them 0, such that (x << left) >> right is x shifted by ``bits``."""
    return (bits, 0) if bits >= 0 else (0, -bits)
