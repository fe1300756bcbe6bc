"""Wide ResNet (Zagoruyko & Komodakis, 2016) for small images (32x32 in the paper).

WRN-d-k has depth ``d = 6n + 4`` (three groups of ``n`` pre-activation basic blocks, the
first conv and the classifier) and widths ``16, 16k, 32k, 64k``. WRN-40-4, the paper's
network, has 8.95M parameters.

Weights are initialised from an explicit ``torch.Generator`` (``build_wide_resnet``) and
dropout draws from one too, so a training run never touches torch's global RNG.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

from qan_env.validation import refuse


def check_depth(depth: int) -> int:
    """Blocks per group of a WRN of ``depth``; refuses a depth that is not 6n+4 with n >= 1."""
    if depth < 10 or (depth - 4) % 6 != 0:
        refuse(
            "depth", depth, "a Wide ResNet depth, 6n+4 with n >= 1 (10, 16, 22, 28, 34, 40, ...)"
        )
    return (depth - 4) // 6


class GeneratorDropout(nn.Module):
    """Dropout whose mask comes from a given ``torch.Generator`` (None: the global one)."""

    def __init__(self, p: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = p
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.p
        return x * keep / (1.0 - self.p)


class BasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3, plus the shortcut."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, dropout: nn.Module) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.dropout = dropout
        self.shortcut = None
        if in_planes != out_planes or stride != 1:
            self.shortcut = nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        # As in the reference code, a projection shortcut reads the pre-activated input.
        residual = x if self.shortcut is None else self.shortcut(activated)
        out = self.conv1(activated)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + residual


class WideResNet(nn.Module):
    """WRN-``depth``-``widen_factor`` with dropout inside each block."""

    def __init__(
        self,
        depth: int = 40,
        widen_factor: int = 4,
        dropout: float = 0.0,
        num_classes: int = 10,
        generator: torch.Generator | None = None,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        blocks_per_group = check_depth(depth)
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        groups = []
        for group, stride in enumerate((1, 2, 2)):
            blocks = [
                BasicBlock(
                    widths[group] if index == 0 else widths[group + 1],
                    widths[group + 1],
                    stride if index == 0 else 1,
                    GeneratorDropout(dropout, generator),
                )
                for index in range(blocks_per_group)
            ]
            groups.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = groups
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def initialize(model: nn.Module, generator: torch.Generator) -> None:
    """WRN initialisation from ``generator``: He-normal (fan-out) convs, BN 1/0, FC as torch.

    Every parameter and buffer is written, so a model built on the ``meta`` device and
    moved with ``to_empty`` is fully defined afterwards.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                module.reset_running_stats()
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                nn.init.uniform_(module.weight, -bound, bound, generator=generator)
                nn.init.zeros_(module.bias)


def build_wide_resnet(
    depth: int,
    widen_factor: int,
    dropout: float,
    init_generator: torch.Generator,
    dropout_generator: torch.Generator | None,
    device: torch.device | str = "cpu",
    num_classes: int = 10,
    in_channels: int = 3,
) -> WideResNet:
    """A freshly initialised WRN on ``device``, without touching the global RNG, for images
    of ``in_channels`` channels (any size) and ``num_classes`` classes.

    The weights are drawn on the CPU from ``init_generator``, so a seed gives the same
    initial network on every device.
    """
    with torch.device("meta"):
        model = WideResNet(
            depth, widen_factor, dropout, num_classes, dropout_generator, in_channels
        )
    model.to_empty(device="cpu")
    initialize(model, init_generator)
    return model.to(device)


@functools.lru_cache(maxsize=16)
def conv_layer_names(depth: int, widen_factor: int) -> tuple[str, ...]:
    """Module names of every conv layer of a WRN, in module order, without allocating it."""
    with torch.device("meta"):
        model = WideResNet(depth, widen_factor)
    return tuple(name for name, module in model.named_modules() if isinstance(module, nn.Conv2d))


def parameter_count(depth: int, widen_factor: int) -> int:
    """Parameters of WRN-``depth``-``widen_factor`` (10 classes, RGB), counted in closed
    form: no model is built, so a config can refuse a huge network at once."""
    blocks = check_depth(depth)
    widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
    count = 3 * 9 * widths[0]  # the first conv
    for group in range(3):
        in_width, out_width = widths[group], widths[group + 1]
        for index in range(blocks):
            width = in_width if index == 0 else out_width
            count += 2 * width + 9 * width * out_width  # bn1, conv1
            count += 2 * out_width + 9 * out_width * out_width  # bn2, conv2
            if width != out_width or (index == 0 and group > 0):
                count += width * out_width  # the 1x1 projection shortcut
    return count + 2 * widths[3] + 10 * widths[3] + 10  # the last bn and the classifier
