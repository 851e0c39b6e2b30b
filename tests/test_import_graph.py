"""The import graph of ``smpc``: no circles between its modules, the layers of ARCHITECTURE.md, optional
dependencies left out of ``import smpc``.

The graph is read from the source with ``ast``: every ``import`` and ``from ... import``, at module level
and inside functions alike (an import deferred into a function still closes a circle; only one that defers
an optional dependency, torch or onnx, is fine, and those are not smpc modules). Edges go to the module an
import names:

* ``import a.b`` and ``from a import b`` where ``a.b`` is a module: an edge to ``a.b``;
* ``from a import name`` where ``name`` is a class, function or constant: an edge to ``a`` (for a package,
  its ``__init__``, which must run to define the name); relative imports are resolved first.

Importing ``a.b`` also runs ``a/__init__.py`` first, but no edge is drawn for that: a package's
``__init__`` only re-exports (it sits above its submodules, with its own edges to them), and Python runs
it before any submodule anyway. So a submodule that takes a *name* from its own package's ``__init__`` is
caught as a circle (the ``__init__`` imports that submodule), while ``from smpc.mpc import arrays``
(a submodule) is not one. Imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "smpc"

#: ARCHITECTURE.md's layers: modules under the key import nothing under any of the values.
FORBIDDEN = {
    "smpc.ring": ("smpc.net", "smpc.mpc", "smpc.he", "smpc.nn", "smpc.fl", "smpc.dp"),
    "smpc.net": ("smpc.mpc", "smpc.nn", "smpc.fl"),
    "smpc.mpc": ("smpc.nn", "smpc.fl"),
    "smpc": ("smpc_bench",),
}

#: Known layer violations outside this test's scope, as (importer, imported): none today.
ALLOWED = set()

OPTIONAL = ("torch", "onnx", "flwr", "transformers")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


class _Imports(ast.NodeVisitor):
    """Every imported module name of one file, resolved against the known modules."""

    def __init__(self, name: str, is_package: bool, known: set[str]):
        self.package = name if is_package else name.rpartition(".")[0]
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
                (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            self.found.add(submodule if submodule in self.known else source)


def import_graph() -> dict[str, set[str]]:
    """Module -> the smpc (and smpc_bench) modules it imports anywhere in its source."""
    modules = source_modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        visitor = _Imports(name, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        graph[name] = {m for m in visitor.found if m == "smpc" or m.startswith(("smpc.", "smpc_bench"))}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module (or a module importing itself)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest circle through the component's first module, as a path that ends where it starts."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    following.append(w)
        frontier = following
    return component


def test_the_graph_sees_deferred_and_relative_imports():
    graph = import_graph()
    assert "smpc.mpc.tensor_core" in graph["smpc.mpc.functions"]
    assert "smpc.mpc.arrays" in graph["smpc.nn.autograd"]  # from smpc.mpc import arrays: the submodule
    assert "smpc.nn.importers.torch_export" in graph["smpc.nn.importers"]  # imported inside a function
    visitor = _Imports("smpc.mpc.additive.tensor", False, set(graph))
    source = "from ..tensor_core import stack\nfrom . import beaver\ndef f():\n    from .. import bilinear\n"
    visitor.visit(ast.parse(source))
    assert visitor.found == {"smpc.mpc.tensor_core", "smpc.mpc.additive.beaver", "smpc.mpc.bilinear"}
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = import_graph()
    cycles = [" -> ".join(one_cycle(graph, component)) + f"  (all of: {', '.join(component)})"
              for component in strongly_connected(graph)]
    assert not cycles, "import cycles between smpc modules:\n" + "\n".join(cycles)


def test_layers_import_only_downward():
    graph = import_graph()
    violations = []
    for importer, imported in sorted((a, b) for a, targets in graph.items() for b in targets):
        for layer, forbidden in FORBIDDEN.items():
            inside = importer == layer or importer.startswith(layer + ".")
            if inside and any(imported == f or imported.startswith(f + ".") for f in forbidden):
                if (importer, imported) not in ALLOWED:
                    violations.append(f"{importer} imports {imported} (the {layer} layer must not)")
    assert not violations, "\n".join(violations)


def test_the_array_layer_sits_below_functions_nn_and_fl():
    """smpc.mpc.arrays may use the shared-tensor core and the ring only, so functions, nn and fl can all use it."""
    graph = import_graph()
    assert graph["smpc.mpc.arrays"] <= {"smpc.mpc.tensor_core", "smpc.ring.fixed_point"}
    assert "smpc.mpc.arrays" in graph["smpc.mpc.functions"] and "smpc.mpc.arrays" in graph["smpc.nn.functional"]


def test_import_smpc_leaves_optional_dependencies_out():
    code = ("import sys, smpc; print(smpc.__file__); "
            f"print(','.join(m for m in {OPTIONAL!r} if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300, check=True)
    where, loaded = result.stdout.splitlines()[-2:]
    assert Path(where).resolve().is_relative_to(PACKAGE), f"the subprocess imported another smpc: {where}"
    assert not loaded, f"import smpc loaded the optional dependencies {loaded}"
