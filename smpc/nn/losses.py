"""Loss modules (torch.nn names): mean squared error, softmax cross-entropy, binary cross-entropy on logits."""

from __future__ import annotations

from smpc.nn import functional as F
from smpc.nn.module import Module


class MSELoss(Module):
    """mean((prediction - target)^2)."""

    def __call__(self, prediction, target):
        return F.mse_loss(prediction, target)


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of (N, C) logits against labels (N,) or class probabilities (N, C)."""

    def __call__(self, logits, target):
        return F.cross_entropy(logits, target)


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], computed from the logits."""

    def __call__(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target)
