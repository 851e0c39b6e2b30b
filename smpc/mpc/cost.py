"""Rounds and bytes of any program on the shared-tensor interface, from each protocol's theory, without running it.

:func:`cost` runs ``fn`` on :class:`CostTensor` values: tensors of zeros whose protocol steps (products of shared
operands, truncations, sign bits, conversions, openings) add that step's cost to a :class:`Ledger` instead of
communicating. Each protocol states the cost of its steps in a :class:`CostTheory` (its package's ``cost.py``, found
through the registry), so ``cost(functions.exp, [(1000,)], "additive", 2)`` composes the theory of exactly the steps
exp takes. The tests assert measured runs against these figures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from smpc.mpc import registry
from smpc.mpc.bilinear import Bilinear
from smpc.mpc.circuits import masked_ands
from smpc.mpc.circuits.masked_ands import AndLayout, ShiftTracked
from smpc.mpc.tensor import SharedTensor
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS


class CostTheory(ABC):
    """One protocol's cost per step, for ``parties`` parties: each method adds its step to ``ledger`` with
    ``ledger.add(rounds, bytes_sent_by_each_party)``, ``ledger.add_dealer(bytes)`` for a dealer's replies and
    ``ledger.add_ring_products(count)`` for the bilinear ring operations of a product (all endpoints together)."""

    def __init__(self, parties: int):
        self.parties = parties

    @abstractmethod
    def product(self, ledger: "Ledger", shape_x, shape_y, shape_z, truncated: bool) -> None:
        """A product of two shared operands (element-wise, matmul or conv2d), then its truncation if fixed point."""

    @abstractmethod
    def truncation(self, ledger: "Ledger", shape) -> None:
        """Dividing a shared value by a power of two."""

    @abstractmethod
    def sign(self, ledger: "Ledger", count: int, with_product: bool) -> None:
        """The sign bit of ``count`` elements (``with_product``: x times it)."""

    @abstractmethod
    def opening(self, ledger: "Ledger", shape) -> None:
        """Opening a shared value to every party."""

    @abstractmethod
    def binary_and(self, ledger: "Ledger", shapes: list) -> None:
        """One round of ANDs of pairs of XOR-shared words, of these (broadcast) shapes."""

    def masked_ands(self, ledger: "Ledger", layouts: list["AndLayout"]) -> None:
        """One round of ANDs as :func:`smpc.mpc.circuits.masked_ands.layouts` lays them out (each word masked once
        per layout); by default priced as :meth:`binary_and` of the products' shapes (a protocol that opens every
        operand)."""
        self.binary_and(ledger, [layout.product_shape(k) for layout in layouts for k in range(len(layout.products))])

    @abstractmethod
    def a2b(self, ledger: "Ledger", shape) -> None:
        """Arithmetic to binary sharing of a value of ``shape`` (adders through ``ledger.binary_and``)."""

    @abstractmethod
    def b2a(self, ledger: "Ledger", shape) -> None:
        """Binary-shared bits (``shape``: bits first) to arithmetic sharing."""

    def partial_opening(self, ledger: "Ledger", shape) -> None:
        """Opening a value inside a protocol step (:meth:`SharedTensorCore._open_partially`); an opening by
        default."""
        self.opening(ledger, shape)

    def random_one_hot(self, ledger: "Ledger", count: int, bits: int) -> None:
        """Offline material for ``count`` random one-hot rows of 2^bits (no online cost; a dealer's bytes)."""
        return None

    #: whether x msb(x) costs no more than msb(x), so a max takes other + relu(self - other) (no selection)
    max_by_relu: bool = False

    def setup_dealer_bytes(self, input_shapes) -> int:
        """The dealer's bytes before a program's steps: the run's set-up and sharing inputs of ``input_shapes`` (none
        by default)."""
        return 0


@dataclass(frozen=True)
class Phases:
    """One party's messages in one step, as its receive phases count them (:mod:`smpc.net.stats`: a round begins at
    the first receive after a send). ``rounds``: its receive phases in the step; ``opens_with_receive``: its first
    message in the step is a receive, which continues the receive phase the previous step left open, if it did (the
    step then adds one round fewer); ``closes_with_send``: it sends after its last receive, or only sends, so the
    next step's first receive begins a new round. The default is a party that sends first and receives last."""

    rounds: int
    opens_with_receive: bool = False
    closes_with_send: bool = False


class Ledger:
    """Bytes each party sends, the dealer's bytes and each party's rounds, summed over steps (a party's rounds follow
    its receive phases across steps: see :class:`Phases`)."""

    def __init__(self, theory: CostTheory):
        self.theory = theory
        self.parties = theory.parties
        self.bytes = [0] * self.parties
        self.dealer_bytes = 0
        self.rounds_per_party = [0] * self.parties
        self._receiving = [False] * self.parties  # whether a party's last message was a receive (none: a new round)
        self.ring_products = 0

    @property
    def rounds(self) -> int:
        """The busiest party's rounds (a computation's rounds, as measured)."""
        return max(self.rounds_per_party)

    def add(self, rounds: int, per_party: Sequence[int], phases: Sequence[Phases] | None = None) -> None:
        """Count one step: ``per_party[i]`` bytes sent by party i, and ``rounds`` rounds for every party (each sends
        first and receives last; with 0 rounds it only sends, if anything) or, given ``phases``, party i's
        ``phases[i]`` (``rounds`` is then their largest)."""
        if len(per_party) != self.parties or (phases is not None and len(phases) != self.parties):
            raise ValueError(f"a step's bytes or phases do not name the run's {self.parties} parties")
        if phases is None:
            phases = [Phases(rounds, closes_with_send=not rounds and sent > 0) for sent in per_party]
        elif rounds != max(phase.rounds for phase in phases):
            raise ValueError(f"a step of {rounds} rounds whose parties' phases have {[p.rounds for p in phases]}")
        for rank, phase in enumerate(phases):
            if phase.rounds:
                merged = phase.opens_with_receive and self._receiving[rank]
                self.rounds_per_party[rank] += phase.rounds - merged
                self._receiving[rank] = not phase.closes_with_send
            elif phase.closes_with_send:
                self._receiving[rank] = False
        self.bytes = [total + extra for total, extra in zip(self.bytes, per_party)]

    def add_dealer(self, nbytes: int) -> None:
        """Count bytes the dealer sends (offline)."""
        self.dealer_bytes += nbytes

    def add_ring_products(self, count: int) -> None:
        """Count bilinear ring operations (products, matmuls, convolutions) run by all endpoints together."""
        self.ring_products += count

    def binary_and(self, pairs: list) -> list:
        """ANDs of pairs of :class:`CostBinary` words in one round (the ``and_many`` the adders call)."""
        layouts = [layout for layout, _ in masked_ands.layouts(pairs)]
        self.theory.masked_ands(self, layouts)
        return [CostBinary(self, layout.product_shape(k)) for layout in layouts for k in range(len(layout.products))]

    def busiest(self) -> int:
        return max(self.bytes)


class CostBinary(ShiftTracked):
    """XOR-shared words of a shape: local operations are free, ANDs of two shared words cost a round. Shifts and
    owners are tracked as the additive protocol's words track them (:mod:`smpc.mpc.circuits.masked_ands`)."""

    def __init__(self, ledger: Ledger, shape, owner: int | None = None):
        self.ledger, self.shape, self.owner = ledger, tuple(shape), owner

    def _like(self, other) -> "CostBinary":
        other_shape = other.shape if isinstance(other, CostBinary) else np.shape(other)
        return CostBinary(self.ledger, np.broadcast_shapes(self.shape, other_shape))

    def __xor__(self, other):
        return self._like(other)

    __rxor__ = __xor__

    def __and__(self, other):
        if isinstance(other, CostBinary):
            return self.ledger.binary_and([(self, other)])[0]
        return self._like(other)

    __rand__ = __and__

    def __invert__(self):
        return CostBinary(self.ledger, self.shape)  # a new word (a protocol masks it apart from this one)

    def __lshift__(self, bits: int):
        return self._derive(CostBinary(self.ledger, self.shape), bits)

    def __rshift__(self, bits: int):
        return self._derive(CostBinary(self.ledger, self.shape), -bits)

    def bit(self, index: int):
        return CostBinary(self.ledger, self.shape)

    def linear(self, fn):
        return CostBinary(self.ledger, self.shape)


class _CostParty:
    """What a cost tensor's operations ask of a party: rank 0's view, the scale, the ledger."""

    def __init__(self, ledger: Ledger, frac_bits: int):
        self.ledger, self.frac_bits = ledger, frac_bits
        self.rank, self.world_size = 0, ledger.parties


class CostTensor(SharedTensor):
    """A shared tensor of zeros whose protocol steps only add their theoretical cost to the ledger."""

    def _public_components(self, ring):
        return (ring,)

    def _max_by_relu(self) -> bool:
        return self.party.ledger.theory.max_by_relu

    def _shared_bilinear(self, left, right, op: Bilinear):
        shape = op.output_shape(left.shape, right.shape)
        frac = left.frac_bits + right.frac_bits
        truncated = frac > self.party.frac_bits
        ledger = self.party.ledger
        ledger.theory.product(ledger, left.shape, right.shape, shape, truncated)
        return self._new((np.zeros(shape, np.uint64),), self.party.frac_bits if truncated else frac)

    def _truncate_ring(self, bits: int):
        self.party.ledger.theory.truncation(self.party.ledger, self.shape)
        return (np.zeros(self.shape, np.uint64),)

    def _is_negative(self):
        if self.size:
            self.party.ledger.theory.sign(self.party.ledger, self.size, with_product=False)
        return self._new((np.zeros(self.shape, np.uint64),), 0)

    def _times_negative(self):
        if self.size:
            self.party.ledger.theory.sign(self.party.ledger, self.size, with_product=True)
        return self._new((np.zeros(self.shape, np.uint64),))

    def to_binary(self):
        self.party.ledger.theory.a2b(self.party.ledger, self.shape)
        return CostBinary(self.party.ledger, self.shape)

    def _bits_to_arithmetic(self, bits: list):
        shape = (len(bits), *self.shape)
        self.party.ledger.theory.b2a(self.party.ledger, shape)
        return self._new((np.zeros(shape, np.uint64),), 0)

    def _random_one_hot(self, count: int, bits: int):
        """Offline material (no online cost): zeros of the right shapes."""
        self.party.ledger.theory.random_one_hot(self.party.ledger, count, bits)
        rows = self._new((np.zeros((count, 1 << bits), np.uint64),), 0)
        return self._new((np.zeros(count, np.uint64),), 0), lambda: rows

    def _open_partially(self):
        """An opening inside a protocol step (a table lookup's masked index): its cost, and zeros."""
        self.party.ledger.theory.partial_opening(self.party.ledger, self.shape)
        return np.zeros(self.shape, np.uint64)

    def reveal_ring(self, to=None):
        """A reveal: its cost, and zeros."""
        if to is not None:
            raise TypeError("a cost model has no values to reveal")
        self.party.ledger.theory.opening(self.party.ledger, self.shape)
        return np.zeros(self.shape, np.uint64)


class CostRun:
    """One theoretical run: make cost tensors with :meth:`tensor`, run a program on them, read :meth:`result`.

    :func:`cost` covers programs on shared inputs; use this directly when a program also needs shared values of
    its own (a model whose parameters are shared: set each parameter to ``run.tensor(shape)``).
    """

    def __init__(self, protocol: str = "additive", parties: int | None = None, frac_bits: int = DEFAULT_FRAC_BITS):
        spec = registry.get(protocol)
        parties = spec.bench_parties if parties is None else parties
        spec.check_parties(parties)
        if not isinstance(frac_bits, int) or isinstance(frac_bits, bool) or not 0 < frac_bits <= 30:
            raise ValueError(f"frac_bits must be an integer in 1..30, got {frac_bits!r}")
        self.ledger = Ledger(spec.cost(parties))
        self.party = _CostParty(self.ledger, frac_bits)

    def tensor(self, shape: tuple[int, ...], integer: bool = False) -> CostTensor:
        """A shared tensor of ``shape`` (fixed point, or an integer tensor) whose steps count their cost."""
        shape = tuple(int(dim) for dim in shape)
        return CostTensor(self.party, (np.zeros(shape, np.uint64),), 0 if integer else self.party.frac_bits)

    def result(self) -> dict:
        """``rounds`` and ``bytes`` (the busiest party's), ``rounds_per_party``, ``bytes_per_party``, ``dealer_bytes``
        and ``ring_products`` (bilinear ring operations of all endpoints) so far."""
        ledger = self.ledger
        return {"rounds": ledger.rounds, "bytes": ledger.busiest(), "rounds_per_party": list(ledger.rounds_per_party),
                "bytes_per_party": list(ledger.bytes), "dealer_bytes": ledger.dealer_bytes,
                "ring_products": ledger.ring_products}


def cost(fn: Callable, shapes: Sequence[tuple[int, ...]], protocol: str = "additive", parties: int | None = None,
         frac_bits: int = DEFAULT_FRAC_BITS) -> dict:
    """The theoretical online cost of ``fn(*tensors)`` on shared fixed-point inputs of ``shapes``.

    ``fn`` takes shared tensors and uses only the shared-tensor interface (``smpc.mpc.functions.exp``, a model's
    forward pass, ``lambda x, y: (x @ y).relu()``); it runs on zeros, so its cost must not depend on values (no
    reveal steering the program). ``parties`` defaults to the protocol's bench party count. Returns ``rounds``
    (the busiest party's: the rounds a run measures, as every party's receive phases are followed across steps),
    ``rounds_per_party``, ``bytes`` (the busiest party's), ``bytes_per_party`` (each party's) and ``dealer_bytes``
    (a dealer's replies, offline; 0 without a dealer) and ``ring_products`` (the bilinear ring operations every
    endpoint runs, together: the floor of a product's time). Inputs are counted as shared.
    """
    run = CostRun(protocol, parties, frac_bits)
    fn(*(run.tensor(shape) for shape in shapes))
    return run.result()
