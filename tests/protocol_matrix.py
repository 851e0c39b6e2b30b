"""The test matrix: every registered protocol, each of its test party counts, on the transports the suites run.

Suites parametrize over :func:`setups` instead of listing protocols themselves::

    @pytest.mark.parametrize("setup", setups("comparison"), ids=str)
    def test_relu(setup): ...

so a newly registered protocol is tested by every suite with no edit to it. A protocol that declares an operation
unsupported (``ProtocolSpec.unsupported``) gets that suite's cases skipped with its reason. The registry is read at
collection time: this module registers the test suite's own reference protocol (``cleartext_protocol``); register
yours in ``conftest.py`` (or import its package there) to run it through the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import cleartext_protocol  # noqa: F401  (registers the one-party reference protocol)
import smpc
from smpc.mpc import registry


@dataclass(frozen=True)
class Setup:
    """One cell of the matrix: a protocol, a party count, a transport."""

    protocol: str
    parties: int
    transport: str = "local"

    def __str__(self) -> str:
        suffix = "" if self.transport == "local" else f"-{self.transport}"
        return f"{self.protocol}-{self.parties}{suffix}"

    @property
    def spec(self) -> registry.ProtocolSpec:
        return registry.get(self.protocol)

    def run(self, fn, **options) -> list:
        """``smpc.run`` in this cell."""
        return smpc.run(fn, parties=self.parties, protocol=self.protocol, transport=self.transport, **options)

    def launch(self, fn, **options):
        """``smpc.launch`` in this cell."""
        return smpc.launch(fn, parties=self.parties, protocol=self.protocol, transport=self.transport, **options)

    def cost(self, fn, shapes) -> dict:
        """The protocol's theory for ``fn`` on shared inputs of ``shapes`` (:func:`smpc.cost`)."""
        return smpc.cost(fn, shapes, self.protocol, self.parties)


def opening_rounds(protocol: str, parties: int) -> int:
    """The rounds of one opening in the protocol's theory (1 for every protocol that communicates)."""
    return smpc.cost(lambda t: t.reveal_ring(), [(1,)], protocol, parties)["rounds"]


def partial_opening_rounds(protocol: str, parties: int) -> int:
    """The rounds of an opening inside a protocol step (a lookup's masked index; spdz2k checks it later)."""
    return smpc.cost(lambda t: t._open_partially(), [(1,)], protocol, parties)["rounds"]


def skip_without_rounds(protocol: str, parties: int) -> None:
    """Skip a test of documented round formulas for a protocol whose openings cost no round (nothing to count)."""
    if opening_rounds(protocol, parties) == 0:
        pytest.skip(f"{protocol}: openings cost no round, so the documented round formulas do not apply")


def setups(*needs: str, transport: str = "local", more_parties: int | None = None, min_parties: int = 1,
           heavy: bool = False) -> list:
    """pytest params of every (protocol, test party count) on ``transport``; cases of a protocol that cannot do one
    of ``needs`` (operations of :data:`smpc.mpc.registry.OPERATIONS`) are skipped with the protocol's reason.
    ``more_parties``: also that many parties for every protocol that allows it (a wider case for cheap suites);
    ``min_parties``: only party counts of at least this (a scenario where the model's and the data's owners are two
    different parties needs 2); ``heavy``: a costly suite, all of whose cells of a protocol with ``extended_tests``
    are marked ``extended`` (run when time allows)."""
    params = []
    for name, spec in registry.protocols().items():
        reasons = [reason for reason in (spec.unsupported_reason(need) for need in needs) if reason]
        marks = [pytest.mark.skip(reason=f"{name}: {reasons[0]}")] if reasons else []
        counts = list(spec.test_parties)
        if more_parties is not None and more_parties not in counts:
            try:
                spec.check_parties(more_parties)
                counts.append(more_parties)
            except ValueError:
                pass
        for parties in counts:
            if parties < min_parties:
                continue
            setup = Setup(name, parties, transport)
            wider = parties != spec.test_parties[0] or transport != "local" or heavy
            extended = [pytest.mark.extended] if spec.extended_tests and wider else []
            params.append(pytest.param(setup, marks=marks + extended, id=str(setup)))
    return params


def protocol_parties(*needs: str, more_parties: int | None = None, heavy: bool = False) -> list:
    """Like :func:`setups`, as ``(protocol, parties)`` pairs for suites parametrized on those two names."""
    return [pytest.param(p.values[0].protocol, p.values[0].parties, marks=p.marks, id=p.id)
            for p in setups(*needs, more_parties=more_parties, heavy=heavy)]


def protocol_names(*needs: str) -> list:
    """Each protocol's name once, as pytest params (skipped where it cannot do one of ``needs``)."""
    return [pytest.param(p.values[0].protocol, marks=p.marks, id=p.values[0].protocol)
            for p in one_per_protocol(*needs)]


def one_per_protocol(*needs: str, transport: str = "local", min_parties: int = 1, heavy: bool = False) -> list:
    """Each protocol once, at its smallest test party count (of at least ``min_parties``; for costly cases)."""
    seen, params = set(), []
    for param in setups(*needs, transport=transport, min_parties=min_parties, heavy=heavy):
        if param.values[0].protocol not in seen:
            seen.add(param.values[0].protocol)
            params.append(param)
    return params


def one_per_protocol_pairs(*needs: str, min_parties: int = 1, heavy: bool = False) -> list:
    """Like :func:`one_per_protocol`, as ``(protocol, parties)`` pairs."""
    return [pytest.param(p.values[0].protocol, p.values[0].parties, marks=p.marks, id=p.id)
            for p in one_per_protocol(*needs, min_parties=min_parties, heavy=heavy)]
