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
"""
from __future__ import annotations

from torch import Tensor, nn

from .._registry import register_model

__all__ = ["ResidualBlock", "ResNet", "RESNET18_STAGES", "STEM_CHANNELS", "resnet18"]

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


class ResNet(nn.Module):
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
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():  # torchvision's initialisation (BN: weight 1, bias 0 by default)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(x).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(input_size=(3, 224, 224), family="resnet", paper=RESNET_PAPER,
                twins={"torchvision": "resnet18"})
def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    return ResNet(RESNET18_STAGES, num_classes, in_channels)
