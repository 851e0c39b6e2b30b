"""The protocol registry: what smpc.protocols() says, how the API and the CLI use it, and that nothing outside a
protocol's own package switches on its name."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import cleartext_protocol
import smpc
from smpc import cli
from smpc.mpc import registry
from smpc.mpc.interfaces import Protocol
from smpc.mpc.registry import CorrelatedKind, ProtocolSpec

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_built_in_protocols_describe_themselves():
    specs = smpc.protocols()
    assert list(specs)[:3] == ["additive", "additive_fss", "aby3"]  # BUILT_IN's order; a package may hold several
    additive, aby3 = specs["additive"], specs["aby3"]
    assert (additive.min_parties, additive.max_parties, additive.default_correlated) == (2, None, "trusted")
    assert (aby3.min_parties, aby3.max_parties, aby3.default_correlated) == (3, 3, "none")
    assert additive.ring_bits == aby3.ring_bits == 64
    assert "collude" in additive.security and "honest majority" in aby3.security
    assert additive.unsupported_reason("comparison") is None
    assert "triples and truncation pairs only" in additive.unsupported_reason("comparison", "paillier")
    for spec in specs.values():
        assert isinstance(spec.protocol(spec.bench_parties), Protocol)
    with pytest.raises(TypeError):
        specs["new"] = additive  # a read-only view


@pytest.mark.parametrize("call, message", [
    (lambda: registry.get("spdz"), "unknown protocol 'spdz'; choose one of"),
    (lambda: registry.get("aby3").protocol(4), "runs with 3 parties, got 4"),
    (lambda: registry.get("additive").protocol(1), "needs parties >= 2, got 1"),
    (lambda: registry.get("additive").protocol(True), "integer number of parties"),
    (lambda: registry.get("additive").protocol(3, "paillier"), "runs with 2 parties, got 3"),
    (lambda: registry.get("aby3").protocol(3, "trusted"), "unknown dealer 'trusted' for protocol 'aby3'"),
    (lambda: registry.get("aby3").protocol(3, dealer_key_bits=4096), "takes no options"),
    (lambda: registry.get("additive").protocol(2, dealer_key_bits=4096), "dealer='paillier' only"),
    (lambda: registry.get("additive").unsupported_reason("flying"), "unknown operation 'flying'"),
])
def test_bad_choices_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _spec(**changes) -> ProtocolSpec:
    fields = dict(name="toy", summary="a toy", security="none", make=lambda correlated: None, cost=None,
                  min_parties=1, max_parties=1, correlated=(CorrelatedKind("none", "nothing"),), test_parties=(1,),
                  bench_parties=1)
    fields.update(changes)
    return ProtocolSpec(**fields)


def test_a_spec_is_checked_when_made_and_registered():
    with pytest.raises(ValueError, match="unknown operations"):
        _spec(unsupported={"teleport": "no"})
    with pytest.raises(ValueError, match="runs with 1 parties, got 2"):
        _spec(test_parties=(2,))
    with pytest.raises(ValueError, match="identifier name"):
        _spec(name="two words")
    with pytest.raises(TypeError, match="ProtocolSpec"):
        registry.register({"name": "toy"})
    with pytest.raises(ValueError, match="already registered"):
        registry.register(_spec(name="additive"))
    with pytest.raises(ValueError, match="built-in"):
        registry.unregister("aby3")


def test_a_registered_protocol_is_runnable_by_name_and_leaves_again():
    toy = registry.register(_spec(name="toy_reference", make=cleartext_protocol.SPEC.make,
                                  cost=cleartext_protocol.SPEC.cost))
    try:
        assert smpc.protocols()["toy_reference"] is toy
        out = smpc.run(lambda p: (p.share(np.arange(3.0), src=0) * 2).reveal(), parties=1, protocol="toy_reference")
        assert np.array_equal(out[0], [0.0, 2.0, 4.0])
        assert smpc.cost(lambda x: x * x, [(3,)], "toy_reference") == {
            "rounds": 0, "bytes": 0, "rounds_per_party": [0], "bytes_per_party": [0], "dealer_bytes": 0,
            "ring_products": 0}
    finally:
        registry.unregister("toy_reference")
    assert "toy_reference" not in smpc.protocols()


def test_the_cli_offers_what_the_registry_holds():
    parser = cli.build_parser()
    party = parser._subparsers._group_actions[0].choices["party"]
    options = {action.dest: action for action in party._actions}
    assert options["protocol"].choices == list(smpc.protocols())
    assert set(options["correlated"].choices) == {k.name for s in smpc.protocols().values() for k in s.correlated}
    for name, spec in smpc.protocols().items():
        assert name in options["protocol"].help and spec.party_range in options["protocol"].help
    usage = subprocess.run([sys.executable, "-m", "smpc", "party", "--rank", "0", "--peers", "a:1,b:2,c:3",
                            "--protocol", "aby3", "--correlated", "trusted", "--insecure-no-tls", "x.py"],
                           capture_output=True, text=True, cwd=ROOT)
    assert usage.returncode != 0 and "unknown dealer 'trusted' for protocol 'aby3'" in usage.stderr


def _names_tested(tree: ast.AST, names: set[str], dicts: bool) -> list[tuple[int, str]]:
    """Lines where code compares a value with a protocol's name (``protocol == "aby3"``, ``p in ("additive", ...)``)
    or, with ``dicts``, keys a dict literal by protocol names (a dispatch table). A name on the left of ``in``
    (``"aby3" in message``) looks for the name in a text, which is no switch."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for index, op in enumerate(node.ops):
                if not isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                    continue
                pair = [operands[index + 1]] if isinstance(op, (ast.In, ast.NotIn)) else operands[index:index + 2]
                for operand in pair:
                    elements = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                    hits = [e.value for e in elements if isinstance(e, ast.Constant) and e.value in names]
                    found += [(node.lineno, f"compares with {hit!r}") for hit in hits]
        if dicts and isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in names]
            found += [(node.lineno, f"a dict keyed by {key!r}") for key in keys]
    return found


def test_no_module_outside_a_protocols_package_tests_its_name():
    names = set(registry.protocols())
    packages = {ROOT / "smpc" / "mpc" / name for name in names}
    offenders = []
    for folder in ("smpc", "smpc_bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if any(package in path.parents for package in packages) or path == pathlib.Path(__file__).resolve():
                continue
            tree = ast.parse(path.read_text(), str(path))
            for line, what in _names_tested(tree, names, dicts=folder != "tests"):  # tests may hold tables as data
                offenders.append(f"{path.relative_to(ROOT)}:{line} {what}")
    assert not offenders, "protocol names tested outside their packages (ask the registry):\n" + "\n".join(offenders)


def test_the_matrix_runs_every_protocol_and_skips_what_one_declares_it_cannot_do():
    from protocol_matrix import setups

    cells = {str(param.values[0]): param for param in setups("comparison")}
    for name, spec in smpc.protocols().items():
        for parties in spec.test_parties:
            assert f"{name}-{parties}" in cells
    assert "cleartext-1" in cells  # the test suite's own reference protocol
    limited = registry.register(_spec(name="toy_limited", make=cleartext_protocol.SPEC.make,
                                      cost=cleartext_protocol.SPEC.cost,
                                      unsupported={"comparison": "no sign bit in this toy"}))
    try:
        limited_cells = {str(param.values[0]): param for param in setups("comparison")}
        (skip,) = limited_cells["toy_limited-1"].marks
        assert skip.name == "skip" and skip.kwargs["reason"] == "toy_limited: no sign bit in this toy"
        assert not {str(p.values[0]): p for p in setups("arithmetic")}["toy_limited-1"].marks
    finally:
        registry.unregister(limited.name)
