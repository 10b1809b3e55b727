# %% [markdown]
# # Assignment 1: The zoo so far (LeNet, AlexNet, VGG)
#
# In this assignment you write the arithmetic of chapter 1 and the building block of VGG
# (Simonyan & Zisserman, 2014):
#
# 1. the output size of a convolution or a pooling layer (2 points);
# 2. the parameter count of a convolution (2 points);
# 3. AlexNet's parameters, layer by layer, from your two formulas (2 points);
# 4. the VGG block (4 points).
#
# Each answer cell is followed by a test cell. The visible test checks one value or one
# shape; when you submit, more tests run (other sizes and settings, parameter counts, outputs
# with the reference's weights, gradients). Their messages tell you which case or layer is
# wrong. You can run `zoolib.checks` yourself while you work.
#
# Write your own code: an answer that imports or subclasses the course's reference
# implementation (`zoolib`) earns no points for that block.

# %% [code]
import warnings

import torch
from torch import nn
from torch.nn import functional as F

from zoolib import checks

# nbgrader scores a test cell zero when it writes to stderr: a harmless library warning
# must not cost points.
warnings.filterwarnings("ignore")

torch.manual_seed(0)

# %% [markdown]
# ## 1. Output size
#
# A convolution with a $K\times K$ kernel, stride $S$ and padding $P$ maps an $I\times I$ input
# to an $O\times O$ output with
#
# $$ O = \left\lfloor \frac{I - K + 2P}{S} \right\rfloor + 1 . $$
#
# When $S$ does not divide $I - K + 2P$, PyTorch drops the last window that would stick out of
# the padded input: the division rounds **down**. A max-pool follows the same formula.
#
# Write `conv_output_size(size, kernel, stride=1, padding=0)` so that it returns $O$ as an
# `int`. AlexNet's first layer (11×11, stride 4, no padding) maps 227 to 55; its first 3×3
# max-pool with stride 2 maps 55 to 27.

# %% [solution id=conv_output_size]
def conv_output_size(size, kernel, stride=1, padding=0):
    """Side of the output of a kernel x kernel convolution (or pool) on a size x size input."""
    ### BEGIN SOLUTION
    return (size - kernel + 2 * padding) // stride + 1
    ### END SOLUTION

# %% [tests id=test_conv_output_size points=2]
assert conv_output_size(227, 11, stride=4) == 55, \
    f"AlexNet's conv1 (11x11, stride 4) on 227x227: got {conv_output_size(227, 11, stride=4)!r}, expected 55"
### BEGIN HIDDEN TESTS
from zoolib import arith

checks.not_reference(conv_output_size, what="conv_output_size")
_size_cases = [(227, 11, 4, 0), (55, 3, 2), (27, 5, 1, 2), (27, 3, 2), (13, 3, 1, 1), (13, 3, 2),
               (224, 3, 1, 1), (224, 2, 2), (7, 2, 2), (15, 2, 2), (224, 11, 4), (224, 11, 4, 2),
               (28, 5, 1, 2), (14, 2, 2), (10, 5), (32, 3, 2, 1), (1, 1), (5, 5), (6, 1, 3),
               ((55, 3), {"stride": 2}), ((28, 5), {"padding": 2}), ((9, 4), {"stride": 3, "padding": 1})]
checks.function_matches(conv_output_size, arith.conv_out_size, _size_cases, what="conv_output_size",
                        hint="O = (I - K + 2P) // S + 1: integer division rounds down, then add 1")
assert type(conv_output_size(224, 11, 4)) is int, \
    f"conv_output_size should return an int, not a {type(conv_output_size(224, 11, 4)).__name__} (use // to divide)"
for _size, _kernel, _stride, _padding in ((227, 11, 4, 0), (13, 3, 2, 0), (10, 4, 3, 1)):
    _got = torch.nn.functional.max_pool2d(torch.empty(1, 1, _size, _size, device="meta"), _kernel, _stride,
                                          _padding).shape[-1]
    assert conv_output_size(_size, _kernel, _stride, _padding) == _got, \
        f"PyTorch's max-pool {_kernel}x{_kernel}/{_stride}, padding {_padding}, maps {_size} to {_got}"
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Parameters of a convolution
#
# Each of the $N$ kernels of a $K\times K$ convolution spans all $C$ input channels and has one
# bias, so the layer has
#
# $$ W_c = K^2 \cdot C \cdot N \ \text{weights}, \qquad B_c = N \ \text{biases}, \qquad
#    P_c = W_c + B_c \ \text{parameters}. $$
#
# Write `conv_params(kernel, in_channels, out_channels, bias=True)` for a square kernel; with
# `bias=False` the layer has no biases (as before a batch normalization). AlexNet's conv1
# (11×11, 3 → 96) has $11^2\cdot 3\cdot 96 + 96 = 34{,}944$ parameters. The result must agree
# with `sum(p.numel() for p in nn.Conv2d(...).parameters())`.

# %% [solution id=conv_params]
def conv_params(kernel, in_channels, out_channels, bias=True):
    """Parameters of a kernel x kernel convolution from in_channels to out_channels."""
    ### BEGIN SOLUTION
    weights = kernel * kernel * in_channels * out_channels
    return weights + (out_channels if bias else 0)
    ### END SOLUTION

# %% [tests id=test_conv_params points=2]
assert conv_params(11, 3, 96) == 34_944, \
    f"AlexNet's conv1 (11x11, 3 -> 96): got {conv_params(11, 3, 96)!r}, expected 34,944"
### BEGIN HIDDEN TESTS
from zoolib import arith

checks.not_reference(conv_params, what="conv_params")


def _reference_params(kernel, in_channels, out_channels, bias=True):
    return arith.conv_params(kernel, in_channels, out_channels, bias=bias)


_param_cases = [(11, 3, 96), (5, 96, 256), (3, 256, 384), (3, 384, 384), (3, 384, 256), (1, 1, 1),
                (3, 64, 64), (1, 512, 1000), (5, 6, 16), (7, 3, 64, False), (3, 64, 128, False),
                ((1, 192, 64), {"bias": False}), ((3, 2, 5), {"bias": True})]
checks.function_matches(conv_params, _reference_params, _param_cases, what="conv_params",
                        hint="K*K*C*N weights, plus N biases unless bias=False")
for _k, _c, _n, _bias in ((3, 16, 32, True), (5, 3, 8, False), (1, 64, 10, True), (11, 3, 96, True)):
    _layer = nn.Conv2d(_c, _n, _k, bias=_bias)
    _count = sum(p.numel() for p in _layer.parameters())
    assert conv_params(_k, _c, _n, bias=_bias) == _count, (
        f"conv_params({_k}, {_c}, {_n}, bias={_bias}) returned {conv_params(_k, _c, _n, bias=_bias)!r}, but "
        f"nn.Conv2d({_c}, {_n}, {_k}, bias={_bias}) has {_count:,} parameters")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. AlexNet, layer by layer
#
# The single-GPU form of the paper's AlexNet (Krizhevsky et al., 2012) on a 227×227×3 image,
# 1000 classes:
#
# | layer | operation | output |
# | --- | --- | --- |
# | conv1 | 11×11 conv, stride 4, padding 0, 96 kernels | 55×55×96 |
# | pool1 | 3×3 max-pool, stride 2 | 27×27×96 |
# | conv2 | 5×5 conv, padding 2, 256 kernels | 27×27×256 |
# | pool2 | 3×3 max-pool, stride 2 | 13×13×256 |
# | conv3 | 3×3 conv, padding 1, 384 kernels | 13×13×384 |
# | conv4 | 3×3 conv, padding 1, 384 kernels | 13×13×384 |
# | conv5 | 3×3 conv, padding 1, 256 kernels | 13×13×256 |
# | pool5 | 3×3 max-pool, stride 2 | 6×6×256 |
# | fc6 | dense, flattened pool5 → 4096 | 4096 |
# | fc7 | dense, 4096 → 4096 | 4096 |
# | fc8 | dense, 4096 → 1000 | 1000 |
#
# Write `alexnet_layer_params()` returning the list of the eight parameter counts
# `[conv1, conv2, conv3, conv4, conv5, fc6, fc7, fc8]` (ints, all layers with biases).
# Compute them, do not type them in: use your `conv_params` for the convolutions, and follow the
# image through the table with your `conv_output_size` (starting from 227) to get the size of
# pool5, whose flattened output feeds fc6. A dense layer from $F_{-1}$ inputs to $F$ outputs has
# $F_{-1}\cdot F + F$ parameters.

# %% [solution id=alexnet_layer_params]
def alexnet_layer_params():
    """[conv1, ..., conv5, fc6, fc7, fc8] parameter counts of AlexNet at 227x227."""
    ### BEGIN SOLUTION
    convs = [(96, 11, 4, 0, True), (256, 5, 1, 2, True), (384, 3, 1, 1, False),
             (384, 3, 1, 1, False), (256, 3, 1, 1, True)]
    counts, side, channels = [], 227, 3
    for out, kernel, stride, padding, pool in convs:
        counts.append(conv_params(kernel, channels, out))
        side = conv_output_size(side, kernel, stride, padding)
        if pool:
            side = conv_output_size(side, 3, 2)
        channels = out
    width = channels * side * side
    for out in (4096, 4096, 1000):
        counts.append(width * out + out)
        width = out
    return counts
    ### END SOLUTION

# %% [tests id=test_alexnet_layer_params points=2]
_counts = alexnet_layer_params()
assert len(_counts) == 8 and _counts[0] == 34_944, \
    f"expected 8 counts starting with conv1's 34,944; got {len(_counts)} counts starting with {_counts[:1]}"
### BEGIN HIDDEN TESTS
import zoolib

checks.not_reference(alexnet_layer_params, what="alexnet_layer_params")
with torch.device("meta"):  # the counts only: no weights need computing
    _alexnet = zoolib.get_model("alexnet")
_expected = [sum(p.numel() for p in _m.parameters()) for _m in _alexnet.modules() if isinstance(_m, (nn.Conv2d, nn.Linear))]
assert _expected == [34_944, 614_656, 885_120, 1_327_488, 884_992, 37_752_832, 16_781_312, 4_097_000]
del _alexnet
_result = alexnet_layer_params()
assert isinstance(_result, (list, tuple)) and len(_result) == 8, \
    f"alexnet_layer_params() should return a list of 8 counts, got {_result!r}"
for _name, _got, _want in zip(("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"), _result, _expected):
    _hint = ("check conv_params and the channels each layer receives" if _name.startswith("conv") else
             "fc6 sees the flattened 6x6x256 output of pool5: follow the sizes with conv_output_size"
             if _name == "fc6" else "a dense layer has F_in * F weights and F biases")
    assert _got == _want, f"AlexNet's {_name}: got {_got!r}, expected {_want:,}\n  hint: {_hint}"
assert all(type(_c) is int for _c in _result), "alexnet_layer_params() should return Python ints"

# the counts must come from the student's own formulas, not from typed-in numbers
_calls = checks.count_calls(alexnet_layer_params, ["conv_params", "conv_output_size"])
assert _calls["conv_params"] >= 5 and _calls["conv_output_size"] >= 8, (
    f"alexnet_layer_params() called conv_params {_calls['conv_params']} times and conv_output_size "
    f"{_calls['conv_output_size']} times; compute the 5 convolutions with conv_params and follow the 5 "
    f"convolutions and 3 pools with conv_output_size instead of typing the numbers in")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The VGG block
#
# VGG builds its trunk from one kind of block: `num_convs` 3×3 convolutions with padding 1
# (which keep the size), each followed by a ReLU, then a 2×2 max-pool with stride 2 (which
# halves it). The first convolution goes from `in_channels` to `out_channels`, the others from
# `out_channels` to `out_channels`; all have a bias. VGG16 (configuration D of the paper's
# Table 1) stacks five blocks:
#
# | block | `num_convs` | `out_channels` | output at 224×224 |
# | --- | --- | --- | --- |
# | 1 | 2 | 64 | 112×112×64 |
# | 2 | 2 | 128 | 56×56×128 |
# | 3 | 3 | 256 | 28×28×256 |
# | 4 | 3 | 512 | 14×14×512 |
# | 5 | 3 | 512 | 7×7×512 |
#
# Write `VGGBlock(num_convs, in_channels, out_channels)` as an `nn.Module` that computes conv,
# ReLU, conv, ReLU, ..., max-pool, in that order; for instance with one attribute `layers`, an
# `nn.Sequential` of these layers, and a `forward` that returns `self.layers(x)`. The tests follow
# the data through your block, so the names, the containers and the order in which you create the
# layers are up to you. On an odd size the pool drops the last row and column (7×7 becomes 3×3),
# as PyTorch's default does.

# %% [solution id=vgg_block]
class VGGBlock(nn.Module):
    def __init__(self, num_convs, in_channels, out_channels):
        super().__init__()
        ### BEGIN SOLUTION
        layers = []
        for i in range(num_convs):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1), nn.ReLU()]
        layers.append(nn.MaxPool2d(2, stride=2))
        self.layers = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.layers(x)
        ### END SOLUTION

# %% [tests id=test_vgg_block points=4]
import zoolib

block = VGGBlock(3, 128, 256)
checks.expect_shape(block, (2, 128, 56, 56), (2, 256, 28, 28), what="VGGBlock(3, 128, 256)",
                    reference=zoolib.VGGBlock(3, 128, 256))
### BEGIN HIDDEN TESTS
import zoolib
from zoolib.models.classic import VGG_CONFIGS

checks.not_reference(VGGBlock, what="your VGGBlock class")
checks.not_reference(block, what="your VGGBlock")
_c_in = 3
for _i, (_n, _c_out) in enumerate(VGG_CONFIGS["vgg16"]):
    _size = 224 // 2 ** _i
    checks.same_structure(VGGBlock(_n, _c_in, _c_out), zoolib.VGGBlock(_n, _c_in, _c_out), (1, _c_in, _size, _size),
                          what=f"your VGGBlock({_n}, {_c_in}, {_c_out}) (VGG16's block {_i + 1})")
    _c_in = _c_out
for _n, _c_in, _c_out, _shape in ((1, 3, 64, (1, 3, 7, 7)), (4, 256, 512, (2, 256, 15, 9)),
                                  (2, 5, 7, (1, 5, 3, 2))):
    checks.same_structure(VGGBlock(_n, _c_in, _c_out), zoolib.VGGBlock(_n, _c_in, _c_out), _shape,
                          what=f"your VGGBlock({_n}, {_c_in}, {_c_out}) on a {_shape[2]}x{_shape[3]} input")
torch.manual_seed(1)
checks.same_function(VGGBlock(2, 3, 8), zoolib.VGGBlock(2, 3, 8), torch.randn(1, 3, 9, 9),
                     what="your VGGBlock(2, 3, 8) (batch 1, 9x9)")
checks.same_function(VGGBlock(3, 4, 6), zoolib.VGGBlock(3, 4, 6), torch.randn(3, 4, 10, 7),
                     what="your VGGBlock(3, 4, 6) (batch 3, 10x7)")
checks.gradients_flow(VGGBlock(2, 4, 8), torch.randn(2, 4, 8, 8), what="your VGGBlock")
### END HIDDEN TESTS
