"""A converted model: a list of steps over named values, run on numpy arrays and shared tensors alike.

Written without torch or onnx, so an importer (torch.export, ONNX) only has to produce the steps.
A step either calls a layer of the module tree (``Conv2d``, ``BatchNorm2d``, ... at its torch path, so
``state_dict``, BatchNorm folding and ``share()`` work as for the built-in models) or a function of
:mod:`smpc.nn.importers.ops` / :mod:`smpc.nn.functional`. Arguments are templates: :class:`Ref` (an
earlier step's value), :class:`StateRef` (a parameter or buffer, looked up at call time, so a shared
copy sees its shared weights), public constants, and lists of those.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from smpc.mpc import arrays
from smpc.nn.autograd import Variable
from smpc.nn.module import Module


class UnsupportedModelError(ValueError):
    """A model that cannot be converted. ``unsupported`` maps each operation (with the reason where one
    form of it is the problem) to the layer paths where it occurs, once per occurrence; the message lists
    them all. Raised while converting, never in the middle of a private run."""

    def __init__(self, message: str, unsupported: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.unsupported = dict(unsupported or {})


@dataclass(frozen=True)
class Ref:
    """The value of an earlier step (or input) called ``name``; ``item`` picks one of a step's several outputs."""

    name: str
    item: int | None = None

    def __str__(self) -> str:
        return self.name if self.item is None else f"{self.name}[{self.item}]"


@dataclass(frozen=True)
class StateRef:
    """A parameter or buffer of the module tree, by its state-dict key."""

    key: str

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True)
class InputSpec:
    """One input as the example fixed it: its name, shape and dtype kind ('f' float, 'i' integer, 'b' bool)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    vocabulary: int = 0  # an integer input read only as embedding ids: their vocabulary size (it may be shared)

    @property
    def kind(self) -> str:
        return np.dtype(self.dtype).kind


@dataclass
class Step:
    """One operation: ``module`` (a layer's path) applied to ``args[0]``, or ``run(*args, **kwargs)``."""

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    run: Callable | None = None
    module: str | None = None
    label: str = ""
    where: str = ""
    shape: tuple | None = None
    release: tuple[str, ...] = ()  # values no later step needs, dropped after this one


class Container(Module):
    """A node of the converted model's module tree holding a torch module's own parameters and buffers
    (and its children); the graph calls its layers and reads its state, it has no forward of its own."""

    def __init__(self, kind: str = ""):
        super().__init__()
        object.__setattr__(self, "_kind", kind)  # not an attribute name a torch child could take

    def forward(self, x):
        raise TypeError(f"{self._kind or 'this container'} is part of a converted model's state; call the model")

    def extra_repr(self) -> str:
        own = ", ".join(list(self._parameters) + list(self._buffers))
        return self._kind + (f": {own}" if own else "")


class GraphModule(Module):
    """A model converted from another framework; call it like the original (inference only).

    Inputs must have the example's shape (numpy arrays of a float dtype, or shared tensors); the output
    is an array (or shared tensor), or a tuple of them for several outputs. ``state_dict`` keys are the
    source model's; ``eval().share(party, src)`` folds BatchNorm and shares party src's weights.
    """

    def __init__(self, source: str, inputs: list[InputSpec], steps: list[Step], outputs: list):
        super().__init__()
        # kept out of the attribute namespace: torch's child modules are registered by their names
        object.__setattr__(self, "_graph", (source, tuple(inputs), tuple(steps), tuple(outputs)))

    @property
    def source(self) -> str:
        """The converted model's class name."""
        return self._graph[0]

    @property
    def inputs(self) -> tuple[InputSpec, ...]:
        return self._graph[1]

    @property
    def steps(self) -> tuple[Step, ...]:
        return self._graph[2]

    @property
    def outputs(self) -> tuple:
        return self._graph[3]

    def architecture(self) -> str:
        """The graph as text (inputs, each step's operation, arguments and shape): parties compare its
        digest before sharing, so two different conversions cannot meet in one run."""
        lines = [f"{s.name}:{s.shape}:{s.dtype}" + (f":vocabulary{s.vocabulary}" if s.vocabulary else "")
                 for s in self.inputs]
        for step in self.steps:
            lines.append(f"{step.name}={step.module or step.label}({_arg_text(list(step.args))};"
                         f"{_arg_text(step.kwargs)})->{step.shape}")
        return "\n".join(lines + [_arg_text(list(self.outputs))])

    # --- running ----------------------------------------------------------------------------------------
    def __call__(self, *inputs):
        return self.forward(*inputs)

    def forward(self, *inputs):
        if self.training:
            raise RuntimeError("a converted model runs inference only: call .eval() first (training converted "
                               "models is not supported yet)")
        env = dict(zip((spec.name for spec in self.inputs), self._checked(inputs)))
        for step in self.steps:
            args = self._resolve(step.args, env)
            if step.module is not None:
                env[step.name] = self.layer(step.module)(*args)
            else:
                env[step.name] = step.run(*args, **self._resolve(step.kwargs, env))
            for name in step.release:
                env.pop(name, None)
        results = tuple(self._resolve(out, env) for out in self.outputs)
        return results[0] if len(results) == 1 else results

    def _checked(self, inputs) -> list:
        if len(inputs) != len(self.inputs):
            raise TypeError(f"{self.source} takes {len(self.inputs)} input(s) "
                            f"({', '.join(s.name for s in self.inputs)}), got {len(inputs)}")
        return [_checked_input(spec, value) for spec, value in zip(self.inputs, inputs)]

    def _resolve(self, template, env):
        if isinstance(template, Ref):
            value = env[template.name]
            return value if template.item is None else value[template.item]
        if isinstance(template, StateRef):
            return self.state_value(template.key)
        if isinstance(template, (list, tuple)):
            return type(template)(self._resolve(t, env) for t in template)
        if isinstance(template, dict):
            return {k: self._resolve(v, env) for k, v in template.items()}
        return template

    # --- the module tree ----------------------------------------------------------------------------------
    def layer(self, path: str) -> Module:
        """The module at a dotted path (looked up on every call: folding and sharing replace modules)."""
        module: Module = self
        for part in path.split("."):
            module = module._modules[part]
        return module

    def state_value(self, key: str):
        """A parameter's value (array or shared tensor) or a buffer, by its state-dict key."""
        path, _, name = key.rpartition(".")
        owner = self.layer(path) if path else self
        value = owner._parameters.get(name)
        if value is not None:
            return value.data if isinstance(value, Variable) else value
        return owner._buffers[name]

    # --- printing ---------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}: {s.shape} {s.dtype}" for s in self.inputs)
        lines = [f"GraphModule(from {self.source}; {ins}"]
        width = max((len(s.name) for s in self.steps), default=0)
        for step in self.steps:
            lines.append(f"  {step.name:<{width}} = {self._describe(step)}{_shape_text(step.shape)}")
        lines.append(f"  return {', '.join(_arg_text(o) for o in self.outputs)}")
        return "\n".join(lines) + "\n)"

    def _describe(self, step: Step) -> str:
        args = ", ".join(_arg_text(a) for a in step.args)
        if step.module is not None:
            return f"{step.module}: {self.layer(step.module)!r}({args})"
        extra = ", ".join(f"{k}={_arg_text(v)}" for k, v in step.kwargs.items())
        where = f"  [{step.where}]" if step.where else ""
        return f"{step.label}({', '.join(filter(None, (args, extra)))}){where}"


def _checked_input(spec: InputSpec, value):
    """An input checked against its example: same shape, a compatible dtype; numpy values as float64."""
    if arrays.is_shared(value):
        shape = tuple(value.shape)
        if spec.kind in "iu":
            if not spec.vocabulary:
                raise TypeError(f"input {spec.name!r} holds integers that are not only embedding ids: it cannot be "
                                "passed shared")
            if value.is_fixed_point:
                raise TypeError(f"input {spec.name!r}: token ids are shared as integers "
                                f"(smpc.nn.share_tokens(party, ids, src, {spec.vocabulary})), not as fixed point")
    else:
        if type(value).__module__.split(".")[0] == "torch":
            raise TypeError(f"input {spec.name!r}: pass a numpy array (tensor.numpy()) or a shared tensor, "
                            f"not a {type(value).__name__}")
        if isinstance(value, Variable):
            raise TypeError(f"input {spec.name!r}: converted models run inference only, not on Variables")
        value = np.asarray(value)
        shape = value.shape
        allowed = {"f": "f", "i": "iu", "u": "iu", "b": "b"}.get(spec.kind, spec.kind)
        if value.dtype.kind not in allowed:
            raise TypeError(f"input {spec.name!r}: expected {spec.dtype} values as in the example, "
                            f"got a {value.dtype} array")
        if spec.kind == "f":
            value = value.astype(np.float64)
    if shape != spec.shape:
        raise ValueError(f"input {spec.name!r}: expected shape {spec.shape} (the example input's; the graph was "
                         f"traced for it), got {shape}; convert the model with an example of the shape you need")
    return value


def _shape_text(shape) -> str:
    return "" if shape is None else f"  -> {shape}"


def _arg_text(value) -> str:
    if isinstance(value, (Ref, StateRef)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_arg_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_arg_text(v)}" for k, v in value.items())
    if isinstance(value, np.ndarray):
        return repr(value.item()) if value.size == 1 else f"const{value.shape}"
    if isinstance(value, slice):
        parts = ["" if v is None or v >= 2**62 else str(v) for v in (value.start, value.stop)]
        return ":".join(parts) + ("" if value.step in (None, 1) else f":{value.step}")
    return repr(value)


# --- what every importer does once its steps are written ----------------------------------------------------
def ref_names(template):
    """The names of the values a step template reads."""
    if isinstance(template, Ref):
        yield template.name
    elif isinstance(template, (list, tuple)):
        for t in template:
            yield from ref_names(t)
    elif isinstance(template, dict):
        for t in template.values():
            yield from ref_names(t)


def mark_releases(steps, outputs) -> None:
    """Let each step drop the values no later step reads (outputs are kept)."""
    last: dict[str, int] = {}
    for i, step in enumerate(steps):
        for name in ref_names((step.args, step.kwargs)):
            last[name] = i
    kept = set(ref_names(outputs))
    for i, step in enumerate(steps):
        step.release = tuple(sorted(n for n, at in last.items() if at == i and n not in kept))


def declare_fold_pairs(model: GraphModule) -> None:
    """Conv2d -> BatchNorm pairs that may fold: each layer called once, the convolution's output read by
    the BatchNorm only, both children of one module (what :func:`smpc.nn.fold_batchnorm` folds)."""
    calls = Counter(step.module for step in model.steps if step.module)
    readers = Counter()
    for template in [s.args for s in model.steps] + [s.kwargs for s in model.steps] + [model.outputs]:
        readers.update(ref_names(template))
    by_name = {step.name: step for step in model.steps}
    pairs: dict[str, list] = {}
    for step in model.steps:
        source = by_name.get(step.args[0].name) if step.module and isinstance(step.args[0], Ref) else None
        if source is None or source.module is None or step.args[0].item is not None:
            continue
        conv_parent, _, conv = source.module.rpartition(".")
        bn_parent, _, bn = step.module.rpartition(".")
        kinds = (type(model.layer(source.module)).__name__, type(model.layer(step.module)).__name__)
        if kinds == ("Conv2d", "BatchNorm2d") and conv_parent == bn_parent and readers[source.name] == 1 \
                and calls[source.module] == 1 and calls[step.module] == 1:
            pairs.setdefault(conv_parent, []).append((conv, bn))
    for parent, found in pairs.items():
        object.__setattr__(model.layer(parent) if parent else model, "fold_pairs", tuple(found))
