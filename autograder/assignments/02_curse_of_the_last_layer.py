# %% [markdown]
# # Assignment 2: The curse of the last layer
#
# LeNet, AlexNet and VGG flatten their last feature map into a dense head. Network in
# Network (Lin, Chen & Yan, 2013) replaced that head by a 1×1 convolution and global average
# pooling. In this assignment you count what the dense head costs and build the alternative:
#
# 1. the parameters of a dense head, by formula (2 points);
# 2. a head made of a 1×1 convolution and global average pooling (4 points);
# 3. VGG16 with that head instead of its dense classifier (4 points).
#
# Each answer cell is followed by a test cell. The visible test checks one value or one
# shape; when you submit, more tests run (other sizes, batch size 1, parameter counts,
# outputs with the reference's weights, gradients). Their messages tell you which case or
# layer is wrong. You can run `zoolib.checks` yourself while you work.
#
# Write your own code: an answer that imports or subclasses the course's reference
# implementation (`zoolib`) earns no points for that block. Only part 3 uses zoolib: there the
# trunk of VGG16 comes from `zoolib.get_model`, and the head must be yours.

# %% [code]
import warnings
from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

import zoolib
from zoolib import checks

# nbgrader scores a test cell zero when it writes to stderr: a harmless library warning
# must not cost points.
warnings.filterwarnings("ignore")

torch.manual_seed(0)

# %% [markdown]
# ## 1. What a dense head costs
#
# A dense head flattens a $c\times m_h\times m_w$ feature map into a vector of
# $c\cdot m_h\cdot m_w$ values, applies a dense layer with `hidden` outputs (and a ReLU, which
# has no parameters), then a dense layer with `num_classes` outputs. A dense layer from
# $F_{-1}$ inputs to $F$ outputs has $F_{-1}\cdot F$ weights and $F$ biases.
#
# Write `dense_head_params(channels, height, width, hidden, num_classes)` returning the
# parameters of the whole head as an `int`. On VGG16's last map (512×7×7) with 4096 hidden
# units and 1000 classes the first layer alone has $512\cdot 7\cdot 7\cdot 4096 = 102{,}760{,}448$
# weights.

# %% [solution id=dense_head_params]
def dense_head_params(channels, height, width, hidden, num_classes):
    """Parameters of flatten -> Linear(c*h*w, hidden) -> ReLU -> Linear(hidden, num_classes)."""
    ### BEGIN SOLUTION
    flat = channels * height * width
    return (flat * hidden + hidden) + (hidden * num_classes + num_classes)
    ### END SOLUTION

# %% [tests id=test_dense_head_params points=2]
assert dense_head_params(512, 7, 7, 4096, 1000) == 106_861_544, \
    f"VGG16's map, 4096 hidden, 1000 classes: got {dense_head_params(512, 7, 7, 4096, 1000)!r}, expected 106,861,544"
### BEGIN HIDDEN TESTS
from zoolib import arith

checks.not_reference(dense_head_params, what="dense_head_params")


def _reference_dense(channels, height, width, hidden, num_classes):
    return arith.linear_params(channels * height * width, hidden) + arith.linear_params(hidden, num_classes)


_dense_cases = [(512, 7, 7, 4096, 1000), (256, 6, 6, 4096, 1000), (256, 5, 5, 4096, 10), (16, 5, 5, 120, 10),
                (64, 4, 4, 10, 10), (1, 1, 1, 1, 1), (3, 2, 5, 7, 2), (512, 1, 1, 4096, 1000), (32, 3, 8, 64, 1)]
checks.function_matches(dense_head_params, _reference_dense, _dense_cases, what="dense_head_params",
                        hint="(c*h*w * hidden + hidden) + (hidden * num_classes + num_classes)")
for _case in ((16, 5, 5, 120, 10), (8, 3, 2, 6, 4)):
    _c, _h, _w, _hidden, _classes = _case
    _head = nn.Sequential(nn.Flatten(), nn.Linear(_c * _h * _w, _hidden), nn.ReLU(), nn.Linear(_hidden, _classes))
    _count = sum(p.numel() for p in _head.parameters())
    assert dense_head_params(*_case) == _count, \
        f"dense_head_params{_case} returned {dense_head_params(*_case)!r}, but the PyTorch head has {_count:,} parameters"
assert type(dense_head_params(3, 2, 5, 7, 2)) is int, "dense_head_params should return an int"
### END HIDDEN TESTS

# %% [markdown]
# ## 2. A 1×1 convolution and global average pooling
#
# NiN's head has no dense layer. A 1×1 convolution turns the $c$ channels at every pixel into
# one score per class (a dense layer applied at each pixel), and global average pooling
# replaces each class map by its mean, whatever the map's size:
#
# $$ \text{logits}_k = \frac{1}{m_h m_w}\sum_{i,j} \Big(b_k + \sum_{c'} W_{k c'}\, x_{c', i, j}\Big) . $$
#
# Write `ConvGAPHead(in_channels, num_classes)` as an `nn.Module` with these two layers (the
# tests follow the data through your head, so the attribute names are only the usual ones, and
# the order in which you create them is up to you):
#
# | attribute | layer |
# | --- | --- |
# | `conv` | `nn.Conv2d(in_channels, num_classes, 1)`, with a bias |
# | `pool` | `nn.AdaptiveAvgPool2d(1)` |
#
# `forward` maps an `(N, in_channels, H, W)` tensor to `(N, num_classes)`: the convolution, the
# pool, then a flatten from dimension 1 on. No ReLU: the logits may be negative. The head works
# for any $H\times W$, down to 1×1.

# %% [solution id=conv_gap_head]
class ConvGAPHead(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv = nn.Conv2d(in_channels, num_classes, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return torch.flatten(self.pool(self.conv(x)), 1)
        ### END SOLUTION

# %% [tests id=test_conv_gap_head points=4]
head = ConvGAPHead(512, 1000)
checks.expect_shape(head, (2, 512, 7, 7), (2, 1000), what="ConvGAPHead(512, 1000)")
### BEGIN HIDDEN TESTS
class _ReferenceHead(nn.Sequential):
    """The head as the tests build it: 1x1 convolution, global average pool, flatten."""

    def __init__(self, channels, classes):
        super().__init__(OrderedDict(conv=nn.Conv2d(channels, classes, 1), pool=nn.AdaptiveAvgPool2d(1),
                                     flatten=nn.Flatten()))


checks.not_reference(ConvGAPHead, what="your ConvGAPHead class")
checks.not_reference(head, what="your ConvGAPHead")
for _c_in, _classes, _shape in ((512, 1000, (1, 512, 7, 7)), (512, 10, (1, 512, 2, 2)), (64, 10, (1, 64, 1, 1)),
                                (64, 10, (3, 64, 13, 7)), (3, 1, (1, 3, 5, 4))):
    checks.same_structure(ConvGAPHead(_c_in, _classes), _ReferenceHead(_c_in, _classes), _shape,
                          what=f"your ConvGAPHead({_c_in}, {_classes}) on a {_shape[2]}x{_shape[3]} map")
torch.manual_seed(1)
checks.same_function(ConvGAPHead(16, 5), _ReferenceHead(16, 5), torch.randn(1, 16, 1, 1),
                     what="your ConvGAPHead(16, 5) (batch 1, 1x1 map)")
checks.same_function(ConvGAPHead(16, 5), _ReferenceHead(16, 5), torch.randn(3, 16, 13, 7),
                     what="your ConvGAPHead(16, 5) (batch 3, 13x7 map)")
checks.same_function(ConvGAPHead(32, 10), _ReferenceHead(32, 10), torch.randn(2, 32, 7, 7) - 1,
                     what="your ConvGAPHead(32, 10) (batch 2, 7x7 map)")
_out = ConvGAPHead(8, 3)(torch.randn(1, 8, 4, 4))
assert _out.shape == (1, 3), f"ConvGAPHead(8, 3) returns {tuple(_out.shape)} for a batch of 1, expected (1, 3)"
checks.gradients_flow(ConvGAPHead(8, 3), torch.randn(2, 8, 5, 6), what="your ConvGAPHead")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. VGG16 with a GAP head
#
# VGG16's dense classifier (25,088 → 4096 → 4096 → classes) holds 89 % of its parameters. Keep
# its convolutional trunk and swap the head for yours:
#
# - build the reference VGG16 with `zoolib.get_model("vgg16", num_classes=num_classes)`; its
#   trunk is the attribute `features` (five VGG blocks, 512 channels out, 7×7 at 224×224);
# - return `nn.Sequential(OrderedDict(features=..., head=...))`: that trunk, then your
#   `ConvGAPHead(512, num_classes)`. The `avgpool` and `classifier` of the original model are
#   not used.
#
# The result has $14{,}714{,}688$ parameters in the trunk plus $512\cdot n + n$ in the head for
# $n$ classes, and takes images of any size (each side at least 32 pixels).
#
# Here, and only here, using zoolib is required: the tests check that `head` is your own code.

# %% [solution id=vgg16_gap reuse=zoolib.get_model]
def vgg16_with_gap_head(num_classes):
    ### BEGIN SOLUTION
    vgg = zoolib.get_model("vgg16", num_classes=num_classes)
    return nn.Sequential(OrderedDict(features=vgg.features, head=ConvGAPHead(512, num_classes)))
    ### END SOLUTION

# %% [tests id=test_vgg16_gap points=4]
model = vgg16_with_gap_head(10)
checks.expect_shape(model, (1, 3, 224, 224), (1, 10), what="vgg16_with_gap_head(10)")
### BEGIN HIDDEN TESTS
import zoolib
from zoolib.models.classic import VGG_CONFIGS


class _ReferenceHead(nn.Sequential):
    def __init__(self, channels, classes):
        super().__init__(OrderedDict(conv=nn.Conv2d(channels, classes, 1), pool=nn.AdaptiveAvgPool2d(1),
                                     flatten=nn.Flatten()))


def _reference_model(num_classes):
    _blocks, _c = [], 3
    for _n, _out in VGG_CONFIGS["vgg16"]:
        _blocks.append(zoolib.VGGBlock(_n, _c, _out))
        _c = _out
    return nn.Sequential(OrderedDict(features=nn.Sequential(*_blocks), head=_ReferenceHead(512, num_classes)))


assert isinstance(getattr(model, "head", None), nn.Module) and isinstance(getattr(model, "features", None), nn.Module), \
    "vgg16_with_gap_head should return nn.Sequential(OrderedDict(features=..., head=...))"
assert isinstance(model.head, ConvGAPHead), \
    f"the head of your VGG16 is a {checks.type_name(model.head)}; use your ConvGAPHead(512, num_classes)"
checks.not_reference(model.head, what="the head of your VGG16")
for _classes, _model in ((1000, vgg16_with_gap_head(1000)), (10, model)):
    _want = 14_714_688 + 512 * _classes + _classes
    _total = checks.param_count(_model)
    assert _total == _want, (
        f"vgg16_with_gap_head({_classes}) has {_total:,} parameters, expected 14,714,688 (trunk) "
        f"+ 512*{_classes} + {_classes} (head) = {_want:,}\n  hint: the trunk is VGG16's features alone, the head "
        f"a 1x1 convolution; the trunk has {checks.param_count(_model.features):,}, the head "
        f"{checks.param_count(_model.head):,}")
    checks.expect_shape(_model, (1, 3, 224, 224), (1, _classes),
                        what=f"vgg16_with_gap_head({_classes}) on one 224x224 image")
    _reference = _reference_model(_classes)
    checks.same_structure(_model, _reference, (1, 3, 224, 224), what=f"vgg16_with_gap_head({_classes})")
    checks.expect_shape(_model, (2, 3, 64, 64), (2, _classes), what=f"vgg16_with_gap_head({_classes}) on 64x64 images",
                        reference=_reference)
    checks.same_structure(_model, _reference, (1, 3, 100, 64), what=f"vgg16_with_gap_head({_classes}) on a 100x64 image")
    del _model
torch.manual_seed(1)
checks.same_function(model, _reference, torch.randn(1, 3, 32, 32), what="vgg16_with_gap_head(10) (batch 1, 32x32)")
### END HIDDEN TESTS
