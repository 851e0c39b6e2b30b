"""Neural networks on numpy arrays and shared tensors: autodiff, layers, losses, SGD, models.

The same model code runs in plaintext, on additive and on replicated (aby3) shared tensors:
``m = models.resnet18(num_classes=10); m.eval(); m(x)`` in plaintext, and inside a party program
``pm = m.share(party, src=0); pm(shared_x)`` for private inference. ``from_torch(torch_model, (x,))``
converts a PyTorch model (torch is imported only then), ``from_onnx("model.onnx")`` an ONNX one (onnx is
imported only then).
"""

from smpc.nn import functional, models
from smpc.nn.autograd import Variable
from smpc.nn.importers import GraphModule, UnsupportedModelError, from_onnx, from_torch, share_tokens
from smpc.nn.layers import (AdaptiveAvgPool2d, AvgPool2d, BasicBlock, BatchNorm1d, BatchNorm2d, ChannelAffine, Conv2d,
                            Dropout, Flatten, Hardsigmoid, Hardswish, Identity, Linear, MaxPool2d, ReLU, ReLU6,
                            Sequential, Sigmoid, Tanh, skip_init)
from smpc.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from smpc.nn.module import Module, Parameter, StateDictError, fold_batchnorm
from smpc.nn.optim import SGD
from smpc.nn.per_example import per_example_gradients
from smpc.nn.private import check_fixed_point_range
from smpc.nn.transformer import GELU, Embedding, LayerNorm, MultiheadAttention, SiLU

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BCEWithLogitsLoss", "BasicBlock", "BatchNorm1d", "BatchNorm2d", "ChannelAffine",
    "Conv2d", "CrossEntropyLoss", "Dropout", "Flatten", "GraphModule", "Hardsigmoid", "Hardswish", "Identity", "Linear",
    "MSELoss", "MaxPool2d", "Module", "Parameter", "ReLU", "ReLU6", "SGD", "Sequential", "Sigmoid", "StateDictError",
    "Tanh", "UnsupportedModelError", "Variable", "check_fixed_point_range", "fold_batchnorm", "from_onnx", "from_torch",
    "functional", "models", "per_example_gradients", "share_tokens", "skip_init",
    "Embedding", "GELU", "LayerNorm", "MultiheadAttention", "SiLU",
]
