"""Layers shared by several families.

The BatchNorm epsilon of the Inception family is set here, once: the TensorFlow
originals use 0.001, and both torchvision's and timm's ports keep it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BN_EPS", "BasicConv2d", "Concat", "ConvReLU"]

BN_EPS = 1e-3


class BasicConv2d(nn.Module):
    """Convolution (no bias) -> BatchNorm -> ReLU, the unit of every BN-era Inception."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 eps: float = BN_EPS):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class ConvReLU(nn.Module):
    """Convolution with bias -> ReLU, the unit of the pre-BN networks (AlexNet to GoogLeNet)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x))



class Concat(nn.Module):
    """Run the branches named in ``branch_names`` on the same input and stack their outputs
    along the channels, in that order.

    The list is explicit, not the order of attribute creation, because concatenation order
    decides which channel the next layer sees, and so whether a twin's weights fit. The
    Inception-v3 and Inception-v4 blocks share this one forward.
    """

    branch_names: tuple[str, ...] = ()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([getattr(self, name)(x) for name in self.branch_names], dim=1)
