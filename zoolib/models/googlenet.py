"""GoogLeNet (Szegedy et al. 2014) and BN-Inception (Ioffe & Szegedy 2015), family ``"googlenet"``.

``googlenet`` -- the 2014 network of Table 1: a stem (7x7/2 conv, max-pool, LRN, 1x1 and
    3x3 convs, LRN, max-pool), nine Inception modules 3a..5b with 3x3/2 max-pools after 3b
    and 4e, global average pooling, dropout 0.4 and one linear layer. Convolutions carry a
    bias and a ReLU; there is no BatchNorm (it did not exist yet). At 224x224 the grid is
    112 -> 56 -> 28 -> 14 -> 7 and the depths are 64, 192, 256, 480, 512, 512, 512, 528, 832,
    832, 1024. With ``aux_logits=True`` two auxiliary classifiers read the outputs of 4a
    and 4d during training; ``googlenet_loss`` adds their losses with weight 0.3.

``bn_inception`` -- the BatchNorm network of Ioffe & Szegedy's appendix (Figure 5): every
    convolution followed by BatchNorm, each 5x5 replaced by two 3x3s, an extra module 3c,
    and the grid reduced inside modules 3c and 4e (stride 2, max-pool pass-through) instead
    of by max-pools between stages.

The Inception modules are direct children named after the papers (``inception3a`` ...
``inception5b``), so a profiler reports them under those names. ``stages()`` gives d2l's
five stages ``b1``..``b5`` as ``nn.Sequential`` views over the same modules (built on
demand, never registered, so nothing appears twice in the state dict); running them in
order is ``forward_features``, and ``forward_head`` does the rest.

Sources: Szegedy et al., "Going deeper with convolutions" (arXiv:1409.4842), Table 1 and
Sec. 5; Ioffe & Szegedy, "Batch Normalization" (arXiv:1502.03167), Sec. 4.2 and Figure 5.
"""
from __future__ import annotations

from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._registry import register_model
from ..layers import BasicConv2d, ConvReLU

__all__ = ["GOOGLENET_TABLE", "BN_INCEPTION_TABLE", "GoogLeNetOutputs", "Inception", "NaiveInception",
           "InceptionAux", "GoogLeNet", "BNInception", "BNInceptionNet", "googlenet",
           "bn_inception", "googlenet_loss"]

GOOGLENET_PAPER = "Szegedy et al. 2014, Going Deeper with Convolutions (arXiv:1409.4842)"
BN_INCEPTION_PAPER = ("Ioffe & Szegedy 2015, Batch Normalization: Accelerating Deep Network "
                      "Training by Reducing Internal Covariate Shift (arXiv:1502.03167)")

# Table 1 of Szegedy et al. 2014, the Inception rows, in the paper's column order, which is
# also the order of Inception's arguments (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
#                #1x1  #3x3 reduce  #3x3  #5x5 reduce  #5x5  pool proj
GOOGLENET_TABLE = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}

# Figure 5 (appendix) of Ioffe & Szegedy 2015, in the paper's column order plus the stride,
# the order of BNInception's arguments (ch1x1, ch3x3red, ch3x3, ch3x3dblred, ch3x3dbl, pool,
# pool_proj, stride):
#                #1x1  #3x3 reduce  #3x3  double #3x3 reduce  double #3x3  pool, proj  stride
# A proj of 0 is the table's "pass through": the pooled input is concatenated unchanged.
#
# The table's "output size" column does not always follow from its own columns; this
# module builds what the columns say:
#   3c   the table prints 28x28x576, but a stride-2 module outputs 14x14 (160+96+320 = 576);
#   4c   160+160+160+128 = 608, the table says 576;
#   4d   96+192+192+128 = 608, the table says 576;
#   4e   192+256+608 (pass-through of 4d's 608) = 1056, the table says 1024.
# 5a and 5b give 1024 as printed.
BN_INCEPTION_TABLE = {
    "inception3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "inception3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "inception3c": (0, 128, 160, 64, 96, "max", 0, 2),
    "inception4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "inception4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "inception4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "inception4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "inception4e": (0, 128, 192, 192, 256, "max", 0, 2),
    "inception5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "inception5b": (352, 192, 320, 192, 224, "max", 128, 1),
}

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux1", "aux2"])
GoogLeNetOutputs.__doc__ = "What a GoogLeNet with ``aux_logits=True`` returns in training mode."


class Inception(nn.Module):
    """The 2014 Inception module: 1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 max-pool->1x1, concatenated."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int):
        super().__init__()
        self.branch1 = ConvReLU(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(ConvReLU(in_channels, ch3x3red, 1),
                                     ConvReLU(ch3x3red, ch3x3, 3, padding=1))
        # A real 5x5 as in the paper. torchvision's googlenet has a 3x3 here: a known bug
        # kept so its pretrained weights still load, which is why it is only a relative.
        self.branch3 = nn.Sequential(ConvReLU(in_channels, ch5x5red, 1),
                                     ConvReLU(ch5x5red, ch5x5, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     ConvReLU(in_channels, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class NaiveInception(nn.Module):
    """Figure 2(a) of the paper: 1x1 | 3x3 | 5x5 | 3x3 max-pool side by side, no reductions.

    The max-pool branch passes all ``in_channels`` through, so the output always grows by
    ``ch1x1 + ch3x3 + ch5x5`` channels: stacking these blocks inflates depth and cost.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int):
        super().__init__()
        self.branch1 = ConvReLU(in_channels, ch1x1, 1)
        self.branch2 = ConvReLU(in_channels, ch3x3, 3, padding=1)
        self.branch3 = ConvReLU(in_channels, ch5x5, 5, padding=2)
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (Sec. 5): 5x5/3 average pool, 1x1 conv 128 + ReLU, fc 1024 + ReLU,
    dropout 0.7, linear to the classes.

    On the 14x14 grid of a 224x224 input the pool gives 4x4 (4x4x128 = 2048 features). An
    adaptive pool to 4x4 follows it so other input sizes work too; at 14x14 it does nothing.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv = ConvReLU(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(self.pool(x), 4)  # torchvision skips self.pool
        x = self.conv(x).flatten(1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """GoogLeNet as in Table 1. See the module docstring.

    torchvision's ``googlenet`` is a relative, not a twin: its pretrained weights come from a
    re-training with other choices. Where it departs from the paper (each is marked at its
    place below; ``tests/test_models_googlenet.py`` checks every one against torchvision):

    1. every convolution is followed by BatchNorm (eps 1e-3) and has no bias;
    2. the "5x5" branch has a 3x3 convolution;
    3. no LRN in the stem;
    4. ``maxpool4`` is 2x2/2, not 3x3/2 (at 224x224 both give 7x7);
    5. the final dropout is 0.2, not 0.4;
    6. the auxiliary heads skip the 5x5/3 average pool (only an adaptive pool to 4x4);
    7. in training mode the outputs come as ``(logits, aux2, aux1)``; here ``(logits, aux1, aux2)``;
    8. weights start from a truncated normal (std 0.01), not Caffe's "xavier".
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = False,
                 lrn: bool = True, dropout: float = 0.4, aux_dropout: float = 0.7, width_divisor: int = 1):
        super().__init__()
        # ``width_divisor`` divides every channel count of the stem and of Table 1 (the topology,
        # i.e. the layers, kernels, strides and branches, stays the same): the chapters' fast run
        # trains GoogLeNet at a quarter of its width on a CPU. The auxiliary heads keep theirs.
        k = width_divisor
        if k < 1 or any(c % k for row in GOOGLENET_TABLE.values() for c in (64, 192, *row)):
            raise ValueError(f"width_divisor must divide every channel count of Table 1 (1, 2, 4 or 8), not {k}")
        # All max-pools use ceil_mode: the paper's Caffe model rounds pooled sizes up, which
        # is what makes 224 give 112/56/28/14/7 as in Table 1 (rounding down gives 55 after
        # the first pool).
        self.conv1 = ConvReLU(in_channels, 64 // k, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        # LRN as in the paper (size 5, alpha 1e-4, beta 0.75; torchvision has none).
        self.lrn1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75) if lrn else nn.Identity()
        # conv2 and conv3 are Table 1's second "convolution" row (#3x3 reduce 64, #3x3 192).
        self.conv2 = ConvReLU(64 // k, 64 // k, 1)
        self.conv3 = ConvReLU(64 // k, 192 // k, 3, padding=1)
        self.lrn2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75) if lrn else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        channels = 192 // k
        for name, row in GOOGLENET_TABLE.items():
            block = Inception(channels, *(c // k for c in row))
            self.add_module(name, block)
            channels = block.out_channels
            if name == "inception3b":  # the grid halves after 3b and after 4e
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            elif name == "inception4e":  # torchvision: MaxPool2d(2, 2)
                self.maxpool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        if aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, aux_dropout)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, aux_dropout)
        else:
            self.aux1 = self.aux2 = None
        # Table 1's 7x7 average pool; adaptive so that other input sizes work (same at 224).
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)  # 0.4, Sec. 5 (torchvision: 0.2)
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # As the reference Caffe model (bvlc_googlenet): Caffe's "xavier" weights, uniform
        # with variance 1/fan_in (PyTorch's default is a third of that, which matters in a
        # deep stack without BatchNorm), and conv biases of 0.2.
        # (torchvision: truncated normal, std 0.01.)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=1.0)  # bound sqrt(3 / fan_in)
                nn.init.constant_(m.bias, 0.2 if isinstance(m, nn.Conv2d) else 0.0)

    def stages(self) -> list[nn.Sequential]:
        """d2l's stages b1..b5 as views over this model's modules (not registered)."""
        return [nn.Sequential(self.conv1, self.maxpool1, self.lrn1),
                nn.Sequential(self.conv2, self.conv3, self.lrn2, self.maxpool2),
                nn.Sequential(self.inception3a, self.inception3b, self.maxpool3),
                nn.Sequential(self.inception4a, self.inception4b, self.inception4c,
                              self.inception4d, self.inception4e, self.maxpool4),
                nn.Sequential(self.inception5a, self.inception5b)]

    def _features(self, x: Tensor, with_aux: bool):
        x = self.lrn1(self.maxpool1(self.conv1(x)))                     # b1
        x = self.maxpool2(self.lrn2(self.conv3(self.conv2(x))))         # b2
        x = self.maxpool3(self.inception3b(self.inception3a(x)))        # b3
        x = self.inception4a(x)                                         # b4
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x)), aux1, aux2        # b5

    def forward_features(self, x: Tensor) -> Tensor:
        """Everything up to 5b: (N, 1024, 7, 7) at 224x224. No auxiliary heads."""
        return self._features(x, with_aux=False)[0]

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))

    def forward(self, x: Tensor):
        """Logits; in training mode with ``aux_logits`` a ``GoogLeNetOutputs`` instead."""
        with_aux = self.aux1 is not None and self.training
        x, aux1, aux2 = self._features(x, with_aux)
        logits = self.forward_head(x)
        return GoogLeNetOutputs(logits, aux1, aux2) if with_aux else logits  # torchvision: aux2, aux1


def googlenet_loss(outputs, target: Tensor, aux_weight: float = 0.3) -> Tensor:
    """Cross-entropy of the logits, plus ``aux_weight`` times each auxiliary head's.

    total = main + 0.3 * aux1 + 0.3 * aux2, the weighting of the paper and the lecture.
    A plain logits tensor (eval mode, or no auxiliary heads) gives the main loss alone.
    """
    if isinstance(outputs, Tensor):
        return F.cross_entropy(outputs, target)
    logits, aux1, aux2 = outputs  # GoogLeNetOutputs or any (main, aux1, aux2) tuple
    return (F.cross_entropy(logits, target)
            + aux_weight * F.cross_entropy(aux1, target)
            + aux_weight * F.cross_entropy(aux2, target))


class BNInception(nn.Module):
    """BN-Inception module: 1x1 | 1x1->3x3 | 1x1->3x3->3x3 | pool(->1x1), concatenated.

    ``pool`` is ``"avg"`` or ``"max"``; ``pool_proj=0`` passes the pooled input through
    unprojected; ``ch1x1=0`` drops the 1x1 branch. With ``stride=2`` (modules 3c and 4e) the
    last conv of each 3x3 branch and the pool are strided and the grid halves.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch3x3dblred: int, ch3x3dbl: int, pool: str, pool_proj: int, stride: int = 1):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1, stride=stride) if ch1x1 else None
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1),
                                     BasicConv2d(ch3x3red, ch3x3, 3, stride=stride, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch3x3dblred, 1),
                                     BasicConv2d(ch3x3dblred, ch3x3dbl, 3, padding=1),
                                     BasicConv2d(ch3x3dbl, ch3x3dbl, 3, stride=stride, padding=1))
        # Padding 1 makes the strided pool's output size equal the strided convs' for every
        # input size (at 28x28 it is 14x14 either way).
        pooling = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        layers = [pooling(3, stride=stride, padding=1)]
        if pool_proj:
            layers.append(BasicConv2d(in_channels, pool_proj, 1))
        self.branch4 = nn.Sequential(*layers)
        self.out_channels = ch1x1 + ch3x3 + ch3x3dbl + (pool_proj or in_channels)

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch2, self.branch3, self.branch4]
        if self.branch1 is not None:
            branches.insert(0, self.branch1)
        return torch.cat([b(x) for b in branches], 1)


class BNInceptionNet(nn.Module):
    """BN-Inception as in Ioffe & Szegedy's Figure 5. See the module docstring.

    The paper's changes for BatchNorm (Sec. 4.2.1) show here: no LRN and no dropout (the
    head is global average pooling then one linear layer).
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        channels = 192
        for name, row in BN_INCEPTION_TABLE.items():
            block = BNInception(channels, *row)
            self.add_module(name, block)
            channels = block.out_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the table's 7x7 average pool at 224
        self.fc = nn.Linear(channels, num_classes)

    def stages(self) -> list[nn.Sequential]:
        """Stages b1..b5 (grids 56, 28, 14, 7, 7 at 224) as views over this model's modules."""
        return [nn.Sequential(self.conv1, self.maxpool1),
                nn.Sequential(self.conv2, self.conv3, self.maxpool2),
                nn.Sequential(self.inception3a, self.inception3b, self.inception3c),
                nn.Sequential(self.inception4a, self.inception4b, self.inception4c,
                              self.inception4d, self.inception4e),
                nn.Sequential(self.inception5a, self.inception5b)]

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        for name in BN_INCEPTION_TABLE:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(x).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(input_size=(3, 224, 224), family="googlenet", paper=GOOGLENET_PAPER,
                relatives={"torchvision": "googlenet"})
def googlenet(num_classes: int = 1000, in_channels: int = 3, *, aux_logits: bool = False,
              lrn: bool = True, width_divisor: int = 1) -> GoogLeNet:
    # torchvision's googlenet is only a relative: GoogLeNet's docstring lists the 8 differences.
    return GoogLeNet(num_classes, in_channels, aux_logits=aux_logits, lrn=lrn, width_divisor=width_divisor)


@register_model(input_size=(3, 224, 224), family="googlenet", paper=BN_INCEPTION_PAPER)
def bn_inception(num_classes: int = 1000, in_channels: int = 3) -> BNInceptionNet:
    return BNInceptionNet(num_classes, in_channels)
