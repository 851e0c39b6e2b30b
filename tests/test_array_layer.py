"""The array layer (:mod:`smpc.mpc.arrays`): code above the protocols is written once for numpy and shared values.

A test of "is this shared or a numpy array" (``isinstance(x, SharedTensor)`` or ``SharedTensorCore``, a call of
``is_shared`` or ``is_public``) belongs in the array layer, the tensor modules, the numpy interop or a protocol's own
package. Elsewhere only the places listed in :data:`ALLOWED` keep one, each for the reason given there, so that
such branches do not creep back; the rest is numpy's functions (dispatched to the tensor) or the array layer.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import numpy as np

import smpc
from conftest import only
from smpc.mpc import arrays

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "smpc"
TYPES = {"SharedTensor", "SharedTensorCore"}
CALLS = {"is_shared", "_is_shared", "is_public"}
#: modules whose business is the difference (the layer, the tensors, numpy's interop)
LAYER = {"smpc/mpc/arrays.py", "smpc/mpc/tensor.py", "smpc/mpc/tensor_core.py", "smpc/mpc/numpy_interop.py"}

#: (module, function) -> (type tests there, why the numpy and shared forms must differ)
ALLOWED = {
    ("smpc/mpc/functions.py", "divide"): (2, "a shared numerator over a public divisor is one truncation; numpy "
                                             "inputs keep the documented approximation (the octave algorithm)"),
    ("smpc/mpc/functions.py", "_table_lookup"): (1, "a shared index cannot index: a rotated random one-hot"),
    ("smpc/mpc/functions.py", "_leading_one"): (1, "shared: bit decomposition and prefix OR; floats: frexp"),
    ("smpc/mpc/functions.py", "_select"): (1, "a shared index is prepared for lookups (one round)"),
    ("smpc/mpc/selection.py", "max"): (1, "numpy's exact max; shared: the comparison tournament"),
    ("smpc/mpc/selection.py", "argmax"): (1, "numpy's exact argmax; shared: the comparison tournament"),
    ("smpc/mpc/selection.py", "argmax_onehot"): (1, "numpy's argmax made one-hot; shared: the tournament"),
    ("smpc/mpc/transformer_functions.py", "erf"): (1, "numpy has no erf: scipy's exact one vs a piecewise "
                                                       "polynomial"),
    ("smpc/mpc/transformer_functions.py", "gelu"): (1, "the exact formulas vs x times one piecewise Phi (the "
                                                        "float formula would cost a truncation or products more)"),
    ("smpc/mpc/transformer_functions.py", "layer_norm"): (2, "the textbook formula vs the ring-exact variance; a "
                                                              "public weight rides in an integer table for free"),
    ("smpc/mpc/transformer_functions.py", "_apply_mask"): (1, "validation: the mask must be public"),
    ("smpc/nn/autograd.py", "Variable.__truediv__"): (1, "validation: no division by a Variable or shared value"),
    ("smpc/nn/conv.py", "conv2d"): (2, "shared: the protocol's convolution triple (im2col's matmul triple would "
                                       "hold every patch); floats: im2col and a matmul"),
    ("smpc/nn/functional.py", "batch_norm"): (1, "refused: batch statistics of a shared input"),
    ("smpc/nn/functional.py", "embedding"): (1, "shared ids cannot index: a one-hot times the weight"),
    ("smpc/nn/functional.py", "binary_cross_entropy_with_logits.value"): (1, "the stable float softplus needs |z| "
                                                                             "and max: two comparisons more"),
    ("smpc/nn/functional.py", "_loss"): (1, "a shared loss value communicates: computed only when read"),
    ("smpc/nn/importers/graph.py", "_checked_input"): (1, "validation differs: shared ids vs numpy dtypes"),
    ("smpc/nn/importers/ops.py", "div"): (1, "a public numerator over a shared divisor is functions.divide"),
    ("smpc/nn/importers/ops.py", "attention"): (1, "a shared additive mask is added as it is (flooring costs a "
                                                   "comparison)"),
    ("smpc/nn/module.py", "Module.save"): (1, "validation: save() writes plaintext models only"),
    ("smpc/nn/pooling.py", "_lowest_like"): (1, "numpy's -inf has no fixed-point encoding: -2^62 in the ring"),
    ("smpc/nn/transformer.py", "_public"): (1, "validation: attention masks must be public"),
}


class _TypeTests(ast.NodeVisitor):
    """Every shared-or-numpy type test of one module, by its enclosing function (``Class.method``)."""

    def __init__(self):
        self.scope: list[str] = []
        self.found: Counter = Counter()

    def _enter(self, node) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _enter

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        if name in CALLS or (name == "isinstance" and len(node.args) == 2 and _names_a_shared_type(node.args[1])):
            self.found[".".join(self.scope)] += 1
        self.generic_visit(node)


def _name(node) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _names_a_shared_type(node) -> bool:
    return any(_name(item) in TYPES for item in (node.elts if isinstance(node, ast.Tuple) else [node]))


def _protocol_packages() -> set[Path]:
    """Packages under smpc/mpc that register a protocol (their tensors may test their own kind)."""
    return {init.parent for init in (PACKAGE / "mpc").glob("*/__init__.py") if "ProtocolSpec(" in init.read_text()}


def type_tests() -> Counter:
    protocols = _protocol_packages()
    found: Counter = Counter()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in LAYER or any(package in path.parents for package in protocols):
            continue
        visitor = _TypeTests()
        visitor.visit(ast.parse(path.read_text(), filename=relative))
        found.update({(relative, scope): count for scope, count in visitor.found.items()})
    return found


def test_shared_or_numpy_branches_stay_in_the_array_layer():
    found = type_tests()
    extra = {place: count for place, count in found.items() if count > ALLOWED.get(place, (0, ""))[0]}
    assert not extra, (f"shared-or-numpy type tests outside smpc.mpc.arrays: {extra}; write the computation once "
                       "with numpy's functions or the array layer, or add the place to ALLOWED with its reason")
    assert sum(found.values()) <= sum(count for count, _ in ALLOWED.values()) == 26


def test_the_counter_sees_each_form_of_type_test():
    visitor = _TypeTests()
    visitor.visit(ast.parse("def f(x):\n    isinstance(x, SharedTensor); isinstance(x, (int, core.SharedTensorCore))\n"
                            "    arrays.is_shared(x); is_public(x); isinstance(x, np.ndarray)\n"))
    assert visitor.found == Counter({"f": 4})
    assert _protocol_packages()  # the protocol packages are found, so only they are skipped


def test_the_layer_on_numpy_values():
    x = np.array([[1.0, -2.0], [3.0, 0.5]], dtype=np.float32)
    assert arrays.as_array(x).dtype == np.float32 and arrays.as_array([1, 2]).dtype == np.float64
    assert arrays.as_float(x).dtype == np.float64 and arrays.asarray([True]).dtype == np.bool_
    assert arrays.is_public(x) and not arrays.is_shared(x)
    assert arrays.matching_dtype(np.ones((2, 2)), x).dtype == np.float32
    assert np.array_equal(arrays.zeros(x, (3,)), np.zeros(3, dtype=np.float32))
    assert np.array_equal(arrays.constant(x, (2,), 1.5), [1.5, 1.5])
    assert np.array_equal(arrays.scatter_add(np.ones(3), np.array([0, 0, 2]), (4,)), [2.0, 0.0, 1.0, 0.0])
    assert np.array_equal(arrays.pad2d(np.ones((1, 1, 1, 1)), 1, 0), np.array([0.0, 1.0, 0.0]).reshape(1, 1, 3, 1))
    assert arrays.truncate(np.array(8.0), 3) == 1.0 and arrays.integer_part(np.array(2.75)) == 2.0
    assert arrays.with_frac(arrays.ring_integers(np.array(0.5), 16), 16) == 0.5
    assert np.allclose(arrays.sigmoid(np.array([-800.0, 0.0, 800.0])), [0.0, 0.5, 1.0])
    assert np.allclose(arrays.softmax(np.zeros((2, 4))), 0.25)
    assert np.allclose(arrays.log_softmax(np.zeros(4)), -np.log(4.0))
    assert np.allclose(arrays.inv_sqrt(np.array([4.0])), 0.5)


def test_the_layer_on_shared_values_costs_no_round_where_it_says_so():
    x = np.array([[1.0, -2.0], [3.0, 0.5]])

    def program(party):
        s = party.share(only(x, party, 0), src=0)
        before = party.stats["rounds"], party.stats["bytes"]
        out = {
            "joined": arrays.concatenate([s, np.ones((1, 2))], axis=0),
            "stacked": arrays.stack([np.zeros((2, 2)), s]),
            "padded": arrays.pad2d(s.reshape(1, 1, 2, 2), 1, 1),
            "broadcast": arrays.broadcast_to(s[:1], (3, 2)),
            "constant": arrays.constant(s, (2,), 2.5),
            "lifted": arrays.lift(np.full((2,), 0.25), s),
            "same": arrays.lift(s, None),
            "ring": arrays.with_frac(arrays.ring_integers(s, 16), 16),
        }
        after = party.stats["rounds"], party.stats["bytes"]
        kinds = {name: arrays.is_shared(value) for name, value in out.items()}
        return {name: value.reveal() for name, value in out.items()}, kinds, before == after

    for revealed, kinds, no_round in smpc.run(program, parties=2, protocol="additive"):
        assert all(kinds.values()) and no_round
        assert np.array_equal(revealed["joined"], np.concatenate([x, np.ones((1, 2))]))
        assert np.array_equal(revealed["stacked"], np.stack([np.zeros((2, 2)), x]))
        assert np.array_equal(revealed["padded"], np.pad(x, 1).reshape(1, 1, 4, 4))
        assert np.array_equal(revealed["broadcast"], np.broadcast_to(x[:1], (3, 2)))
        assert np.array_equal(revealed["constant"], [2.5, 2.5])
        assert np.array_equal(revealed["lifted"], [0.25, 0.25])
        assert np.array_equal(revealed["same"], x) and np.array_equal(revealed["ring"], x)
