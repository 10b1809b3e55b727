"""Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision").

The network is the one Google released (TF-slim's ``inception_v3``), which torchvision ports
tensor for tensor: zoolib registers the same tensors in the same order, so
``zoolib.interop.transfer_state`` maps torchvision's weights one to one. Parameters:
27,161,264 with the auxiliary classifier, 23,834,568 without.

The blocks are named after the paper's figures and grids, not after torchvision's letters,
which shift by one against the paper's (torchvision's ``InceptionC`` is Figure 6) and would
collide with Inception-v4's own ``InceptionA``-``C`` and ``ReductionA``/``B``:

=======================  =======================================  ============  ==========
zoolib                   paper                                    torchvision   TF-slim
=======================  =======================================  ============  ==========
``InceptionFig5``        Figure 5, 35x35 (x3)                     InceptionA    Mixed_5b-d
``GridReduction35to17``  grid reduction 35->17 (Figure 10 style)  InceptionB    Mixed_6a
``InceptionFig6``        Figure 6 with n = 7, 17x17 (x4)          InceptionC    Mixed_6b-e
``InceptionAux``         auxiliary classifier, last 17x17 grid    InceptionAux  AuxLogits
``GridReduction17to8``   grid reduction 17->8                     InceptionD    Mixed_7a
``InceptionFig7``        Figure 7, 8x8 expanded filter bank (x2)  InceptionE    Mixed_7b-c
=======================  =======================================  ============  ==========

timm's ``inception_v3`` uses torchvision's class names.

Width arguments follow one scheme in GoogLeNet's, BN-Inception's, Inception-v3's and
Inception-v4's modules (the Inception-ResNet blocks take one tuple per branch instead; see
``zoolib.v4``): ``ch<k>`` is the output width of the branch named after its kernel ``<k>``
(``ch1x1``, ``ch5x5``, ``ch3x3dbl``, ``ch7x7x3``: the 1x1, 5x5, double-3x3 and
7x7-then-3x3 branches), ``ch<k>red`` the 1x1 "reduce" that opens that branch (GoogLeNet's
Table 1 column "#3x3 reduce" is ``ch3x3red``), and ``pool_proj`` the 1x1 projection after
the pool (Table 1's "pool proj"). torchvision calls two of them differently:
``pool_features`` is ``pool_proj`` of Figure 5, ``channels_7x7`` is ``ch7x7red`` of Figure 6.

Where the released network departs from the paper:

* Figure 5 replaces *every* 5x5 of the original module by two 3x3, which leaves a
  1x1->3x3 branch and a 1x1->3x3->3x3 branch. The released ``InceptionFig5`` keeps a
  1x1(48)->5x5(64) branch next to the 1x1(64)->3x3(96)->3x3(96) one.
* Figure 6 draws each factorised 7x7 as 1x7 then 7x1; the double branch of the
  released ``InceptionFig6`` starts with 7x1 (7x1, 1x7, 7x1, 1x7).
* ``GridReduction17to8`` is not Figure 10: its second branch factorises a 7x7 (1x7, 7x1)
  before the stride-2 3x3.
* The pool branches of Figures 5-7 are 3x3/1 *average* pools; the reductions use 3x3/2 max
  pools.
* Table 1's stem (3x3 convolutions at 73x73 and 71x71, one of them strided, and a 3x3
  convolution at 35x35 up to 288 channels) is not what runs: after the first max pool
  the network has a 1x1 convolution to 80, a 3x3 convolution to 192 and a second
  max pool, and the first ``InceptionFig5`` receives 35x35x192. Table 1's "5 x Inception"
  at 17x17 are four ``InceptionFig6`` (the 35->17 reduction is a separate module).

``transform_input=True`` reproduces torchvision's option for Google's weights: those were
trained on pixels scaled to [-1, 1], so an input normalised with the ImageNet mean and
standard deviation is mapped back to that scale channel by channel.
"""
from __future__ import annotations

import inspect
from collections import namedtuple

import torch
from torch import Tensor, nn

from .._registry import register_model
from ..layers import BasicConv2d, Concat

__all__ = ["InceptionFig5", "InceptionFig6", "InceptionFig7", "GridReduction35to17",
           "GridReduction17to8", "InceptionAux",
           "InceptionV3", "InceptionV3Outputs", "STEM_CONFIG", "STAGE_CONFIG", "inception_v3",
           "small_inception_v3"]

InceptionV3Outputs = namedtuple("InceptionV3Outputs", ["logits", "aux_logits"])

# The smallest input each path accepts. 75x75 leaves a 3x3 grid at 17x17's place, the least
# GridReduction17to8's unpadded 3x3/2 convolution needs. The auxiliary classifier (5x5/3 average
# pool, then a 5x5 convolution) needs the full 17x17 grid, which only 299x299 gives.
MIN_INPUT = 75
MIN_INPUT_AUX = 299

# ImageNet statistics, for ``transform_input``: an input x = (raw - mean) / std becomes
# (raw - 0.5) / 0.5 = x * std / 0.5 + (mean - 0.5) / 0.5, the scale the TF weights expect.
# The factors are computed in double precision and rounded once, as torchvision's are.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_TF_SCALE = tuple(s / 0.5 for s in IMAGENET_STD)
_TF_SHIFT = tuple((m - 0.5) / 0.5 for m in IMAGENET_MEAN)

NUM_FEATURES = 2048  # channels of the last 8x8 grid, the classifier's input


def _pool_proj(in_channels: int, pool_proj: int) -> nn.Sequential:
    """The pooling branch of Figures 5-7: 3x3/1 average pool, then a 1x1 projection."""
    return nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1),
                         BasicConv2d(in_channels, pool_proj, 1))


class InceptionFig5(Concat):
    """Figure 5 (35x35): 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | avg pool->1x1."""

    branch_names = ("branch1x1", "branch5x5", "branch3x3dbl", "branch_pool")

    def __init__(self, in_channels: int, pool_proj: int, *, ch1x1: int = 64,
                 ch5x5red: int = 48, ch5x5: int = 64, ch3x3dblred: int = 64, ch3x3dbl: int = 96):
        super().__init__()
        # Inception-v4's InceptionA (Figure 4) is shaped alike and kept apart on purpose: a
        # 3x3 where this has the 5x5, padding left out of its pool, timm's parameter names.
        self.branch1x1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch5x5 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, 1),
            BasicConv2d(ch5x5red, ch5x5, 5, padding=2),
        )
        self.branch3x3dbl = nn.Sequential(
            BasicConv2d(in_channels, ch3x3dblred, 1),
            BasicConv2d(ch3x3dblred, ch3x3dbl, 3, padding=1),
            BasicConv2d(ch3x3dbl, ch3x3dbl, 3, padding=1),
        )
        self.branch_pool = _pool_proj(in_channels, pool_proj)


class InceptionFig6(Concat):
    """Figure 6 with n = 7 (17x17): 1x1 | 1x1->1x7->7x1 | 1x1->(7x1->1x7)x2 | avg pool->1x1.

    ``ch7x7red`` (torchvision's ``channels_7x7``) is the 1x1 reduce of *both* factorised
    branches, which keep that width until their last layer.
    """

    branch_names = ("branch1x1", "branch7x7", "branch7x7dbl", "branch_pool")

    def __init__(self, in_channels: int, ch7x7red: int, *, ch1x1: int = 192,
                 ch7x7: int = 192, ch7x7dbl: int = 192, pool_proj: int = 192):
        super().__init__()
        c7 = ch7x7red
        self.branch1x1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch7x7 = nn.Sequential(
            BasicConv2d(in_channels, c7, 1),
            BasicConv2d(c7, c7, (1, 7), padding=(0, 3)),
            BasicConv2d(c7, ch7x7, (7, 1), padding=(3, 0)),
        )
        self.branch7x7dbl = nn.Sequential(
            BasicConv2d(in_channels, c7, 1),
            BasicConv2d(c7, c7, (7, 1), padding=(3, 0)),
            BasicConv2d(c7, c7, (1, 7), padding=(0, 3)),
            BasicConv2d(c7, c7, (7, 1), padding=(3, 0)),
            BasicConv2d(c7, ch7x7dbl, (1, 7), padding=(0, 3)),
        )
        self.branch_pool = _pool_proj(in_channels, pool_proj)


class _SplitBranch(nn.Module):
    """A trunk whose output feeds a 1x3 and a 3x1 convolution side by side (Figure 7)."""

    def __init__(self, trunk: nn.Sequential, width: int):
        super().__init__()
        channels = trunk[-1].conv.out_channels
        self.trunk = trunk
        self.conv1x3 = BasicConv2d(channels, width, (1, 3), padding=(0, 1))
        self.conv3x1 = BasicConv2d(channels, width, (3, 1), padding=(1, 0))

    def forward(self, x: Tensor) -> Tensor:
        x = self.trunk(x)
        return torch.cat([self.conv1x3(x), self.conv3x1(x)], 1)


class InceptionFig7(Concat):
    """Figure 7 (8x8): 1x1 | 1x1->{1x3, 3x1} | 1x1->3x3->{1x3, 3x1} | avg pool->1x1.

    ``ch3x3`` and ``ch3x3dbl`` are the width of *each* of the two side-by-side convolutions
    that end their branch, which therefore gives twice that many channels.
    """

    branch_names = ("branch1x1", "branch3x3", "branch3x3dbl", "branch_pool")

    def __init__(self, in_channels: int, *, ch1x1: int = 320, ch3x3red: int = 384,
                 ch3x3: int = 384, ch3x3dblred: int = 448, ch3x3dbl: int = 384,
                 pool_proj: int = 192):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch3x3 = _SplitBranch(nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1)), ch3x3)
        self.branch3x3dbl = _SplitBranch(nn.Sequential(
            BasicConv2d(in_channels, ch3x3dblred, 1),
            BasicConv2d(ch3x3dblred, ch3x3dbl, 3, padding=1),
        ), ch3x3dbl)
        self.branch_pool = _pool_proj(in_channels, pool_proj)


class GridReduction35to17(Concat):
    """35x35 -> 17x17 (Figure 10 style): 3x3/2 | 1x1->3x3->3x3/2 | 3x3/2 max pool."""

    branch_names = ("branch3x3", "branch3x3dbl", "branch_pool")

    def __init__(self, in_channels: int, *, ch3x3: int = 384, ch3x3dblred: int = 64,
                 ch3x3dbl: int = 96):
        super().__init__()
        # Inception-v4's ReductionA is this block with its own widths. Both are kept,
        # deliberately: each must carry its own library's parameter names (torchvision's
        # ``branch3x3`` here, timm's ``branch0`` there) for weights to transfer.
        self.branch3x3 = BasicConv2d(in_channels, ch3x3, 3, stride=2)
        self.branch3x3dbl = nn.Sequential(
            BasicConv2d(in_channels, ch3x3dblred, 1),
            BasicConv2d(ch3x3dblred, ch3x3dbl, 3, padding=1),
            BasicConv2d(ch3x3dbl, ch3x3dbl, 3, stride=2),
        )
        self.branch_pool = nn.MaxPool2d(3, stride=2)


class GridReduction17to8(Concat):
    """17x17 -> 8x8: 1x1->3x3/2 | 1x1->1x7->7x1->3x3/2 | 3x3/2 max pool."""

    branch_names = ("branch3x3", "branch7x7x3", "branch_pool")

    def __init__(self, in_channels: int, *, ch3x3red: int = 192, ch3x3: int = 320,
                 ch7x7x3red: int = 192, ch7x7x3: int = 192):
        super().__init__()
        self.branch3x3 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, 1),
            BasicConv2d(ch3x3red, ch3x3, 3, stride=2),
        )
        self.branch7x7x3 = nn.Sequential(
            BasicConv2d(in_channels, ch7x7x3red, 1),
            BasicConv2d(ch7x7x3red, ch7x7x3red, (1, 7), padding=(0, 3)),
            BasicConv2d(ch7x7x3red, ch7x7x3red, (7, 1), padding=(3, 0)),
            BasicConv2d(ch7x7x3red, ch7x7x3, 3, stride=2),
        )
        self.branch_pool = nn.MaxPool2d(3, stride=2)


class InceptionAux(nn.Module):
    """Side classifier on the last 17x17 grid: 5x5/3 avg pool -> 1x1 -> 5x5 -> linear."""

    def __init__(self, in_channels: int, num_classes: int, *, ch1x1: int = 128,
                 ch5x5: int = 768):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv0 = BasicConv2d(in_channels, ch1x1, 1)
        self.conv1 = BasicConv2d(ch1x1, ch5x5, 5)
        self.fc = nn.Linear(ch5x5, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)                # N x 768 x 5 x 5
        x = self.conv1(self.conv0(x))   # N x 768 x 1 x 1
        return self.fc(torch.flatten(x, 1))


# Source of both tables: Google's released network (TF-slim ``inception_v3``), which
# torchvision's ``inception_v3`` ports; the paper's Table 1 gives only grid sizes, and
# differs (see the module docstring). Outputs are at a 299x299 input.

#: Stem: (out_channels, kernel, stride, padding) of a BasicConv2d, or "M" for a 3x3/2 max pool.
STEM_CONFIG = (
    (32, 3, 2, 0),   # 149x149x32
    (32, 3, 1, 0),   # 147x147x32
    (64, 3, 1, 1),   # 147x147x64
    "M",             # 73x73x64
    (80, 1, 1, 0),   # 73x73x80
    (192, 3, 1, 0),  # 71x71x192
    "M",             # 35x35x192
)

#: Stages after the stem: constructor arguments of each module, in order. A stage is named
#: after its block (``fig5`` holds the InceptionFig5 modules), and so are the state_dict keys.
STAGE_CONFIG = {
    "fig5": ((192, 32), (256, 64), (288, 64)),                 # (in, pool_proj): 35x35x288
    "grid35to17": ((288,),),                                   # 17x17x768
    "fig6": ((768, 128), (768, 160), (768, 160), (768, 192)),  # (in, ch7x7red): 17x17x768
    "grid17to8": ((768,),),                                    # 8x8x1280
    "fig7": ((1280,), (2048,)),                                # (in,): 8x8x2048
}


def _stem(in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for spec in STEM_CONFIG:
        if spec == "M":
            layers.append(nn.MaxPool2d(3, stride=2))
        else:
            out_channels, kernel, stride, padding = spec
            layers.append(BasicConv2d(in_channels, out_channels, kernel, stride, padding))
            in_channels = out_channels
    return nn.Sequential(*layers)


def _stage(block: type[nn.Module], name: str) -> nn.Module:
    modules = [block(*args) for args in STAGE_CONFIG[name]]
    return modules[0] if len(modules) == 1 else nn.Sequential(*modules)


class InceptionV3(nn.Module):
    """Stem (to 35x35x192), 3 x InceptionFig5, GridReduction35to17, 4 x InceptionFig6,
    GridReduction17to8, 2 x InceptionFig7, global average pool, dropout, linear; the auxiliary classifier reads
    the last 17x17 grid."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.5):
        super().__init__()
        if transform_input and in_channels != 3:
            raise ValueError("transform_input re-normalises RGB input; it needs in_channels=3")
        self.transform_input = transform_input
        # Registration order is torchvision's (AuxLogits between Mixed_6e and Mixed_7a).
        self.stem = _stem(in_channels)
        self.fig5 = _stage(InceptionFig5, "fig5")
        self.grid35to17 = _stage(GridReduction35to17, "grid35to17")
        self.fig6 = _stage(InceptionFig6, "fig6")
        self.aux = InceptionAux(768, num_classes) if aux_logits else None  # on 17x17x768
        self.grid17to8 = _stage(GridReduction17to8, "grid17to8")
        self.fig7 = _stage(InceptionFig7, "fig7")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(NUM_FEATURES, num_classes)

    @staticmethod
    def _transform_input(x: Tensor) -> Tensor:
        return x * x.new_tensor(_TF_SCALE).view(1, 3, 1, 1) + x.new_tensor(_TF_SHIFT).view(1, 3, 1, 1)

    def _features(self, x: Tensor, with_aux: bool) -> tuple[Tensor, Tensor | None]:
        h, w = x.shape[-2:]
        if h < MIN_INPUT or w < MIN_INPUT:
            raise ValueError(f"Inception-v3 needs an input of at least {MIN_INPUT}x{MIN_INPUT}, "
                             f"got {h}x{w}")
        if with_aux and (h < MIN_INPUT_AUX or w < MIN_INPUT_AUX):
            raise ValueError(
                f"the auxiliary classifier needs an input of at least {MIN_INPUT_AUX}x"
                f"{MIN_INPUT_AUX} in training mode, got {h}x{w}; build the model with "
                f"aux_logits=False to train on smaller images")
        if self.transform_input:
            x = self._transform_input(x)
        # Shapes at a 299x299 input.
        x = self.stem(x)        # N x 192 x 35 x 35
        x = self.fig5(x)        # N x 288 x 35 x 35
        x = self.grid35to17(x)  # N x 768 x 17 x 17
        x = self.fig6(x)        # N x 768 x 17 x 17
        aux = self.aux(x) if with_aux else None  # N x num_classes
        x = self.grid17to8(x)   # N x 1280 x 8 x 8
        x = self.fig7(x)        # N x 2048 x 8 x 8
        return x, aux

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map, N x 2048 x 8 x 8 at 299x299 (the auxiliary head is not run)."""
        return self._features(x, with_aux=False)[0]

    def forward_head(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # N x 2048
        return self.fc(self.dropout(x))

    def forward(self, x: Tensor) -> Tensor | InceptionV3Outputs:
        """Logits; in training mode with the auxiliary classifier, ``(logits, aux_logits)``."""
        with_aux = self.training and self.aux is not None
        x, aux = self._features(x, with_aux)
        logits = self.forward_head(x)
        return InceptionV3Outputs(logits, aux) if with_aux else logits


@register_model(input_size=(3, 299, 299), family="inception_v3",
                paper="Szegedy et al. 2016, Rethinking the Inception Architecture for Computer Vision",
                twins={"torchvision": "inception_v3"})
def inception_v3(num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.5) -> InceptionV3:
    return InceptionV3(num_classes, in_channels, aux_logits, transform_input, dropout)


def _shrunk(block: type[nn.Module], in_channels: int, args: tuple, shrink: int) -> nn.Module:
    """``block`` with every width (its positional ones and its keyword defaults) over ``shrink``."""
    widths = {name: p.default // shrink for name, p in inspect.signature(block).parameters.items()
              if p.kind is p.KEYWORD_ONLY}
    return block(in_channels, *(a // shrink for a in args), **widths)


def small_inception_v3(in_channels: int = 1, num_classes: int = 10, shrink: int = 8) -> nn.Sequential:
    """Chapter 6's fast-mode network: one module of each kind, in the released network's order,
    every width divided by ``shrink``, for 28x28 grey images.

    Each module is the *first* of its stage in ``STAGE_CONFIG`` (Mixed_5b, 6a, 6b, 7a, 7b),
    with its own channel counts over ``shrink``. The stem is one 3x3 convolution (to 192 /
    ``shrink`` channels, the width the first InceptionFig5 receives) and a 3x3/2 max pool: the
    released stem would take a 28x28 image down to nothing. No auxiliary classifier and no
    dropout: at this size the run is too short to overfit. Shapes at 28x28 with ``shrink=8``
    are in the comments.
    """
    stem_width = STAGE_CONFIG["fig5"][0][0] // shrink
    layers: list[nn.Module] = [BasicConv2d(in_channels, stem_width, 3, padding=1),  # 24 x 28 x 28
                               nn.MaxPool2d(3, stride=2, padding=1)]                # 24 x 14 x 14
    channels = stem_width
    # 32 x 14 x 14, 92 x 6 x 6, 96 x 6 x 6, 160 x 2 x 2, 256 x 2 x 2
    for block, stage in ((InceptionFig5, "fig5"), (GridReduction35to17, "grid35to17"),
                         (InceptionFig6, "fig6"), (GridReduction17to8, "grid17to8"),
                         (InceptionFig7, "fig7")):
        _, *args = STAGE_CONFIG[stage][0]
        layers.append(_shrunk(block, channels, tuple(args), shrink))
        with torch.no_grad():  # its output width, from one probe in eval mode (BN stats untouched)
            channels = layers[-1].eval()(torch.zeros(1, channels, 9, 9)).shape[1]
        layers[-1].train()
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
