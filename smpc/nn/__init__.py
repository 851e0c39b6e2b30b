"""Neural networks on numpy arrays and shared tensors: autodiff, layers, losses, SGD, models.

The same model code runs in plaintext, on additive and on replicated (aby3) shared tensors:
``m = models.resnet18(num_classes=10); m.eval(); m(x)`` in plaintext, and inside a party program
``pm = m.share(party, src=0); pm(shared_x)`` for private inference.
"""

from smpc.nn import functional, models
from smpc.nn.autograd import Variable
from smpc.nn.layers import (AdaptiveAvgPool2d, AvgPool2d, BasicBlock, BatchNorm2d, ChannelAffine, Conv2d, Dropout,
                            Flatten, Identity, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, skip_init)
from smpc.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from smpc.nn.module import Module, StateDictError
from smpc.nn.optim import SGD
from smpc.nn.per_example import per_example_gradients
from smpc.nn.private import check_fixed_point_range, fold_batchnorm

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BCEWithLogitsLoss", "BasicBlock", "BatchNorm2d", "ChannelAffine", "Conv2d",
    "CrossEntropyLoss", "Dropout", "Flatten", "Identity", "Linear", "MSELoss", "MaxPool2d", "Module", "ReLU", "SGD",
    "Sequential", "Sigmoid", "StateDictError", "Variable", "check_fixed_point_range", "fold_batchnorm", "functional",
    "models", "per_example_gradients", "skip_init",
]
