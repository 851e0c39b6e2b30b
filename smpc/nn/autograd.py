"""Reverse-mode automatic differentiation over any array type: numpy arrays or shared tensors.

A :class:`Variable` wraps a value (``data``) and remembers the operation that made it. ``backward()``
walks that record (the tape) from the output to the leaves in reverse topological order and adds each
local gradient into ``grad``. Every rule is written with ``+ - * @``, ``sum`` and ``reshape`` only, so
the same rule runs on plaintext and on secret-shared values, where a gradient is itself shared.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from smpc.mpc import arrays

GradFn = Callable[[object], Sequence[object]]


class Variable:
    """A value on the tape: ``data`` (ndarray or shared tensor), ``grad`` after ``backward()``.

    Leaves made by the user have no parents; ``requires_grad=True`` makes ``backward()`` keep their
    gradient (parameters do). Intermediate results keep theirs only while the backward pass needs it.
    """

    __array_priority__ = 2000  # `ndarray op Variable` defers to our reflected operators
    __slots__ = ("data", "grad", "requires_grad", "_parents", "_grad_fn", "__weakref__")

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, Variable):
            raise TypeError("data is already a Variable")
        self.data = arrays.as_array(data)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Variable, ...] = ()
        self._grad_fn: GradFn | None = None

    # --- construction of tape nodes ----------------------------------------------------------
    @classmethod
    def from_op(cls, data, parents: Iterable["Variable"], grad_fn: GradFn) -> "Variable":
        """The result of an operation on ``parents``; ``grad_fn(grad)`` gives one gradient per parent."""
        parents = tuple(parents)
        out = cls(data)
        if any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = parents
            out._grad_fn = grad_fn
        return out

    # --- plain properties ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    def __repr__(self) -> str:
        kind = type(self.data).__name__
        return f"Variable(shape={self.shape}, {kind}, requires_grad={self.requires_grad})"

    def detach(self) -> "Variable":
        """The same value, cut from the tape."""
        return Variable(self.data)

    # --- the backward pass -----------------------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``grad`` that requires it.

        ``grad`` defaults to ones (a public array), the usual seed for a scalar loss.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a Variable that does not depend on anything requiring grad")
        seed = np.ones(self.shape) if grad is None else grad
        if tuple(np.shape(seed)) != self.shape:
            raise ValueError(f"backward: gradient of shape {np.shape(seed)} for a value of shape {self.shape}")
        pending = {id(self): seed}
        for node in _reverse_topological(self):
            grad_here = pending.pop(id(node), None)
            if grad_here is None:
                continue
            if node.is_leaf:
                node.grad = grad_here if node.grad is None else node.grad + grad_here
                continue
            for parent, g in zip(node._parents, node._grad_fn(grad_here)):
                if g is None or not parent.requires_grad:
                    continue
                g = arrays.sum_to_shape(g, parent.shape)
                key = id(parent)
                pending[key] = g if key not in pending else pending[key] + g

    # --- arithmetic (each records its own gradient rule) -------------------------------------------
    def __add__(self, other):
        other = as_variable(other)
        return Variable.from_op(self.data + other.data, (self, other), lambda g: (g, g))

    __radd__ = __add__

    def __neg__(self):
        return Variable.from_op(-self.data, (self,), lambda g: (-g,))

    def __sub__(self, other):
        other = as_variable(other)
        return Variable.from_op(self.data - other.data, (self, other), lambda g: (g, -g))

    def __rsub__(self, other):
        return as_variable(other) - self

    def __mul__(self, other):
        other = as_variable(other)
        a, b = self.data, other.data
        return Variable.from_op(a * b, (self, other), lambda g: (g * b, g * a))

    __rmul__ = __mul__

    def __truediv__(self, other):
        if not arrays.is_public(other):  # a Variable or a shared value
            raise TypeError("division by a Variable or a shared value is not differentiable here; "
                            "multiply by its reciprocal instead")
        divisor = np.asarray(other, dtype=np.float64)
        return self * (1.0 / divisor)

    def __matmul__(self, other):
        other = as_variable(other)
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(as_variable(other), self)

    # --- shape operations -------------------------------------------------------------------------
    def reshape(self, *shape) -> "Variable":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        original = self.shape
        return Variable.from_op(self.data.reshape(*shape), (self,), lambda g: (g.reshape(original),))

    def flatten(self, start: int = 1) -> "Variable":
        """Collapse the axes from ``start`` on (``start=1`` keeps the batch axis)."""
        return self.reshape(*self.shape[:start], -1)

    def transpose(self, *axes) -> "Variable":
        axes = tuple(range(self.ndim))[::-1] if not axes else tuple(axes[0] if len(axes) == 1 else axes)
        inverse = tuple(np.argsort(axes))
        return Variable.from_op(self.data.transpose(*axes), (self,), lambda g: (g.transpose(*inverse),))

    @property
    def T(self) -> "Variable":
        return self.transpose()

    def sum(self, axis=None, keepdims: bool = False) -> "Variable":
        shape = self.shape
        axes = _axes(axis, len(shape))

        def grad_fn(g):
            if not keepdims:
                g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
            return (arrays.broadcast_to(g, shape),)

        return Variable.from_op(self.data.sum(axis=axis, keepdims=keepdims), (self,), grad_fn)

    def mean(self, axis=None, keepdims: bool = False) -> "Variable":
        count = int(np.prod([self.shape[i] for i in _axes(axis, self.ndim)]))
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count)

    def __getitem__(self, index) -> "Variable":
        shape = self.shape

        def grad_fn(g):
            return (arrays.scatter_add(g, index, shape),)

        return Variable.from_op(self.data[index], (self,), grad_fn)


class LazyValue(Variable):
    """A scalar result (a loss) whose value is computed only when ``data`` is read.

    On shared tensors a loss's value (a log-softmax, a softplus) costs far more than its gradient,
    and a training loop rarely opens it: the tape needs only the gradient rule.
    """

    __slots__ = ("_compute",)

    def __init__(self, compute: Callable[[], object], parents: Iterable[Variable], grad_fn: GradFn):
        Variable.data.__set__(self, None)
        self._compute = compute
        self.grad = None
        parents = tuple(parents)
        self.requires_grad = any(p.requires_grad for p in parents)
        self._parents = parents if self.requires_grad else ()
        self._grad_fn = grad_fn if self.requires_grad else None

    @property
    def data(self):
        if self._compute is not None:
            Variable.data.__set__(self, self._compute())
            self._compute = None
        return Variable.data.__get__(self, Variable)

    @data.setter
    def data(self, value) -> None:
        self._compute = None
        Variable.data.__set__(self, value)

    @property
    def shape(self) -> tuple[int, ...]:
        return ()


def as_variable(value) -> Variable:
    """``value`` itself if it is a Variable, else a constant leaf holding it."""
    return value if isinstance(value, Variable) else Variable(value)


def matmul(a: Variable, b: Variable) -> Variable:
    """a @ b for 1-D or 2-D operands (and batched ``... x n x k @ k x m``), with its gradient."""
    x, y = a.data, b.data
    if min(len(x.shape), len(y.shape)) < 1:
        raise ValueError("matmul needs operands with at least one axis")

    def grad_fn(g):
        if len(x.shape) == 1 and len(y.shape) == 1:
            return g * y, g * x
        if len(y.shape) == 1:  # (..., n, k) @ (k,) -> (..., n)
            gx = g.reshape(*g.shape, 1) @ y.reshape(1, -1)
            gy = arrays.swap_last(x) @ g.reshape(*g.shape, 1)
            return gx, gy.reshape(*gy.shape[:-1])
        if len(x.shape) == 1:  # (k,) @ (..., k, m) -> (..., m)
            gx = (g.reshape(*g.shape[:-1], 1, g.shape[-1]) @ arrays.swap_last(y))
            gy = x.reshape(-1, 1) @ g.reshape(*g.shape[:-1], 1, g.shape[-1])
            return gx.reshape(*gx.shape[:-2], gx.shape[-1]), gy
        return g @ arrays.swap_last(y), arrays.swap_last(x) @ g

    return Variable.from_op(x @ y, (a, b), grad_fn)


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(int(i) % ndim for i in items)


def _reverse_topological(root: Variable) -> list[Variable]:
    """Nodes reachable from ``root``, each after every node that uses it (iterative DFS)."""
    order: list[Variable] = []
    seen: set[int] = set()
    stack: list[tuple[Variable, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._parents if id(p) not in seen)
    return order[::-1]
