"""``from_torch``: a PyTorch model (eval mode) to an :class:`~smpc.nn.importers.graph.GraphModule`.

Route: ``torch.export.export(module, example_inputs)``, functionalised with ``run_decompositions({})`` (in-place
ops such as ``relu_`` and ``+=`` become pure ones; nothing is decomposed further, so ``conv2d``, ``linear``,
``hardswish`` stay whole), then a walk over the ATen graph. Why torch.export rather than
``torch.fx.symbolic_trace``: it traces what the model computes, not how its Python reads (``x.size(0)``,
``torch.flatten``, tensor methods, ``+=`` all arrive as a few hundred ATen ops instead of unbounded Python
call forms); it refuses data-dependent control flow with an error we can name (symbolic_trace would
mis-trace or fail on the proxy's truth value); every node carries the layer path it came from
(``nn_module_stack``) for error messages; shapes are static and known at every node, so every check is
made at conversion time; and it is the tracer PyTorch maintains for deployment (and the one the ONNX exporter
now uses). Its cost: a trace is specialised to the example's shapes (inputs must keep that shape).

Weights: parameters and persistent buffers keep their state-dict keys. A Conv2d, Linear or BatchNorm
module whose state is used only by its own call becomes the smpc layer at the same path (so BatchNorm
folds into the convolution before sharing); any other parameter is a :class:`~smpc.nn.module.Parameter` of
a container at its path, used by functional steps, and a float buffer used by computation is registered as
a parameter too, so that ``share()`` secret-shares it. Constants created in ``forward`` and non-persistent
buffers are public constants of the architecture (each party has them from its own copy of the code).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import warnings
from collections import Counter

import numpy as np
import torch
from torch.export.graph_signature import InputKind, OutputKind
from torch.fx import Node

from smpc.nn.importers import aten as aten_table
from smpc.nn.importers.graph import (Container, GraphModule, InputSpec, Ref, StateRef, Step,
                                     UnsupportedModelError, declare_fold_pairs)
from smpc.nn.importers.graph import mark_releases as _mark_releases
from smpc.nn.module import Module, Parameter

# torch.export keeps its tracing state in process-wide slots: two parties of one local run (threads) that
# convert at the same time would collide, so conversions take turns. The only shared state here.
_EXPORT_TURNS = threading.Lock()

PLANNED = "transposed and 1-D convolutions, upsampling and other batch sizes than the example's are not supported yet"


#: ops that only rearrange their input: a token input may pass through them on its way to an embedding
_RESHAPES = frozenset({torch.ops.aten.view, torch.ops.aten.reshape, torch.ops.aten._unsafe_view,
                       torch.ops.aten.flatten, torch.ops.aten.unflatten, torch.ops.aten.squeeze,
                       torch.ops.aten.unsqueeze, torch.ops.aten.clone, torch.ops.aten.alias})


def _only_embedding_ids(node) -> bool:
    """Every use of ``node`` is as an embedding's ids, directly or after ops of :data:`_RESHAPES`."""
    for user in node.users:
        target = aten_table.target_key(user.target)
        if target in _RESHAPES and user.args[0] is node:
            if not _only_embedding_ids(user):
                return False
        elif not (target is torch.ops.aten.embedding and user.args[1] is node):
            return False
    return True


def convert(module, example_inputs, verify: bool = True) -> GraphModule:
    """See :func:`smpc.nn.from_torch`."""
    example_inputs = _checked_arguments(module, example_inputs)
    exported = _export(module, example_inputs)
    model = _Builder(module, exported).build()
    if verify:
        _verify(model, module, example_inputs)
    return model


def _checked_arguments(module, example_inputs) -> tuple:
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    if isinstance(example_inputs, torch.Tensor) or not isinstance(example_inputs, (tuple, list)):
        raise TypeError("example_inputs must be a tuple of tensors, as for torch.export: (x,) for one input")
    if not example_inputs or not all(isinstance(x, torch.Tensor) for x in example_inputs):
        raise TypeError("example_inputs must be a non-empty tuple of tensors, got "
                        f"({', '.join(type(x).__name__ for x in example_inputs)})")
    training = [name or type(module).__name__ for name, m in module.named_modules() if m.training]
    if training:
        shown = ", ".join(training[:5]) + (f" and {len(training) - 5} more" if len(training) > 5 else "")
        raise ValueError(f"from_torch converts models for inference: {shown} in training mode; call model.eval() "
                         "first (dropout and BatchNorm behave differently while training)")
    return tuple(x.detach() for x in example_inputs)


def _export(module, example_inputs):
    name = type(module).__name__
    with _EXPORT_TURNS:
        try:
            exported = torch.export.export(module, example_inputs)
        except Exception as err:  # torch raises many types here; all mean "this model does not trace"
            raise UnsupportedModelError(*_trace_failure(name, err)) from err
        with warnings.catch_warnings():  # torch's own pytree deprecation notices, nothing the user can act on
            warnings.simplefilter("ignore", FutureWarning)
            return exported.run_decompositions({})


def _trace_failure(name: str, err: Exception) -> tuple[str, dict]:
    """The message and the ``unsupported`` entry for a model torch.export cannot trace."""
    text = str(err)
    first = text.strip().splitlines()[0] if text.strip() else ""
    location = re.search(r'File "([^"]+)", line (\d+), in \w+\n\s*(.+)', text.split("raised this error:")[-1])
    place = f"{location.group(1)}:{location.group(2)} ({location.group(3).strip()})" if location else name
    if "data-dependent" in text or "DataDependent" in type(err).__name__:
        return (f"{name} has data-dependent control flow at {place}: an `if`, loop or shape that depends on tensor "
                "values cannot be traced by torch.export, and a secret-shared value cannot steer Python anyway. "
                "Write it with torch.where, or make it depend on shapes only. "
                f"(torch.export: {type(err).__name__}: {first})"), {"data-dependent control flow": [place]}
    return (f"torch.export could not trace {name} (at {place}): {type(err).__name__}: {first}",
            {f"torch.export failure ({type(err).__name__})": [place]})


class _Builder:
    """One pass over the exported graph: state registration, layer plans, steps, and every unsupported op."""

    def __init__(self, module: torch.nn.Module, exported):
        self.torch_module = module
        self.exported = exported
        self.source = type(module).__name__
        self.nodes = list(exported.graph_module.graph.nodes)
        self.state_keys: dict[str, str] = {}  # placeholder name -> state-dict key
        self.constants: dict[str, object] = {}  # node name -> torch value fixed at conversion
        self.aliases: dict[str, object] = {}  # node name -> the template it stands for
        self.names: dict[str, str] = {}  # node name -> step name (the op's short name, numbered)
        self.taken: set[str] = set()
        self.multi: dict[str, dict] = {}  # node name -> {output index: template} where only some exist
        self.steps: list[Step] = []
        self.inputs: list[InputSpec] = []
        self.unsupported: dict[str, list[str]] = {}
        self.layer_of: dict[str, str] = {}  # node name -> torch path of the layer it calls
        self.plans: dict[str, aten_table.LayerPlan] = {}
        self.vocabularies: dict[str, set] = {}  # integer input name -> vocabulary sizes of the embeddings it indexes

    # --- the walk ------------------------------------------------------------------------------------------
    def build(self) -> GraphModule:
        self._read_signature()
        self._plan_layers()
        self._check_state_uses()
        for node in self.nodes:
            if node.op == "call_function":
                self._convert(node)
            elif node.op not in ("placeholder", "output"):
                self._reject(node, f"graph node kind {node.op!r}")
        outputs = self._outputs()
        self._mark_token_inputs()
        if self.unsupported:
            raise UnsupportedModelError(self._report(), self.unsupported)
        model = GraphModule(self.source, self.inputs, self.steps, outputs)
        self._register_state(model)
        _mark_releases(model.steps, outputs)
        self._declare_fold_pairs(model)
        return model.eval()

    def _read_signature(self) -> None:
        placeholders = {n.name: n for n in self.nodes if n.op == "placeholder"}
        for spec in self.exported.graph_signature.input_specs:
            name, node = spec.arg.name, placeholders.get(spec.arg.name)
            if spec.kind == InputKind.USER_INPUT:
                self.inputs.append(_input_spec(node))
            elif spec.kind == InputKind.PARAMETER or spec.kind == InputKind.BUFFER and spec.persistent:
                self.state_keys[name] = spec.target
            elif spec.kind in (InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
                self.constants[name] = self.exported.constants[spec.target]
            else:
                self._reject(node, f"input of kind {spec.kind.name}")

    def _mark_token_inputs(self) -> None:
        """An integer input read only as the ids of embeddings of one vocabulary (directly or through reshapes)
        may be passed shared, as integers its owner shares with :func:`smpc.nn.share_tokens` (its spec records
        the vocabulary size)."""
        placeholders = {n.name: n for n in self.nodes if n.op == "placeholder"}
        for i, spec in enumerate(self.inputs):
            sizes = self.vocabularies.get(spec.name, set())
            if spec.kind in "iu" and len(sizes) == 1 and _only_embedding_ids(placeholders[spec.name]):
                self.inputs[i] = dataclasses.replace(spec, vocabulary=sizes.pop())

    def note_embedding(self, ids, vocabulary: int) -> None:
        while isinstance(ids, Node) and aten_table.target_key(ids.target) in _RESHAPES:
            ids = ids.args[0]
        if isinstance(ids, Node) and ids.op == "placeholder":
            self.vocabularies.setdefault(ids.name, set()).add(int(vocabulary))

    def _check_state_uses(self) -> None:
        """Integer buffers read by the computation would stay each party's own (only floats are shared)."""
        buffers = {s.arg.name for s in self.exported.graph_signature.input_specs if s.kind == InputKind.BUFFER}
        for node in self.nodes:
            if node.name in buffers and node.name in self.state_keys and not node.meta["val"].is_floating_point():
                for user in node.users:
                    if self.layer_of.get(user.name) is None:
                        self._reject(user, f"{aten_table.op_name(user.target)} (reads the integer buffer "
                                           f"{self.state_keys[node.name]})")

    def _plan_layers(self) -> None:
        users: dict[str, list[Node]] = {}
        for node in self.nodes:
            if node.name in self.state_keys:
                path = self.state_keys[node.name].rpartition(".")[0]
                users.setdefault(path, [])
                users[path] += [u for u in node.users if u not in users[path]]
        for path, nodes in users.items():
            if not path or not nodes:
                continue
            plan = aten_table.plan_layer(self, self.torch_module.get_submodule(path), path, nodes)
            if plan is not None:
                self.plans[path] = plan
                self.layer_of.update({n.name: path for n in plan.nodes})

    def _convert(self, node: Node) -> None:
        if self._foldable(node):
            self._fold(node)
            return
        converter = aten_table.CONVERTERS.get(aten_table.target_key(node.target))
        if converter is None:
            self._reject(node, aten_table.op_name(node.target))
            return
        try:
            converter(self, node)
        except aten_table.Unsupported as why:
            self._reject(node, f"{aten_table.op_name(node.target)} ({why})")

    def _foldable(self, node: Node) -> bool:
        """A node computed from constants only is computed now, by torch (e.g. arange, full, scalar_tensor)."""
        if any(n.name not in self.constants for n in node.all_input_nodes):
            return False
        tags = getattr(node.target, "tags", ())
        return torch.Tag.nondeterministic_seeded not in tags

    def _fold(self, node: Node) -> None:
        def value(a):
            return self.constants[a.name] if isinstance(a, Node) else a

        args = torch.fx.node.map_aggregate(node.args, value)
        kwargs = torch.fx.node.map_aggregate(node.kwargs, value)
        try:
            with torch.no_grad():
                self.constants[node.name] = node.target(*args, **kwargs)
        except Exception as err:  # whatever torch raises for this op on these constants
            self._reject(node, f"{aten_table.op_name(node.target)} (computing it on constants failed: {err})")

    def _outputs(self) -> list:
        output = next(n for n in self.nodes if n.op == "output")
        values = list(output.args[0])
        templates = []
        for spec, value in zip(self.exported.graph_signature.output_specs, values):
            if spec.kind == OutputKind.USER_OUTPUT:
                templates.append(self.arg(value))
            else:
                self._reject(output, f"forward that mutates {spec.target or 'a tensor'} ({spec.kind.name})")
        return templates

    # --- what converters call -----------------------------------------------------------------------------
    def arg(self, a):
        """A graph argument as a step template."""
        if isinstance(a, Node):
            if a.name in self.aliases:
                return self.aliases[a.name]
            if a.name in self.constants:
                return _numpy(self.constants[a.name])
            if a.name in self.state_keys:
                return StateRef(self.state_keys[a.name])
            return Ref(self.names.get(a.name, a.name))
        if isinstance(a, (list, tuple)):
            return [self.arg(x) for x in a]
        if isinstance(a, torch.Tensor):
            return _numpy(a)
        return a

    def call(self, node: Node, run, *args, label: str, **kwargs) -> None:
        args, kwargs = tuple(self.arg(a) for a in args), {k: self.arg(v) for k, v in kwargs.items()}
        self.steps.append(Step(self._name(node, label), args, kwargs, run=run, label=label, where=_where(node),
                               shape=self.shape(node)))

    def layer_step(self, node: Node, x, label: str) -> bool:
        """A call of the smpc layer planned for this node's module, if there is one."""
        path = self.layer_of.get(node.name)
        if path is None:
            return False
        shape = self.shape(node)
        shape = shape[0] if isinstance(shape, list) else shape  # batch norm's (output, statistics...)
        self.steps.append(Step(self._name(node, label), (self.arg(x),), module=path, where=_where(node), shape=shape))
        return True

    def _name(self, node: Node, label: str) -> str:
        name, n = label, 0
        while name in self.taken or name in (spec.name for spec in self.inputs):
            n += 1
            name = f"{label}_{n}"
        self.taken.add(name)
        self.names[node.name] = name
        return name

    def alias(self, node: Node, target) -> None:
        self.aliases[node.name] = self.arg(target)

    def multi_outputs(self, node: Node, outputs: dict) -> None:
        self.multi[node.name] = outputs

    def outputs_of(self, node: Node):
        return self.multi.get(node.name) if isinstance(node, Node) else None

    def item(self, source: Node, index: int):
        template = self.arg(source)
        if isinstance(template, list):
            return template[index]
        if isinstance(template, Ref) and template.item is None:
            return Ref(template.name, index)
        raise aten_table.Unsupported("indexing into a nested result")

    def state_key(self, a) -> str | None:
        return self.state_keys.get(a.name) if isinstance(a, Node) else None

    def constant(self, a):
        if isinstance(a, Node):
            if a.name not in self.constants:
                raise aten_table.Unsupported("an argument that must be a constant depends on the input")
            value = self.constants[a.name]
            return value.item() if isinstance(value, torch.Tensor) else value
        return a

    def shape(self, a):
        value = a.meta.get("val") if isinstance(a, Node) else None
        if isinstance(value, (list, tuple)):
            return [tuple(int(d) for d in v.shape) for v in value if isinstance(v, torch.Tensor)]
        return tuple(int(d) for d in value.shape) if isinstance(value, torch.Tensor) else None

    def dtype(self, a):
        return a.meta["val"].dtype

    # --- the model ------------------------------------------------------------------------------------------------
    def _register_state(self, model: GraphModule) -> None:
        used = {node.name for node in self.nodes if node.name in self.state_keys and node.users}
        computed = {self.state_keys[name] for name in used}
        buffers = {s.target for s in self.exported.graph_signature.input_specs if s.kind == InputKind.BUFFER}
        values = {k: v for k, v in self.exported.state_dict.items() if k in set(self.state_keys.values())}
        order = [k for k in self.torch_module.state_dict() if k in values]
        order += [k for k in values if k not in order]
        for key in order:
            path, _, name = key.rpartition(".")
            if path in self.plans:
                if path not in _children(model):
                    _place(model, path, self.plans[path].build())
                continue
            owner = _container(model, path, self.torch_module)
            value = _numpy(values[key])
            if key in buffers and (key not in computed or value.dtype.kind != "f"):
                owner.register_buffer(name, value)
            else:
                setattr(owner, name, Parameter(value))
        model.load_state_dict({k: _numpy(values[k]) for k in order})
        self._tie(model, set(order))

    def _tie(self, model: GraphModule, keys: set) -> None:
        """A tensor tied to several keys in torch (GPT-2's token embedding and output layer) becomes one
        parameter at each of them, so that it is shared and counted once (torch.export lists each key apart)."""
        first: dict[int, Parameter] = {}  # id of torch's tensor -> the parameter at its first key
        paths = _children(model)
        for key, tensor in self.torch_module.named_parameters(remove_duplicate=False):
            path, _, name = key.rpartition(".")
            owner = (model.layer(path) if path else model) if key in keys and path in paths else None
            param = owner._parameters.get(name) if owner is not None else None
            if param is None:  # not read by the graph, or a buffer
                continue
            tied = first.setdefault(id(tensor), param)
            if tied is not param and tied.shape == param.shape:
                setattr(owner, name, tied)

    def _declare_fold_pairs(self, model: GraphModule) -> None:
        declare_fold_pairs(model)

    # --- errors -------------------------------------------------------------------------------------------------
    def _reject(self, node: Node, what: str) -> None:
        self.unsupported.setdefault(what, []).append(_where(node))

    def _report(self) -> str:
        total = sum(len(places) for places in self.unsupported.values())
        lines = [f"cannot convert {self.source}: {total} unsupported operation(s) of {len(self.unsupported)} "
                 "kind(s) in its torch.export graph, each with its count and the layers where it occurs:"]
        for what, places in self.unsupported.items():
            counted = Counter(places)
            at = ", ".join(place if n == 1 else f"{place} x{n}" for place, n in counted.items())
            lines.append(f"  {what}: {len(places)}x at {at}")
        lines.append(f"({PLANNED}; nothing was converted.)")
        return "\n".join(lines)


def _input_spec(node: Node) -> InputSpec:
    value = node.meta["val"]
    dtype = value.dtype
    kind = "float64" if dtype == torch.float64 else "float32" if dtype.is_floating_point else \
        "bool" if dtype == torch.bool else "int64"
    return InputSpec(node.name, tuple(int(d) for d in value.shape), kind)


def _where(node: Node) -> str:
    """The layer path (and class) a node came from, as torch names it."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return "<model>"
    path, kind = list(stack.values())[-1]
    path = re.sub(r"^L\['self'\]\.?", "", str(path))
    kind = kind if isinstance(kind, str) else getattr(kind, "__qualname__", str(kind))
    return f"{path or '<root>'} ({kind.rsplit('.', 1)[-1]})"


def _numpy(value):
    """A torch value as numpy: float tensors as float64, lists element-wise, numbers as they are."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.double().numpy() if value.is_floating_point() else value.numpy()
    if isinstance(value, (list, tuple)):
        return [_numpy(v) for v in value]
    return value


def _children(model: Module) -> set:
    return {path for path, _ in model.named_modules()}


def _place(model: Module, path: str, layer: Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(_container(model, parent, None) if parent else model, name, layer)


def _container(model: Module, path: str, torch_module) -> Module:
    """The module at ``path``, creating containers along the way (named after torch's classes)."""
    node = model
    walked = []
    for part in path.split(".") if path else []:
        walked.append(part)
        if part not in node._modules:
            kind = type(torch_module.get_submodule(".".join(walked))).__name__ if torch_module is not None else ""
            setattr(node, part, Container(kind))
        node = node._modules[part]
    return node


def _verify(model: GraphModule, module, example_inputs) -> None:
    """The converted model on the example inputs against torch's own forward (float64 against float32)."""
    with torch.no_grad():
        expected = torch.utils._pytree.tree_leaves(module(*example_inputs))
    got = model(*[x.cpu().numpy() for x in example_inputs])
    got = [got] if not isinstance(got, tuple) else list(got)
    for i, (want, have) in enumerate(zip(expected, got)):
        want = _numpy(want)
        scale = float(np.max(np.abs(want))) if np.size(want) else 0.0
        error = float(np.max(np.abs(np.asarray(have, dtype=np.float64) - want))) if np.size(want) else 0.0
        if not error <= 1e-3 * scale + 1e-6:
            raise UnsupportedModelError(f"the converted {model.source} differs from torch on the example input "
                                        f"(output {i}: max error {error:.3g} at magnitude {scale:.3g}); please "
                                        "report this model")
