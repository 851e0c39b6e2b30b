"""``SharedTensor``: the shared-tensor interface with the non-linear functions and selections as methods.

:class:`~smpc.mpc.tensor_core.SharedTensorCore` holds the interface (local and linear operations,
products, comparisons, ``reveal``) that :mod:`smpc.mpc.functions`, :mod:`smpc.mpc.selection` and
:mod:`smpc.mpc.one_hot` are written against; this subclass adds ``x.exp()``, ``x.max()``, ``x / y`` and
the like, each one call of those modules. Every protocol's tensor subclasses ``SharedTensor``.
"""

from __future__ import annotations

from smpc.mpc import functions, numpy_interop, selection
from smpc.mpc.one_hot import one_hot
from smpc.mpc.tensor_core import (SIGN_BATCH, SharedTensorCore, concatenate, public_to_ring, source_value, stack,
                                  where)

__all__ = ["SIGN_BATCH", "SharedTensor", "SharedTensorCore", "concatenate", "public_to_ring", "source_value",
           "stack", "where"]


class SharedTensor(SharedTensorCore):
    """This party's view of a secret-shared tensor; see the module docstring."""

    # numpy's ufuncs and functions map to the methods below or raise a clear TypeError (smpc.mpc.numpy_interop)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return numpy_interop.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return numpy_interop.array_function(func, types, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        raise numpy_interop.refuse_array(self)

    def __truediv__(self, other):
        """``x / y``. A public ``y``: one truncation (error in :meth:`SharedTensorCore.__truediv__`).

        A shared ``y`` is :func:`smpc.mpc.functions.divide` with its defaults: a bit length, five products and
        three truncations (B + 5M + 3T + 5 rounds), for ``|y|`` in [2^-16, 2^16) and ``|x / y| < 2^30``, with a
        measured error of 4 units (6.1e-05) absolute where ``|x / y| <= 1``, 7e-05 relative elsewhere.
        """
        if isinstance(other, SharedTensorCore):
            return functions.divide(self, other)
        return super().__truediv__(other)

    def one_hot(self, size: int) -> "SharedTensor":
        """The one-hot encoding (shape ``shape + (size,)``, shared integers) of this integer tensor's values
        in [0, size): one round; see :func:`smpc.mpc.one_hot.one_hot`."""
        return one_hot(self, size)

    # --- selections (smpc.mpc.selection) ---------------------------------------------------------------
    def max(self, axis=None, keepdims: bool = False) -> "SharedTensor":
        """The largest element along ``axis`` (None: all), by a tree of comparisons."""
        return selection.max(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims: bool = False) -> "SharedTensor":
        """Shared indices of the largest element (the first one on ties), as numpy.argmax."""
        return selection.argmax(self, axis=axis, keepdims=keepdims)

    # --- non-linear functions (smpc.mpc.functions: range, rounds and error in each docstring) ----------
    def exp(self, **options) -> "SharedTensor":
        """The exponential e^x; see :func:`smpc.mpc.functions.exp`."""
        return functions.exp(self, **options)

    def log(self, **options) -> "SharedTensor":
        """Natural logarithm; see :func:`smpc.mpc.functions.log`."""
        return functions.log(self, **options)

    def reciprocal(self, **options) -> "SharedTensor":
        """1 / x; see :func:`smpc.mpc.functions.reciprocal`."""
        return functions.reciprocal(self, **options)

    def sqrt(self, **options) -> "SharedTensor":
        """Square root; see :func:`smpc.mpc.functions.sqrt`."""
        return functions.sqrt(self, **options)

    def inv_sqrt(self, **options) -> "SharedTensor":
        """1 / sqrt(x); see :func:`smpc.mpc.functions.inv_sqrt`."""
        return functions.inv_sqrt(self, **options)

    def sigmoid(self, **options) -> "SharedTensor":
        """1 / (1 + e^-x); see :func:`smpc.mpc.functions.sigmoid`."""
        return functions.sigmoid(self, **options)

    def tanh(self, **options) -> "SharedTensor":
        """Hyperbolic tangent; see :func:`smpc.mpc.functions.tanh`."""
        return functions.tanh(self, **options)

    def softmax(self, axis: int = -1, **options) -> "SharedTensor":
        """Softmax along ``axis``; see :func:`smpc.mpc.functions.softmax`."""
        return functions.softmax(self, axis, **options)

    def log_softmax(self, axis: int = -1, **options) -> "SharedTensor":
        """Log-softmax along ``axis``; see :func:`smpc.mpc.functions.log_softmax`."""
        return functions.log_softmax(self, axis, **options)
