"""numpy's ufuncs and functions on a shared tensor (NEP 13 ``__array_ufunc__``, NEP 18 ``__array_function__``).

The supported ones map to the tensor's own methods, so ``np.exp(x)`` is ``x.exp()`` and ``np_array @ x`` is
``x.__rmatmul__(np_array)``; each costs what that method costs. Everything else raises a :class:`TypeError` that names
the numpy function and what to use instead, rather than numpy's silent object array. A shared tensor is not an array:
``np.asarray(x)`` raises too (reveal it first).

Supported ufuncs (shared or public operands, numpy broadcasting; no ``out=``, ``where=``, ``dtype=`` or other options):
add, subtract, multiply, matmul, true_divide (a shared numerator), the six comparisons (shared 0/1 integers),
maximum and minimum (exact: y + relu(x - y), one comparison), negative, positive, absolute, sign, square,
exp, log, sqrt, tanh, reciprocal (these five as :mod:`smpc.mpc.functions` computes them, with its ranges and errors).
Supported functions: see :data:`FUNCTIONS`.
"""

from __future__ import annotations

import operator

import numpy as np

from smpc.mpc.tensor_core import SharedTensorCore, concatenate, stack, where

GENERAL_HINT = ("use the shared tensor's own operators and methods (+ - * / @, comparisons, sum, mean, reshape, "
                "transpose, max, exp, ...), or reveal it first")


def _reflected_divide(x, numerator):
    raise TypeError("numpy.divide with a shared divisor and a public numerator is not supported on a shared tensor; "
                    "use x.reciprocal() * numerator, or smpc.mpc.functions.divide")


#: ufunc -> (x op other with x shared, other op x with x shared and other public)
BINARY = {
    np.add: (operator.add, lambda x, a: x.__radd__(a)),
    np.subtract: (operator.sub, lambda x, a: x.__rsub__(a)),
    np.multiply: (operator.mul, lambda x, a: x.__rmul__(a)),
    np.matmul: (operator.matmul, lambda x, a: x.__rmatmul__(a)),
    np.true_divide: (operator.truediv, _reflected_divide),
    np.less: (operator.lt, operator.gt),
    np.greater: (operator.gt, operator.lt),
    np.less_equal: (operator.le, operator.ge),
    np.greater_equal: (operator.ge, operator.le),
    np.equal: (operator.eq, operator.eq),
    np.not_equal: (operator.ne, operator.ne),
    np.maximum: (lambda x, y: (x - y).relu() + y, lambda x, a: (x - a).relu() + a),
    np.minimum: (lambda x, y: x - (x - y).relu(), lambda x, a: x - (x - a).relu()),
}

UNARY = {
    np.negative: operator.neg,
    np.positive: lambda x: x,
    np.absolute: lambda x: x.abs(),
    np.sign: lambda x: x.sign(),
    np.square: lambda x: x * x,
    np.exp: lambda x: x.exp(),
    np.log: lambda x: x.log(),
    np.sqrt: lambda x: x.sqrt(),
    np.tanh: lambda x: x.tanh(),
    np.reciprocal: lambda x: x.reciprocal(),
}

#: what to use instead, for unsupported ufuncs and functions that have a close equivalent
HINTS = {
    np.power: "multiply the tensor by itself (x * x) or use exp/log",
    np.floor_divide: "divide by a public value (x / d) and take x.integer_part()",
    np.dot: "use x @ y",
    np.inner: "use x @ y",
    np.prod: "multiply the slices (x[0] * x[1] * ...)",
}


def _name(function) -> str:
    module = getattr(function, "__module__", None) or "numpy"
    return f"{module}.{function.__name__}"


def unsupported(function) -> TypeError:
    return TypeError(f"{_name(function)} is not supported on a shared tensor; {HINTS.get(function, GENERAL_HINT)}")


def _is_operand(value) -> bool:
    """Shared tensors, and public values numpy itself would take (no other class that overrides ufuncs)."""
    override = getattr(type(value), "__array_ufunc__", None)
    return isinstance(value, (SharedTensorCore, np.ndarray, np.generic)) or override is None


def array_ufunc(ufunc, method: str, inputs: tuple, kwargs: dict):
    """``SharedTensor.__array_ufunc__``: the tensor's own operation, or a TypeError naming the ufunc."""
    if not all(_is_operand(value) for value in inputs):
        return NotImplemented
    if method != "__call__":
        raise TypeError(f"numpy.{ufunc.__name__}.{method} is not supported on a shared tensor; "
                        "use the tensor's own reductions (sum, mean, max) or operators")
    if kwargs:
        raise TypeError(f"numpy.{ufunc.__name__} on a shared tensor takes no {', '.join(f'{k}=' for k in kwargs)} "
                        "(the result is always a new shared tensor of the operands' broadcast shape)")
    if ufunc in UNARY:
        return UNARY[ufunc](inputs[0])
    if ufunc not in BINARY:
        raise unsupported(ufunc)
    forward, reflected = BINARY[ufunc]
    left, right = inputs
    return forward(left, right) if isinstance(left, SharedTensorCore) else reflected(right, left)


def array_function(function, types, args: tuple, kwargs: dict):
    """``SharedTensor.__array_function__``: the tensor's own method, or a TypeError naming the function."""
    if not all(issubclass(t, (SharedTensorCore, np.ndarray)) for t in types):
        return NotImplemented
    if function not in FUNCTIONS:
        raise unsupported(function)
    return FUNCTIONS[function](*args, **kwargs)


def refuse_array(tensor) -> TypeError:
    """What ``np.asarray(x)`` / ``np.array(x)`` on a shared tensor raise."""
    return TypeError(f"a shared tensor ({type(tensor).__name__}) is not a numpy array (numpy.asarray/numpy.array "
                     "cannot read it): reveal it first (x.reveal()), or use the tensor's own methods")


# --- the functions -----------------------------------------------------------------------------------------------
def _shared(function, value) -> SharedTensorCore:
    if not isinstance(value, SharedTensorCore):
        raise TypeError(f"{_name(function)}: only its array argument may be a shared tensor here")
    return value


def _refuse(function, **options) -> None:
    """numpy options a shared tensor does not take (out=, dtype=, where=, ...): a TypeError naming them."""
    given = [name for name, value in options.items() if value is not None]
    if given:
        raise TypeError(f"{_name(function)} on a shared tensor takes no {', '.join(f'{k}=' for k in given)} "
                        "(the result is always a new shared tensor)")


def _order(function, order) -> None:
    if order not in ("C", None):
        raise TypeError(f"{_name(function)} on a shared tensor takes order='C' only, got {order!r}")


def _sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _refuse(np.sum, dtype=dtype, out=out, initial=initial, where=where)
    return _shared(np.sum, a).sum(axis=axis, keepdims=keepdims)


def _mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    _refuse(np.mean, dtype=dtype, out=out, where=where)
    return _shared(np.mean, a).mean(axis=axis, keepdims=keepdims)


def _reduction(function, method):
    """np.max/np.amax/np.min/np.amin through ``method(tensor, axis, keepdims)``."""

    def reduce(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        _refuse(function, out=out, initial=initial, where=where)
        return method(_shared(function, a), axis, keepdims)

    return reduce


def _maximum(x, axis, keepdims):
    return x.max(axis=axis, keepdims=keepdims)


def _minimum(x, axis, keepdims):
    return -((-x).max(axis=axis, keepdims=keepdims))


def _argmax(a, axis=None, out=None, *, keepdims=False):
    _refuse(np.argmax, out=out)
    return _shared(np.argmax, a).argmax(axis=axis, keepdims=keepdims)


def _reshape(a, /, shape=None, order="C", *, newshape=None, copy=None):
    _order(np.reshape, order)
    if shape is None and newshape is None:
        raise TypeError("numpy.reshape needs a shape")
    return _shared(np.reshape, a).reshape(newshape if shape is None else shape)


def _ravel(a, order="C"):
    _order(np.ravel, order)
    return _shared(np.ravel, a).reshape(-1)


def _transpose(a, axes=None):
    return _shared(np.transpose, a).transpose() if axes is None else _shared(np.transpose, a).transpose(axes)


def _join(function, join, flattens: bool):
    """np.concatenate / np.stack of shared tensors (all of them shared: share public parts first); ``flattens``:
    axis=None joins the flattened tensors (np.concatenate's meaning)."""

    def joined(arrays, /, axis=0, out=None, *, dtype=None, casting=None):
        _refuse(function, out=out, dtype=dtype, casting=casting)
        arrays = list(arrays)
        if not all(isinstance(t, SharedTensorCore) for t in arrays):
            raise TypeError(f"{_name(function)} joins shared tensors only; share the public parts first (party.share)")
        if axis is None and flattens:
            arrays, axis = [t.reshape(-1) for t in arrays], 0
        return join(arrays, axis=axis)

    return joined


def _where(condition, x=None, y=None):
    """np.where(c, x, y): a shared condition of 0/1 bits costs one product; a public one is exact and local."""
    if x is None or y is None:
        raise TypeError("numpy.where(condition) with one argument (the positions of nonzero elements) is not supported "
                        "on a shared tensor: it would reveal them; reveal the condition first if that is intended")
    if isinstance(condition, SharedTensorCore):
        return where(condition, x, y)
    chosen = (np.asarray(condition) != 0).astype(np.int64)
    difference = x - y if isinstance(x, SharedTensorCore) else -(y - x)
    return difference.__rmul__(chosen) + y


_UNSET = object()


def _clip(a, a_min=_UNSET, a_max=_UNSET, out=None, *, min=_UNSET, max=_UNSET, **kwargs):
    """np.clip(x, low, high) with public bounds (either may be None): low + relu(x - low) - relu(x - high), exact;
    with both bounds the two ReLUs run as one batched comparison, so a clip costs the rounds of one ReLU."""
    _refuse(np.clip, out=out, **kwargs)
    low = a_min if min is _UNSET else min
    high = a_max if max is _UNSET else max
    low, high = (None if v is _UNSET else v for v in (low, high))
    x = _shared(np.clip, a)
    if any(isinstance(v, SharedTensorCore) for v in (low, high)):
        raise TypeError("numpy.clip on a shared tensor takes public bounds; use np.maximum / np.minimum with "
                        "shared ones")
    if low is None and high is None:
        raise ValueError("numpy.clip: one of the bounds must be given")
    if low is None:
        return high - (high - x).relu()
    if high is None:
        return (x - low).relu() + low
    both = stack([x - low, x - high]).relu()
    return both[0] - both[1] + low


def _shape(a):
    return a.shape


def _ndim(a):
    return a.ndim


def _size(a, axis=None):
    return a.size if axis is None else a.shape[axis]


#: numpy function -> what it does on a shared tensor
FUNCTIONS = {
    np.sum: _sum,
    np.mean: _mean,
    np.max: _reduction(np.max, _maximum),
    np.amax: _reduction(np.amax, _maximum),
    np.min: _reduction(np.min, _minimum),
    np.amin: _reduction(np.amin, _minimum),
    np.argmax: _argmax,
    np.reshape: _reshape,
    np.ravel: _ravel,
    np.transpose: _transpose,
    np.concatenate: _join(np.concatenate, concatenate, flattens=True),
    np.stack: _join(np.stack, stack, flattens=False),
    np.where: _where,
    np.clip: _clip,
    np.shape: _shape,
    np.ndim: _ndim,
    np.size: _size,
}
