"""Residual networks (He, Zhang, Ren & Sun 2015), family ``"resnet"``.

``ResidualBlock`` is the lectures' block: 3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus
the input (through an optional 1x1 projection ``conv3`` when the shape changes), then
ReLU. Two details differ from the lecture's code so that the model is *identical* to
torchvision's ``resnet18`` and its weights transfer one to one:

* the convolutions have no bias (each is followed by BatchNorm, whose shift makes a bias
  redundant), and the projection is a 1x1 convolution followed by its own BatchNorm
  (torchvision's ``downsample``), registered after ``bn2`` so that the state dicts list
  their tensors in the same order;
* BatchNorm keeps PyTorch's default ``eps=1e-5``, as torchvision's ResNet (and the
  original Caffe/Torch ResNets) do -- not ``zoolib.layers.BN_EPS`` (1e-3), which is the
  TensorFlow value of the Inception family.

``resnet18`` is the 18-layer column of the paper's Table 1: a 7x7/2 stem with a 3x3/2
max-pool, four stages of two blocks with 64, 128, 256 and 512 channels (each stage after
the first halves the resolution in its first block), global average pooling and one dense
layer. At 224x224 the stages give 64x56x56, 128x28x28, 256x14x14 and 512x7x7.
11,689,512 parameters with 1000 classes.

``cifar_resnet`` is the paper's other family (Sec. 4.2): the networks it uses to compare plain
and residual stacks of equal depth. A 3x3 stem of 16 channels, three stages of ``n`` blocks on
16, 32 and 64 channels (the second and third halve the grid), global average pooling and one
dense layer: ``6n + 2`` weighted layers. Its shortcuts are the paper's *option A*, so they hold
no parameters: where a block halves the grid and doubles the channels, the shortcut takes every
other pixel and pads the new channels with zeros. ``plain=True`` builds the same layers with no
shortcut at all, the paper's "plain" baseline.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .._registry import register_model

__all__ = ["ResidualBlock", "ResNet", "RESNET18_STAGES", "STEM_CHANNELS", "resnet18",
           "CIFAR_STAGE_CHANNELS", "CifarBlock", "CifarResNet", "cifar_resnet"]

RESNET_PAPER = "He, Zhang, Ren & Sun 2015, Deep Residual Learning for Image Recognition (arXiv:1512.03385)"

# (out_channels, num_blocks) per stage. Source: He et al. 2015, Table 1, column "18-layer".
RESNET18_STAGES = ((64, 2), (128, 2), (256, 2), (512, 2))
STEM_CHANNELS = 64


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                     padding=kernel_size // 2, bias=False)


class ResidualBlock(nn.Module):
    """The basic residual block; ``use_1x1conv`` adds the projection shortcut ``conv3``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 use_1x1conv: bool = False):
        super().__init__()
        if not use_1x1conv and (stride != 1 or in_channels != out_channels):
            raise ValueError("a block that changes the shape (stride or channels) needs "
                             "use_1x1conv=True for its shortcut")
        self.conv1 = _conv(in_channels, out_channels, 3, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv(out_channels, out_channels, 3)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv3 = (nn.Sequential(_conv(in_channels, out_channels, 1, stride),
                                    nn.BatchNorm2d(out_channels))
                      if use_1x1conv else None)

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return self.relu(y + x)


class _Backbone(nn.Module):
    """``stem`` -> ``stages`` -> global average pool -> ``fc``: what both ResNet families share."""

    def _add_head(self, channels: int, num_classes: int) -> None:
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        # He et al.'s initialisation for ReLU networks, as torchvision's (BN: weight 1, bias 0 by default)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(x).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class ResNet(_Backbone):
    """A ResNet of basic blocks from a ``(out_channels, num_blocks)`` stage table."""

    def __init__(self, stages, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            _conv(in_channels, STEM_CHANNELS, 7, stride=2),
            nn.BatchNorm2d(STEM_CHANNELS),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        channels = STEM_CHANNELS
        layers = []
        for i, (out, num_blocks) in enumerate(stages):
            stride = 1 if i == 0 else 2
            blocks = [ResidualBlock(channels, out, stride,
                                    use_1x1conv=stride != 1 or channels != out)]
            blocks += [ResidualBlock(out, out) for _ in range(num_blocks - 1)]
            layers.append(nn.Sequential(*blocks))
            channels = out
        self.stages = nn.Sequential(*layers)
        self._add_head(channels, num_classes)


@register_model(input_size=(3, 224, 224), family="resnet", paper=RESNET_PAPER,
                twins={"torchvision": "resnet18"})
def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    return ResNet(RESNET18_STAGES, num_classes, in_channels)


# Channels of the three stages of the CIFAR-10 networks. Source: He et al. 2015, Sec. 4.2
# ("the numbers of filters are {16, 32, 64} respectively").
CIFAR_STAGE_CHANNELS = (16, 32, 64)


class CifarBlock(nn.Module):
    """Two 3x3 convolutions with BN, as ``ResidualBlock``; the shortcut is option A or none.

    ``shortcut=False`` is the plain network's block: ``relu(bn2(conv2(...)))`` with nothing added.
    With a shortcut, a block that halves the grid adds ``x[:, :, ::2, ::2]`` with the extra
    channels zero (He et al. 2015, Sec. 4.2, option A: "the shortcut still performs identity
    mapping, with extra zero entries padded for increasing dimensions").
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: bool = True):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("option A shortcuts can only add channels")
        self.conv1 = _conv(in_channels, out_channels, 3, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv(out_channels, out_channels, 3)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = shortcut
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if not self.shortcut:
            return self.relu(y)
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # zero channels after the old ones
        return self.relu(y + x)


class CifarResNet(_Backbone):
    """He et al.'s CIFAR-10 network of depth ``6n + 2``, residual or plain."""

    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3, plain: bool = False,
                 widths=CIFAR_STAGE_CHANNELS):
        super().__init__()
        self.stem = nn.Sequential(_conv(in_channels, widths[0], 3), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        channels, stages = widths[0], []
        for i, out in enumerate(widths):
            stride = 1 if i == 0 else 2
            blocks = [CifarBlock(channels, out, stride, shortcut=not plain)]
            blocks += [CifarBlock(out, out, shortcut=not plain) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = out
        self.stages = nn.Sequential(*stages)
        self._add_head(channels, num_classes)


def cifar_resnet(depth: int, num_classes: int = 10, in_channels: int = 3, plain: bool = False,
                 width_divisor: int = 1) -> CifarResNet:
    """ResNet-``depth`` (or plain-``depth``) of the paper's CIFAR-10 experiments; depth = 6n + 2.

    ``width_divisor`` divides the three stage widths (the book's fast runs train narrower twins).
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), not {depth}")
    widths = tuple(max(1, w // width_divisor) for w in CIFAR_STAGE_CHANNELS)
    return CifarResNet((depth - 2) // 6, num_classes, in_channels, plain, widths)
