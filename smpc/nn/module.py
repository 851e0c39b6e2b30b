"""``Module``: parameters, buffers and sub-modules in a tree, with torch-compatible ``state_dict`` keys.

Parameters are :class:`Parameter` leaves (a :class:`~smpc.nn.autograd.Variable` with ``requires_grad=True``);
buffers (BatchNorm's running statistics) are plain arrays. In training mode a forward pass records a tape; in
eval mode it computes directly on the values, so the same ``forward`` serves numpy inputs, shared inputs and
training.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections import OrderedDict
from typing import Iterator, Mapping

import numpy as np

from smpc.mpc import arrays
from smpc.mpc.precision import vanished_counts, warn_if_vanished
from smpc.ring.fixed_point import encode
from smpc.nn.autograd import Variable


class StateDictError(ValueError):
    """A state dict that does not fit the model: the message lists every missing, extra and mis-shaped key."""


class Parameter(Variable):
    """A trainable array: ``self.weight = Parameter(np.zeros(3))`` in a Module registers it, as in torch.

    Its value (numpy array, or a shared tensor once the model is shared) is ``.data``; a plain array
    assigned to an attribute is not a parameter (it is neither in the state dict nor shared).
    """

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, {type(self.data).__name__}, requires_grad={self.requires_grad})"


class Module:
    """Base class of layers and models: subclasses set attributes in ``__init__`` and define ``forward``."""

    #: (convolution, BatchNorm) child-name pairs that :func:`fold_batchnorm` folds into one layer (ResNet's
    #: ``(("conv1", "bn1"),)``); a Sequential folds its neighbours.
    fold_pairs: tuple[tuple[str, str], ...] = ()

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration ------------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting "
                                 f"attributes")
        if name in self._buffers and not isinstance(value, (Variable, Module)):
            self._buffers[name] = value  # assigning a buffer keeps it in the state dict, as in torch
            return
        if name in self._parameters and value is not None and not isinstance(value, Variable):
            raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                            f"{type(self).__name__}: assign smpc.nn.Parameter(value), or set .{name}.data")
        if name in self._parameters and isinstance(value, Variable):
            self._parameters[name] = value  # a parameter replaced (or tied) keeps its place in the state dict
            return
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Variable):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_parameter(self, name: str, value) -> None:
        """Add a trainable parameter (None registers a missing optional one, like a bias=False slot)."""
        if value is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
            return
        setattr(self, name, value if isinstance(value, Variable) else Parameter(value))

    def register_buffer(self, name: str, value) -> None:
        """Add a non-trained array that belongs to the state (e.g. running statistics)."""
        for table in (self._parameters, self._modules):
            table.pop(name, None)
        self.__dict__.pop(name, None)
        self._buffers[name] = value

    # --- traversal -----------------------------------------------------------------------------------
    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Variable]]:
        """Every parameter once, by its first name: a parameter tied to several places (a language model's token
        embedding and output layer) is shared, trained and counted once, as torch's ``named_parameters`` does;
        the state dict still lists it under each name."""
        seen = set()
        for path, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{path}.{name}" if path else name), param

    def parameters(self) -> list[Variable]:
        return [p for _, p in self.named_parameters()]

    # --- modes ---------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (batch statistics, dropout, a tape); returns self."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Inference mode (running statistics, no dropout, no tape); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # --- calling ---------------------------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, x):
        return self.forward(x)

    def param(self, name: str, x):
        """A parameter as the forward pass should use it: the Variable when recording (training mode or a
        Variable input), else its bare value (None stays None)."""
        p = getattr(self, name)
        if p is None:
            return None
        if not isinstance(p, Variable):
            raise TypeError(f"{type(self).__name__}.{name} is a {type(p).__name__}, not a parameter: assign "
                            f"smpc.nn.Parameter(value) (or call register_parameter) so it is trained, saved and shared")
        return p if self.training or isinstance(x, Variable) else p.data

    # --- state ------------------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, object]":
        """Every parameter's and buffer's value by dotted name, in torch's order (a module's own entries,
        then its children's)."""
        state: OrderedDict[str, object] = OrderedDict()
        for path, module in self.named_modules():
            dot = f"{path}." if path else ""
            for name, param in module._parameters.items():
                state[dot + name] = param.data
            for name, buf in module._buffers.items():
                state[dot + name] = buf
        return state

    def load_state_dict(self, state: Mapping[str, object], strict: bool = True) -> None:
        """Copy values from ``state`` (numpy arrays, e.g. exported from PyTorch) into this model.

        Raises :class:`StateDictError` listing every missing, unexpected and mis-shaped key (with
        ``strict=False`` missing and unexpected keys are allowed, mis-shaped ones never).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict needs a mapping of names to arrays, got {type(state).__name__}")
        mine = self.state_dict()
        missing = [k for k in mine if k not in state]
        unexpected = [k for k in state if k not in mine]
        misshaped = [f"{k}: expected {np.shape(mine[k])}, got {np.shape(state[k])}" for k in mine
                     if k in state and tuple(np.shape(state[k])) != tuple(np.shape(mine[k]))]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        if misshaped:
            problems.append(f"mis-shaped keys: {'; '.join(misshaped)}")
        if problems:
            raise StateDictError(f"state dict does not fit {type(self).__name__}: " + " | ".join(problems))
        for path, module in self.named_modules():
            dot = f"{path}." if path else ""
            for name, param in module._parameters.items():
                if dot + name in state:
                    param.data = _as_value(state[dot + name], param.data)
            for name, buf in list(module._buffers.items()):
                if dot + name in state:
                    module._buffers[name] = _as_value(state[dot + name], buf)

    def save(self, path: str | os.PathLike) -> None:
        """Write the plaintext state dict to an ``.npz`` file (no pickle)."""
        state = self.state_dict()
        if not all(arrays.is_public(v) for v in state.values()):
            raise TypeError("save() writes plaintext models only; reveal a shared model's weights first")
        with open(path, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in state.items()})

    def load(self, path: str | os.PathLike, strict: bool = True) -> "Module":
        """Read an ``.npz`` file written by :meth:`save` (or ``np.savez``) into this model; returns self."""
        with np.load(path, allow_pickle=False) as data:
            self.load_state_dict({k: data[k] for k in data.files}, strict=strict)
        return self

    def architecture(self) -> str:
        """What, beyond parameter names and shapes, every party's copy must agree on before sharing (``""``
        for models whose code is their architecture; a converted model describes its graph)."""
        return ""

    def share(self, party, src: int = 0) -> "Module":
        """A copy of this model whose parameters are shared tensors holding party ``src``'s values.

        Every party builds the same architecture and calls it; only party ``src``'s values are used. All
        parameters travel as ONE shared vector (one header message; additive shares are expanded from
        pairwise PRG seeds, so no weight bytes cross the wire there), then are cut back into tensors.
        Eval mode: BatchNorm is folded first (:func:`fold_batchnorm`) and the copy is for inference (no
        gradients kept). Training mode: the copy's parameters require gradients, for private training;
        BatchNorm cannot train on shared values, so a training-mode model with BatchNorm2d is refused.
        """
        training = self.training
        # every party prepares a copy whose parameters are placeholders (no memory): the shares replace them
        placeholders = {id(p.data): np.broadcast_to(np.zeros((), p.data.dtype), p.data.shape)
                        for _, p in self.named_parameters() if isinstance(p.data, np.ndarray)}
        plain = _prepared(copy.deepcopy(self, dict(placeholders)), training)
        params = list(plain.named_parameters())
        if any(type(p.data).__name__ != "ndarray" for _, p in params):
            raise TypeError("share(): the model is already shared")
        _agree_on_architecture(party, src, training, params, plain.architecture())
        if not params:  # nothing to share (a model of activations and pooling only)
            return plain
        # the source encodes each value into one ring vector (no float copy of them all); it travels as integers and
        # is read back in fixed point
        ring = _encoded(self._source_values(params, placeholders, training), party.frac_bits) \
            if party.rank == src else None
        shared = arrays.with_frac(party.share(ring, src=src), party.frac_bits)
        offset = 0
        for _, p in params:
            size = int(np.prod(p.shape))
            p.data = shared[offset:offset + size].reshape(p.shape)
            p.requires_grad = training
            offset += size
        return plain

    # --- what sharing asks of a module (BatchNorm2d and Sequential override these) ----------------------------
    def _check_trains_when_shared(self) -> None:
        """Raise where this module cannot train on shared values (BatchNorm: its batch statistics)."""

    def _fold_candidates(self) -> tuple[tuple[str, str], ...]:
        """Child-name pairs (first, second) where second may fold into first: :attr:`fold_pairs`."""
        return self.fold_pairs

    def _folded_after(self, previous: "Module") -> "Module | None":
        """Fold this module into ``previous`` (the child before it in a fold pair) and return the module that
        replaces it, or None where it does not fold (anything but a BatchNorm after a Conv2d)."""
        return None

    def _inference_replacement(self) -> "Module | None":
        """What replaces this module in a folded model when no pair folded it (BatchNorm: a per-channel affine
        map); None keeps it."""
        return None

    def copy(self) -> "Module":
        """A deep copy (parameters, buffers, modes)."""
        return copy.deepcopy(self)

    def _source_values(self, params: list, placeholders: dict, training: bool) -> list:
        """The values of a prepared copy's ``params`` (in order) at the source of :meth:`share`: this model's own
        arrays where preparing left every parameter its placeholder (nothing folded), else those of a prepared
        deep copy (BatchNorm folded into its convolution: new values). Buffers are copied either way (a
        converted graph's constants are public and every party computes with them)."""
        originals = dict(self.named_parameters())
        if all(name in originals and p.data is placeholders.get(id(originals[name].data)) for name, p in params):
            return [originals[name].data for name, _ in params]  # no copy of the values
        return [p.data for _, p in _prepared(self.copy(), training).named_parameters()]

    # --- printing -----------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


def _encoded(values: list, frac_bits: int) -> np.ndarray:
    """The arrays ``values`` encoded in fixed point (:func:`smpc.ring.fixed_point.encode`, which refuses NaN, inf
    and values too large) one after another into one uint64 vector; warns as ``party.share`` does of float data
    that mostly encodes to 0 (:mod:`smpc.mpc.precision`)."""
    out = np.empty(sum(int(np.size(v)) for v in values), np.uint64)
    offset, lost, nonzero = 0, 0, 0
    for value in values:
        ring = encode(value, frac_bits).reshape(-1)
        out[offset : offset + ring.size] = ring
        offset += ring.size
        counts = vanished_counts(value, ring)
        lost, nonzero = lost + counts[0], nonzero + counts[1]
    warn_if_vanished(lost, nonzero, frac_bits)
    return out


def _prepared(model: Module, training: bool) -> Module:
    """``model`` made ready for sharing (in place): checked for training on shared values, or BatchNorm folded."""
    if training:
        for _, module in model.named_modules():
            module._check_trains_when_shared()
    else:
        fold_batchnorm(model)
    return model


def fold_batchnorm(model: Module) -> Module:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d into that convolution (in place).

    Pairs are the neighbours in a Sequential and the ``fold_pairs`` a module declares (ResNet's conv1/bn1,
    a BasicBlock's conv1/bn1 and conv2/bn2). conv'(x) = conv(x) * s + t with s = gamma / sqrt(var + eps),
    t = beta - mean * s: weight rows scaled by s, bias b * s + t. Any other BatchNorm2d becomes a
    :class:`~smpc.nn.layers.ChannelAffine` (one multiplication on shared inputs). Returns the model.
    """
    for _, module in list(model.named_modules()):
        for first, second in module._fold_candidates():
            children = module._modules
            if first in children and second in children:
                replacement = children[second]._folded_after(children[first])
                if replacement is not None:
                    setattr(module, second, replacement)
    for _, module in list(model.named_modules()):
        for name, child in list(module._modules.items()):
            replacement = child._inference_replacement()
            if replacement is not None:
                setattr(module, name, replacement)
    return model


def _agree_on_architecture(party, src: int, training: bool, params, graph: str = "") -> None:
    """The source tells the others its mode and a digest of its parameter shapes and graph (one small message);
    a mismatch fails clearly at every party instead of as a confusing wire error later."""
    shapes = ";".join(f"{name}:{tuple(p.shape)}" for name, p in params) + graph
    digest = int.from_bytes(hashlib.sha256(shapes.encode()).digest()[:7], "big")
    mine = np.array([int(training), len(params), digest], dtype=np.int64)
    if party.rank == src:
        for peer in party.others:
            party.send_meta(peer, mine)
        return
    theirs = party.recv_meta(src)
    if theirs.dtype != np.int64 or theirs.shape != (3,):
        raise ValueError(f"share(): party {src} sent a malformed model description")
    if theirs[0] != mine[0]:
        modes = {1: "train()", 0: "eval()"}
        raise ValueError(f"share(): party {src}'s model is in {modes[int(theirs[0])]} mode but this party's is in "
                         f"{modes[int(mine[0])]} mode; every party must build the same model in the same mode")
    if theirs[1] != mine[1] or theirs[2] != mine[2]:
        raise ValueError(f"share(): party {src}'s parameter names or shapes (or converted graph) differ from this "
                         "party's; every party must build the same model")


def _as_value(new, old):
    """``new`` converted like the value it replaces (float arrays stay float64, integer buffers integer)."""
    arr = np.asarray(new)
    if isinstance(old, np.ndarray) and old.dtype.kind in "iu":
        return arr.astype(old.dtype).reshape(old.shape)
    return arr.astype(np.float64).reshape(np.shape(old))
