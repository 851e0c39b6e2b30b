"""Ready-made models: logistic regression, an MLP, a LeNet-style CNN and ResNet-18 (torchvision's keys)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from smpc.nn.layers import (AdaptiveAvgPool2d, AvgPool2d, BasicBlock, BatchNorm2d, Conv2d, Flatten, Linear,
                            MaxPool2d, ReLU, Sequential, _generator)
from smpc.nn.module import Module


def logistic_regression(num_features: int, rng=None) -> Sequential:
    """One Linear(num_features, 1) layer: its output is the logit (pair it with BCEWithLogitsLoss)."""
    return Sequential(Linear(num_features, 1, rng=_generator(rng)))


def mlp(sizes: Sequence[int], rng=None) -> Sequential:
    """Linear layers of the given widths ``[inputs, hidden..., outputs]`` with ReLU between them."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {sizes}")
    gen = _generator(rng)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(fan_in, fan_out, rng=gen))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Sequential(*layers)


def lenet(num_classes: int = 10, in_channels: int = 1, input_size: int = 28, rng=None) -> Sequential:
    """LeNet-5 style (LeCun et al. 1998): two 5x5 convolutions with ReLU and 2x2 average pooling, then
    three Linear layers. Inputs smaller than 16 pixels (the 8x8 digits) pad the second convolution."""
    gen = _generator(rng)
    pad2 = 2 if input_size < 16 else 0
    size = (input_size // 2 + 2 * pad2 - 4) // 2
    if size < 1:
        raise ValueError(f"lenet: input_size {input_size} is too small")
    return Sequential(
        Conv2d(in_channels, 6, 5, padding=2, rng=gen), ReLU(), AvgPool2d(2),
        Conv2d(6, 16, 5, padding=pad2, rng=gen), ReLU(), AvgPool2d(2),
        Flatten(),
        Linear(16 * size * size, 120, rng=gen), ReLU(),
        Linear(120, 84, rng=gen), ReLU(),
        Linear(84, num_classes, rng=gen),
    )


class ResNet(Module):
    """ResNet with BasicBlocks (He et al., CVPR 2016); attribute names follow torchvision, so a
    torchvision state_dict exported as numpy arrays loads unchanged."""

    fold_pairs = (("conv1", "bn1"),)

    def __init__(self, layers: Sequence[int] = (2, 2, 2, 2), num_classes: int = 1000, rng=None):
        super().__init__()
        gen = _generator(rng)
        self.conv1 = Conv2d(3, 64, 7, stride=2, padding=3, bias=False, rng=gen)
        self.bn1 = BatchNorm2d(64)
        self.relu = ReLU()
        self.maxpool = MaxPool2d(3, stride=2, padding=1)
        planes_in = 64
        for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if index == 0 else 2
            stage = []
            for b in range(blocks):
                stage.append(BasicBlock(planes_in, planes, stride if b == 0 else 1, rng=gen))
                planes_in = planes
            setattr(self, f"layer{index + 1}", Sequential(*stage))
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc = Linear(512, num_classes, rng=gen)
        _kaiming_convs(self, gen)

    def forward(self, x):
        if len(x.shape) != 4 or x.shape[1] != 3:
            raise ValueError(f"ResNet: input must be (N, 3, H, W), got shape {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        return self.fc(x.reshape(x.shape[0], -1))


def resnet18(num_classes: int = 1000, rng=None) -> ResNet:
    """ResNet-18 for 3xHxW inputs (224x224 in ImageNet use); random weights (no download)."""
    return ResNet((2, 2, 2, 2), num_classes, rng)


def _kaiming_convs(model: Module, gen: np.random.Generator) -> None:
    """Convolution weights ~ N(0, 2 / fan_out), torchvision's ResNet initialisation."""
    for _, module in model.named_modules():
        if isinstance(module, Conv2d):
            o, _, kh, kw = module.weight.shape
            module.weight.data = gen.normal(0.0, np.sqrt(2.0 / (o * kh * kw)), module.weight.shape)
