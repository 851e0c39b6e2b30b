"""``from_onnx``: an ONNX model (a file or a ``ModelProto``) to an :class:`~smpc.nn.importers.graph.GraphModule`.

Route: ``onnx.load`` and ``onnx.checker``, static input shapes (the graph's, or the caller's
``input_shapes``) written into the graph and checked by ``onnx.shape_inference``, then one walk over the
nodes in their (topological) order. Every value is evaluated on a plaintext example while converting, so
every step's shape is known and checked before anything runs; a node whose inputs are all constants
(``Constant``, integer initializers, ``Shape`` of a value of known shape, and what is computed from those)
is computed once by ONNX's reference evaluator and becomes a public constant of the architecture.

Weights: float initializers are the model's state. A ``Conv``, ``Gemm`` (``transB=1``) or
``BatchNormalization`` whose initializers are used by that node alone becomes the smpc layer (``Conv2d``,
``Linear``, ``BatchNorm2d``/``BatchNorm1d``), so ``share()`` shares it and BatchNorm folds into a
convolution that feeds it alone. The layer's path is the initializers' common prefix when they are named as
torch names them (``conv1.weight``, ``conv1.bias``), else the node's name. Any other float initializer read
by the computation is a :class:`~smpc.nn.module.Parameter` named after it; integer initializers, and float
ones read only as hyper-parameters (Clip bounds), are public constants.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections import Counter

import numpy as np
import onnx
from onnx import helper, numpy_helper

from smpc.nn import functional as F
from smpc.nn.importers import ops
from smpc.nn.importers.graph import (Container, GraphModule, InputSpec, Ref, StateRef, Step, UnsupportedModelError,
                                     declare_fold_pairs, mark_releases)
from smpc.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear, skip_init
from smpc.nn.module import Module, Parameter

_INPUT_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64",
                 onnx.TensorProto.FLOAT16: "float32", onnx.TensorProto.INT64: "int64",
                 onnx.TensorProto.INT32: "int64", onnx.TensorProto.BOOL: "bool"}


class Unsupported(Exception):
    """This node's form is not supported; the message is the reason shown next to its op type."""


def convert(source, input_shapes=None, verify: bool = True) -> GraphModule:
    """See :func:`smpc.nn.from_onnx`."""
    model, name = _load(source)
    model = _with_static_inputs(model, input_shapes)
    builder = _Builder(model, name)
    converted = builder.build()
    if verify:
        _verify(converted, model, builder)
    return converted


# --- reading the file --------------------------------------------------------------------------------------------
def _load(source):
    if isinstance(source, onnx.ModelProto):
        model, name = source, source.graph.name or "onnx model"
    elif isinstance(source, (bytes, bytearray)):
        model, name = _parse(lambda: onnx.load_from_string(bytes(source)), "the given bytes"), None
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"from_onnx: no such file: {path!r}")
        if os.path.isdir(path):
            raise IsADirectoryError(f"from_onnx: {path!r} is a directory, not an ONNX file")
        model, name = _parse(lambda: onnx.load(path), repr(path)), None
        name = model.graph.name or os.path.splitext(os.path.basename(path))[0]
    else:
        raise TypeError(f"from_onnx needs a path, bytes or an onnx.ModelProto, got {type(source).__name__}")
    if name is None:
        name = model.graph.name or "onnx model"
    try:
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises ValidationError and others for a malformed graph
        raise ValueError(f"{name} is not a valid ONNX model: {type(err).__name__}: {_first_line(err)}") from err
    return model, name


def _parse(load, what: str) -> onnx.ModelProto:
    try:
        model = load()
    except Exception as err:  # protobuf's DecodeError, or a format onnx does not know
        raise ValueError(f"{what} is not an ONNX model (could not parse it: {type(err).__name__}: "
                         f"{_first_line(err)})") from err
    if not model.ir_version or not model.graph.node and not model.graph.output:
        raise ValueError(f"{what} is not an ONNX model (no IR version or graph in it)")
    return model


def _first_line(err) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def _graph_inputs(model):
    initialized = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initialized]


def _with_static_inputs(model, input_shapes):
    """A copy of the model whose inputs have static shapes (the caller's where given), shape-inferred."""
    inputs = _graph_inputs(model)
    if input_shapes is not None:
        if not isinstance(input_shapes, dict):
            shapes = list(input_shapes)
            if shapes and all(isinstance(d, (int, np.integer)) for d in shapes):
                shapes = [shapes]  # one shape for a one-input model
            if len(shapes) != len(inputs):
                raise ValueError(f"input_shapes has {len(shapes)} shape(s) for {len(inputs)} input(s) "
                                 f"({', '.join(v.name for v in inputs)})")
            input_shapes = {value.name: shape for value, shape in zip(inputs, shapes)}
        unknown = set(input_shapes) - {v.name for v in inputs}
        if unknown:
            raise ValueError(f"input_shapes names {', '.join(sorted(unknown))}, not input(s) of the model "
                             f"({', '.join(v.name for v in inputs)})")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    dynamic = []
    for value in _graph_inputs(model):
        dims = value.type.tensor_type.shape.dim
        if input_shapes is not None and value.name in input_shapes:
            shape = [int(d) for d in input_shapes[value.name]]
            given = [d.dim_value if d.HasField("dim_value") else None for d in dims]
            if len(given) != len(shape) or any(g not in (None, s) for g, s in zip(given, shape)):
                raise ValueError(f"input_shapes[{value.name!r}] = {tuple(shape)} does not fit the model's "
                                 f"input shape {_dims_text(dims)}")
            del dims[:]
            for d in shape:
                dims.add().dim_value = d
        elif not value.type.tensor_type.HasField("shape") or any(not d.HasField("dim_value") for d in dims):
            dynamic.append(f"{value.name}: {_dims_text(dims)}")
    if dynamic:
        raise ValueError("from_onnx needs static input shapes; these inputs have dynamic (or unknown) dimensions: "
                         + "; ".join(dynamic) + ". Pass input_shapes={name: shape, ...} (e.g. {'"
                         + dynamic[0].split(":")[0] + "': (1, 3, 32, 32)})")
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as err:  # InferenceError: the graph does not fit these shapes
        raise ValueError(f"ONNX shape inference failed for these input shapes: {_first_line(err)}") from err


def _dims_text(dims) -> str:
    return "(" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims) + ")"


# --- the walk -----------------------------------------------------------------------------------------------------
CONVERTERS: dict = {}


def converts(*op_types):
    def register(fn):
        for op_type in op_types:
            CONVERTERS[op_type] = fn
        return fn

    return register


class _Builder:
    def __init__(self, model, source: str):
        self.model = model
        self.graph = model.graph
        self.source = source
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.initializers = {init.name: numpy_helper.to_array(init) for init in self.graph.initializer}
        self.constants: dict[str, np.ndarray] = {}  # value name -> public value fixed at conversion
        self.templates: dict[str, object] = {}  # value name -> step template
        self.example: dict[str, object] = {}  # value name -> its value on the example input
        self.unknown: set[str] = set()  # values after an unsupported node
        self.steps: list[Step] = []
        self.taken: set[str] = set()
        self.unsupported: dict[str, list[str]] = {}
        self.state_used: dict[str, str] = {}  # initializer name -> state-dict key (parameters read by steps)
        self.layers: dict[str, tuple] = {}  # path -> (layer, {state name: initializer name})
        self.uses = Counter(name for node in self.graph.node for name in node.input if name)
        self.uses.update(out.name for out in self.graph.output)
        self.inputs = [_input_spec(v) for v in _graph_inputs(model)]
        self.node = None
        self.producers: dict[str, int] = {}  # value name -> index of the node computing it
        self.consumers: dict[str, list[int]] = {}  # value name -> indices of the nodes reading it
        for i, node in enumerate(self.graph.node):
            for name in node.output:
                if name:
                    self.producers[name] = i
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(i)
        self.gelu_skip: set[int] = set()  # nodes inside an erf-GELU pattern, computed by its last node
        self.gelu_last: dict[int, str] = {}  # last node of an erf-GELU pattern -> the pattern's input x
        self.vocabularies: dict[str, set] = {}  # integer input name -> vocabulary sizes of the embeddings it indexes
        self.embedding_reads: Counter = Counter()  # integer input name -> how many embeddings read it as ids

    def build(self) -> GraphModule:
        rng = np.random.default_rng(0)
        for spec in self.inputs:
            example = rng.standard_normal(spec.shape) if spec.kind == "f" else np.zeros(spec.shape, dtype=spec.dtype)
            self.example[spec.name] = example
            self.templates[spec.name] = Ref(spec.name)
            self.taken.add(spec.name)
        for name, value in self.initializers.items():
            self.example[name] = value.astype(np.float64) if value.dtype.kind == "f" else value
            if value.dtype.kind != "f":
                self.constants[name] = value
        self._find_gelu()
        for i, node in enumerate(self.graph.node):
            self.node = node
            if i in self.gelu_skip:
                continue
            if i in self.gelu_last:
                self._gelu(node, self.gelu_last[i])
                continue
            self._convert(node)
        outputs = [self._output(out.name) for out in self.graph.output]
        self._mark_token_inputs()
        if self.unsupported:
            raise UnsupportedModelError(self._report(), self.unsupported)
        model = GraphModule(self.source, self.inputs, self.steps, outputs)
        self._register_state(model)
        mark_releases(model.steps, outputs)
        declare_fold_pairs(model)
        return model.eval()

    def _convert(self, node) -> None:
        kind = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        inputs = [name for name in node.input if name]
        if any(name in self.unknown for name in inputs):
            if kind not in CONVERTERS and not self._all_constant(node):
                self._reject(node, kind)
            self.unknown.update(node.output)
            return
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") or self._all_constant(node) and inputs:
            self._fold(node, kind)
            return
        converter = CONVERTERS.get(kind)
        if converter is None:
            self._reject(node, kind)
            return
        try:
            with np.errstate(all="ignore"):
                converter(self, node)
        except Unsupported as why:
            self._reject(node, f"{kind} ({why})")

    # --- erf-GELU: x * 0.5 * (1 + Erf(x / sqrt(2))), as exporters write torch's GELU -------------------------
    def _find_gelu(self) -> None:
        """Mark each Erf that is part of x * 0.5 * (1 + Erf(x / sqrt 2)) (its factors in any order, x / sqrt 2 as
        a Div or a Mul by 1 / sqrt 2) whose intermediate values nothing else reads; any other Erf stays
        unsupported."""
        nodes = self.graph.node
        for i, erf in enumerate(nodes):
            if erf.op_type != "Erf" or erf.domain not in ("", "ai.onnx"):
                continue
            scaled = self._sole_input_node(erf.input[0], ("Div", "Mul"))
            if scaled is None:
                continue
            x = self._scaled_operand(nodes[scaled])
            add = self._sole_consumer(erf.output[0], "Add")
            if x is None or add is None or not self._is_number(self._other(nodes[add], erf.output[0]), 1.0):
                continue
            first = self._sole_consumer(nodes[add].output[0], "Mul")
            if first is None:
                continue
            other = self._other(nodes[first], nodes[add].output[0])
            inner = {scaled, i, add}
            if other == x or self._is_number(other, 0.5):  # (x * (1 + erf)) * 0.5 or (0.5 * (1 + erf)) * x
                last = self._sole_consumer(nodes[first].output[0], "Mul")
                if last is None:
                    continue
                rest = self._other(nodes[last], nodes[first].output[0])
                if not (self._is_number(rest, 0.5) if other == x else rest == x):
                    continue
                inner.add(first)
            else:  # (x * 0.5) * (1 + erf)
                half = self._sole_input_node(other, ("Mul",))
                if half is None or x not in nodes[half].input \
                        or not self._is_number(self._other(nodes[half], x), 0.5):
                    continue
                last = first
                inner.add(half)
            if inner & (self.gelu_skip | set(self.gelu_last)) or last in self.gelu_skip:
                continue
            self.gelu_skip.update(inner)
            self.gelu_last[last] = x

    def _gelu(self, node, x: str) -> None:
        if x in self.unknown:
            self.unknown.update(node.output)
        elif x in self.constants:
            value = np.asarray(ops.gelu(np.asarray(self.constants[x], dtype=np.float64)))
            self.constants[node.output[0]] = value
            self.example[node.output[0]] = value
        else:
            try:
                self.call(node, ops.gelu, self.template(x), label="gelu")
            except Unsupported as why:
                self._reject(node, f"Erf (GELU) ({why})")

    def _sole_input_node(self, name: str, op_types) -> int | None:
        """The index of the node computing ``name`` when it is one of ``op_types`` and nothing else reads it."""
        i = self.producers.get(name)
        if i is None or self.uses[name] != 1:
            return None
        node = self.graph.node[i]
        return i if node.op_type in op_types and node.domain in ("", "ai.onnx") else None

    def _sole_consumer(self, name: str, op_type: str) -> int | None:
        readers = self.consumers.get(name, [])
        if self.uses[name] != 1 or len(readers) != 1:
            return None
        node = self.graph.node[readers[0]]
        if node.op_type != op_type or node.domain not in ("", "ai.onnx") or list(node.input).count(name) != 1:
            return None
        return readers[0]

    @staticmethod
    def _other(node, name: str) -> str | None:
        """The other operand of a binary node that reads ``name`` once."""
        rest = [n for n in node.input if n != name]
        return rest[0] if len(rest) == 1 and len(node.input) == 2 else None

    def _scaled_operand(self, node) -> str | None:
        """x of a node computing x / sqrt(2) (Div) or x * (1 / sqrt(2)) (Mul)."""
        if node.op_type == "Div":
            return node.input[0] if self._is_number(node.input[1], math.sqrt(2.0)) else None
        for a, b in ((0, 1), (1, 0)):
            if self._is_number(node.input[b], 1 / math.sqrt(2.0)) and self._static(node.input[a]) is None:
                return node.input[a]
        return None

    def _static(self, name):
        """The value of an initializer or a Constant node's output (before the walk), else None."""
        if name is None:
            return None
        if name in self.initializers:
            return self.initializers[name]
        i = self.producers.get(name)
        if i is None:
            return None
        node = self.graph.node[i]
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
            return None
        for a in node.attribute:
            if a.name == "value":
                return numpy_helper.to_array(a.t)
            if a.name == "value_float":
                return np.array(a.f, dtype=np.float32)
        return None

    def _is_number(self, name, target: float) -> bool:
        value = self._static(name)
        return value is not None and value.size == 1 and value.dtype.kind == "f" \
            and bool(np.isclose(float(value.reshape(-1)[0]), target, rtol=1e-5, atol=0))

    # --- integer inputs read only as embedding ids --------------------------------------------------------------
    def note_embedding(self, ids: str, vocabulary: int) -> None:
        if any(spec.name == ids for spec in self.inputs):
            self.vocabularies.setdefault(ids, set()).add(int(vocabulary))
            self.embedding_reads[ids] += 1

    def _mark_token_inputs(self) -> None:
        """An integer input read only as the ids of embeddings of one vocabulary may be passed shared, as integers
        its owner shares with :func:`smpc.nn.share_tokens` (its spec records the vocabulary size), as from_torch
        does."""
        for i, spec in enumerate(self.inputs):
            sizes = self.vocabularies.get(spec.name, set())
            if spec.kind in "iu" and len(sizes) == 1 and self.embedding_reads[spec.name] == self.uses[spec.name]:
                self.inputs[i] = dataclasses.replace(spec, vocabulary=next(iter(sizes)))

    def _all_constant(self, node) -> bool:
        return all(name in self.constants for name in node.input if name)

    def _fold(self, node, kind: str) -> None:
        from onnx.reference import ReferenceEvaluator

        try:
            evaluator = ReferenceEvaluator(node)
            feeds = {name: self.constants[name] for name in node.input if name}
            results = evaluator.run(None, feeds)
        except Exception as err:  # whatever the reference evaluator raises for an op it cannot compute
            self._reject(node, f"{kind} (computing it on constants failed: {_first_line(err)})")
            return
        for name, value in zip(node.output, results):
            if name:
                value = np.asarray(value)
                self.constants[name] = value
                self.example[name] = value.astype(np.float64) if value.dtype.kind == "f" else value

    def _output(self, name: str):
        if name in self.unknown:
            return None
        if name in self.constants:
            return _public(self.constants[name])
        return self.template(name)

    # --- what converters call -----------------------------------------------------------------------------------
    def attr(self, node, name: str, default=None):
        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def input(self, node, index: int):
        """The template of a node's input ``index`` (None where the optional input is absent)."""
        if index >= len(node.input) or not node.input[index]:
            return None
        return self.template(node.input[index])

    def template(self, name: str):
        if name in self.constants:
            return _public(self.constants[name])
        if name in self.initializers:  # a float initializer read by the computation: a parameter
            key = self.state_used.setdefault(name, self._state_key(name))
            return StateRef(key)
        if name not in self.templates:
            raise Unsupported(f"reads {name!r}, which nothing computes before it")
        return self.templates[name]

    def constant(self, node, index: int, what: str, default=None):
        """A node's input that must be fixed at conversion (a shape, axes, bounds), as a numpy array."""
        if index >= len(node.input) or not node.input[index]:
            return default
        name = node.input[index]
        if name in self.constants:
            return self.constants[name]
        if name in self.initializers:
            return self.initializers[name]
        raise Unsupported(f"its {what} depends on the input (it must be a constant)")

    def shape(self, name: str) -> tuple:
        return tuple(np.shape(self.example[name]))

    def ndim(self, node, index: int = 0) -> int:
        return len(self.shape(node.input[index]))

    def call(self, node, run, *args, label: str, outputs: int = 1, **kwargs) -> None:
        """A step ``run(*args, **kwargs)`` for the node (args are templates), evaluated on the example now."""
        name = self._name(label)
        value = run(*self._example(args), **self._example(kwargs))
        step = Step(name, tuple(args), dict(kwargs), run=run, label=label, where=node.name or node.op_type,
                    shape=_shape_of(value))
        self._record(node, step, value, outputs)

    def layer_call(self, node, path: str, x, label: str) -> None:
        value = self.layers[path][0](self._example(x))
        step = Step(self._name(label), (x,), module=path, where=node.name or node.op_type, shape=_shape_of(value))
        self._record(node, step, value, 1)

    def _record(self, node, step: Step, value, outputs: int) -> None:
        self.steps.append(step)
        self.example[step.name] = value
        if outputs == 1:
            self.templates[node.output[0]] = Ref(step.name)
            self.example[node.output[0]] = value
        else:
            for i, name in enumerate(node.output[:outputs]):
                if name:
                    self.templates[name] = Ref(step.name, i)
                    self.example[name] = value[i]

    def alias(self, node, template_name: str, output: int = 0) -> None:
        source = template_name
        target = node.output[output]
        if source in self.constants:
            self.constants[target] = self.constants[source]
        else:
            self.templates[target] = self.template(source)
        self.example[target] = self.example[source]

    def _example(self, template):
        if isinstance(template, Ref):
            return self.example[template.name] if template.item is None else self.example[template.name][template.item]
        if isinstance(template, StateRef):
            name = next(n for n, k in self.state_used.items() if k == template.key)
            return self.example[name]
        if isinstance(template, (list, tuple)):
            return type(template)(self._example(t) for t in template)
        if isinstance(template, dict):
            return {k: self._example(v) for k, v in template.items()}
        return template

    def _name(self, label: str) -> str:
        name, n = label, 0
        while name in self.taken:
            n += 1
            name = f"{label}_{n}"
        self.taken.add(name)
        return name

    def own_initializers(self, node, indices) -> dict[int, str] | None:
        """The node's float initializers at ``indices`` if this node alone reads them (else None)."""
        found = {}
        for i in indices:
            if i >= len(node.input) or not node.input[i]:
                continue
            name = node.input[i]
            if name not in self.initializers or name in self.constants or self.uses[name] != 1 \
                    or name in self.state_used:
                return None
            found[i] = name
        return found

    def add_layer(self, node, layer: Module, names: dict[str, str]) -> str:
        """Place ``layer`` (its state from the initializers ``names``: state name -> initializer) at a path."""
        path = _common_prefix(names)
        if path is None or not self._path_free(path):
            base = _identifier(node.name or node.op_type.lower())
            path, n = base, 0
            while not self._path_free(path):
                n += 1
                path = f"{base}_{n}"
        layer.eval()  # evaluated on the example while converting: BatchNorm must not update its statistics
        self.layers[path] = (layer, dict(names))
        for state, init in names.items():
            self._set_layer_state(layer, state, self.initializers[init])
        return path

    def _set_layer_state(self, layer: Module, state: str, value) -> None:
        value = np.asarray(value, dtype=np.float64)
        if state in layer._buffers:
            layer._buffers[state] = value
        else:
            layer._parameters[state].data = value

    def _path_free(self, path: str) -> bool:
        taken = set(self.layers) | set(self.state_used.values())
        return all(path != p and not path.startswith(p + ".") and not p.startswith(path + ".") for p in taken)

    def _state_key(self, name: str) -> str:
        key = ".".join(_identifier(part) for part in name.split("."))
        base, n = key, 0
        while not self._path_free(key):
            n += 1
            key = f"{base}_{n}"
        return key

    # --- the model ----------------------------------------------------------------------------------------------
    def _register_state(self, model: GraphModule) -> None:
        for path, (layer, _) in self.layers.items():
            _place(model, path, layer)
        for name, key in self.state_used.items():
            path, _, attr = key.rpartition(".")
            owner = _container(model, path)
            setattr(owner, attr, Parameter(np.asarray(self.initializers[name], dtype=np.float64)))

    # --- errors -------------------------------------------------------------------------------------------------
    def _reject(self, node, what: str) -> None:
        self.unsupported.setdefault(what, []).append(node.name or f"<unnamed {node.op_type}>")
        self.unknown.update(node.output)

    def _report(self) -> str:
        total = sum(len(places) for places in self.unsupported.values())
        lines = [f"cannot convert {self.source}: {total} unsupported operation(s) of {len(self.unsupported)} "
                 "kind(s) in its ONNX graph, each with its count and the nodes where it occurs:"]
        for what, places in self.unsupported.items():
            lines.append(f"  {what}: {len(places)}x at {', '.join(places)}")
        lines.append("(nothing was converted.)")
        return "\n".join(lines)


def _input_spec(value) -> InputSpec:
    elem = value.type.tensor_type.elem_type
    if elem not in _INPUT_DTYPES:
        raise UnsupportedModelError(f"input {value.name!r} has ONNX element type "
                                    f"{onnx.TensorProto.DataType.Name(elem)} (floats, integers, bools only)",
                                    {f"input of type {onnx.TensorProto.DataType.Name(elem)}": [value.name]})
    shape = tuple(d.dim_value for d in value.type.tensor_type.shape.dim)
    return InputSpec(value.name, shape, _INPUT_DTYPES[elem])


def _public(value: np.ndarray):
    """A constant as a step argument: floats as float64."""
    value = np.asarray(value)
    return value.astype(np.float64) if value.dtype.kind == "f" else value


def _shape_of(value):
    if isinstance(value, (list, tuple)):
        return [tuple(np.shape(v)) for v in value]
    return tuple(np.shape(value))


def _identifier(text: str) -> str:
    text = re.sub(r"\W", "_", text).strip("_") or "value"
    return f"_{text}" if text[0].isdigit() else text


def _common_prefix(names: dict[str, str]) -> str | None:
    """``conv1`` for {'weight': 'conv1.weight', 'bias': 'conv1.bias'} (torch's names), else None."""
    prefixes = set()
    for state, init in names.items():
        if not init.endswith("." + state):
            return None
        prefixes.add(init[: -len(state) - 1])
    if len(prefixes) != 1:
        return None
    prefix = prefixes.pop()
    parts = prefix.split(".")
    return prefix if all(p.isidentifier() for p in parts) else None


def _place(model: Module, path: str, layer: Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(_container(model, parent) if parent else model, name, layer)


def _container(model: Module, path: str) -> Module:
    node = model
    for part in path.split(".") if path else []:
        if part not in node._modules:
            setattr(node, part, Container("onnx"))
        node = node._modules[part]
    return node


def _verify(converted: GraphModule, model, builder: _Builder) -> None:
    """The converted model against ONNX's reference evaluator on the conversion's example inputs."""
    from onnx.reference import ReferenceEvaluator

    feeds = {spec.name: np.asarray(builder.example[spec.name]).astype(spec.dtype) for spec in converted.inputs}
    try:
        expected = ReferenceEvaluator(model).run(None, feeds)
    except Exception:  # the reference evaluator lacks some ops (or opset versions) we convert; skip the check
        return
    got = converted(*[feeds[spec.name] for spec in converted.inputs])
    got = list(got) if isinstance(got, tuple) else [got]
    for i, (want, have) in enumerate(zip(expected, got)):
        want = np.asarray(want, dtype=np.float64)
        scale = float(np.max(np.abs(want))) if want.size else 0.0
        error = float(np.max(np.abs(np.asarray(have, dtype=np.float64) - want))) if want.size else 0.0
        if not error <= 1e-3 * scale + 1e-5:
            raise UnsupportedModelError(f"the converted {converted.source} differs from ONNX's reference evaluator on "
                                        f"an example input (output {i}: max error {error:.3g} at magnitude "
                                        f"{scale:.3g}); please report this model")


# --- the op table ---------------------------------------------------------------------------------------------------
def _axis(axis, ndim: int) -> int:
    axis = int(axis)
    return axis + ndim if axis < 0 else axis


def _axes_list(values, ndim: int) -> list[int]:
    return [_axis(a, ndim) for a in np.asarray(values).reshape(-1)]


@converts("Identity")
def _identity(b, node):
    b.alias(node, node.input[0])


@converts("Dropout")
def _dropout(b, node):
    training = b.constant(node, 2, "training_mode", np.array(False))
    if bool(np.asarray(training)):
        raise Unsupported("training_mode=True")
    if len(node.output) > 1 and node.output[1] and b.uses[node.output[1]]:
        raise Unsupported("its mask output")
    b.alias(node, node.input[0])


@converts("Cast")
def _cast(b, node):
    to = b.attr(node, "to")
    if to in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        b.call(node, ops.as_float, b.input(node, 0), label="to_float")
    else:
        raise Unsupported(f"cast of a computed value to {onnx.TensorProto.DataType.Name(to)}")


@converts("Shape")
def _shape(b, node):
    shape = np.array(b.shape(node.input[0]), dtype=np.int64)
    start, end = b.attr(node, "start", 0), b.attr(node, "end", None)
    value = shape[start:end]
    b.constants[node.output[0]] = value
    b.example[node.output[0]] = value


@converts("Size")
def _size(b, node):
    value = np.array(int(np.prod(b.shape(node.input[0]))), dtype=np.int64)
    b.constants[node.output[0]] = value
    b.example[node.output[0]] = value


# --- shapes
def _reshape_to(b, node, shape) -> None:
    b.call(node, ops.reshape, b.input(node, 0), [int(d) for d in shape], label="reshape")


@converts("Reshape")
def _reshape(b, node):
    source = b.shape(node.input[0])
    target = [int(d) for d in b.constant(node, 1, "shape")]
    if not b.attr(node, "allowzero", 0):
        target = [source[i] if d == 0 else d for i, d in enumerate(target)]
    if target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(source)) // max(known, 1)
    if int(np.prod(target)) != int(np.prod(source)):
        raise Unsupported(f"shape {target} for {int(np.prod(source))} values")
    _reshape_to(b, node, target)


@converts("Flatten")
def _flatten(b, node):
    shape = b.shape(node.input[0])
    axis = _axis(b.attr(node, "axis", 1), len(shape))
    _reshape_to(b, node, [int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))])


@converts("Squeeze")
def _squeeze(b, node):
    shape = b.shape(node.input[0])
    axes = b.attr(node, "axes") if b.opset < 13 else b.constant(node, 1, "axes")
    axes = [i for i, d in enumerate(shape) if d == 1] if axes is None else _axes_list(axes, len(shape))
    _reshape_to(b, node, [d for i, d in enumerate(shape) if i not in axes])


@converts("Unsqueeze")
def _unsqueeze(b, node):
    shape = list(b.shape(node.input[0]))
    axes = b.attr(node, "axes") if b.opset < 13 else b.constant(node, 1, "axes")
    if axes is None:
        raise Unsupported("no axes")
    ndim = len(shape) + len(np.asarray(axes).reshape(-1))
    for axis in sorted(_axes_list(axes, ndim)):
        shape.insert(axis, 1)
    _reshape_to(b, node, shape)


@converts("Transpose")
def _transpose(b, node):
    ndim = b.ndim(node)
    perm = b.attr(node, "perm") or list(reversed(range(ndim)))
    b.call(node, ops.permute, b.input(node, 0), [int(p) for p in perm], label="permute")


@converts("Expand")
def _expand(b, node):
    target = [int(d) for d in b.constant(node, 1, "shape")]
    shape = list(np.broadcast_shapes(b.shape(node.input[0]), tuple(target)))
    b.call(node, ops.expand, b.input(node, 0), shape, label="expand")


@converts("Concat")
def _concat(b, node):
    ndim = len(b.shape(node.input[0]))
    parts = [b.template(name) for name in node.input if name]
    b.call(node, ops.cat, parts, _axis(b.attr(node, "axis"), ndim), label="cat")


@converts("Split")
def _split(b, node):
    shape = b.shape(node.input[0])
    axis = _axis(b.attr(node, "axis", 0), len(shape))
    sizes = b.attr(node, "split") if b.opset < 13 else b.constant(node, 1, "split")
    count = len(node.output)
    if sizes is None:
        parts = b.attr(node, "num_outputs", count)
        size = -(-shape[axis] // parts)
        sizes = [min(size, shape[axis] - i * size) for i in range(parts)]
    sizes = [int(s) for s in np.asarray(sizes).reshape(-1)]
    if sum(sizes) != shape[axis]:
        raise Unsupported(f"sizes {sizes} for an axis of {shape[axis]}")
    b.call(node, ops.split, b.input(node, 0), axis, sizes, label="split", outputs=count)


@converts("Slice")
def _slice(b, node):
    shape = b.shape(node.input[0])
    if b.opset < 10:
        starts, ends, axes, steps = b.attr(node, "starts"), b.attr(node, "ends"), b.attr(node, "axes"), None
    else:
        starts, ends = b.constant(node, 1, "starts"), b.constant(node, 2, "ends")
        axes, steps = b.constant(node, 3, "axes"), b.constant(node, 4, "steps")
    starts = np.asarray(starts).reshape(-1)
    axes = list(range(len(starts))) if axes is None else _axes_list(axes, len(shape))
    steps = [1] * len(axes) if steps is None else [int(s) for s in np.asarray(steps).reshape(-1)]
    cuts = [slice(None)] * len(shape)
    for axis, start, end, step in zip(axes, starts, np.asarray(ends).reshape(-1), steps):
        if step <= 0:
            raise Unsupported("negative or zero steps")
        size = shape[axis]
        start, end = int(np.clip(start, -size, size)), int(np.clip(end, -size, size))
        cuts[axis] = slice(*slice(start, end, step).indices(size))
    while cuts and cuts[-1] == slice(None):
        cuts.pop()
    b.call(node, ops.index, b.input(node, 0), cuts, label="slice")


@converts("Pad")
def _pad(b, node):
    mode = b.attr(node, "mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise Unsupported(f"{mode} padding")
    ndim = b.ndim(node)
    if b.opset < 11:
        pads, value, axes = b.attr(node, "pads"), b.attr(node, "value", 0.0), None
    else:
        pads = b.constant(node, 1, "pads")
        value = b.constant(node, 2, "constant_value", np.array(0.0))
        axes = b.constant(node, 3, "axes")
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = list(range(ndim)) if axes is None else _axes_list(axes, ndim)
    half = len(pads) // 2
    torch_pads = [0] * (2 * ndim)
    for axis, before, after in zip(axes, pads[:half], pads[half:]):
        at = 2 * (ndim - 1 - axis)
        torch_pads[at], torch_pads[at + 1] = before, after
    b.call(node, ops.pad, b.input(node, 0), torch_pads, float(np.asarray(value).reshape(-1)[0]), label="pad")


# --- arithmetic
def _binary(run, label: str):
    def convert(b, node):
        b.call(node, run, b.input(node, 0), b.input(node, 1), label=label)

    return convert


for _op, _run in (("Add", ops.add), ("Sub", ops.sub), ("Mul", ops.mul), ("Div", ops.div), ("MatMul", ops.matmul),
                  ("Greater", ops.greater), ("GreaterOrEqual", ops.greater_equal), ("Less", ops.less),
                  ("LessOrEqual", ops.less_equal), ("Equal", ops.equal)):
    converts(_op)(_binary(_run, _op.lower()))


@converts("Max", "Min")
def _max_min(b, node):
    run = ops.maximum if node.op_type == "Max" else ops.minimum
    names = [n for n in node.input if n]
    if len(names) != 2:
        raise Unsupported(f"{len(names)} operands (two only)")
    b.call(node, run, b.template(names[0]), b.template(names[1]), label=node.op_type.lower() + "imum")


@converts("Where")
def _where(b, node):
    b.call(node, ops.where, b.input(node, 0), b.input(node, 1), b.input(node, 2), label="where")


@converts("Pow")
def _pow(b, node):
    exponent = np.asarray(b.constant(node, 1, "exponent"))
    if exponent.size != 1:
        raise Unsupported("an exponent that is not a single number")
    e = float(exponent.reshape(-1)[0])
    x = b.input(node, 0)
    if e == int(e) and 0 <= e <= 8:
        b.call(node, ops.power, x, int(e), label="pow")
    elif e == 0.5:
        b.call(node, ops.sqrt, x, label="sqrt")
    elif e == -0.5:
        b.call(node, ops.rsqrt, x, label="rsqrt")
    elif e == -1:
        b.call(node, ops.reciprocal, x, label="reciprocal")
    else:
        raise Unsupported(f"exponent {e:g} (integers 0 to 8, 0.5, -0.5 and -1 only)")


@converts("Gelu")
def _gelu(b, node):
    approximate = b.attr(node, "approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    if approximate not in ("none", "tanh"):
        raise Unsupported(f"approximate={approximate!r}")
    b.call(node, ops.gelu, b.input(node, 0), approximate, label="gelu")


@converts("LayerNormalization")
def _layer_norm(b, node):
    if any(name and b.uses[name] for name in node.output[1:]):
        raise Unsupported("its mean or inverse standard deviation outputs")
    ndim = b.ndim(node)
    axis = _axis(b.attr(node, "axis", -1), ndim)
    eps = float(b.attr(node, "epsilon", 1e-5))
    b.call(node, ops.layer_norm, b.input(node, 0), ndim - axis, b.input(node, 1), b.input(node, 2), eps,
           label="layer_norm")


@converts("Gather")
def _gather(b, node):
    data, ids = node.input[0], node.input[1]
    shape = b.shape(data)
    axis = _axis(b.attr(node, "axis", 0), len(shape))
    if ids in b.constants:
        index = np.asarray(b.constants[ids])
        if index.ndim == 0 and not (data in b.initializers and axis == 0):  # x[..., i, ...]: a selection
            i = int(index)
            if not -shape[axis] <= i < shape[axis]:
                raise Unsupported(f"index {i} on an axis of {shape[axis]}")
            b.call(node, ops.take, b.input(node, 0), axis, i % shape[axis], label="select")
            return
    if axis != 0 or data not in b.initializers or b.initializers[data].dtype.kind != "f" or len(shape) != 2:
        raise Unsupported("indices into anything but a 2-D initializer table on axis 0 (an embedding), or one "
                          "constant index")
    is_input = any(spec.name == ids and spec.kind in "iu" for spec in b.inputs)
    if ids not in b.constants and not is_input:
        raise Unsupported("ids computed from the input (integer model inputs or constants only)")
    b.call(node, ops.embedding, b.input(node, 0), b.input(node, 1), label="embedding")
    b.note_embedding(ids, shape[0])


@converts("Neg")
def _neg(b, node):
    b.call(node, ops.neg, b.input(node, 0), label="neg")


def _unary(run, label: str):
    def convert(b, node):
        b.call(node, run, b.input(node, 0), label=label)

    return convert


for _op, _run in (("Relu", F.relu), ("Sigmoid", F.sigmoid), ("Tanh", F.tanh), ("HardSwish", F.hardswish),
                  ("Reciprocal", ops.reciprocal), ("Exp", ops.exp), ("Log", ops.log), ("Sqrt", ops.sqrt)):
    converts(_op)(_unary(_run, _op.lower()))


@converts("HardSigmoid")
def _hard_sigmoid(b, node):
    alpha, beta = float(b.attr(node, "alpha", 0.2)), float(b.attr(node, "beta", 0.5))
    if np.isclose(alpha, 1 / 6, rtol=1e-6) and beta == 0.5:
        b.call(node, F.hardsigmoid, b.input(node, 0), label="hardsigmoid")
    else:
        b.call(node, ops.hard_sigmoid, b.input(node, 0), alpha, beta, label="hardsigmoid")


@converts("Clip")
def _clip(b, node):
    if b.opset < 11:
        low, high = b.attr(node, "min"), b.attr(node, "max")
    else:
        low, high = b.constant(node, 1, "min"), b.constant(node, 2, "max")
    low = None if low is None else float(np.asarray(low).reshape(-1)[0])
    high = None if high is None else float(np.asarray(high).reshape(-1)[0])
    label = "relu6" if (low, high) == (0.0, 6.0) else "clamp"
    b.call(node, F.clamp, b.input(node, 0), low, high, label=label)


@converts("Softmax", "LogSoftmax")
def _softmax(b, node):
    run = F.softmax if node.op_type == "Softmax" else F.log_softmax
    shape = b.shape(node.input[0])
    ndim = len(shape)
    axis = _axis(b.attr(node, "axis", -1 if b.opset >= 13 else 1), ndim)
    if b.opset >= 13 or axis == ndim - 1:
        b.call(node, run, b.input(node, 0), axis, label=run.__name__)
        return
    # before opset 13: over all axes from `axis` on, as one flattened axis
    flat = Step(b._name("reshape"), (b.input(node, 0), [int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))]),
                run=ops.reshape, label="reshape", where=node.name, shape=(int(np.prod(shape[:axis])),
                                                                          int(np.prod(shape[axis:]))))
    b.steps.append(flat)
    b.example[flat.name] = ops.reshape(b.example[node.input[0]], flat.args[1])
    soft = Step(b._name(run.__name__), (Ref(flat.name), 1), run=run, label=run.__name__, where=node.name,
                shape=flat.shape)
    b.steps.append(soft)
    b.example[soft.name] = run(b.example[flat.name], 1)
    b.call(node, ops.reshape, Ref(soft.name), list(shape), label="reshape")


@converts("ReduceMean", "ReduceSum", "ReduceMax")
def _reduce(b, node):
    run = {"ReduceMean": ops.mean, "ReduceSum": ops.total, "ReduceMax": ops.amax}[node.op_type]
    ndim = b.ndim(node)
    from_input = b.opset >= 18 or node.op_type == "ReduceSum" and b.opset >= 13
    axes = b.constant(node, 1, "axes") if from_input else b.attr(node, "axes")
    if axes is None or np.asarray(axes).size == 0:
        if b.attr(node, "noop_with_empty_axes", 0):
            b.alias(node, node.input[0])
            return
        axes = list(range(ndim))
    b.call(node, run, b.input(node, 0), _axes_list(axes, ndim), bool(b.attr(node, "keepdims", 1)),
           label=node.op_type[6:].lower())


# --- layers
def _window(b, node, kernel):
    """(stride, (top, left, bottom, right) pads, dilation) of a 2-D Conv/pool node, auto_pad resolved."""
    if len(kernel) != 2:
        raise Unsupported(f"{len(kernel)}-D window (2-D only)")
    strides = tuple(int(s) for s in (b.attr(node, "strides") or (1, 1)))
    dilations = tuple(int(d) for d in (b.attr(node, "dilations") or (1, 1)))
    auto = b.attr(node, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    size = b.shape(node.input[0])[2:]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i in range(2):
            out = -(-size[i] // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size[i], 0)
            small, large = total // 2, total - total // 2
            pads[i], pads[i + 2] = (small, large) if auto == "SAME_UPPER" else (large, small)
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = [int(p) for p in (b.attr(node, "pads") or (0, 0, 0, 0))]
    return strides, pads, dilations


def _symmetric(b, node, x, pads, fill: float | None = 0.0):
    """(input template, (ph, pw)): asymmetric pads become an explicit padding step (zeros) first."""
    if pads[0] == pads[2] and pads[1] == pads[3]:
        return x, (pads[0], pads[1])
    if fill is None:
        raise Unsupported("asymmetric padding")
    padded = [pads[1], pads[3], pads[0], pads[2]]
    name = b._name("pad")
    value = ops.pad(b._example(x), padded, fill)
    b.steps.append(Step(name, (x, padded, fill), run=ops.pad, label="pad", where=node.name,
                        shape=tuple(np.shape(value))))
    b.example[name] = value
    return Ref(name), (0, 0)


@converts("Conv")
def _conv(b, node):
    weight_shape = b.shape(node.input[1])
    if b.ndim(node) != 4 or len(weight_shape) != 4:
        raise Unsupported(f"{b.ndim(node) - 2}-D convolution (2-D only)")
    kernel = tuple(b.attr(node, "kernel_shape") or weight_shape[2:])
    stride, pads, dilation = _window(b, node, kernel)
    groups = int(b.attr(node, "group", 1))
    x, padding = _symmetric(b, node, b.input(node, 0), pads)
    own = b.own_initializers(node, (1, 2))
    if own is not None and 1 in own:
        out, per_group = weight_shape[:2]
        layer = skip_init(Conv2d, per_group * groups, out, tuple(weight_shape[2:]), stride=stride, padding=padding,
                          dilation=dilation, groups=groups, bias=2 in own)
        names = {"weight": own[1], **({"bias": own[2]} if 2 in own else {})}
        b.layer_call(node, b.add_layer(node, layer, names), x, "conv2d")
        return
    b.call(node, F.conv2d, x, b.input(node, 1), b.input(node, 2), stride, padding, dilation, groups, label="conv2d")


@converts("Gemm")
def _gemm(b, node):
    alpha, beta = float(b.attr(node, "alpha", 1.0)), float(b.attr(node, "beta", 1.0))
    trans_a, trans_b = b.attr(node, "transA", 0), b.attr(node, "transB", 0)
    own = b.own_initializers(node, (1, 2))
    bias_ok = len(node.input) < 3 or not node.input[2] or (own is not None and 2 in own
                                                            and len(b.shape(node.input[2])) == 1)
    if own is not None and 1 in own and trans_b and not trans_a and alpha == 1.0 and beta == 1.0 and bias_ok:
        out, features = b.shape(node.input[1])
        bias = own.get(2)
        if bias is not None and b.shape(bias) != (out,):
            bias_ok = False
        if bias_ok:
            layer = skip_init(Linear, features, out, bias=bias is not None)
            names = {"weight": own[1], **({"bias": bias} if bias else {})}
            b.layer_call(node, b.add_layer(node, layer, names), b.input(node, 0), "linear")
            return
    a, w = b.input(node, 0), b.input(node, 1)
    if trans_a:
        a = _transposed(b, node, a)
    if trans_b:
        w = _transposed(b, node, w)
    bias = b.input(node, 2)
    if bias is None:
        b.call(node, ops.addmm, 0.0, a, w, beta=1, alpha=alpha, label="gemm")
    else:
        b.call(node, ops.addmm, bias, a, w, beta=beta, alpha=alpha, label="gemm")


def _transposed(b, node, template):
    name = b._name("permute")
    value = ops.permute(b._example(template), (1, 0))
    b.steps.append(Step(name, (template, [1, 0]), run=ops.permute, label="permute", where=node.name,
                        shape=tuple(value.shape)))
    b.example[name] = value
    return Ref(name)


@converts("BatchNormalization")
def _batch_norm(b, node):
    if b.attr(node, "training_mode", 0):
        raise Unsupported("training_mode=1")
    if any(name and b.uses[name] for name in node.output[1:]):
        raise Unsupported("its running-statistics outputs")
    own = b.own_initializers(node, (1, 2, 3, 4))
    if own is None or len(own) != 4:
        raise Unsupported("scale, bias, mean or variance that is not an initializer of its own")
    ndim = b.ndim(node)
    if ndim not in (2, 3, 4):
        raise Unsupported(f"a {ndim}-D input")
    channels = b.shape(node.input[1])[0]
    layer = (BatchNorm2d if ndim == 4 else BatchNorm1d)(channels, eps=float(b.attr(node, "epsilon", 1e-5)))
    names = dict(zip(("weight", "bias", "running_mean", "running_var"), (own[i] for i in (1, 2, 3, 4))))
    b.layer_call(node, b.add_layer(node, layer, names), b.input(node, 0), "batch_norm")


def _pool_window(b, node, count_pad: bool):
    if b.ndim(node) != 4:
        raise Unsupported(f"{b.ndim(node) - 2}-D pooling (2-D only)")
    kernel = tuple(int(k) for k in b.attr(node, "kernel_shape"))
    stride, pads, dilation = _window(b, node, kernel)
    if pads[0] != pads[2] or pads[1] != pads[3]:
        if not count_pad:
            raise Unsupported("asymmetric padding")
    h, w = b.shape(node.input[0])[2:]
    floor = [(size + pads[i] + pads[i + 2] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
             for i, size in enumerate((h, w))]
    if b.attr(node, "ceil_mode", 0):
        ceil = [-(-(size + pads[i] + pads[i + 2] - dilation[i] * (kernel[i] - 1) - 1) // stride[i]) + 1
                for i, size in enumerate((h, w))]
        if ceil != floor:
            raise Unsupported("ceil_mode=1 where it adds a partial window")
    return kernel, stride, pads, dilation


@converts("MaxPool")
def _max_pool(b, node):
    if len(node.output) > 1 and node.output[1] and b.uses[node.output[1]]:
        raise Unsupported("its indices output")
    kernel, stride, pads, dilation = _pool_window(b, node, False)
    b.call(node, F.max_pool2d, b.input(node, 0), kernel, stride, (pads[0], pads[1]), dilation, label="max_pool2d")


@converts("AveragePool")
def _avg_pool(b, node):
    include = bool(b.attr(node, "count_include_pad", 0))
    kernel, stride, pads, dilation = _pool_window(b, node, True)
    if any(pads) and not include:
        raise Unsupported("padding with count_include_pad=0")
    if dilation != (1, 1):
        raise Unsupported("dilations")
    x, padding = _symmetric(b, node, b.input(node, 0), pads)
    b.call(node, F.avg_pool2d, x, kernel, stride, padding, label="avg_pool2d")


@converts("GlobalAveragePool")
def _global_avg_pool(b, node):
    ndim = b.ndim(node)
    if ndim == 4:
        b.call(node, F.adaptive_avg_pool2d, b.input(node, 0), (1, 1), label="adaptive_avg_pool2d")
    else:
        b.call(node, ops.mean, b.input(node, 0), list(range(2, ndim)), True, label="mean")
