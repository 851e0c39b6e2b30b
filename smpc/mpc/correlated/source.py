"""The correlated-randomness source interface: what a dealer gives each party, and the explicit receive of it.

A protocol asks its party's source (``party.dealer``) for material ahead of the online step that uses it, and
never knows whether a trusted dealer (:mod:`.trusted`), Paillier preprocessing (:mod:`.paillier`) or something
else makes it. Every request returns this party's material at once as plain data (numpy arrays, no I/O behind
any attribute). Where a source sends one party a correction (the trusted dealer's last party), the fields that
depend on it are ``None`` until the protocol calls :meth:`CorrelatedSource.complete` at a point written in its
code: after its own openings, so the dealer computes while the parties talk. Every material is completed once,
in the order it was requested (the corrections arrive in that order); the source checks that and raises
:class:`MaterialOrderError` otherwise.

A source declares the kinds it makes in :attr:`CorrelatedSource.provides`; asking for another kind raises
:class:`UnsupportedMaterial` naming the source and the kind.

How to write a new source: subclass :class:`CorrelatedSource`, set ``name`` (abstract) and ``provides``,
override exactly the methods named in ``provides`` (checked when the class is defined), and return every
material through :meth:`CorrelatedSource._track`, with a ``receive`` callable that fills in this party's
missing fields if it has any. All work happens inside ``party.offline()``, so it is counted apart from the online cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypeVar

import numpy as np

from smpc.exceptions import ProtocolError

if TYPE_CHECKING:
    from smpc.mpc.bilinear import Bilinear
    from smpc.mpc.circuits.masked_ands import AndLayout
    from smpc.mpc.circuits.sign_bit import Material

M = TypeVar("M")

#: The kinds of material a source may make (its method names), with words for error messages.
KINDS: dict[str, str] = {
    "triple": "Beaver triples",
    "trunc_pair": "truncation pairs",
    "and_triples": "AND triples on shared masks (A2B, bit lengths)",
    "dabits": "dabits (B2A)",
    "sign_material": "comparisons (sign bits)",
    "random_one_hot": "random one-hot rows (private token ids, table lookups)",
    "fss_sign": "function-secret-sharing comparison keys (comparisons='fss')",
}


class UnsupportedMaterial(ProtocolError, NotImplementedError):
    """A source was asked for a kind of material it does not make."""

    def __init__(self, source: "CorrelatedSource", kind: str, what: str | None = None):
        what = what or KINDS[kind]
        advice = type(source).unsupported_advice.format(what=what)
        super().__init__(f"{source.name} cannot make {what} (kind {kind!r}; it provides "
                         f"{', '.join(sorted(source.provides)) or 'nothing'})" + (f": {advice}" if advice else ""))
        self.kind = kind


class MaterialOrderError(ProtocolError):
    """Material was completed out of request order, twice, or by a source that did not make it."""


@dataclass(eq=False)
class Triple:
    """One party's additive shares of a Beaver triple ``c = op(a, b)`` (XOR words' ANDs: :class:`AndTriples`).

    ``c`` is ``None`` at a party that receives it until :meth:`CorrelatedSource.complete`.
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray | None


@dataclass(eq=False)
class AndTriples:
    """One party's shares of :meth:`CorrelatedSource.and_triples`: ``masks[i]`` (None where another party alone
    makes mask i: this party's share is zero) and ``products[k]`` (None at a party that receives them until
    :meth:`CorrelatedSource.complete`)."""

    masks: list
    products: list | None


@dataclass(eq=False)
class Dabits:
    """Random bits shared twice: ``xor`` (XOR shares, 0/1 words) and ``arith`` (additive shares)."""

    xor: np.ndarray | None
    arith: np.ndarray | None


@dataclass(eq=False)
class OneHotMask:
    """Shares of random offsets r (uniform mod 2^bits) and of their one-hot rows (count, 2^bits).

    ``rows`` is ``None`` at a party that receives them until :meth:`CorrelatedSource.complete`.
    """

    offsets: np.ndarray
    rows: np.ndarray | None


@dataclass(eq=False)
class FssSignMaterial:
    """This party's shares drawn from its PRG at once (:class:`smpc.mpc.fss.compare.SignShares`: the masks r
    among them) and, after completion, its sign keys (:class:`smpc.mpc.fss.compare.SignKeys`, the DCF key received
    from the dealer)."""

    shares: Any
    keys: Any = None

    @property
    def mask(self) -> np.ndarray:
        """This party's share of the masks r."""
        return self.shares.mask


@dataclass(eq=False)
class _Outstanding:
    number: int
    material: Any
    what: str
    receive: Callable[[], None] | None


class CorrelatedSource(ABC):
    """A party's source of correlated randomness (see the module docstring for the rules).

    Every method runs offline and returns this party's shares at once; shares that come from elsewhere are
    filled in by :meth:`complete`. The defaults raise :class:`UnsupportedMaterial`: a source overrides
    exactly the kinds it lists in :attr:`provides`. ``requests`` counts the materials asked for.
    """

    #: the kinds (method names, keys of :data:`KINDS`) this source makes
    provides: ClassVar[frozenset[str]] = frozenset()
    #: appended to :class:`UnsupportedMaterial`'s message; ``{what}`` is the kind in words
    unsupported_advice: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        unknown = set(cls.provides) - set(KINDS)
        if unknown:
            raise TypeError(f"{cls.__name__}.provides names unknown kinds {sorted(unknown)}; known: {list(KINDS)}")
        for kind in KINDS:
            overridden = getattr(cls, kind) is not getattr(CorrelatedSource, kind)
            if overridden != (kind in cls.provides):
                state = "overrides" if overridden else "does not override"
                raise TypeError(f"{cls.__name__} {state} {kind}() but {'does not list' if overridden else 'lists'} "
                                f"it in provides")

    @property
    @abstractmethod
    def name(self) -> str:
        """How errors name the source, e.g. ``"dealer='trusted'"`` (a class attribute in a subclass is enough)."""

    def __init__(self):
        self.requests = 0
        self._outstanding: deque[_Outstanding] = deque()

    # --- the kinds of material ---------------------------------------------------------------------------------
    def triple(self, op: "Bilinear", shape_x: tuple, shape_y: tuple) -> Triple:
        """This party's additive shares of a Beaver triple: ``a`` of ``shape_x``, ``b`` of ``shape_y``, and
        ``c = op(a, b)`` of ``op.output_shape(shape_x, shape_y)`` (uint64; ``op`` is mul, matmul or conv2d).

        Beaver, CRYPTO 1991; used by :func:`smpc.mpc.additive.beaver.beaver_product`, which completes it after
        opening x - a and y - b.
        """
        raise UnsupportedMaterial(self, "triple")

    def trunc_pair(self, shape: tuple, bits: int):
        """This party's truncation pair for ``bits`` (1..62) on ``shape``: an object of
        :mod:`smpc.mpc.additive.truncation` that carries its own online step, ``pair.truncate(party, x, bits)``
        (which completes it after its opening).

        Escudero et al., CRYPTO 2020, section 5 (shares of a random r, its top bit and (r mod 2^63) >> bits).
        """
        raise UnsupportedMaterial(self, "trunc_pair")

    def and_triples(self, layout: "AndLayout") -> "AndTriples":
        """This party's XOR shares of a round of ANDs' masks and of the products of their shifts
        (:class:`~smpc.mpc.circuits.masked_ands.AndLayout`): one uint64 mask per word to open, c = S(a_i) & T(a_j)
        per AND.

        The boolean Beaver step of GMW/ABY (Demmler et al., NDSS 2015, section III-B) with one mask per opened
        word (:mod:`smpc.mpc.circuits.masked_ands`); :func:`smpc.mpc.additive.binary.and_many` completes it after
        its opening.
        """
        raise UnsupportedMaterial(self, "and_triples")

    def dabits(self, shape: tuple) -> Dabits:
        """This party's shares of random bits of ``shape``, twice: XOR shares (words 0/1) and additive shares.

        Rotaru and Wood, INDOCRYPT 2019 (daBits); the caller completes them before masking with them.
        """
        raise UnsupportedMaterial(self, "dabits")

    def sign_material(self, count: int, with_product: bool = False) -> "Material":
        """This party's randomness for the sign bit of ``count`` elements: the fields of
        :func:`smpc.mpc.circuits.sign_bit.layout` with the mask r and the arithmetic bit s (and r * s when
        ``with_product``). The caller completes it after opening x + r, before the circuit.
        """
        raise UnsupportedMaterial(self, "sign_material")

    def random_one_hot(self, count: int, bits: int) -> OneHotMask:
        """This party's shares of ``count`` random offsets r (uniform mod 2^bits, nobody knows them) and of their
        one-hot rows (count, 2^bits); the caller completes it after opening x - r (:mod:`smpc.mpc.one_hot`).
        """
        raise UnsupportedMaterial(self, "random_one_hot")

    def fss_sign(self, count: int, with_product: bool = False) -> FssSignMaterial:
        """Two parties: this party's share of ``count`` random masks r (and its other shares) and, at completion,
        its one-bit DCF keys for msb(x) from the opened x + r, with a daBit to make the bit arithmetic (with
        ``with_product``, also for x msb(x)); Boyle et al., EUROCRYPT 2021, section 4 (:mod:`smpc.mpc.fss.compare`)."""
        raise UnsupportedMaterial(self, "fss_sign")

    # --- explicit receives --------------------------------------------------------------------------------------
    def complete(self, material: M) -> M:
        """Fill in this party's fields of ``material`` that come from elsewhere (a receive, at most), and return it.

        Call it once per material, in request order, where the protocol needs the missing fields: after the
        openings that the source's own work overlaps. Raises :class:`MaterialOrderError` otherwise.
        """
        if not self._outstanding or self._outstanding[0].material is not material:
            raise MaterialOrderError(self._order_problem(material))
        entry = self._outstanding.popleft()
        if entry.receive is not None:
            entry.receive()
        return material

    def _track(self, material: M, what: str, receive: Callable[[], None] | None = None) -> M:
        """Record a material just requested (``what``: it in words); ``receive`` fills in its missing fields."""
        self.requests += 1
        self._outstanding.append(_Outstanding(self.requests, material, what, receive))
        return material

    def _order_problem(self, material) -> str:
        waiting = next((e for e in self._outstanding if e.material is material), None)
        if waiting is None:
            return (f"{self.name}: complete() got material that is not outstanding here (completed twice, "
                    f"or not requested from this source)")
        head = self._outstanding[0]
        return (f"{self.name}: material completed out of order: request {waiting.number} ({waiting.what}) "
                f"before request {head.number} ({head.what}); complete material in the order it was requested")
