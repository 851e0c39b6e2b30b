"""Small PyTorch models (written with torch.nn) for the from_torch tests: the vision families' building blocks.

Importing this module imports torch; tests import it after ``pytest.importorskip("torch")``.
"""

import torch
from torch import nn
from torch.nn import functional as TF


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Random weights (torch.manual_seed) and non-trivial BatchNorm statistics and affine parameters; eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.uniform_(-(3 / fan_in) ** 0.5, (3 / fan_in) ** 0.5)  # unit-variance outputs
                if module.bias is not None:
                    module.bias.uniform_(-0.2, 0.2)
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(11)
                if module.affine:
                    module.weight.uniform_(0.7, 1.3)
                    module.bias.uniform_(-0.2, 0.2)
    return model.eval()


# --- a residual CNN with BatchNorm (ResNet's BasicBlock) ----------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResidualCNN(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


# --- depthwise-separable blocks with squeeze-and-excitation, hardswish and hardsigmoid (MobileNetV3) ---------
class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
        return scale * x


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, expanded: int, cout: int, kernel: int, stride: int, dilation: int = 1,
                 activation=nn.Hardswish, se: bool = True):
        super().__init__()
        self.use_residual = stride == 1 and cin == cout
        pad = (kernel - 1) // 2 * dilation
        layers = [nn.Conv2d(cin, expanded, 1, bias=False), nn.BatchNorm2d(expanded), activation(),
                  nn.Conv2d(expanded, expanded, kernel, stride=stride, padding=pad, dilation=dilation,
                            groups=expanded, bias=False),
                  nn.BatchNorm2d(expanded), activation()]
        if se:
            layers.append(SqueezeExcitation(expanded, max(expanded // 4, 4)))
        layers += [nn.Conv2d(expanded, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        out = self.block(x)
        return out + x if self.use_residual else out


class MobileSE(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.Hardswish()),
            InvertedResidual(8, 16, 8, 3, 1, activation=nn.ReLU6, se=False),
            InvertedResidual(8, 24, 12, 5, 2),
            InvertedResidual(12, 24, 12, 3, 1, dilation=2),
        )
        self.head = nn.Sequential(nn.Linear(12, 32), nn.Hardswish(inplace=True), nn.Dropout(0.2),
                                  nn.Linear(32, num_classes))

    def forward(self, x):
        x = self.features(x)
        return self.head(x.mean((2, 3)))


# --- DenseNet: every layer's output concatenated to its input -----------------------------------------------
class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(2 * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.Module):
    def __init__(self, layers: int, cin: int, growth: int):
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(cin + i * growth, growth) for i in range(layers))

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.AvgPool2d(2, stride=2))


class TinyDenseNet(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            DenseBlock(2, 8, 4), Transition(16, 8), DenseBlock(2, 8, 4), nn.BatchNorm2d(16),
        )
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x):
        x = TF.relu(self.features(x))
        x = TF.adaptive_avg_pool2d(x, (1, 1)).view(x.size(0), -1)
        return self.classifier(x)


# --- ShuffleNetV2: channel split, branches, concatenation and channel shuffle ----------------------------------
def channel_shuffle(x, groups: int):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, -1, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        branch = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        inner = cin if stride > 1 else branch
        self.branch2 = nn.Sequential(
            nn.Conv2d(inner, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride=stride, padding=1, groups=branch, bias=False), nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class TinyShuffleNet(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 8, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(8),
                                   nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stage2 = nn.Sequential(ShuffleUnit(8, 16, 2), ShuffleUnit(16, 16, 1))
        self.stage3 = nn.Sequential(ShuffleUnit(16, 24, 2), ShuffleUnit(24, 24, 1))
        self.shuffle = nn.ChannelShuffle(3)
        self.conv5 = nn.Sequential(nn.Conv2d(24, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.stage3(self.stage2(x))
        left, middle, right = torch.split(self.shuffle(x), [8, 8, 8], dim=1)
        x = self.conv5(torch.cat([right, middle, left], 1))
        return self.fc(x.mean([2, 3]))


# --- the remaining ops of this increment, in one model ----------------------------------------------------------
class OpsZoo(nn.Module):
    """Shapes, slicing, arithmetic with constants, buffers and parameters, comparisons, matmuls, BatchNorm1d."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.1, -0.2, 0.3]).view(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor(0.5), persistent=False)
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=2, dilation=2)
        self.conv_valid = nn.Conv2d(6, 6, 2, padding=0, groups=3)
        self.conv_same = nn.Conv2d(6, 4, 3, padding="same")
        self.gain = nn.Parameter(torch.linspace(0.5, 1.5, 4).view(1, 4, 1, 1))
        self.mixer = nn.Parameter(torch.randn(4, 4, generator=torch.Generator().manual_seed(0)) / 2)
        self.pool = nn.AvgPool2d(2, stride=1, padding=1)
        self.norm = nn.BatchNorm1d(8)
        self.proj = nn.Linear(4, 8)
        self.out = nn.Linear(16, 5, bias=False)

    def forward(self, x):
        x = (x - self.mean) / 2.0
        x = TF.relu6(self.conv(x))                                         # (N, 6, 8, 8)
        x = self.conv_valid(x)                                             # (N, 6, 7, 7)
        x = self.conv_same(TF.pad(x, (0, 1, 0, 1)))                        # (N, 4, 8, 8)
        x = torch.where(x > 0, x, 0.1 * x) * self.gain
        x = torch.clamp(x, min=-1.0) + torch.clamp(x, max=0.5) - self.shift
        x = self.pool(x)[:, :, 1:, 1::2]                                   # (N, 4, 8, 4)
        t = x.permute(0, 2, 3, 1)                                          # (N, 8, 4, 4)
        t = torch.sigmoid(t @ self.mixer) + torch.tanh(t).transpose(2, 3)
        y = torch.maximum(t.mean(dim=2), t.amax(dim=2) / 2)                # (N, 8, 4)
        y = self.proj(y)                                                   # (N, 8, 8) linear on a 3-D tensor
        y = y + 0.1 * torch.bmm(y, y.transpose(1, 2))                      # a product of two shared tensors
        y = self.norm(y.transpose(1, 2)).transpose(1, 2)                   # BatchNorm1d on (N, C, L)
        first, second = y.unbind(1)[:2]
        z = torch.cat([first, second], dim=-1).unsqueeze(1).squeeze(1)     # (N, 16)
        z = z + torch.arange(16, dtype=z.dtype) / 16 - 3.0 / (TF.relu(z) + 1.0)
        z = torch.addmm(torch.ones(16), z, torch.eye(16) * 0.5) + z.select(0, 0).expand_as(z)
        z = torch.rsub(z, 1.0, alpha=0.5) + torch.sub(z, z[:, :1], alpha=2)
        logits = self.out(z)
        return TF.softmax(logits, dim=-1), TF.log_softmax(logits, dim=1)


# --- models that must be refused ------------------------------------------------------------------------------
class WithGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.blocks = nn.Sequential(nn.GELU(), nn.Conv2d(4, 4, 1), nn.GELU())
        self.norm = nn.LayerNorm(4)
        self.act = nn.SiLU()
        self.pool = nn.AvgPool2d(3, padding=1, count_include_pad=False)

    def forward(self, x):
        x = self.pool(self.blocks(self.conv(x)))
        x = self.norm(x.permute(0, 2, 3, 1))
        return self.act(x).mean((1, 2))


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        if y.sum() > 0:
            return y * 2
        return y


class TwoInputs(nn.Module):
    """Two inputs (an image and a feature vector), two outputs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 + 5, 3)

    def forward(self, image, features):
        pooled = TF.adaptive_avg_pool2d(TF.relu(self.bn(self.conv(image))), 1).flatten(1)
        logits = self.fc(torch.cat([pooled, features], dim=1))
        return logits, torch.sigmoid(logits)


class SharedConvOutput(nn.Module):
    """A convolution whose output feeds a BatchNorm and a skip connection: folding would be wrong here."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y
