"""The registry of protocols: one :class:`ProtocolSpec` per protocol, read by the API, the CLI, the bench, the cost
model and the tests.

A protocol is one package (``smpc/mpc/<name>/``) whose ``__init__`` defines ``SPEC`` (or ``SPECS``, several named
configurations); a built-in one is listed once
in :data:`BUILT_IN` below, and anyone else's is added at run time with :func:`register`. Nothing outside a
protocol's own package tests a protocol's name: code that needs to know what a protocol can do asks its spec.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from smpc.ring.rings import Ring, ring_of

#: The built-in protocols: the packages whose ``SPEC`` is registered on first use. Adding a protocol is one line here.
BUILT_IN = (
    "smpc.mpc.additive",
    "smpc.mpc.aby3",
    "smpc.mpc.spdz2k",
)

#: The operations a protocol may declare it cannot do (see :attr:`ProtocolSpec.unsupported`); the test matrix skips
#: a suite that needs one of them, with the declared reason.
OPERATIONS = {
    "arithmetic": "share, add, multiply, reveal",
    "matmul": "matrix products and 2-D convolutions of shared operands",
    "truncation": "fixed-point products (truncation of shared values)",
    "comparison": "sign bits, comparisons, ReLU, max/argmax",
    "binary": "conversion to binary (XOR) sharing and back",
    "one_hot": "one-hot encoding and table lookups",
    "functions": "non-linear functions (exp, reciprocal, softmax, GELU, layer norm, ...)",
    "nn": "neural-network inference and training (smpc.nn)",
    "outsourced": "inputs shared by clients outside the run (servers that aggregate clients' updates)",
}


@dataclass(frozen=True)
class CorrelatedKind:
    """One way a protocol gets its correlated randomness (``dealer=`` of :func:`smpc.run`).

    ``endpoint``: a dealer endpoint joins the run (the CLI's ``dealer`` command). ``parties``: the party counts this
    kind allows within the protocol's own (None: all of them). ``unsupported``: operations this kind cannot provide
    material for, with the reason. ``preprocessing``: ``smpc.run(..., preprocessing="ahead")`` applies (the source
    fetches everything through its own offline messages, so a planning pass can fetch it all before the online run).
    """

    name: str
    description: str
    endpoint: bool = False
    parties: tuple[int, ...] | None = None
    unsupported: Mapping[str, str] = field(default_factory=dict)
    preprocessing: bool = False


@dataclass(frozen=True)
class ProtocolSpec:
    """What a protocol is and can do, without running it.

    ``make(correlated, **options)`` builds the protocol object (:class:`smpc.mpc.interfaces.Protocol`) for a checked
    correlated kind; ``cost(parties)`` builds its theory of rounds and bytes (:class:`smpc.mpc.cost.CostTheory`).
    ``min_parties``/``max_parties`` bound the party count (``max_parties`` None: no bound); ``correlated`` lists the
    sources, the first being the default; ``test_parties`` are the party counts the test matrix and the bench's
    per-setup rows run, and ``bench_parties`` the one the bench's tables use. ``label`` names the protocol in
    tables ("additive (trusted dealer)"); ``rounds_add_up``: False where a program's rounds may be fewer than the sum
    of its steps' rounds measured one by one (a step's first receive may continue the previous step's receive phase;
    the cost theory, :mod:`smpc.mpc.cost`, counts that and equals the measured rounds either way); ``in_bench``: False
    keeps a protocol (a test reference, say) out of the bench's tables, except the groups of rows named in
    ``bench_groups`` (e.g. ``"networks"``); ``extended_tests``: the test matrix runs this (slow) protocol at its first
    test party count on the local transport by default and marks its other cells ``extended`` (run after the default
    suite when time allows, ``pytest -m extended``), so the default suite stays within its time budget.
    """

    name: str
    summary: str
    security: str
    make: Callable[..., Any]
    cost: Callable[[int], Any]
    min_parties: int
    max_parties: int | None
    correlated: tuple[CorrelatedKind, ...]
    test_parties: tuple[int, ...]
    bench_parties: int
    label: str = ""
    rounds_add_up: bool = True
    ring_bits: int = 64
    unsupported: Mapping[str, str] = field(default_factory=dict)
    in_bench: bool = True
    bench_groups: tuple[str, ...] = ()
    extended_tests: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.correlated:
            raise ValueError(f"a protocol spec needs an identifier name and at least one correlated kind: {self!r}")
        unknown = set(self.unsupported).union(*(kind.unsupported for kind in self.correlated)) - set(OPERATIONS)
        if unknown:
            raise ValueError(f"protocol {self.name!r} declares unknown operations {sorted(unknown)}; "
                             f"choose from {sorted(OPERATIONS)}")
        for count in (*self.test_parties, self.bench_parties):
            self.check_parties(count)

    # --- questions about the spec ----------------------------------------------------------------------------------
    @property
    def default_correlated(self) -> str:
        return self.correlated[0].name

    @property
    def ring(self) -> Ring:
        """The ring its shares live in, Z_2^ring_bits (:func:`smpc.ring.rings.ring_of`; ValueError for a width smpc
        has no ring for)."""
        return ring_of(self.ring_bits)

    @property
    def party_range(self) -> str:
        """The allowed party counts in words ('3', '2 or more', '2..5')."""
        if self.max_parties == self.min_parties:
            return str(self.min_parties)
        if self.max_parties is None:
            return f"{self.min_parties} or more"
        return f"{self.min_parties}..{self.max_parties}"

    def kind(self, name: str | None) -> CorrelatedKind:
        """The correlated kind called ``name`` (None: the default); ValueError naming the choices otherwise."""
        if name is None:
            return self.correlated[0]
        for kind in self.correlated:
            if kind.name == name:
                return kind
        raise ValueError(f"unknown dealer {name!r} for protocol {self.name!r}; choose one of "
                         f"{[kind.name for kind in self.correlated]}")

    def check_parties(self, parties: Any, correlated: str | None = None) -> None:
        """Raise ValueError unless ``parties`` is a party count this protocol (and correlated kind) runs with."""
        if not isinstance(parties, int) or isinstance(parties, bool):
            raise ValueError(f"protocol {self.name!r} needs an integer number of parties, got {parties!r}")
        if self.max_parties is None and parties < self.min_parties:
            raise ValueError(f"protocol {self.name!r} needs parties >= {self.min_parties}, got {parties}")
        if parties < self.min_parties or (self.max_parties is not None and parties > self.max_parties):
            raise ValueError(f"protocol {self.name!r} runs with {self.party_range} parties, got {parties}")
        kind = self.kind(correlated)
        if kind.parties is not None and parties not in kind.parties:
            raise ValueError(f"dealer={kind.name!r} of protocol {self.name!r} runs with "
                             f"{' or '.join(map(str, kind.parties))} parties, got {parties}")

    def unsupported_reason(self, operation: str, correlated: str | None = None) -> str | None:
        """Why this protocol (with this correlated kind) cannot do ``operation``, or None if it can."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; choose from {sorted(OPERATIONS)}")
        return self.unsupported.get(operation) or self.kind(correlated).unsupported.get(operation)

    def protocol(self, parties: int, correlated: str | None = None, **options: Any) -> Any:
        """The protocol object for ``parties`` and a correlated kind (None: the default), after checking both."""
        self.check_parties(parties, correlated)
        return self.make(self.kind(correlated).name, **options)


_registry: dict[str, ProtocolSpec] = {}
_built_in_loaded = False


def _load_built_in() -> None:
    global _built_in_loaded
    if _built_in_loaded:
        return
    _built_in_loaded = True
    for module_name in BUILT_IN:
        module = importlib.import_module(module_name)
        for spec in getattr(module, "SPECS", (module.SPEC,)):
            _registry.setdefault(spec.name, spec)


def register(spec: ProtocolSpec, replace: bool = False) -> ProtocolSpec:
    """Add a protocol; ValueError if its name is taken (unless ``replace``). Returns the spec."""
    if not isinstance(spec, ProtocolSpec):
        raise TypeError(f"register() takes a ProtocolSpec, got {type(spec).__name__}")
    _load_built_in()
    if spec.name in _registry and not replace and _registry[spec.name] is not spec:
        raise ValueError(f"a protocol named {spec.name!r} is already registered")
    _registry[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a protocol added with :func:`register` (built-in ones stay)."""
    modules = [importlib.import_module(module) for module in BUILT_IN]
    if any(spec.name == name for module in modules for spec in getattr(module, "SPECS", (module.SPEC,))):
        raise ValueError(f"{name!r} is a built-in protocol")
    _registry.pop(name, None)


def protocols() -> Mapping[str, ProtocolSpec]:
    """Every registered protocol, name -> :class:`ProtocolSpec` (a read-only view, in registration order)."""
    _load_built_in()
    return MappingProxyType(dict(_registry))


def get(name: Any) -> ProtocolSpec:
    """The spec called ``name``; ValueError naming the registered ones otherwise."""
    _load_built_in()
    spec = _registry.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"unknown protocol {name!r}; choose one of {sorted(_registry)}")
    return spec


def bench_setups(every_count: bool = False, group: str | None = None) -> list[tuple[str, int]]:
    """(name, parties) of every protocol in the bench (or in its ``group`` of rows, which a protocol kept out of the
    bench may still join through ``bench_groups``): its ``bench_parties``, or each of its ``test_parties``."""
    setups = []
    for name, spec in protocols().items():
        if spec.in_bench or (group is not None and group in spec.bench_groups):
            setups += [(name, count) for count in (spec.test_parties if every_count else (spec.bench_parties,))]
    return setups


def correlated_kinds() -> list[str]:
    """Every correlated kind's name over all protocols, each once (the CLI's ``--correlated`` choices)."""
    names: list[str] = []
    for spec in protocols().values():
        names += [kind.name for kind in spec.correlated if kind.name not in names]
    return names
