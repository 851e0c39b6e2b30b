"""Per-example gradients of a plaintext model, the input DP-SGD needs (Abadi et al., CCS 2016, Algorithm 1).

The tape computes the gradient of one scalar; a per-example gradient is the gradient of one example's
loss. This runs one backward pass per example (simple and exact; fine for the small models DP-SGD
trains here, O(batch) passes).
"""

from __future__ import annotations

import numpy as np

from smpc.nn.autograd import Variable
from smpc.nn.module import Module


def per_example_gradients(model: Module, loss_fn, x: np.ndarray, targets: np.ndarray) -> list[np.ndarray]:
    """One array per parameter (``model.parameters()`` order), each (examples, *parameter shape).

    ``loss_fn(output, target)`` is called on each example alone (a batch of one), so a mean-reducing
    loss gives that example's loss. The model's own ``grad`` fields are left cleared.
    """
    x, targets = np.asarray(x), np.asarray(targets)
    if x.shape[0] != targets.shape[0]:
        raise ValueError(f"per_example_gradients: {x.shape[0]} inputs but {targets.shape[0]} targets")
    params = model.parameters()
    out = [np.zeros((x.shape[0], *p.shape)) for p in params]
    for i in range(x.shape[0]):
        model.zero_grad()
        loss_fn(model(Variable(x[i:i + 1])), targets[i:i + 1]).backward()
        for k, p in enumerate(params):
            if p.grad is not None:
                out[k][i] = p.grad
    model.zero_grad()
    return out
