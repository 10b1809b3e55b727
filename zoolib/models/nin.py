"""Network in Network (Lin, Chen & Yan 2013), family ``"nin"``.

NiN replaces every convolution by an "mlpconv" block: the convolution, then two 1x1
convolutions that act as a small per-pixel MLP, each followed by a ReLU. The last block
has one output channel per class and a global average pool turns those class maps into
the logits, so there is no dense layer at all (the lectures' "curse of the last layer").

``forward_features`` runs everything up to the last mlpconv block; ``forward_head`` is the
dropout, the class block and the global average pool, so every layer whose size depends
on ``num_classes`` sits in the head.

Both models keep the ReLU after the class block, as the lectures (d2l and the CIFAR code)
and the original Caffe model have it; the logits are therefore never negative.

``nin`` -- the ImageNet NiN as d2l builds it: AlexNet's first three convolutions
    (11x11/4, 5x5, 3x3 with 96, 256, 384 channels) turned into NiN blocks, 3x3/2 max-pools
    between them, dropout 0.5, a 3x3 class block and the global average pool. At 224x224
    the stages are 96x54x54, 96x26x26, 256x26x26, 256x12x12, 384x12x12, 384x5x5,
    classes x5x5, then classes.

``nin_cifar`` -- the CIFAR-10 NiN of the paper (Sec. 4.2) as the lecture's code writes it:
    three mlpconv blocks 192-160-96 (5x5), 192-192-192 (5x5), 192-192-classes (3x3), a 3x3/2
    max-pool and a 3x3/2 average pool (both ``ceil_mode``) with dropout after each, then
    global average pooling: 32 -> 16 -> 8 -> 1. The lecture's code pools with a fixed
    ``AvgPool2d(8)``, which works for 32x32 inputs only; an ``AdaptiveAvgPool2d(1)`` here
    gives the same result at 32x32 and also works at other sizes.
"""
from __future__ import annotations

from torch import Tensor, nn

from .._registry import register_model
from ..layers import ConvReLU

__all__ = ["NiN", "NiNBlock", "MLPConv", "NIN_IMAGENET", "NIN_IMAGENET_HEAD", "NIN_CIFAR",
           "NIN_CIFAR_HEAD", "nin", "nin_cifar"]

NIN_PAPER = "Lin, Chen & Yan 2013, Network In Network (arXiv:1312.4400)"


class MLPConv(nn.Sequential):
    """A ``kernel_size`` convolution then two 1x1 convolutions, each followed by a ReLU.

    ``channels`` are the three output widths, e.g. ``(192, 160, 96)``.
    """

    def __init__(self, in_channels: int, channels, kernel_size, stride=1, padding=0):
        c1, c2, c3 = channels
        super().__init__(ConvReLU(in_channels, c1, kernel_size, stride, padding),
                         ConvReLU(c1, c2, 1),
                         ConvReLU(c2, c3, 1))


class NiNBlock(MLPConv):
    """d2l's NiN block: all three convolutions have ``out_channels`` outputs."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__(in_channels, (out_channels,) * 3, kernel_size, stride, padding)


# NiN blocks of the ImageNet NiN, (out_channels, kernel, stride, padding), each followed by
# a 3x3/2 max-pool; then dropout and a 3x3 (pad 1) class block. Source: d2l's NiN, i.e.
# AlexNet's conv1-conv3 as NiN blocks (the lecture slide prints its stage shapes).
NIN_IMAGENET = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))
NIN_IMAGENET_HEAD = (3, 1, 1)  # kernel, stride, padding of the class block

# mlpconv blocks of the CIFAR NiN, (widths, kernel, padding, pool after it); the pools are
# 3x3/2 with ceil_mode and a dropout follows each. Source: Lin et al. 2013, Sec. 4.2 (CIFAR-10),
# in the form of the lecture's PyTorch code.
NIN_CIFAR = (((192, 160, 96), 5, 2, nn.MaxPool2d), ((192, 192, 192), 5, 2, nn.AvgPool2d))
NIN_CIFAR_HEAD = ((192, 192), 3, 1)  # widths before the class conv, kernel, padding


class NiN(nn.Module):
    """``features`` (the stages before the class block), then ``head``: dropout, the class
    block and the global average pool."""

    def __init__(self, features: nn.Sequential, class_block: nn.Module, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.head = nn.Sequential(nn.Dropout(dropout), class_block, nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(input_size=(3, 224, 224), family="nin", paper=NIN_PAPER)
def nin(num_classes: int = 1000, in_channels: int = 3) -> NiN:
    layers: list[nn.Module] = []
    channels = in_channels
    for out, kernel, stride, padding in NIN_IMAGENET:
        layers += [NiNBlock(channels, out, kernel, stride, padding), nn.MaxPool2d(3, stride=2)]
        channels = out
    return NiN(nn.Sequential(*layers), NiNBlock(channels, num_classes, *NIN_IMAGENET_HEAD))


@register_model(input_size=(3, 32, 32), family="nin", paper=NIN_PAPER)
def nin_cifar(num_classes: int = 10, in_channels: int = 3) -> NiN:
    layers: list[nn.Module] = []
    channels = in_channels
    for i, (widths, kernel, padding, pool) in enumerate(NIN_CIFAR):
        if i:
            layers.append(nn.Dropout(0.5))  # the last pool's dropout opens the head
        layers += [MLPConv(channels, widths, kernel, padding=padding),
                   pool(3, stride=2, ceil_mode=True)]
        channels = widths[-1]
    widths, kernel, padding = NIN_CIFAR_HEAD
    return NiN(nn.Sequential(*layers),
               MLPConv(channels, (*widths, num_classes), kernel, padding=padding))
