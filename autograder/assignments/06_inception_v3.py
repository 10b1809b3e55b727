# %% [markdown]
# # Assignment 6: the modules of Inception-v3
#
# In this assignment you build the four kinds of module that Inception-v3 (Szegedy et al.,
# 2016, "Rethinking the Inception Architecture for Computer Vision") stacks between its stem
# and its classifier, and the loss it trains with:
#
# 1. `InceptionFig5`, the 35×35 module of Figure 5 (3 points);
# 2. `InceptionFig6`, the 17×17 module of Figure 6 with $n = 7$ (3 points);
# 3. `InceptionFig7`, the 8×8 module of Figure 7 with the expanded filter bank (3 points);
# 4. `GridReduction35to17`, the grid reduction from 35×35 to 17×17, in the style of Figure 10
#    (3 points);
# 5. the label-smoothing loss of Section 7 (2 points).
#
# The widths are those of the network Google released (and torchvision ports), which differs
# from the paper's figures in a few places; the tables below are the ones to follow. The class
# names are those of the course's `zoolib` (torchvision calls the four `InceptionA`,
# `InceptionC`, `InceptionE` and `InceptionB`); the tests look for exactly these names. Each
# answer cell is followed by a test cell. The visible test checks one shape on one input;
# when you submit, more tests run (other grids and widths, batch size 1, parameter counts,
# outputs with the reference's weights loaded, gradients). Their messages tell you which
# branch or layer is wrong. You can run `zoolib.checks` yourself while you work.
#
# **Conventions.** Every convolution of these modules is a `BasicConv2d(in_channels,
# out_channels, kernel_size, stride=1, padding=0)`: a convolution without bias, a BatchNorm
# with `eps=1e-3` and a ReLU. It is imported for you in the setup cell, and you may use it
# (write `BasicConv2d(...)`, not `zoolib.BasicConv2d(...)`). Kernel sizes are written
# height × width, as PyTorch takes them: a "1×7" convolution is `kernel_size=(1, 7)` and
# keeps the grid with `padding=(0, 3)`.
#
# The tests follow the data through your module (which layer feeds which, and where the
# branches meet), match each of your layers with the reference's layer that plays its part, and
# load the reference's weights that way. So the attribute names in the tables are only the usual
# ones, and the order in which you create the layers or run the branches is up to you; what
# counts is that each branch computes the layers of its table in that order, and that `forward`
# concatenates the branches in the order given.
#
# Write your own code: an answer that imports or subclasses the course's reference
# implementation (`zoolib`'s modules other than `BasicConv2d`) earns no points for that block.

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
# ## 1. `InceptionFig5` (Figure 5, 35×35)
#
# Figure 5 replaces GoogLeNet's 5×5 convolution by two stacked 3×3 convolutions, which see
# the same 5×5 window for 18/25 of the cost. The released network keeps a 1×1 → 5×5 branch
# as well, so the module has four branches. Its constructor is `InceptionFig5(in_channels,
# pool_proj)`; only the pooling branch's width varies between the three copies of the
# network (32, 64, 64 at inputs of 192, 256, 288 channels).
#
# | attribute | layers, in order |
# | --- | --- |
# | `branch1x1` | 1×1 conv to 64 |
# | `branch5x5` | 1×1 conv to 48; 5×5 conv to 64 (padding 2) |
# | `branch3x3dbl` | 1×1 conv to 64; 3×3 conv to 96 (padding 1); 3×3 conv to 96 (padding 1) |
# | `branch_pool` | 3×3 average pool (stride 1, padding 1, PyTorch's default `count_include_pad`); 1×1 conv to `pool_proj` |
#
# Use `nn.Sequential` for a branch of several layers. `forward` concatenates the four results
# along the channels, in the table's order: $64 + 64 + 96 + \text{pool\_proj}$ channels
# on the input's grid.

# %% [solution id=inception_fig5]
class InceptionFig5(nn.Module):
    def __init__(self, in_channels, pool_proj):
        super().__init__()
        ### BEGIN SOLUTION
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5 = nn.Sequential(BasicConv2d(in_channels, 48, 1),
                                       BasicConv2d(48, 64, 5, padding=2))
        self.branch3x3dbl = nn.Sequential(BasicConv2d(in_channels, 64, 1),
                                          BasicConv2d(64, 96, 3, padding=1),
                                          BasicConv2d(96, 96, 3, padding=1))
        self.branch_pool = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1),
                                         BasicConv2d(in_channels, pool_proj, 1))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        branches = [self.branch1x1, self.branch5x5, self.branch3x3dbl, self.branch_pool]
        return torch.cat([branch(x) for branch in branches], dim=1)
        ### END SOLUTION

# %% [tests id=test_inception_fig5 points=3]
import zoolib

block_a = InceptionFig5(192, 32)
checks.expect_shape(block_a, (2, 192, 35, 35), (2, 256, 35, 35), what="InceptionFig5(192, 32)",
                    reference=zoolib.InceptionFig5(192, 32))
### BEGIN HIDDEN TESTS
import zoolib

# The same run of checks as the other blocks' hidden tests, written out on purpose: a helper
# shared by the test cells would have to sit in a setup cell, which students see.
checks.not_reference(InceptionFig5, allowed=(zoolib.BasicConv2d,), what="your InceptionFig5 class")
checks.not_reference(block_a, allowed=(zoolib.BasicConv2d,), what="your InceptionFig5 block")
for _c_in, _pool in ((192, 32), (256, 64), (288, 64)):
    checks.same_structure(InceptionFig5(_c_in, _pool), zoolib.InceptionFig5(_c_in, _pool),
                          (1, _c_in, 35, 35), what=f"your InceptionFig5({_c_in}, {_pool}) at 35x35")
checks.same_structure(InceptionFig5(24, 8), zoolib.InceptionFig5(24, 8), (1, 24, 13, 11),
                      what="your InceptionFig5(24, 8) on a 13x11 input")
torch.manual_seed(1)
checks.same_function(InceptionFig5(24, 8), zoolib.InceptionFig5(24, 8), torch.randn(1, 24, 9, 9),
                     what="your InceptionFig5(24, 8) (eval mode, batch 1, 9x9)")
checks.same_function(InceptionFig5(16, 4), zoolib.InceptionFig5(16, 4), torch.randn(3, 16, 5, 7),
                     what="your InceptionFig5(16, 4) (eval mode, batch 3, 5x7)")
checks.same_function(InceptionFig5(16, 4), zoolib.InceptionFig5(16, 4), torch.randn(4, 16, 5, 5),
                     train=True, what="your InceptionFig5(16, 4) (training mode, batch 4, 5x5)")
checks.gradients_flow(InceptionFig5(16, 4), torch.randn(2, 16, 6, 6), what="your InceptionFig5")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. `InceptionFig6` (Figure 6 with n = 7, 17×17)
#
# On the 17×17 grid the network factorises 7×7 convolutions into a 1×7 and a 7×1
# convolution: the same 7×7 window for 14/49 of the weights. Write `InceptionFig6(in_channels,
# ch7x7red)`, where `ch7x7red` ($c_7$ below: 128, 160, 160, 192 in the four copies of
# the network) is the width of the 1×1 reduction that opens the two factorised branches
# and of every layer inside them but the last. Each branch ends at 192
# channels, so the module gives $4 \times 192 = 768$.
#
# | attribute | layers, in order |
# | --- | --- |
# | `branch1x1` | 1×1 conv to 192 |
# | `branch7x7` | 1×1 conv to $c_7$; 1×7 conv to $c_7$; 7×1 conv to 192 |
# | `branch7x7dbl` | 1×1 conv to $c_7$; 7×1 conv to $c_7$; 1×7 conv to $c_7$; 7×1 conv to $c_7$; 1×7 conv to 192 |
# | `branch_pool` | 3×3 average pool (stride 1, padding 1); 1×1 conv to 192 |
#
# Note the order of the kernels: `branch7x7` starts with the 1×7, `branch7x7dbl` with the
# 7×1 (that is how the released network is built). Every factorised convolution keeps the
# grid: padding `(0, 3)` for a 1×7, `(3, 0)` for a 7×1.

# %% [solution id=inception_fig6]
class InceptionFig6(nn.Module):
    def __init__(self, in_channels, ch7x7red):
        super().__init__()
        ### BEGIN SOLUTION
        c7 = ch7x7red

        def row(cin, cout):     # 1x7
            return BasicConv2d(cin, cout, (1, 7), padding=(0, 3))

        def col(cin, cout):     # 7x1
            return BasicConv2d(cin, cout, (7, 1), padding=(3, 0))

        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7 = nn.Sequential(BasicConv2d(in_channels, c7, 1), row(c7, c7), col(c7, 192))
        self.branch7x7dbl = nn.Sequential(BasicConv2d(in_channels, c7, 1), col(c7, c7), row(c7, c7),
                                          col(c7, c7), row(c7, 192))
        self.branch_pool = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1),
                                         BasicConv2d(in_channels, 192, 1))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        branches = [self.branch1x1, self.branch7x7, self.branch7x7dbl, self.branch_pool]
        return torch.cat([branch(x) for branch in branches], dim=1)
        ### END SOLUTION

# %% [tests id=test_inception_fig6 points=3]
import zoolib

block_b = InceptionFig6(768, 128)
checks.expect_shape(block_b, (2, 768, 17, 17), (2, 768, 17, 17), what="InceptionFig6(768, 128)",
                    reference=zoolib.InceptionFig6(768, 128))
### BEGIN HIDDEN TESTS
import zoolib

# The same run of checks as the other blocks' hidden tests, written out on purpose: a helper
# shared by the test cells would have to sit in a setup cell, which students see.
checks.not_reference(InceptionFig6, allowed=(zoolib.BasicConv2d,), what="your InceptionFig6 class")
checks.not_reference(block_b, allowed=(zoolib.BasicConv2d,), what="your InceptionFig6 block")
for _c7 in (128, 160, 192):
    checks.same_structure(InceptionFig6(768, _c7), zoolib.InceptionFig6(768, _c7), (1, 768, 17, 17),
                          what=f"your InceptionFig6(768, {_c7}) at 17x17")
checks.same_structure(InceptionFig6(20, 6), zoolib.InceptionFig6(20, 6), (1, 20, 11, 9),
                      what="your InceptionFig6(20, 6) on an 11x9 input")
torch.manual_seed(2)
checks.same_function(InceptionFig6(20, 6), zoolib.InceptionFig6(20, 6), torch.randn(1, 20, 9, 9),
                     what="your InceptionFig6(20, 6) (eval mode, batch 1, 9x9)")
checks.same_function(InceptionFig6(12, 8), zoolib.InceptionFig6(12, 8), torch.randn(2, 12, 7, 10),
                     what="your InceptionFig6(12, 8) (eval mode, batch 2, 7x10)")
checks.same_function(InceptionFig6(12, 4), zoolib.InceptionFig6(12, 4), torch.randn(4, 12, 7, 7),
                     train=True, what="your InceptionFig6(12, 4) (training mode, batch 4, 7x7)")
checks.gradients_flow(InceptionFig6(12, 4), torch.randn(2, 12, 7, 7), what="your InceptionFig6")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. `InceptionFig7` (Figure 7, 8×8)
#
# On the coarsest grid the paper widens the module instead of deepening it: the 3×3 of two
# branches is followed by a 1×3 and a 3×1 convolution *side by side*, both reading the same
# input, and both results go into the concatenation (the "expanded filter bank"). Write
# `InceptionFig7(in_channels)` (1280 channels for the first copy, 2048 for the second):
#
# | attribute | layer, in order | reads |
# | --- | --- | --- |
# | `branch1x1` | 1×1 conv to 320 | the input |
# | `branch3x3_1` | 1×1 conv to 384 | the input |
# | `branch3x3_2a` | 1×3 conv to 384 (padding `(0, 1)`) | `branch3x3_1`'s output |
# | `branch3x3_2b` | 3×1 conv to 384 (padding `(1, 0)`) | `branch3x3_1`'s output |
# | `branch3x3dbl_1` | 1×1 conv to 448 | the input |
# | `branch3x3dbl_2` | 3×3 conv to 384 (padding 1) | `branch3x3dbl_1`'s output |
# | `branch3x3dbl_3a` | 1×3 conv to 384 (padding `(0, 1)`) | `branch3x3dbl_2`'s output |
# | `branch3x3dbl_3b` | 3×1 conv to 384 (padding `(1, 0)`) | `branch3x3dbl_2`'s output |
# | `branch_pool` | 3×3 average pool (stride 1, padding 1), then 1×1 conv to 192 (an `nn.Sequential`) | the input |
#
# `forward` runs the layers in the table's order (`branch1x1` first) and concatenates, in
# this order: `branch1x1`, `branch3x3_2a`, `branch3x3_2b`, `branch3x3dbl_3a`,
# `branch3x3dbl_3b`, `branch_pool`, which gives
# $320 + 2\cdot384 + 2\cdot384 + 192 = 2048$ channels.

# %% [solution id=inception_fig7]
class InceptionFig7(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        ### BEGIN SOLUTION
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1),
                                         BasicConv2d(in_channels, 192, 1))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        one = self.branch1x1(x)
        t = self.branch3x3_1(x)
        t = [self.branch3x3_2a(t), self.branch3x3_2b(t)]
        u = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        u = [self.branch3x3dbl_3a(u), self.branch3x3dbl_3b(u)]
        return torch.cat([one, *t, *u, self.branch_pool(x)], dim=1)
        ### END SOLUTION

# %% [tests id=test_inception_fig7 points=3]
import zoolib

block_c = InceptionFig7(1280)
checks.expect_shape(block_c, (2, 1280, 8, 8), (2, 2048, 8, 8), what="InceptionFig7(1280)",
                    reference=zoolib.InceptionFig7(1280))
### BEGIN HIDDEN TESTS
import zoolib

# The same run of checks as the other blocks' hidden tests, written out on purpose: a helper
# shared by the test cells would have to sit in a setup cell, which students see.
checks.not_reference(InceptionFig7, allowed=(zoolib.BasicConv2d,), what="your InceptionFig7 class")
checks.not_reference(block_c, allowed=(zoolib.BasicConv2d,), what="your InceptionFig7 block")
checks.same_structure(block_c, zoolib.InceptionFig7(1280), (1, 1280, 8, 8),
                      what="your InceptionFig7(1280) at 8x8")
checks.same_structure(InceptionFig7(2048), zoolib.InceptionFig7(2048), (1, 2048, 8, 8),
                      what="your InceptionFig7(2048) at 8x8")
checks.same_structure(InceptionFig7(24), zoolib.InceptionFig7(24), (1, 24, 5, 3),
                      what="your InceptionFig7(24) on a 5x3 input")
torch.manual_seed(3)
checks.same_function(InceptionFig7(24), zoolib.InceptionFig7(24), torch.randn(1, 24, 5, 5),
                     what="your InceptionFig7(24) (eval mode, batch 1, 5x5)")
checks.same_function(InceptionFig7(16), zoolib.InceptionFig7(16), torch.randn(2, 16, 3, 4),
                     what="your InceptionFig7(16) (eval mode, batch 2, 3x4)")
checks.same_function(InceptionFig7(8), zoolib.InceptionFig7(8), torch.randn(4, 8, 3, 3), train=True,
                     what="your InceptionFig7(8) (training mode, batch 4, 3x3)")
checks.gradients_flow(InceptionFig7(8), torch.randn(2, 8, 3, 3), what="your InceptionFig7")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The grid reduction (35×35 → 17×17)
#
# Section 5 of the paper shows that pooling before a convolution loses information and
# convolving before pooling is expensive; Figure 10 does both *in parallel*: stride-2
# convolutions and a stride-2 pool side by side, concatenated. The released network's
# reduction from 35×35×288 to 17×17×768 is `GridReduction35to17(in_channels)`:
#
# | attribute | layers, in order |
# | --- | --- |
# | `branch3x3` | 3×3 conv to 384, stride 2, no padding |
# | `branch3x3dbl` | 1×1 conv to 64; 3×3 conv to 96 (padding 1); 3×3 conv to 96, stride 2, no padding |
# | `branch_pool` | 3×3 max pool, stride 2, no padding |
#
# `forward` concatenates the three in this order: $384 + 96 + \text{in\_channels}$ channels
# (the pool keeps every input channel) on a grid of $\lfloor (n - 3)/2 \rfloor + 1$ for an
# $n \times n$ input. (The network's second reduction, 17×17 → 8×8, follows the same pattern
# with a factorised 7×7 inside; it is not graded here.)

# %% [solution id=grid_reduction_35to17]
class GridReduction35to17(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        ### BEGIN SOLUTION
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl = nn.Sequential(BasicConv2d(in_channels, 64, 1),
                                          BasicConv2d(64, 96, 3, padding=1),
                                          BasicConv2d(96, 96, 3, stride=2))
        self.branch_pool = nn.MaxPool2d(3, stride=2)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return torch.cat([self.branch3x3(x), self.branch3x3dbl(x), self.branch_pool(x)], dim=1)
        ### END SOLUTION

# %% [tests id=test_grid_reduction_35to17 points=3]
import zoolib

reduction = GridReduction35to17(288)
checks.expect_shape(reduction, (2, 288, 35, 35), (2, 768, 17, 17), what="GridReduction35to17(288)",
                    reference=zoolib.GridReduction35to17(288))
### BEGIN HIDDEN TESTS
import zoolib

# The same run of checks as the other blocks' hidden tests, written out on purpose: a helper
# shared by the test cells would have to sit in a setup cell, which students see.
checks.not_reference(GridReduction35to17, allowed=(zoolib.BasicConv2d,),
                     what="your GridReduction35to17 class")
checks.not_reference(reduction, allowed=(zoolib.BasicConv2d,), what="your GridReduction35to17 block")
checks.same_structure(reduction, zoolib.GridReduction35to17(288), (1, 288, 35, 35),
                      what="your GridReduction35to17(288) at 35x35")
checks.same_structure(GridReduction35to17(32), zoolib.GridReduction35to17(32), (1, 32, 9, 9),
                      what="your GridReduction35to17(32) on a 9x9 input")
checks.same_structure(GridReduction35to17(16), zoolib.GridReduction35to17(16), (1, 16, 10, 7),
                      what="your GridReduction35to17(16) on a 10x7 input")
torch.manual_seed(4)
checks.same_function(GridReduction35to17(24), zoolib.GridReduction35to17(24), torch.randn(1, 24, 9, 9),
                     what="your GridReduction35to17(24) (eval mode, batch 1, 9x9)")
checks.same_function(GridReduction35to17(16), zoolib.GridReduction35to17(16), torch.randn(3, 16, 8, 7),
                     what="your GridReduction35to17(16) (eval mode, batch 3, 8x7)")
checks.same_function(GridReduction35to17(8), zoolib.GridReduction35to17(8), torch.randn(4, 8, 7, 7),
                     train=True, what="your GridReduction35to17(8) (training mode, batch 4, 7x7)")
checks.gradients_flow(GridReduction35to17(8), torch.randn(2, 8, 7, 7), what="your GridReduction35to17")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Label smoothing
#
# Section 7 of the paper replaces the one-hot target $q$ of the cross-entropy by a mixture
# with the uniform distribution over the $K$ classes,
#
# $$q'(k) = (1 - \epsilon)\,q(k) + \frac{\epsilon}{K},$$
#
# so that the network is no longer pushed towards infinitely large logits. The loss of one
# example with logits $z$ and label $y$ is then
#
# $$H(q', p) = -\sum_{k=1}^{K} q'(k)\log p(k)
#           = (1-\epsilon)\bigl(-\log p(y)\bigr) + \frac{\epsilon}{K}\sum_{k=1}^{K}\bigl(-\log p(k)\bigr),
#           \qquad p = \mathrm{softmax}(z).$$
#
# Write `label_smoothing_loss(logits, target, eps)` for logits of shape $N \times K$ and
# integer labels of shape $N$: the mean of $H(q', p)$ over the batch, as a 0-dimensional
# tensor that gradients can flow through. With `eps=0` it is the ordinary cross-entropy.
# Compute $\log p$ with `F.log_softmax` (numerically stable). Do **not** use PyTorch's
# built-in smoothing (the `label_smoothing` argument of `F.cross_entropy` or
# `nn.CrossEntropyLoss`): the tests check that your result equals it, and that your code
# does not call it.

# %% [solution id=label_smoothing]
def label_smoothing_loss(logits, target, eps=0.1):
    ### BEGIN SOLUTION
    log_p = F.log_softmax(logits, dim=1)
    nll = -log_p.gather(1, target.view(-1, 1)).squeeze(1)
    uniform = -log_p.mean(dim=1)
    return ((1 - eps) * nll + eps * uniform).mean()
    ### END SOLUTION

# %% [tests id=test_label_smoothing points=2]
_value = float(label_smoothing_loss(torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0]), 0.3))
assert abs(_value - 0.639545) < 1e-4, \
    f"logits [2, 0, 0], label 0, eps 0.3: the loss is 0.8 * 0.2395 + 0.2 * 2.2395 = 0.6395, got {_value:.4f}"
### BEGIN HIDDEN TESTS
import zoolib

checks.not_reference(label_smoothing_loss, what="label_smoothing_loss")
checks.does_not_call(label_smoothing_loss, {"label_smoothing"}, what="label_smoothing_loss",
                     why="This block earns no points: compute the smoothed loss yourself from F.log_softmax.")
torch.manual_seed(5)
for _batch, _k in ((1, 3), (5, 10), (4, 1000), (1, 2)):
    _logits = torch.randn(_batch, _k) * 4
    _target = torch.randint(0, _k, (_batch,))
    for _eps in (0.0, 0.1, 0.25, 0.5, 1.0):
        _mine = label_smoothing_loss(_logits, _target, _eps)
        _ref = F.cross_entropy(_logits, _target, label_smoothing=_eps)
        assert isinstance(_mine, torch.Tensor) and _mine.dim() == 0, (
            f"label_smoothing_loss must return a 0-dimensional tensor (the batch mean), "
            f"got {type(_mine).__name__} of shape {tuple(getattr(_mine, 'shape', ()))}")
        assert torch.allclose(_mine, _ref, atol=1e-5), (
            f"label_smoothing_loss on a batch of {_batch} with {_k} classes and eps={_eps}: got "
            f"{float(_mine):.5f}, expected {float(_ref):.5f}; hint: (1 - eps) * (-log p(y)) + eps/K * "
            f"sum_k (-log p(k)), averaged over the batch")
_logits = (torch.randn(3, 7) * 2).requires_grad_(True)
_target = torch.tensor([0, 6, 3])
_grad = checks.vjp(label_smoothing_loss, (_logits, _target, 0.2))[1][0]
assert _grad is not None, "no gradient reaches the logits: avoid .detach(), .item() and torch.no_grad"
F.cross_entropy(_logits, _target, label_smoothing=0.2).backward()
assert torch.allclose(_grad, _logits.grad, atol=1e-5), \
    "the gradient of label_smoothing_loss with respect to the logits differs from the smoothed cross-entropy's"
### END HIDDEN TESTS
