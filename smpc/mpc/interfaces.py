"""The typed interfaces a protocol implements: :class:`Protocol` (how values are shared and where correlated
randomness comes from) and :class:`BinaryShared` (XOR-shared 64-bit words, for circuits).

A new protocol is a package ``smpc/mpc/<name>/`` with

1. a tensor class subclassing :class:`smpc.mpc.tensor.SharedTensor` that fills in the protocol steps the base class
   leaves open: ``_public_components`` (where a public value sits among this party's components),
   ``_shared_bilinear`` (products of two shared operands: element-wise, matmul, conv2d, with truncation when the
   scales call for it), ``_truncate_ring``, ``reveal_ring`` and, for comparisons and the functions built on them,
   ``_is_negative``/``_times_negative``, ``to_binary``/``_bits_to_arithmetic`` and ``_random_one_hot``;
2. a :class:`Protocol` subclass (sharing an input, making a public value shared, attaching itself and its
   correlated-randomness source to a party, serving a dealer endpoint if it has one);
3. a cost theory (:class:`smpc.mpc.cost.CostTheory`): the rounds and bytes of each protocol step, which the tests
   assert measured runs against;
4. ``SPEC = ProtocolSpec(...)`` in its ``__init__`` and one line in :data:`smpc.mpc.registry.BUILT_IN` (or a call
   to :func:`smpc.mpc.registry.register` from outside the library).

The existing test suites then run the new protocol (``tests/conftest.py``'s ``setup`` fixture reads the registry);
an operation it cannot do is declared in ``ProtocolSpec.unsupported`` and the suites needing it are skipped with
that reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np


class Protocol(ABC):
    """A secret-sharing protocol as the launcher and a party see it.

    Class attributes: ``name`` (the registry's name) and ``has_dealer`` (whether a dealer endpoint joins the run:
    the launcher starts one and routes it to :meth:`serve_dealer`). Protocol objects travel to TCP party processes
    by pickle (a module-level class, picklable by reference), so they hold settings only, never keys or shares.
    """

    name: str = ""
    has_dealer: bool = False

    @abstractmethod
    def attach(self, party) -> None:
        """Set ``party.protocol`` to this object and ``party.dealer`` to the party's correlated-randomness source
        (:class:`smpc.mpc.correlated.source.CorrelatedSource`, or None for a protocol that needs none)."""

    def describe(self) -> str:
        """What every endpoint of a run must agree on about this protocol, in words (compared at connection
        set-up): its name, and any setting that changes the messages."""
        return f"protocol {self.name}"

    def preprocess(self, party, fn: Callable) -> None:
        """``preprocessing="ahead"``: fetch all the correlated randomness ``fn`` will ask ``party``'s source for,
        before ``fn`` runs online (:func:`smpc.mpc.correlated.preprocessed.plan_ahead`). Only for protocols whose
        spec says ``preprocessing=True``."""
        raise ValueError(f"protocol {self.name!r} has no correlated randomness to fetch ahead")

    def finish(self, party) -> None:
        """Called at each party after ``fn`` returned, before its result is handed back: a protocol that defers
        checks (spdz2k's MAC check) runs what is left of them here. Nothing by default."""
        return None

    def serve_dealer(self, dealer_party) -> dict:
        """Run the dealer endpoint until the parties finish; return a summary. Only for ``has_dealer`` protocols."""
        raise RuntimeError(f"protocol {self.name!r} has no dealer")

    @abstractmethod
    def share(self, party, x, src: int) -> Any:
        """This party's shared tensor of ``x``, which party ``src`` holds (the others pass None). Integer data stays
        integer (scale 0), floats become fixed point with ``party.frac_bits`` fraction bits."""

    @abstractmethod
    def from_public(self, party, value) -> Any:
        """A public value (every party passes the same) as a shared tensor, without communication."""

    def client_messages(self, ring: np.ndarray, parties: int, key_source: Callable[[], bytes]) -> list[list[Any]]:
        """What a client outside the run sends each of ``parties`` parties to share the ring value ``ring``:
        ``messages[rank]`` lists that party's components, each a 16-byte PRG key standing for a random share
        (``key_source()`` makes fresh ones) or a uint64 array. The parties add up what they get from many clients
        component-wise and make a tensor with :meth:`from_components` (server-side aggregation). Optional: a
        protocol that cannot take outsourced inputs declares ``"outsourced"`` unsupported in its spec."""
        raise NotImplementedError(f"protocol {self.name!r} does not take inputs shared by outside clients")

    def from_components(self, party, components: tuple[np.ndarray, ...], frac_bits: int) -> Any:
        """This party's shared tensor made of raw ``components`` (as :meth:`client_messages` lays them out)."""
        raise NotImplementedError(f"protocol {self.name!r} does not take inputs shared by outside clients")


class BinaryShared(ABC):
    """XOR-shared 64-bit words: the interface the binary circuits (:mod:`smpc.mpc.circuits`) are written against.

    Local operations (``^`` with shared or public words, ``&`` with public words, ``~``, shifts, :meth:`bit`) cost
    nothing; ``&`` of two shared operands costs one round. :meth:`and_many` batches several ANDs into that one round.
    """

    shape: tuple[int, ...]

    @abstractmethod
    def __xor__(self, other) -> "BinaryShared": ...

    @abstractmethod
    def __and__(self, other) -> "BinaryShared": ...

    @abstractmethod
    def __invert__(self) -> "BinaryShared": ...

    @abstractmethod
    def __lshift__(self, bits: int) -> "BinaryShared": ...

    @abstractmethod
    def __rshift__(self, bits: int) -> "BinaryShared": ...

    @abstractmethod
    def bit(self, index: int) -> "BinaryShared":
        """Bit ``index`` of every word, as words 0/1."""

    @abstractmethod
    def linear(self, fn) -> "BinaryShared":
        """``fn`` applied to every component of this party's share: local, and the sharing of fn(x) for any
        XOR-linear ``fn`` (fn(a ^ b) = fn(a) ^ fn(b); uint64 array in, same shape out), such as a shift, an AND
        with a public mask or the parity of some bits."""

    @abstractmethod
    def reveal(self, to: int | None = None):
        """The plain words (uint64) to every party, or to party ``to`` only (the others get None)."""
