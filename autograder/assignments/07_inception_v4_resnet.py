# %% [markdown]
# # Assignment 7: residual blocks, plain and Inception
#
# In this assignment you build the two residual blocks of chapter 7:
#
# 1. the Inception-ResNet-A block with residual scaling (Szegedy et al., 2016, "Inception-v4,
#    Inception-ResNet and the Impact of Residual Connections on Learning") (5 points);
# 2. ResNet's basic block (He et al., 2015, "Deep Residual Learning for Image Recognition")
#    with an identity shortcut (2 points);
# 3. the same block with the 1×1 projection shortcut, which lets it halve the grid and
#    change the number of channels (3 points).
#
# Each answer cell is followed by a test cell. The visible test checks one shape on one
# input; when you submit, more tests run (other sizes and widths, batch size 1, parameter
# counts, outputs with the reference's weights loaded in eval and in training mode,
# gradients). Their messages tell you which branch or layer is wrong. You can run
# `zoolib.checks` yourself while you work.
#
# The tests follow the data through your block (which layer feeds which, and where the
# branches meet), match each of your layers with the reference's layer that plays its part, and
# load the reference's weights that way. So the order in which you create the layers is up to
# you; what counts is what each branch computes, in the order given below, and the order in
# which `forward` concatenates the branches. The default arguments are graded too.
#
# Write your own code: an answer that imports or subclasses the course's reference
# implementation (`zoolib`'s blocks other than `BasicConv2d`) earns no points for that block.

# %% [code]
import warnings

import torch
from torch import nn
from torch.nn import functional as F

from zoolib import BasicConv2d, checks

# nbgrader scores a test cell zero when it writes to stderr: a harmless library warning
# must not cost points.
warnings.filterwarnings("ignore")

torch.manual_seed(0)

# %% [markdown]
# ## 1. The Inception-ResNet-A block
#
# A residual Inception block keeps the branches of an Inception module and their
# concatenation, drops the pooling branch, and brings the concatenation back to the input's
# width with a "1×1 Conv (Linear)": a 1×1 convolution *with* a bias and *without* BatchNorm
# or ReLU. Its result is scaled down by a constant $s$ before it is added to the input
# (Section 3.3: with more than about 1000 filters the residual networks died early in
# training unless the residuals were scaled by 0.1–0.3), and a ReLU follows the sum:
#
# $$y = \mathrm{ReLU}\bigl(x + s \cdot \mathrm{up}(\mathrm{concat}(b_0(x), b_1(x), b_2(x)))\bigr).$$
#
# Write `Block35(in_channels, branch0, branch1, branch2, scale=1.0, no_relu=False)`, the
# block of the 35×35 grid. `branch0` is one width, `branch1` a pair and `branch2` a triple
# of widths; Figure 16 (Inception-ResNet-v2) has `Block35(320, 32, (32, 32), (32, 48, 64))`,
# Figure 10 (Inception-ResNet-v1) `Block35(256, 32, (32, 32), (32, 32, 32))`. Every
# convolution except `up` is a `BasicConv2d` (conv without bias, BatchNorm with `eps=1e-3`,
# ReLU; imported in the setup cell: write `BasicConv2d(...)`, not `zoolib.BasicConv2d(...)`).
#
# | attribute | layers, in order |
# | --- | --- |
# | `branch0` | 1×1 conv to `branch0` |
# | `branch1` | 1×1 conv to `branch1[0]`; 3×3 conv to `branch1[1]` (padding 1) |
# | `branch2` | 1×1 conv to `branch2[0]`; 3×3 conv to `branch2[1]` (padding 1); 3×3 conv to `branch2[2]` (padding 1) |
# | `up` | `nn.Conv2d` 1×1 from `branch0 + branch1[1] + branch2[2]` channels back to `in_channels`, with bias |
#
# `forward` concatenates the three branches in this order, applies `up`, multiplies by
# `scale`, adds the input, and applies a ReLU, unless `no_relu=True` (then it returns the
# sum itself; Inception-ResNet-v2 does that in its very last block).

# %% [solution id=block35]
class Block35(nn.Module):
    def __init__(self, in_channels, branch0, branch1, branch2, scale=1.0, no_relu=False):
        super().__init__()
        ### BEGIN SOLUTION
        self.branch0 = BasicConv2d(in_channels, branch0, 1)
        self.branch1 = nn.Sequential(BasicConv2d(in_channels, branch1[0], 1),
                                     BasicConv2d(branch1[0], branch1[1], 3, padding=1))
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, branch2[0], 1),
                                     BasicConv2d(branch2[0], branch2[1], 3, padding=1),
                                     BasicConv2d(branch2[1], branch2[2], 3, padding=1))
        self.up = nn.Conv2d(branch0 + branch1[1] + branch2[2], in_channels, 1)
        self.scale = scale
        self.no_relu = no_relu
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        mixed = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)
        out = x + self.scale * self.up(mixed)
        return out if self.no_relu else F.relu(out)
        ### END SOLUTION

# %% [tests id=test_block35 points=5]
import zoolib

block = Block35(320, 32, (32, 32), (32, 48, 64), scale=0.17)
checks.expect_shape(block, (2, 320, 35, 35), (2, 320, 35, 35), what="Block35(320, 32, (32, 32), (32, 48, 64))",
                    reference=zoolib.Block35(320, 32, (32, 32), (32, 48, 64), scale=0.17))
### BEGIN HIDDEN TESTS
import zoolib

checks.not_reference(Block35, allowed=(zoolib.BasicConv2d,), what="your Block35 class")
checks.not_reference(block, allowed=(zoolib.BasicConv2d,), what="your Block35 block")
checks.same_structure(Block35(256, 32, (32, 32), (32, 32, 32)), zoolib.Block35(256, 32, (32, 32), (32, 32, 32)),
                      (1, 256, 35, 35), what="your Block35(256, 32, (32, 32), (32, 32, 32)) (Figure 10, built with the default "
                                            "scale and no_relu) at 35x35")
checks.same_structure(Block35(16, 4, (4, 6), (4, 6, 8)), zoolib.Block35(16, 4, (4, 6), (4, 6, 8)), (1, 16, 9, 7),
                      what="your Block35(16, 4, (4, 6), (4, 6, 8)) on a 9x7 input")
torch.manual_seed(6)
_x = torch.randn(1, 16, 9, 9)
for _scale in (0.17, 1.0):
    checks.same_function(Block35(16, 4, (4, 6), (4, 6, 8), scale=_scale),
                         zoolib.Block35(16, 4, (4, 6), (4, 6, 8), scale=_scale), _x,
                         what=f"your Block35 with scale={_scale} (eval mode, batch 1, 9x9)")
checks.same_function(Block35(12, 8, (4, 4), (4, 4, 4), scale=0.1),
                     zoolib.Block35(12, 8, (4, 4), (4, 4, 4), scale=0.1),
                     torch.randn(3, 12, 5, 6), what="your Block35 with scale=0.1 (eval mode, batch 3, 5x6)")
checks.same_function(Block35(16, 4, (4, 6), (4, 6, 8), scale=0.5, no_relu=True),
                     zoolib.Block35(16, 4, (4, 6), (4, 6, 8), scale=0.5, no_relu=True), _x,
                     what="your Block35 with no_relu=True (eval mode, batch 1, 9x9)")
# the defaults: built without scale and no_relu, as the reference is built the same way
checks.same_function(Block35(16, 4, (4, 6), (4, 6, 8)), zoolib.Block35(16, 4, (4, 6), (4, 6, 8)), _x,
                     what="your Block35(16, 4, (4, 6), (4, 6, 8)) built with the default scale and no_relu "
                          "(eval mode, batch 1, 9x9)")
checks.same_function(Block35(12, 8, (4, 4), (4, 4, 4), scale=0.2), zoolib.Block35(12, 8, (4, 4), (4, 4, 4), scale=0.2),
                     torch.randn(4, 12, 5, 5), train=True,
                     what="your Block35 with scale=0.2 (training mode, batch 4, 5x5)")
checks.gradients_flow(Block35(16, 4, (4, 6), (4, 6, 8), scale=0.17), torch.randn(2, 16, 6, 6), what="your Block35")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The residual block with an identity shortcut
#
# He et al.'s basic block computes $F(x)$ with two 3×3 convolutions and outputs
# $y = \mathrm{ReLU}(F(x) + x)$, where $F(x) = \mathrm{BN}_2(\mathrm{conv}_2(\mathrm{ReLU}(
# \mathrm{BN}_1(\mathrm{conv}_1(x)))))$. Write `ResidualBlock(in_channels, out_channels,
# stride=1, use_1x1conv=False)` with these layers (the usual attribute names; you may create them
# in any order):
#
# | attribute | layer |
# | --- | --- |
# | `conv1` | `nn.Conv2d` 3×3 from `in_channels` to `out_channels`, stride `stride`, padding 1, no bias |
# | `bn1` | `nn.BatchNorm2d(out_channels)` (PyTorch's default `eps`) |
# | `conv2` | `nn.Conv2d` 3×3 from `out_channels` to `out_channels`, padding 1, no bias |
# | `bn2` | `nn.BatchNorm2d(out_channels)` |
# | `conv3` | the projection shortcut, only when `use_1x1conv=True` (part 3), otherwise `None` |
#
# The convolutions have no bias because the BatchNorm after each of them has its own shift.
# (The lecture's version has biases and a bare 1×1 projection; this one is torchvision's
# `resnet18` block, whose weights transfer one to one.) This part is graded with
# `use_1x1conv=False`, where the input and output shapes agree (`stride=1`,
# `in_channels == out_channels`) and the shortcut is the input itself. Part 3 grades the
# projection; you can write both now.

# %% [solution id=residual_block]
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, use_1x1conv=False):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if use_1x1conv:
            self.conv3 = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(out_channels))
        else:
            self.conv3 = None
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.conv3 is None else self.conv3(x)
        return F.relu(y + shortcut)
        ### END SOLUTION

# %% [tests id=test_residual_identity points=2]
import zoolib

same = ResidualBlock(64, 64)
checks.expect_shape(same, (2, 64, 56, 56), (2, 64, 56, 56), what="ResidualBlock(64, 64)",
                    reference=zoolib.ResidualBlock(64, 64))
### BEGIN HIDDEN TESTS
import zoolib

# The same run of checks as assignment 6's blocks, written out on purpose: a helper shared
# by the test cells would have to sit in a setup cell, which students see.
checks.not_reference(ResidualBlock, what="your ResidualBlock class")
checks.not_reference(same, what="your ResidualBlock")
checks.same_structure(ResidualBlock(128, 128), zoolib.ResidualBlock(128, 128), (1, 128, 28, 28),
                      what="your ResidualBlock(128, 128) at 28x28")
checks.same_structure(ResidualBlock(8, 8), zoolib.ResidualBlock(8, 8), (1, 8, 7, 9),
                      what="your ResidualBlock(8, 8) on a 7x9 input")
torch.manual_seed(7)
checks.same_function(ResidualBlock(8, 8), zoolib.ResidualBlock(8, 8), torch.randn(1, 8, 9, 9),
                     what="your ResidualBlock(8, 8) (eval mode, batch 1, 9x9)")
checks.same_function(ResidualBlock(6, 6), zoolib.ResidualBlock(6, 6), torch.randn(3, 6, 5, 7),
                     what="your ResidualBlock(6, 6) (eval mode, batch 3, 5x7)")
_block, _reference = ResidualBlock(8, 8), zoolib.ResidualBlock(8, 8)
checks.same_function(_block, _reference, torch.randn(4, 8, 6, 6), train=True,
                     what="your ResidualBlock(8, 8) (training mode, batch 4, 6x6)")
checks.gradients_flow(ResidualBlock(8, 8), torch.randn(2, 8, 6, 6), what="your ResidualBlock(8, 8)")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The projection shortcut
#
# When a block halves the grid (`stride=2`) and changes the number of channels, $x$ and
# $F(x)$ no longer have the same shape and cannot be added. With `use_1x1conv=True`, your
# `ResidualBlock` passes the shortcut through a projection stored as `conv3`, created
# after `bn2`:
#
# | attribute | layers, in order |
# | --- | --- |
# | `conv3` | `nn.Sequential` of an `nn.Conv2d` 1×1 from `in_channels` to `out_channels` with the block's `stride` (no padding, no bias), and an `nn.BatchNorm2d(out_channels)` |
#
# and `forward` adds `conv3(x)` instead of `x` before the final ReLU. For example,
# `ResidualBlock(64, 128, stride=2, use_1x1conv=True)` maps a 64×56×56 input to 128×28×28,
# as the first block of ResNet-18's second stage does. If you wrote the projection in
# part 2 already, there is nothing more to do: this cell tests it.

# %% [tests id=test_residual_projection points=3]
import zoolib

down = ResidualBlock(64, 128, stride=2, use_1x1conv=True)
checks.expect_shape(down, (2, 64, 56, 56), (2, 128, 28, 28), what="ResidualBlock(64, 128, stride=2, use_1x1conv=True)",
                    reference=zoolib.ResidualBlock(64, 128, stride=2, use_1x1conv=True))
### BEGIN HIDDEN TESTS
import zoolib


checks.not_reference(ResidualBlock, what="your ResidualBlock class")
checks.not_reference(down, what="your ResidualBlock with a projection")
for _c_in, _c_out, _size in ((128, 256, 28), (256, 512, 14)):
    checks.same_structure(ResidualBlock(_c_in, _c_out, stride=2, use_1x1conv=True),
                          zoolib.ResidualBlock(_c_in, _c_out, stride=2, use_1x1conv=True), (1, _c_in, _size, _size),
                          what=f"your ResidualBlock({_c_in}, {_c_out}, stride=2, use_1x1conv=True) at {_size}x{_size}")
checks.same_structure(ResidualBlock(8, 16, stride=2, use_1x1conv=True),
                      zoolib.ResidualBlock(8, 16, stride=2, use_1x1conv=True), (1, 8, 9, 7),
                      what="your ResidualBlock(8, 16, stride=2, use_1x1conv=True) on a 9x7 input")
checks.same_structure(ResidualBlock(8, 12, use_1x1conv=True), zoolib.ResidualBlock(8, 12, use_1x1conv=True),
                      (1, 8, 6, 6), what="your ResidualBlock(8, 12, use_1x1conv=True) (stride 1)")
torch.manual_seed(8)
checks.same_function(ResidualBlock(8, 16, stride=2, use_1x1conv=True),
                     zoolib.ResidualBlock(8, 16, stride=2, use_1x1conv=True),
                     torch.randn(1, 8, 9, 9), what="your ResidualBlock(8, 16, stride=2, use_1x1conv=True) "
                                                  "(eval mode, batch 1, 9x9)")
checks.same_function(ResidualBlock(6, 10, stride=2, use_1x1conv=True),
                     zoolib.ResidualBlock(6, 10, stride=2, use_1x1conv=True),
                     torch.randn(3, 6, 8, 6), what="your ResidualBlock(6, 10, stride=2, use_1x1conv=True) "
                                                  "(eval mode, batch 3, 8x6)")
_block = ResidualBlock(8, 16, stride=2, use_1x1conv=True)
_reference = zoolib.ResidualBlock(8, 16, stride=2, use_1x1conv=True)
checks.same_function(_block, _reference, torch.randn(4, 8, 8, 8), train=True,
                     what="your ResidualBlock(8, 16, stride=2, use_1x1conv=True) (training mode, batch 4, 8x8)")
checks.gradients_flow(ResidualBlock(8, 16, stride=2, use_1x1conv=True), torch.randn(2, 8, 6, 6),
                      what="your ResidualBlock with a projection")
### END HIDDEN TESTS
