"""The bilinear ring operations Beaver triples exist for: element-wise product, matmul, conv2d.

One :class:`Bilinear` value names an operation and its parameters; it applies the op
on ring elements, predicts output shapes, and travels to the dealer as a few integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc.ring import conv2d, conv2d_output_shape, matmul
from smpc.ring.arith import wrapping

MUL, MATMUL, CONV2D = 1, 2, 3
_NAMES = {MUL: "mul", MATMUL: "matmul", CONV2D: "conv2d"}


@dataclass(frozen=True)
class Bilinear:
    """A bilinear op on Z_2^64 arrays; ``params`` are conv2d's (stride, padding, dilation, groups)."""

    code: int
    params: tuple[int, ...] = ()

    @classmethod
    def conv2d(cls, stride=1, padding=0, dilation=1, groups=1) -> "Bilinear":
        """The conv2d op with the given hyper-parameters (ints or pairs)."""
        sh, sw = _pair(stride)
        ph, pw = _pair(padding)
        dh, dw = _pair(dilation)
        return cls(CONV2D, (sh, sw, ph, pw, dh, dw, int(groups)))

    @property
    def name(self) -> str:
        return _NAMES[self.code]

    @wrapping
    def apply(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``op(x, y)`` in the ring."""
        if self.code == MUL:
            return x * y
        if self.code == MATMUL:
            return matmul(x, y)
        return conv2d(x, y, **self._conv_kwargs())

    def output_shape(self, shape_x: tuple, shape_y: tuple) -> tuple[int, ...]:
        """The shape of ``op(x, y)``; raises ``ValueError`` for incompatible shapes."""
        if self.code == MUL:
            return tuple(np.broadcast_shapes(shape_x, shape_y))
        if self.code == MATMUL:
            return _matmul_shape(tuple(shape_x), tuple(shape_y))
        return tuple(conv2d_output_shape(shape_x, shape_y, **self._conv_kwargs()))

    def _conv_kwargs(self) -> dict:
        sh, sw, ph, pw, dh, dw, groups = self.params
        return {"stride": (sh, sw), "padding": (ph, pw), "dilation": (dh, dw), "groups": groups}

    def encode(self) -> list[int]:
        """The op as integers (code, number of params, params)."""
        return [self.code, len(self.params), *self.params]

    @classmethod
    def decode(cls, values: list[int]) -> tuple["Bilinear", list[int]]:
        """Parse :meth:`encode`'s output from the front of ``values``; return the rest too."""
        if len(values) < 2 or values[0] not in _NAMES:
            raise ValueError("malformed bilinear op")
        count = values[1]
        expected = 7 if values[0] == CONV2D else 0
        if count != expected or len(values) < 2 + count:
            raise ValueError(f"malformed parameters for {_NAMES[values[0]]}")
        return cls(values[0], tuple(values[2 : 2 + count])), values[2 + count :]


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def _matmul_shape(sx: tuple, sy: tuple) -> tuple[int, ...]:
    if not sx or not sy:
        raise ValueError("matmul: operands must have at least one dimension")
    ax = (1, *sx) if len(sx) == 1 else sx
    ay = (*sy, 1) if len(sy) == 1 else sy
    if ax[-1] != ay[-2]:
        raise ValueError(f"matmul: shapes {sx} and {sy} do not align ({ax[-1]} != {ay[-2]})")
    batch = tuple(np.broadcast_shapes(ax[:-2], ay[:-2]))
    out = (*batch, ax[-2], ay[-1])
    if len(sx) == 1:
        out = out[:-2] + out[-1:]
    if len(sy) == 1:
        out = out[:-1]
    return out
