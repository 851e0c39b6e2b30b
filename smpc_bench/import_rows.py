"""Bench rows for "bring your own model": PyTorch models converted by :func:`smpc.nn.from_torch`.

Three rows, all 2-party additive (trusted dealer) where a private run is made:

* a MobileNetV2-like network (MobileNetV2's layout at width ``MOBILENET_WIDTH``: inverted residual blocks,
  depthwise convolutions, BatchNorm, ReLU6, hardswish before the classifier): conversion time, then private
  inference timed as the ResNet-18 rows are (sharing the model to revealing the logits; median over
  ``repeat``), offline/online split, bytes, rounds (and their theory from :mod:`smpc.mpc.cost`), the
  error relative to torch's float32 logits and whether the argmax agrees; the ratio is to torch's float32
  forward pass;
* ResNet-18 written with torch.nn (torchvision's module names) converted, against the built-in
  :func:`smpc.nn.models.resnet18` carrying the same weights, run alternately in the same process: the
  ratio imported / built-in;
* the conversion time of a ResNet-50-sized model (bottleneck blocks [3, 4, 6, 3]), no private run.

PyTorch is optional: without it the case yields one row that says it was skipped. Every torch class is
defined on first use, so importing this module never imports torch.
"""

from __future__ import annotations

import functools
import time

import numpy as np

import smpc
from smpc.nn import models
from smpc.mpc.cost import cost
from smpc_bench.nn_rows import realistic_resnet18
from smpc_bench.timing import spread, timed

GROUP = "imported models"
MOBILENET_WIDTH = 1.0
RELATIVE_ERROR_BOUND = 2e-2  # the importer's tests hold converted models to 2e-2 of torch, relative
CONVERSION_TARGET = 5.0  # seconds, ResNet-50 through from_torch
RATIO_TARGET = 1.10  # imported / built-in ResNet-18


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _architectures():
    """The torch.nn classes of the rows (defined here so that torch is imported only when they are needed)."""
    import torch
    from torch import nn

    def divisible(value: float, by: int = 8) -> int:
        rounded = max(by, int(value + by / 2) // by * by)
        return rounded + by if rounded < 0.9 * value else rounded

    class ConvBN(nn.Sequential):
        def __init__(self, cin, cout, kernel=3, stride=1, groups=1, act=nn.ReLU6):
            layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                      nn.BatchNorm2d(cout)]
            if act is not None:
                layers.append(act(inplace=True))
            super().__init__(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            self.use_residual = stride == 1 and cin == cout
            layers = [] if expand == 1 else [ConvBN(cin, hidden, 1)]
            layers += [ConvBN(hidden, hidden, 3, stride, groups=hidden), ConvBN(hidden, cout, 1, act=None)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_residual else self.conv(x)

    class MobileNetV2Like(nn.Module):
        """MobileNetV2's layout (t, c, n, s) with a width multiplier, hardswish in the last 1x1 convolution."""

        SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                    (6, 320, 1, 1)]

        def __init__(self, width=MOBILENET_WIDTH, num_classes=1000, last=1280):
            super().__init__()
            cin = divisible(32 * width)
            features = [ConvBN(3, cin, 3, 2)]
            for expand, channels, count, stride in self.SETTINGS:
                cout = divisible(channels * width)
                for index in range(count):
                    features.append(InvertedResidual(cin, cout, stride if index == 0 else 1, expand))
                    cin = cout
            self.last_channels = divisible(last * max(1.0, width))
            features.append(ConvBN(cin, self.last_channels, 1, act=nn.Hardswish))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channels, num_classes))

        def forward(self, x):
            x = self.features(x)
            x = nn.functional.adaptive_avg_pool2d(x, 1)
            return self.classifier(torch.flatten(x, 1))

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, cin, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        """torchvision's ResNet layout and state-dict keys."""

        def __init__(self, block, layers, num_classes=1000):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._layer(block, 64, layers[0], 1)
            self.layer2 = self._layer(block, 128, layers[1], 2)
            self.layer3 = self._layer(block, 256, layers[2], 2)
            self.layer4 = self._layer(block, 512, layers[3], 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * block.expansion, num_classes)

        def _layer(self, block, planes, count, stride):
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                           nn.BatchNorm2d(planes * block.expansion))
            blocks = [block(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * block.expansion
            blocks += [block(self.inplanes, planes) for _ in range(1, count)]
            return nn.Sequential(*blocks)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return {"mobilenet": MobileNetV2Like, "resnet18": lambda num_classes=1000: ResNet(BasicBlock, [2, 2, 2, 2],
                                                                                      num_classes),
            "resnet50": lambda num_classes=1000: ResNet(Bottleneck, [3, 4, 6, 3], num_classes)}


def _randomized(model, seed: int):
    """Random weights with unit-variance outputs and BatchNorm statistics away from the identity; eval mode."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                bound = (3 / module.weight[0].numel()) ** 0.5
                module.weight.copy_((torch.rand(module.weight.shape, generator=generator) * 2 - 1) * bound)
                if module.bias is not None:
                    module.bias.copy_((torch.rand(module.bias.shape, generator=generator) * 2 - 1) * 0.1)
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=generator))
                module.bias.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(c, generator=generator))
    return model.eval()


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def _converted(torch_model, x: np.ndarray, repeat: int):
    """``from_torch`` timed ``repeat`` times (verification on, the default); the spread and the last model."""
    import torch

    example = (torch.from_numpy(x.astype(np.float32)),)
    seconds, converted = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        converted = smpc.nn.from_torch(torch_model, example)
        seconds.append(time.perf_counter() - start)
    return spread(seconds), converted


def _torch_logits(torch_model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch_model(torch.from_numpy(x.astype(np.float32))).numpy().astype(np.float64)


def _private_program(owner_model, other_model, x: np.ndarray):
    """As :func:`smpc_bench.nn_rows.inference_program` (party 0 the weights, party 1 the image, all timed), the
    forward pass alone timed too. ``other_model``: the model of the other parties, or a callable making it."""

    def program(party):
        start = time.perf_counter()
        model = owner_model if party.rank == 0 else other_model
        model = model() if callable(model) and not isinstance(model, smpc.nn.Module) else model
        shared_model = model.share(party, src=0)
        shared_x = party.share(x if party.rank == 1 else None, src=1)
        party.reset_stats()
        begin = time.perf_counter()
        logits = shared_model(shared_x)
        forward = party.stats
        forward["forward"] = time.perf_counter() - begin
        out = logits.reveal(to=1)
        forward["wall"] = time.perf_counter() - start
        return out, forward

    return program


def _builtin_program(model: models.ResNet, x: np.ndarray):
    """The built-in ResNet-18 as :func:`smpc_bench.nn_rows.inference_program` runs it (the other parties hold
    an uninitialised copy), with the forward pass timed alone."""
    classes = model.fc.out_features
    return _private_program(model, lambda: smpc.nn.skip_init(models.resnet18, num_classes=classes).eval(), x)


class _Runs:
    """Private runs of one program: total (slowest party), dealer's offline, online, and the last report."""

    def __init__(self):
        self.totals, self.offline, self.online, self.forward, self.last = [], [], [], [], None

    def add(self, program, parties: int = 2, protocol: str = "additive") -> None:
        report = smpc.launch(program, parties=parties, protocol=protocol, timeout=600)
        self.totals.append(max(stats["wall"] for _, stats in report.results))
        self.offline.append(report.dealer_stats["offline_seconds"] if report.dealer_stats else 0.0)
        self.online.append(max(stats["wall"] - stats["offline_seconds"] for _, stats in report.results))
        self.forward.append(max(stats["forward"] for _, stats in report.results))
        self.last = report

    def fields(self) -> dict:
        return {"seconds": spread(self.totals), "offline_seconds": spread(self.offline),
                "online_seconds": spread(self.online), "forward_seconds": spread(self.forward),
                "bytes_per_party": max(stats["bytes_sent"] for _, stats in self.last.results),
                "rounds": max(stats["rounds"] for _, stats in self.last.results)}

    def logits(self) -> np.ndarray:
        return self.last.results[1][0]


def _theory(model, shape, protocol: str = "additive", parties: int = 2) -> dict:
    """Bytes and rounds of the forward pass on cost tensors (BatchNorm folded, as ``share`` does)."""
    folded = smpc.nn.fold_batchnorm(model.copy())

    def forward(x):
        for _, p in folded.named_parameters():
            p.data = type(x)(x.party, (np.zeros(p.shape, np.uint64),), x.frac_bits)
        folded(x)

    return cost(forward, [shape], protocol, parties)


def _error_fields(logits: np.ndarray, reference: np.ndarray) -> dict:
    error = _relative_error(logits, reference)
    agree = bool(np.array_equal(logits.argmax(axis=-1), reference.argmax(axis=-1)))
    return {"max_error": error, "error_bound": RELATIVE_ERROR_BOUND, "error_kind": "max |smpc - torch| / max |torch|",
            "argmax_agrees": agree, "within_bound": error <= RELATIVE_ERROR_BOUND and agree}


def mobilenet_row(size: int, repeat: int, conversions: int, width: float = MOBILENET_WIDTH) -> dict:
    """A MobileNetV2-like network (width ``width``) converted and run privately on one 3 x size x size image."""
    torch_model = _randomized(_architectures()["mobilenet"](width), seed=11)
    x = np.random.default_rng(12).standard_normal((1, 3, size, size))
    conversion, converted = _converted(torch_model, x, conversions)
    reference = _torch_logits(torch_model, x)
    plain, _ = timed(lambda: _torch_logits(torch_model, x), repeat, warmup=True)
    runs = _Runs()
    for _ in range(repeat):
        runs.add(_private_program(converted, converted, x))
    fields = runs.fields()
    theory = _theory(converted, x.shape)
    parameters = sum(p.numel() for p in torch_model.parameters())
    return {"group": GROUP, "name": f"MobileNetV2-like (width {width}, {parameters / 1e6:.2f} M parameters) via "
                                    f"from_torch, 1x3x{size}x{size}, 2-party additive (trusted dealer)",
            **fields, "ratio": fields["seconds"]["median"] / plain["median"], "ratio_to": "PyTorch float32",
            "torch_seconds": plain, "conversion_seconds": conversion, "bytes_theory": theory["bytes"],
            "rounds_theory": theory["rounds"],
            "parameters": parameters, **_error_fields(runs.logits(), reference)}


def _torch_resnet18_like(model: models.ResNet):
    """The torch.nn ResNet-18 carrying ``model``'s weights (the same state-dict keys)."""
    import torch

    torch_model = _architectures()["resnet18"](model.fc.out_features)
    state = {k: torch.tensor(np.asarray(v, dtype=np.float32 if np.asarray(v).dtype.kind == "f" else np.int64))
             for k, v in model.state_dict().items()}
    torch_model.load_state_dict(state)
    return torch_model.eval()


def resnet18_comparison_row(size: int, repeat: int) -> dict:
    """ResNet-18 converted from torch against the built-in one with the same weights, runs alternating."""
    builtin = realistic_resnet18()
    torch_model = _torch_resnet18_like(builtin)
    x = np.random.default_rng(2).standard_normal((1, 3, size, size))
    conversion, converted = _converted(torch_model, x, 1)
    reference = _torch_logits(torch_model, x)
    imported_runs, builtin_runs = _Runs(), _Runs()
    for program in (_private_program(converted, converted, x), _builtin_program(builtin, x)):
        _Runs().add(program)  # untimed warm-up of each: first-touch pages and lazy set-up land in neither
    for index in range(repeat):  # alternate (and swap the order each time) so drift hits both alike
        pair = [(imported_runs, _private_program(converted, converted, x)),
                (builtin_runs, _builtin_program(builtin, x))]
        for runs, program in pair if index % 2 == 0 else pair[::-1]:
            runs.add(program)
    fields, other = imported_runs.fields(), builtin_runs.fields()
    theory = _theory(converted, x.shape)
    ratio = fields["seconds"]["median"] / other["seconds"]["median"]
    return {"group": GROUP, "name": f"ResNet-18 via from_torch vs built-in resnet18 (same weights), 1x3x{size}x{size},"
                                    f" 2-party additive (trusted dealer)",
            **fields, "ratio": ratio, "ratio_to": "built-in", "ratio_target": RATIO_TARGET,
            "ratio_of_minimums": fields["seconds"]["min"] / other["seconds"]["min"],
            "forward_ratio": fields["forward_seconds"]["median"] / other["forward_seconds"]["median"],
            "builtin_seconds": other["seconds"], "builtin_forward_seconds": other["forward_seconds"],
            "builtin_offline_seconds": other["offline_seconds"],
            "builtin_online_seconds": other["online_seconds"], "builtin_bytes_per_party": other["bytes_per_party"],
            "builtin_rounds": other["rounds"], "conversion_seconds": conversion,
            "bytes_theory": theory["bytes"], "rounds_theory": theory["rounds"],
            "builtin_max_error": _relative_error(builtin_runs.logits(), reference),
            **_error_fields(imported_runs.logits(), reference)}


def resnet50_conversion_row(size: int, conversions: int) -> dict:
    """``from_torch`` of a ResNet-50-sized model (verification on, and off), no private run."""
    import torch

    torch_model = _randomized(_architectures()["resnet50"](), seed=21)
    x = np.random.default_rng(22).standard_normal((1, 3, size, size))
    conversion, converted = _converted(torch_model, x, conversions)
    example = (torch.from_numpy(x.astype(np.float32)),)
    unverified = []
    for _ in range(conversions):
        start = time.perf_counter()
        smpc.nn.from_torch(torch_model, example, verify=False)
        unverified.append(time.perf_counter() - start)
    parameters = sum(p.numel() for p in torch_model.parameters())
    return {"group": GROUP, "name": f"ResNet-50-sized ({parameters / 1e6:.1f} M parameters) from_torch conversion, "
                                    f"1x3x{size}x{size} example, no private run",
            "seconds": conversion, "ratio": conversion["median"] / CONVERSION_TARGET,
            "ratio_to": f"{CONVERSION_TARGET:.0f} s target", "seconds_without_verify": spread(unverified),
            "conversion_target_seconds": CONVERSION_TARGET, "within_target": conversion["median"] < CONVERSION_TARGET,
            "steps": len(converted.steps) if hasattr(converted, "steps") else None, "parameters": parameters}


def skipped_row(reason: str) -> dict:
    return {"group": GROUP, "name": f"imported models: skipped ({reason})", "skipped": reason,
            "seconds": {"median": 0.0, "min": 0.0, "max": 0.0}, "ratio": 0.0, "ratio_to": "skipped"}


def import_rows(size: int, repeat: int, conversions: int | None = None) -> list[dict]:
    """The three rows at image side ``size`` (MobileNet, ResNet-18; ResNet-50's example too), or one skipped row.

    Private runs are repeated ``repeat`` times, conversions ``conversions`` times (default ``repeat``).
    """
    if not torch_available():
        return [skipped_row('PyTorch is not installed: pip install "smpc-numpy[torch]"')]
    conversions = repeat if conversions is None else max(1, min(conversions, repeat))
    return [mobilenet_row(size, repeat, conversions), resnet18_comparison_row(size, repeat),
            resnet50_conversion_row(size, conversions)]
