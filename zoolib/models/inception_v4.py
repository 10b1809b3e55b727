"""Inception-v4, Inception-ResNet-v1 and Inception-ResNet-v2.

Szegedy, Ioffe, Vanhoucke and Alemi, "Inception-v4, Inception-ResNet and the Impact
of Residual Connections on Learning" (arXiv 1602.07261, 2016; AAAI 2017).

* ``inception_v4``: Figure 9, built from the stem of Figure 3 and the blocks of
  Figures 4-8. Identical to timm's ``inception_v4`` (42,679,816 parameters).
* ``inception_resnet_v2``: identical to timm's ``inception_resnet_v2`` (55,843,464
  parameters), i.e. to the TF-slim network whose weights Google published. Those
  weights, not the paper's figures, fix its widths: where the two disagree the code
  follows timm and says so at the spot (stem, widths, block counts, final blocks).
* ``inception_resnet_v1``: the paper's smaller residual network (Figures 10-15,
  Table 1). No library ships it; it is built here from the figures.

The figures' conventions: a convolution marked "V" is valid-padded (padding 0), every
other one is same-padded. Every convolution is ``BasicConv2d`` (conv -> BatchNorm with
eps ``BN_EPS`` = 1e-3, as in TF and timm -> ReLU), except the "1x1 Conv (Linear)" that
brings a residual branch back to its input width: it has a bias and neither BatchNorm
nor ReLU (Section 3.2 puts BN "only on top of the traditional layers, but not on top of
the summations").

zoolib's class names are the paper's figure titles, which timm mostly shares:

=============================  ======================  ============================
zoolib                         paper                   timm
=============================  ======================  ============================
``Stem``                       Figure 3                ``features.0``-``5``
``Mixed3a``, ``4a``, ``5a``    Figure 3's three forks  ``Mixed3a``, ``4a``, ``5a``
``InceptionA``                 Figure 4 (Inception-A)  ``InceptionA``
``ReductionA``                 Figure 7 and Table 1    ``ReductionA``, ``Mixed_6a``
``InceptionB``                 Figure 5 (Inception-B)  ``InceptionB``
``ReductionB``                 Figure 8                ``ReductionB``
``InceptionC``                 Figure 6 (Inception-C)  ``InceptionC``
``InceptionResNetStem``        Figure 14; not for v2   ``conv2d_1a``-``mixed_5b``
``Mixed5b``                    none (Inception-v3's)   ``Mixed_5b``
``Block35``                    Figures 10, 16          ``Block35``
``Block17``                    Figures 11, 17          ``Block17``
``InceptionResNetReductionB``  Figures 12, 18          ``Mixed_7a``
``Block8``                     Figures 13, 19          ``Block8``
``final_conv``                 none                    ``conv2d_7b``
=============================  ======================  ============================

``Mixed_6a`` is timm's name for Reduction-A in Inception-ResNet-v2, where ``ReductionA`` in
timm is only Inception-v4's.

Inception-v3's 35x35, 17x17 and 8x8 modules are different blocks; ``zoolib.v3`` names them
after that paper's figures (``InceptionFig5`` ...), so the two sets of names never collide.
Widths are named as in ``zoolib.v3``: ``ch<k>`` for a branch's output, ``ch<k>red`` for the
1x1 reduce that opens it, ``ch<k>mid`` for the widths in between (a tuple where there are
several), ``pool_proj`` for the pool's projection. In Figure 6 (``InceptionC``) ``ch3x3`` and
``ch3x3dbl`` are the width of *each* of the two side-by-side convolutions ending the branch.
Each block's defaults are its figure's widths. The Inception-ResNet blocks (``Block35``,
``Block17``, ``Block8``, ``InceptionResNetReductionB``) take instead one tuple per branch,
named as timm's branch and listing its widths from the 1x1 reduce to the output
(``branch1=(32, 32)``), typed in ``Block35Widths`` and its siblings: Block17 and Block8
share one constructor whose kernel differs (7 or 3), which kernel-named arguments would not
fit.

Kernel shapes are written ``(height, width)`` as PyTorch takes them. Branch order in
every block is timm's, because concatenation order decides which channel the next
layer sees and so must match for weights to transfer; the figures draw the pooling
branch on the left, timm puts it last.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TypedDict

import torch
from torch import Tensor, nn

from .._registry import register_model
from ..layers import BasicConv2d, Concat

__all__ = [
    "MIN_INPUT_SIZE",
    # Inception-v4 (Figures 3-9)
    "Mixed3a", "Mixed4a", "Mixed5a", "Stem", "InceptionA", "ReductionA", "InceptionB",
    "ReductionB", "InceptionC", "InceptionV4",
    # Inception-ResNet (Figures 10-19)
    "Mixed5b", "InceptionResNetStem", "Block35", "Block17", "Block8",
    "InceptionResNetReductionB", "ReductionAWidths", "TABLE1_REDUCTION_A", "Block35Widths",
    "FactorizedWidths", "ReductionBWidths", "InceptionResNetWidths", "IR_V1", "IR_V2",
    "InceptionResNet",
    "inception_v4", "inception_resnet_v2", "inception_resnet_v1",
]

PAPER = ("Szegedy, Ioffe, Vanhoucke, Alemi 2016/2017: Inception-v4, Inception-ResNet and the "
         "Impact of Residual Connections on Learning")

# The smallest square input all three networks accept. Five valid-padded stride-2
# reductions (stem conv, stem pool, stem conv or pool, Reduction-A, Reduction-B) and two
# valid 3x3 convolutions shrink the grid 75 -> 37 -> 35 -> 17 -> 15 -> 7 -> 3 -> 1; from
# 74x74 the grid reaching Reduction-B is 2x2, smaller than its 3x3 kernels.
MIN_INPUT_SIZE = 75


def _check_input(x: Tensor) -> None:
    height, width = x.shape[-2:]
    if height < MIN_INPUT_SIZE or width < MIN_INPUT_SIZE:
        raise ValueError(
            f"input of {height}x{width} is too small: the Inception-v4 family needs at least "
            f"{MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} (the paper uses 299x299); its valid-padded "
            f"grid reductions would shrink a smaller input to nothing")


def _avg_pool_3x3() -> nn.AvgPool2d:
    # TF's same-padded average pooling divides by the number of real (not padded) pixels.
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


def _max_pool_3x3_s2() -> nn.MaxPool2d:
    return nn.MaxPool2d(3, stride=2)  # "MaxPool 3x3 (stride 2 V)"


def _sep(in_channels: int, out_channels: int, kernel: tuple[int, int]) -> BasicConv2d:
    """A same-padded asymmetric (1, n) or (n, 1) convolution."""
    return BasicConv2d(in_channels, out_channels, kernel, padding=(kernel[0] // 2, kernel[1] // 2))


class _Fork(Concat):
    """Figure 6's fan-out: a (1,3) and a (3,1) convolution side by side on one input."""

    branch_names = ("a", "b")

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.a = _sep(in_channels, out_channels, (1, 3))
        self.b = _sep(in_channels, out_channels, (3, 1))


# ---------------------------------------------------------------------------------------
# Inception-v4 (Figure 9): stem (Figure 3), 4 x Inception-A, Reduction-A, 7 x Inception-B,
# Reduction-B, 3 x Inception-C, average pooling, dropout (keep 0.8), linear.
# ---------------------------------------------------------------------------------------


class Mixed3a(Concat):
    """Figure 3, first fork: 3x3/2 max pool | 3x3/2 V conv 96. 147x147x64 -> 73x73x160."""

    branch_names = ("pool", "conv")

    def __init__(self, in_channels: int = 64):
        super().__init__()
        self.pool = _max_pool_3x3_s2()
        self.conv = BasicConv2d(in_channels, 96, 3, stride=2)


class Mixed4a(Concat):
    """Figure 3, second fork. 73x73x160 -> 71x71x192.

    1x1 64 -> 3x3 V 96 | 1x1 64 -> (1,7) 64 -> (7,1) 64 -> 3x3 V 96. Figure 3 labels the
    pair "7x1, 1x7" but Figure 17 "1x7, 7x1"; timm starts both with (1,7), so under either
    reading of "AxB" one of the two differs from the paper.
    """

    branch_names = ("branch0", "branch1")

    def __init__(self, in_channels: int = 160):
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(in_channels, 64, 1),
            BasicConv2d(64, 96, 3),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(in_channels, 64, 1),
            _sep(64, 64, (1, 7)),
            _sep(64, 64, (7, 1)),
            BasicConv2d(64, 96, 3),
        )


class Mixed5a(Concat):
    """Figure 3, third fork: 3x3/2 V conv 192 | 3x3/2 max pool. 71x71x192 -> 35x35x384."""

    branch_names = ("conv", "pool")

    def __init__(self, in_channels: int = 192):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 192, 3, stride=2)
        self.pool = _max_pool_3x3_s2()


class Stem(nn.Sequential):
    """Figure 3: the stem of Inception-v4 (and, in the paper, of Inception-ResNet-v2)."""

    def __init__(self, in_channels: int = 3):
        super().__init__(OrderedDict(
            conv1=BasicConv2d(in_channels, 32, 3, stride=2),  # 299x299x3 -> 149x149x32 (V)
            conv2=BasicConv2d(32, 32, 3),                      # -> 147x147x32 (V)
            conv3=BasicConv2d(32, 64, 3, padding=1),           # -> 147x147x64
            mixed3a=Mixed3a(64),                               # -> 73x73x160
            mixed4a=Mixed4a(160),                              # -> 71x71x192
            mixed5a=Mixed5a(192),                              # -> 35x35x384
        ))


class InceptionA(Concat):
    """Figure 4 (35x35 grid, 384 -> 384 channels).

    1x1 96 | 1x1 64 -> 3x3 96 | 1x1 64 -> 3x3 96 -> 3x3 96 | avg pool -> 1x1 96.
    """

    branch_names = ("branch0", "branch1", "branch2", "branch3")

    def __init__(self, in_channels: int = 384, *, ch1x1: int = 96, ch3x3red: int = 64,
                 ch3x3: int = 96, ch3x3dblred: int = 64, ch3x3dbl: int = 96, pool_proj: int = 96):
        super().__init__()
        # Shaped like Inception-v3's InceptionFig5 on purpose, not built from it: that has a
        # 5x5 branch, pools over the padding too, and carries torchvision's parameter names.
        self.branch0 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, 1),
            BasicConv2d(ch3x3red, ch3x3, 3, padding=1),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3dblred, 1),
            BasicConv2d(ch3x3dblred, ch3x3dbl, 3, padding=1),
            BasicConv2d(ch3x3dbl, ch3x3dbl, 3, padding=1),
        )
        self.branch3 = nn.Sequential(_avg_pool_3x3(), BasicConv2d(in_channels, pool_proj, 1))


class ReductionAWidths(TypedDict):
    """One row of Table 1: Reduction-A's filter counts, in the table's column order."""

    ch3x3dblred: int  # k: the 1x1 reduce that opens the double-3x3 branch
    ch3x3dblmid: int  # l: that branch's first 3x3, between the reduce and the strided 3x3
    ch3x3dbl: int     # m: that branch's strided 3x3, its output
    ch3x3: int        # n: the single strided 3x3 branch


#: Table 1 of the paper: the filter counts k, l, m, n of Reduction-A (Figure 7) in each of
#: the three networks, in the table's row and column order.
TABLE1_REDUCTION_A: dict[str, ReductionAWidths] = {
    "inception_v4": ReductionAWidths(ch3x3dblred=192, ch3x3dblmid=224, ch3x3dbl=256, ch3x3=384),
    "inception_resnet_v1": ReductionAWidths(ch3x3dblred=192, ch3x3dblmid=192, ch3x3dbl=256,
                                            ch3x3=384),
    "inception_resnet_v2": ReductionAWidths(ch3x3dblred=256, ch3x3dblmid=256, ch3x3dbl=384,
                                            ch3x3=384),
}


class ReductionA(Concat):
    """Figure 7: 35x35 -> 17x17, with the filter counts of Table 1 (``TABLE1_REDUCTION_A``).

    3x3/2 V ``ch3x3`` (n) | 1x1 ``ch3x3dblred`` (k) -> 3x3 ``ch3x3dblmid`` (l) -> 3x3/2 V
    ``ch3x3dbl`` (m) | 3x3/2 max pool; output ``ch3x3 + ch3x3dbl + in_channels``.

    Inception-v3's ``GridReduction35to17`` is this block with l = m. Both are kept,
    deliberately: each must carry its own library's parameter names (timm's ``branch0``,
    torchvision's ``branch3x3``) for weights to transfer.
    """

    branch_names = ("branch0", "branch1", "branch2")

    def __init__(self, in_channels: int, *, ch3x3dblred: int, ch3x3dblmid: int, ch3x3dbl: int,
                 ch3x3: int):
        super().__init__()
        self.branch0 = BasicConv2d(in_channels, ch3x3, 3, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3dblred, 1),
            BasicConv2d(ch3x3dblred, ch3x3dblmid, 3, padding=1),
            BasicConv2d(ch3x3dblmid, ch3x3dbl, 3, stride=2),
        )
        self.branch2 = _max_pool_3x3_s2()


class InceptionB(Concat):
    """Figure 5 (17x17 grid, 1024 -> 1024 channels).

    1x1 384 | 1x1 192 -> (1,7) 224 -> (7,1) 256
    | 1x1 192 -> (7,1) 192 -> (1,7) 224 -> (7,1) 224 -> (1,7) 256 | avg pool -> 1x1 128.
    Figure 5 labels both factorised branches "1x7" first; timm (after TF-slim) starts the
    second with (1,7) and the third with (7,1), so one of them differs from the figure.
    """

    branch_names = ("branch0", "branch1", "branch2", "branch3")

    def __init__(self, in_channels: int = 1024, *, ch1x1: int = 384, ch7x7red: int = 192,
                 ch7x7mid: int = 224, ch7x7: int = 256, ch7x7dblred: int = 192,
                 ch7x7dblmid: tuple[int, int, int] = (192, 224, 224), ch7x7dbl: int = 256,
                 pool_proj: int = 128):
        super().__init__()
        d1, d2, d3 = ch7x7dblmid
        self.branch0 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(in_channels, ch7x7red, 1),
            _sep(ch7x7red, ch7x7mid, (1, 7)),
            _sep(ch7x7mid, ch7x7, (7, 1)),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch7x7dblred, 1),
            _sep(ch7x7dblred, d1, (7, 1)),
            _sep(d1, d2, (1, 7)),
            _sep(d2, d3, (7, 1)),
            _sep(d3, ch7x7dbl, (1, 7)),
        )
        self.branch3 = nn.Sequential(_avg_pool_3x3(), BasicConv2d(in_channels, pool_proj, 1))


class ReductionB(Concat):
    """Figure 8: 17x17x1024 -> 8x8x1536 (Inception-v4's grid reduction).

    1x1 192 -> 3x3/2 V 192 | 1x1 256 -> (1,7) 256 -> (7,1) 320 -> 3x3/2 V 320 | max pool.
    """

    branch_names = ("branch0", "branch1", "branch2")

    def __init__(self, in_channels: int = 1024, *, ch3x3red: int = 192, ch3x3: int = 192,
                 ch7x7x3red: int = 256, ch7x7x3mid: tuple[int, int] = (256, 320),
                 ch7x7x3: int = 320):
        super().__init__()
        m1, m2 = ch7x7x3mid
        self.branch0 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, 1),
            BasicConv2d(ch3x3red, ch3x3, 3, stride=2),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(in_channels, ch7x7x3red, 1),
            _sep(ch7x7x3red, m1, (1, 7)),
            _sep(m1, m2, (7, 1)),
            BasicConv2d(m2, ch7x7x3, 3, stride=2),
        )
        self.branch2 = _max_pool_3x3_s2()


class InceptionC(Concat):
    """Figure 6 (8x8 grid, 1536 -> 1536 channels).

    1x1 256 | 1x1 384 -> [(1,3) 256, (3,1) 256]
    | 1x1 384 -> (3,1) 448 -> (1,3) 512 -> [(1,3) 256, (3,1) 256] | avg pool -> 1x1 256.
    Figure 6 labels "1x3 (448)" before "3x1 (512)", as Figure 19 labels "1x3 (224)" before
    "3x1 (256)"; timm starts this branch with (3,1) but Block8's with (1,3), so one of the
    two differs from its figure.
    """

    branch_names = ("branch0", "branch1", "branch2", "branch3")

    def __init__(self, in_channels: int = 1536, *, ch1x1: int = 256, ch3x3red: int = 384,
                 ch3x3: int = 256, ch3x3dblred: int = 384,
                 ch3x3dblmid: tuple[int, int] = (448, 512), ch3x3dbl: int = 256,
                 pool_proj: int = 256):
        super().__init__()
        m1, m2 = ch3x3dblmid
        self.branch0 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch1 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1),
                                     _Fork(ch3x3red, ch3x3))
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3dblred, 1),
            _sep(ch3x3dblred, m1, (3, 1)),
            _sep(m1, m2, (1, 3)),
            _Fork(m2, ch3x3dbl),
        )
        self.branch3 = nn.Sequential(_avg_pool_3x3(), BasicConv2d(in_channels, pool_proj, 1))


class _StagedNetwork(nn.Module):
    """What Figures 9 and 15 share: the stages named in ``stage_names`` run in turn, then
    ``head``. Inception-v4 and the Inception-ResNets differ only in their stages."""

    stage_names: tuple[str, ...] = ()

    def forward_features(self, x: Tensor) -> Tensor:
        _check_input(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _head(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Figures 9 and 15: average pooling, dropout (keep 0.8 in the paper), linear."""
    return nn.Sequential(OrderedDict(
        pool=nn.AdaptiveAvgPool2d(1),
        flatten=nn.Flatten(),
        dropout=nn.Dropout(dropout),
        fc=nn.Linear(in_features, num_classes),
    ))


class InceptionV4(_StagedNetwork):
    """Figure 9. Same tensors in the same order as timm's ``InceptionV4``."""

    stage_names = ("stem", "inception_a", "reduction_a", "inception_b", "reduction_b",
                   "inception_c")

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2):
        super().__init__()
        self.stem = Stem(in_channels)                                           # 35x35x384
        self.inception_a = nn.Sequential(*[InceptionA(384) for _ in range(4)])  # 35x35x384
        self.reduction_a = ReductionA(384, **TABLE1_REDUCTION_A["inception_v4"])  # 17x17x1024
        self.inception_b = nn.Sequential(*[InceptionB(1024) for _ in range(7)])  # 17x17x1024
        self.reduction_b = ReductionB(1024)                                     # 8x8x1536
        self.inception_c = nn.Sequential(*[InceptionC(1536) for _ in range(3)])  # 8x8x1536
        self.head = _head(1536, num_classes, dropout)


# ---------------------------------------------------------------------------------------
# Inception-ResNet (Figure 15): stem, A blocks, Reduction-A, B blocks, Reduction-B,
# C blocks, average pooling, dropout (keep 0.8), linear. A residual block adds
# ``scale * up(concat(branches(x)))`` to its input, then applies ReLU.
# ---------------------------------------------------------------------------------------


class Mixed5b(Concat):
    """The tail of timm's (TF-slim's) Inception-ResNet-v2 stem: 35x35x192 -> 35x35x320.

    1x1 96 | 1x1 48 -> 5x5 64 | 1x1 64 -> 3x3 96 -> 3x3 96 | avg pool -> 1x1 64. It is in
    none of the paper's figures: it is Inception-v3's released 35x35 module
    (``zoolib.models.inception_v3.InceptionFig5`` with ``ch1x1=96, pool_proj=64``), except
    that its average pool leaves the padding out of the mean, as all pools here do, where
    torchvision's Inception-v3 counts it in.
    """

    branch_names = ("branch0", "branch1", "branch2", "branch3")

    def __init__(self, in_channels: int = 192):
        super().__init__()
        # Shaped like InceptionA (Figure 4) on purpose, not built from it: its second branch
        # is a 5x5, and its widths are Inception-v3's, not any figure's of this paper.
        self.branch0 = BasicConv2d(in_channels, 96, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(in_channels, 48, 1),
            BasicConv2d(48, 64, 5, padding=2),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, 64, 1),
            BasicConv2d(64, 96, 3, padding=1),
            BasicConv2d(96, 96, 3, padding=1),
        )
        self.branch3 = nn.Sequential(_avg_pool_3x3(), BasicConv2d(in_channels, 64, 1))


class InceptionResNetStem(nn.Sequential):
    """Figure 14 (``tail="figure14"``, Inception-ResNet-v1) or timm's v2 stem (``"mixed5b"``).

    Both start alike: 3x3/2 V 32 -> 3x3 V 32 -> 3x3 64 -> 3x3/2 V max pool -> 1x1 80 ->
    3x3 V 192 (71x71x192). Figure 14 ends with a 3x3/2 V convolution to 35x35x256.

    Departure from the paper for v2: the paper gives Inception-ResNet-v2 the stem of
    Figure 3 (35x35x384). timm, like the TF-slim checkpoint it ports, instead ends with a
    3x3/2 V max pool and ``Mixed5b`` (35x35x320); that is what the pretrained weights
    need, so ``inception_resnet_v2`` follows timm.
    """

    TAILS = ("figure14", "mixed5b")

    def __init__(self, in_channels: int = 3, tail: str = "figure14"):
        if tail not in self.TAILS:
            raise ValueError(f"tail must be one of {self.TAILS}, not {tail!r}")
        layers = OrderedDict(
            conv1a=BasicConv2d(in_channels, 32, 3, stride=2),  # 299x299x3 -> 149x149x32 (V)
            conv2a=BasicConv2d(32, 32, 3),                      # -> 147x147x32 (V)
            conv2b=BasicConv2d(32, 64, 3, padding=1),           # -> 147x147x64
            pool3a=_max_pool_3x3_s2(),                          # -> 73x73x64
            conv3b=BasicConv2d(64, 80, 1),                      # -> 73x73x80
            conv4a=BasicConv2d(80, 192, 3),                     # -> 71x71x192 (V)
        )
        if tail == "figure14":
            layers["conv5a"] = BasicConv2d(192, 256, 3, stride=2)  # -> 35x35x256 (V)
        else:
            layers["pool5a"] = _max_pool_3x3_s2()                  # -> 35x35x192
            layers["mixed5b"] = Mixed5b(192)                       # -> 35x35x320
        super().__init__(layers)


class _ResidualInception(nn.Module):
    """``relu(x + scale * up(concat(branches(x))))``; ``no_relu`` drops the ReLU.

    ``up`` is the figures' "1x1 Conv (Linear)": a biased 1x1 convolution without BN or
    ReLU that brings the concatenated branches back to the input width. ``scale`` is the
    residual scaling of Section 3.3 (Figure 20).
    """

    def __init__(self, in_channels: int, branches: list[nn.Module], branch_channels: int,
                 scale: float, no_relu: bool):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.up = nn.Conv2d(branch_channels, in_channels, 1)
        self.scale = scale
        self.relu = nn.Identity() if no_relu else nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.up(torch.cat([branch(x) for branch in self.branches], dim=1))
        return self.relu(x + self.scale * out)


class Block35(_ResidualInception):
    """Inception-ResNet-A, 35x35 grid (Figure 10 for v1, Figure 16 for v2).

    1x1 ``branch0`` | 1x1 -> 3x3 (``branch1``) | 1x1 -> 3x3 -> 3x3 (``branch2``), then the
    linear 1x1 back to ``in_channels``.
    """

    def __init__(self, in_channels: int, branch0: int, branch1: tuple[int, int],
                 branch2: tuple[int, int, int], scale: float = 1.0, no_relu: bool = False):
        b1, b2 = branch1, branch2
        branches = [
            BasicConv2d(in_channels, branch0, 1),
            nn.Sequential(BasicConv2d(in_channels, b1[0], 1),
                          BasicConv2d(b1[0], b1[1], 3, padding=1)),
            nn.Sequential(BasicConv2d(in_channels, b2[0], 1),
                          BasicConv2d(b2[0], b2[1], 3, padding=1),
                          BasicConv2d(b2[1], b2[2], 3, padding=1)),
        ]
        super().__init__(in_channels, branches, branch0 + b1[-1] + b2[-1], scale, no_relu)


class _FactorizedResidual(_ResidualInception):
    """The -B and -C blocks: 1x1 ``branch0`` | 1x1 -> (1,k) -> (k,1) (``branch1``), then the
    linear 1x1. They differ only in ``k``, which the subclasses fix."""

    kernel: int

    def __init__(self, in_channels: int, branch0: int, branch1: tuple[int, int, int],
                 scale: float = 1.0, no_relu: bool = False):
        b1, k = branch1, self.kernel
        branches = [
            BasicConv2d(in_channels, branch0, 1),
            nn.Sequential(BasicConv2d(in_channels, b1[0], 1),
                          _sep(b1[0], b1[1], (1, k)),
                          _sep(b1[1], b1[2], (k, 1))),
        ]
        super().__init__(in_channels, branches, branch0 + b1[-1], scale, no_relu)


class Block17(_FactorizedResidual):
    """Inception-ResNet-B, 17x17 grid (Figure 11 for v1, Figure 17 for v2): k = 7."""

    kernel = 7


class Block8(_FactorizedResidual):
    """Inception-ResNet-C, 8x8 grid (Figure 13 for v1, Figure 19 for v2): k = 3."""

    kernel = 3


class InceptionResNetReductionB(Concat):
    """Reduction-B of the Inception-ResNets, 17x17 -> 8x8 (Figure 12 for v1, 18 for v2).

    1x1 -> 3x3/2 V (``branch0``) | 1x1 -> 3x3/2 V (``branch1``)
    | 1x1 -> 3x3 -> 3x3/2 V (``branch2``) | 3x3/2 V max pool.
    """

    branch_names = ("branch0", "branch1", "branch2", "branch3")

    def __init__(self, in_channels: int, branch0: tuple[int, int], branch1: tuple[int, int],
                 branch2: tuple[int, int, int]):
        super().__init__()
        b0, b1, b2 = branch0, branch1, branch2
        self.branch0 = nn.Sequential(BasicConv2d(in_channels, b0[0], 1),
                                     BasicConv2d(b0[0], b0[1], 3, stride=2))
        self.branch1 = nn.Sequential(BasicConv2d(in_channels, b1[0], 1),
                                     BasicConv2d(b1[0], b1[1], 3, stride=2))
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, b2[0], 1),
                                     BasicConv2d(b2[0], b2[1], 3, padding=1),
                                     BasicConv2d(b2[1], b2[2], 3, stride=2))
        self.branch3 = _max_pool_3x3_s2()


class Block35Widths(TypedDict):
    """``Block35``'s arguments: each branch's widths from its input to its output."""

    in_channels: int                 # the grid's width, which the linear 1x1 restores
    branch0: int                     # 1x1
    branch1: tuple[int, int]         # 1x1 reduce, 3x3
    branch2: tuple[int, int, int]    # 1x1 reduce, 3x3, 3x3


class FactorizedWidths(TypedDict):
    """``Block17``'s and ``Block8``'s arguments."""

    in_channels: int
    branch0: int                     # 1x1
    branch1: tuple[int, int, int]    # 1x1 reduce, (1,k), (k,1)


class ReductionBWidths(TypedDict):
    """``InceptionResNetReductionB``'s arguments."""

    in_channels: int
    branch0: tuple[int, int]         # 1x1 reduce, 3x3/2
    branch1: tuple[int, int]         # 1x1 reduce, 3x3/2
    branch2: tuple[int, int, int]    # 1x1 reduce, 3x3, 3x3/2


@dataclass(frozen=True)
class InceptionResNetWidths:
    """One Inception-ResNet as data: the keyword arguments of each block, and the depths."""

    stem_tail: str                   # InceptionResNetStem(tail=...)
    block35: Block35Widths           # Inception-ResNet-A
    reduction_a: ReductionAWidths    # Table 1's row; its input is block35's width
    block17: FactorizedWidths        # Inception-ResNet-B
    reduction_b: ReductionBWidths
    block8: FactorizedWidths         # Inception-ResNet-C
    depths: tuple[int, int, int]     # number of A, B and C blocks
    # timm/TF-slim v2 only: the last C block is linear (no ReLU, scale 1.0) and a 1x1
    # conv (BN, ReLU) to ``final_conv`` channels precedes the pooling.
    linear_last_block: bool = False
    final_conv: int | None = None

    @property
    def features(self) -> int:
        """Channels reaching the classifier."""
        return self.final_conv or self.block8["in_channels"]


# Inception-ResNet-v1 as the paper draws it. Stage shapes 35x35x256, 17x17x896, 8x8x1792.
IR_V1 = InceptionResNetWidths(
    stem_tail="figure14",                                                      # Figure 14
    block35=Block35Widths(in_channels=256, branch0=32, branch1=(32, 32),
                          branch2=(32, 32, 32)),                               # Figure 10
    reduction_a=TABLE1_REDUCTION_A["inception_resnet_v1"],                     # Fig 7, Table 1
    block17=FactorizedWidths(in_channels=896, branch0=128, branch1=(128, 128, 128)),  # Fig 11
    reduction_b=ReductionBWidths(in_channels=896, branch0=(256, 384), branch1=(256, 256),
                                 branch2=(256, 256, 256)),                     # Figure 12
    block8=FactorizedWidths(in_channels=1792, branch0=192, branch1=(192, 192, 192)),  # Fig 13
    depths=(5, 10, 5),                                                         # Figure 15
)

# Inception-ResNet-v2 as timm (and the TF-slim checkpoint) builds it. Stage shapes
# 35x35x320, 17x17x1088, 8x8x2080, then a 1x1 conv to 1536. Departures from the paper:
# - stem: Figure 3's stem (35x35x384) is replaced by InceptionResNetStem(tail="mixed5b");
# - widths: the residual 1x1 convs project to 320 / 1088 / 2080 instead of the 384 / 1154
#   / 2048 of Figures 16 / 17 / 19. The figures do not add up themselves: Reduction-A
#   (Table 1's k, l, m, n = 256, 256, 384, 384) turns 384 channels into 384 + 384 + 384 =
#   1152, not 1154, and Figure 18 turns 1154 into 1154 + 384 + 288 + 320 = 2146, not
#   2048. timm's widths do add up: 320 + 384 + 384 = 1088 and 1088 + 384 + 288 + 320 =
#   2080. The branch widths inside the blocks are the figures';
# - depths: 10 / 20 / 10 blocks instead of Figure 15's 5 / 10 / 5;
# - the last Block8 has no ReLU and scale 1.0, and a 1x1 conv (BN, ReLU) to 1536
#   channels follows it; neither is in the paper.
# IR_V1 and IR_V2 look alike on purpose: two rows of one table, data rather than code.
IR_V2 = InceptionResNetWidths(
    stem_tail="mixed5b",
    block35=Block35Widths(in_channels=320, branch0=32, branch1=(32, 32),
                          branch2=(32, 48, 64)),                               # Figure 16
    reduction_a=TABLE1_REDUCTION_A["inception_resnet_v2"],                     # Fig 7, Table 1
    block17=FactorizedWidths(in_channels=1088, branch0=192, branch1=(128, 160, 192)),  # Fig 17
    reduction_b=ReductionBWidths(in_channels=1088, branch0=(256, 384), branch1=(256, 288),
                                 branch2=(256, 288, 320)),                     # Figure 18
    block8=FactorizedWidths(in_channels=2080, branch0=192, branch1=(192, 224, 256)),  # Fig 19
    depths=(10, 20, 10),
    linear_last_block=True,
    final_conv=1536,
)


class InceptionResNet(_StagedNetwork):
    """Figure 15, with widths from an ``InceptionResNetWidths`` table (``IR_V1``, ``IR_V2``).

    ``scales`` are the residual scaling factors of the A, B and C blocks. Section 3.3
    reports that with more than 1000 filters the residual networks died early in training
    unless the residuals were scaled down by 0.1-0.3 before the addition; it gives no
    per-block values. 0.17 / 0.10 / 0.20 are those of the TF-slim Inception-ResNet-v2
    (and timm); v1 uses them too.
    """

    stage_names = ("stem", "inception_resnet_a", "reduction_a", "inception_resnet_b",
                   "reduction_b", "inception_resnet_c", "final_conv")

    def __init__(self, widths: InceptionResNetWidths, num_classes: int = 1000,
                 in_channels: int = 3, scales: tuple[float, float, float] = (0.17, 0.10, 0.20),
                 dropout: float = 0.2):
        super().__init__()
        w = widths
        scale_a, scale_b, scale_c = scales
        depth_a, depth_b, depth_c = w.depths
        self.stem = InceptionResNetStem(in_channels, w.stem_tail)  # v1 35x35x256, v2 35x35x320
        self.inception_resnet_a = nn.Sequential(
            *[Block35(**w.block35, scale=scale_a) for _ in range(depth_a)])
        self.reduction_a = ReductionA(w.block35["in_channels"], **w.reduction_a)  # v1 17x17x896
        self.inception_resnet_b = nn.Sequential(
            *[Block17(**w.block17, scale=scale_b) for _ in range(depth_b)])
        self.reduction_b = InceptionResNetReductionB(**w.reduction_b)  # v1 8x8x1792, v2 x2080
        blocks_c = [Block8(**w.block8, scale=scale_c) for _ in range(depth_c)]
        if w.linear_last_block:
            # timm/TF-slim: the last C block is linear (no ReLU) and unscaled (1.0), so
            # that the 1x1 conv below sees the raw sum.
            blocks_c[-1] = Block8(**w.block8, scale=1.0, no_relu=True)
        self.inception_resnet_c = nn.Sequential(*blocks_c)
        # timm's conv2d_7b: 8x8x2080 -> 8x8x1536 (v2 only; not in the paper)
        self.final_conv = (BasicConv2d(w.block8["in_channels"], w.final_conv, 1)
                           if w.final_conv else nn.Identity())
        self.head = _head(w.features, num_classes, dropout)


# ---------------------------------------------------------------------------------------
# Registered builders. ``dropout`` is the paper's 0.2 (keep 0.8); timm's default
# drop_rate is 0.0. Dropout has no tensors, so the twins still share every weight and
# agree exactly in eval mode.
# ---------------------------------------------------------------------------------------


@register_model(input_size=(3, 299, 299), family="inception_v4", paper=PAPER,
                twins={"timm": "inception_v4"})
def inception_v4(num_classes: int = 1000, in_channels: int = 3,
                 dropout: float = 0.2) -> InceptionV4:
    """Inception-v4 (Figure 9), 42,679,816 parameters."""
    return InceptionV4(num_classes, in_channels, dropout)


@register_model(input_size=(3, 299, 299), family="inception_v4", paper=PAPER,
                twins={"timm": "inception_resnet_v2"})
def inception_resnet_v2(num_classes: int = 1000, in_channels: int = 3,
                        scales: tuple[float, float, float] = (0.17, 0.10, 0.20),
                        dropout: float = 0.2) -> InceptionResNet:
    """Inception-ResNet-v2 as timm/TF-slim build it (see ``IR_V2``), 55,843,464 parameters."""
    return InceptionResNet(IR_V2, num_classes, in_channels, scales, dropout)


@register_model(input_size=(3, 299, 299), family="inception_v4", paper=PAPER)
def inception_resnet_v1(num_classes: int = 1000, in_channels: int = 3,
                        scales: tuple[float, float, float] = (0.17, 0.10, 0.20),
                        dropout: float = 0.2) -> InceptionResNet:
    """Inception-ResNet-v1 from the paper's Figures 10-15 (see ``IR_V1``)."""
    return InceptionResNet(IR_V1, num_classes, in_channels, scales, dropout)
