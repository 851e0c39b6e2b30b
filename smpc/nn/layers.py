"""Layers: the torch.nn names and parameter layouts, on numpy arrays, shared tensors and Variables.

Initialisation follows torch's defaults (uniform in +-1/sqrt(fan_in) for Linear and Conv2d weights and
biases) from a numpy Generator the caller may pass, so two parties can build identical models.
"""

from __future__ import annotations

import numpy as np

from smpc.nn import functional as F
from smpc.nn.module import Module


class _ZeroDraws:
    """Stands in for a numpy Generator while a model is built by :func:`skip_init`: every draw is zeros
    (np.zeros, whose pages the OS maps lazily), so building costs no random numbers."""

    def uniform(self, low=0.0, high=1.0, size=None) -> np.ndarray:
        return np.zeros(size)

    def normal(self, loc=0.0, scale=1.0, size=None) -> np.ndarray:
        return np.zeros(size)

    def random(self, size=None) -> np.ndarray:
        raise RuntimeError("this layer was built by skip_init and has no random generator for its dropout masks; "
                           "set its .rng to a numpy Generator seeded alike at every party")


def skip_init(factory, *args, **kwargs):
    """``factory(*args, **kwargs)`` with every weight zero instead of randomly initialised.

    For a party that only receives a model's weights (``model.share(party, src)``) or loads them
    (``load_state_dict``): ResNet-18 builds in milliseconds instead of a quarter of a second. The factory
    must take ``rng`` (every layer and model here does); like PyTorch's ``torch.nn.utils.skip_init``.
    """
    if "rng" in kwargs:
        raise TypeError("skip_init sets the weights itself; do not pass rng")
    return factory(*args, rng=_ZeroDraws(), **kwargs)


def _generator(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (np.random.Generator, _ZeroDraws)):
        return rng
    return np.random.default_rng(rng)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Linear(Module):
    """y = x W^T + b with W of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        gen = _generator(rng)
        bound = 1.0 / np.sqrt(in_features)
        self.register_parameter("weight", gen.uniform(-bound, bound, (out_features, in_features)))
        self.register_parameter("bias", gen.uniform(-bound, bound, out_features) if bias else None)

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input has {x.shape[-1]} features "
                             f"(shape {tuple(x.shape)})")
        return F.linear(x, self.param("weight", x), self.param("bias", x))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution with weight (out, in/groups, kh, kw), torch's layout and hyper-parameters."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, rng=None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.groups = _positive_int(groups, "groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        self.kernel_size = (_positive_int(kh, "kernel_size"), _positive_int(kw, "kernel_size"))
        self.stride, self.padding, self.dilation = stride, padding, dilation
        gen = _generator(rng)
        fan_in = in_channels // groups * kh * kw
        bound = 1.0 / np.sqrt(fan_in)
        self.register_parameter("weight", gen.uniform(-bound, bound, (out_channels, in_channels // groups, kh, kw)))
        self.register_parameter("bias", gen.uniform(-bound, bound, out_channels) if bias else None)

    def forward(self, x):
        if len(x.shape) != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d({self.in_channels}, {self.out_channels}): input must be (N, {self.in_channels}, "
                             f"H, W), got shape {tuple(x.shape)}")
        return F.conv2d(x, self.param("weight", x), self.param("bias", x), self.stride, self.padding,
                        self.dilation, self.groups)

    def extra_repr(self) -> str:
        dilation = "" if self.dilation in (1, (1, 1)) else f"dilation={self.dilation}, "
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, {dilation}groups={self.groups}, bias={self.bias is not None}")


class BatchNorm2d(Module):
    """Per-channel normalisation with learned scale and shift and running statistics (torch's keys).

    ``affine=False`` has no weight and bias (scale 1, shift 0), as torch's.
    """

    expected_dims = (4,)
    input_layout = "(N, C, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        self.eps, self.momentum, self.affine = float(eps), float(momentum), bool(affine)
        self.register_parameter("weight", np.ones(num_features) if affine else None)
        self.register_parameter("bias", np.zeros(num_features) if affine else None)
        self.register_buffer("running_mean", np.zeros(num_features))
        self.register_buffer("running_var", np.ones(num_features))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x):
        if len(x.shape) not in self.expected_dims or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): input must be "
                             f"{self.input_layout.replace('C', str(self.num_features))}, got shape {tuple(x.shape)}")
        if self.training:
            self._buffers["num_batches_tracked"] = self.num_batches_tracked + 1
        return F.batch_norm(x, self.running_mean, self.running_var, self.param("weight", x),
                            self.param("bias", x), self.training, self.momentum, self.eps)

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) with bn(x) = x * scale + shift in eval mode (plaintext values)."""
        gamma = np.asarray(self.weight.data) if self.affine else np.ones(self.num_features)
        beta = np.asarray(self.bias.data) if self.affine else np.zeros(self.num_features)
        scale = gamma / np.sqrt(self.running_var + self.eps)
        return scale, beta - self.running_mean * scale

    def _check_trains_when_shared(self) -> None:
        raise NotImplementedError(f"share(): a training-mode model with {type(self).__name__} cannot train on shared "
                                  "values; call eval() to share it for inference (BatchNorm gets folded)")

    def _folded_after(self, previous: Module) -> Module | None:
        """After a Conv2d: its weight rows scaled by s and its bias b * s + t (bn(x) = x * s + t, see
        :meth:`folded`); an Identity replaces this layer."""
        if not isinstance(previous, Conv2d):
            return None
        if previous.out_channels != self.num_features:
            raise ValueError(f"cannot fold {type(self).__name__}({self.num_features}) into a Conv2d with "
                             f"{previous.out_channels} outputs")
        scale, shift = self.folded()
        previous.weight.data = np.asarray(previous.weight.data) * scale.reshape(-1, 1, 1, 1)
        bias = shift if previous.bias is None else np.asarray(previous.bias.data) * scale + shift
        previous.register_parameter("bias", bias)
        return Identity().train(self.training)

    def _inference_replacement(self) -> Module:
        return ChannelAffine(*self.folded()).train(self.training)

    def extra_repr(self) -> str:
        affine = "" if self.affine else ", affine=False"
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}{affine}"


class BatchNorm1d(BatchNorm2d):
    """BatchNorm2d's computation over (N, C) or (N, C, L) inputs (torch.nn.BatchNorm1d's keys)."""

    expected_dims = (2, 3)
    input_layout = "(N, C) or (N, C, L)"


class ChannelAffine(Module):
    """x * scale + shift per channel (axis 1): an eval-mode BatchNorm with no convolution to fold into."""

    def __init__(self, scale, shift):
        super().__init__()
        self.register_parameter("scale", np.asarray(scale, dtype=np.float64))
        self.register_parameter("shift", np.asarray(shift, dtype=np.float64))

    def forward(self, x):
        view = (1, -1) + (1,) * (len(x.shape) - 2)
        return x * self.param("scale", x).reshape(view) + self.param("shift", x).reshape(view)


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class ReLU6(Module):
    def forward(self, x):
        return F.relu6(x)


class Hardsigmoid(Module):
    def forward(self, x):
        return F.hardsigmoid(x)


class Hardswish(Module):
    def forward(self, x):
        return F.hardswish(x)


class Identity(Module):
    def forward(self, x):
        return x


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)


class Flatten(Module):
    def __init__(self, start_dim: int = 1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim)


class Dropout(Module):
    """Dropout with a public mask from its own generator (seed it alike at every party)."""

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = _generator(rng)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... as in torch."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential takes Modules, got {type(module).__name__} at position {i}")
            setattr(self, str(i), module)

    def __iter__(self):
        return iter(self._modules.values())

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def _fold_candidates(self) -> tuple[tuple[str, str], ...]:
        names = list(self._modules)
        return tuple(zip(names[:-1], names[1:]))


class BasicBlock(Module):
    """ResNet's two-convolution residual block (He et al., CVPR 2016), torchvision's names and layout."""

    fold_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, in_planes: int, planes: int, stride: int = 1, rng=None):
        super().__init__()
        self.conv1 = Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False, rng=rng)
        self.bn1 = BatchNorm2d(planes)
        self.relu = ReLU()
        self.conv2 = Conv2d(planes, planes, 3, stride=1, padding=1, bias=False, rng=rng)
        self.bn2 = BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.downsample = Sequential(Conv2d(in_planes, planes, 1, stride=stride, bias=False, rng=rng),
                                         BatchNorm2d(planes))
        else:
            self.downsample = None

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)
