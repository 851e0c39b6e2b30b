"""Optimisers: SGD with momentum and weight decay (torch.optim.SGD's update), on plain or shared parameters."""

from __future__ import annotations

from typing import Iterable

from smpc.nn.autograd import Variable


class SGD:
    """p <- p - lr * v with v <- momentum * v + (grad + weight_decay * p) (v = that gradient when momentum = 0).

    On shared parameters every product with a public hyper-parameter is local plus one truncation.
    """

    def __init__(self, params: Iterable[Variable], lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("SGD got an empty parameter list")
        if not all(isinstance(p, Variable) for p in self.params):
            raise TypeError("SGD optimises Variables (a model's parameters())")
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr!r}")
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"momentum and weight_decay must be non-negative, got {momentum!r}, {weight_decay!r}")
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self._velocity: dict[int, object] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that received a gradient."""
        for p in self.params:
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay:
                g = g + p.data * self.weight_decay
            if self.momentum:
                v = self._velocity.get(id(p))
                v = g if v is None else v * self.momentum + g
                self._velocity[id(p)] = v
                g = v
            p.data = p.data - g * self.lr
