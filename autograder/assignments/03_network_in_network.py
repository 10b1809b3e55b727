# %% [markdown]
# # Assignment 3: Network in Network
#
# Network in Network (Lin, Chen & Yan, 2013) keeps AlexNet's first convolutions but makes
# each of them a small per-pixel MLP, and drops the dense head: the last block outputs one
# channel per class and global average pooling turns each class map into a logit. In this
# assignment you build it:
#
# 1. the NiN block (4 points);
# 2. the parameter count of a NiN block, by formula (2 points);
# 3. the ImageNet NiN of the lectures, from your blocks (4 points).
#
# Each answer cell is followed by a test cell. The visible test checks one shape on one
# input; when you submit, more tests run (other sizes, parameter counts, outputs with the
# reference's weights, gradients). Their messages tell you which layer is wrong.
# You can run `zoolib.checks` yourself while you work.
#
# Write your own code: an answer that imports or subclasses the course's reference
# implementation (`zoolib`) earns no points for that block.

# %% [code]
import warnings

import torch
from torch import nn

from zoolib import checks

# nbgrader scores a test cell zero when it writes to stderr: a harmless library warning
# must not cost points.
warnings.filterwarnings("ignore")

torch.manual_seed(0)

# %% [markdown]
# ## 1. The NiN block
#
# A NiN block ("mlpconv" in the paper) is an ordinary convolution followed by two 1×1
# convolutions. The 1×1 convolutions act as a two-layer dense network applied to the
# channel vector of every pixel. As in the lecture, all three convolutions have
# `out_channels` outputs; only the first has the block's `kernel_size`, `stride` and
# `padding` (the 1×1 ones have stride 1 and no padding). Every convolution has a bias and is
# followed by a ReLU.
#
# The layers run in this order; store them, for instance, in one `nn.Sequential` called `layers`
# (the tests follow the data through your block, so the names and the containers are up to you):
#
# | position | layer |
# | --- | --- |
# | 0, 1 | `kernel_size` conv, `in_channels` → `out_channels` (with `stride`, `padding`), ReLU |
# | 2, 3 | 1×1 conv, `out_channels` → `out_channels`, ReLU |
# | 4, 5 | 1×1 conv, `out_channels` → `out_channels`, ReLU |
#
# `forward` runs `layers`. The first block of the ImageNet NiN, `NiNBlock(3, 96, 11, 4, 0)`,
# maps a 224×224 RGB image to 96 maps of 54×54.

# %% [solution id=nin_block]
class NiNBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        ### BEGIN SOLUTION
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 1), nn.ReLU())
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.layers(x)
        ### END SOLUTION

# %% [tests id=test_nin_block points=4]
import zoolib

block = NiNBlock(3, 96, 11, 4, 0)
checks.expect_shape(block, (2, 3, 224, 224), (2, 96, 54, 54), what="NiNBlock(3, 96, 11, 4, 0)",
                    reference=zoolib.NiNBlock(3, 96, 11, 4, 0))
### BEGIN HIDDEN TESTS
import zoolib

checks.not_reference(NiNBlock, what="your NiNBlock class")
checks.not_reference(block, what="your NiN block")
# The four blocks of the ImageNet NiN (the class block with 1000 classes), each on the grid it sees at 224.
for _args, _size in (((3, 96, 11, 4, 0), 224), ((96, 256, 5, 1, 2), 26), ((256, 384, 3, 1, 1), 12),
                     ((384, 1000, 3, 1, 1), 5)):
    checks.same_structure(NiNBlock(*_args), zoolib.NiNBlock(*_args), (1, _args[0], _size, _size),
                          what=f"your NiNBlock{_args} on a {_size}x{_size} input")
checks.same_structure(NiNBlock(5, 7, 3, 2, 1), zoolib.NiNBlock(5, 7, 3, 2, 1), (3, 5, 9, 6),
                      what="your NiNBlock(5, 7, 3, 2, 1) on a 9x6 input")
checks.same_structure(NiNBlock(4, 6, 2), zoolib.NiNBlock(4, 6, 2), (2, 4, 5, 5),
                      what="your NiNBlock(4, 6, 2) (default stride and padding)")
def _out_of_place(_model):
    """The reference with ordinary ReLUs: an in-place ReLU would overwrite the layer outputs a diagnosis compares."""
    for _m in _model.modules():
        if isinstance(_m, nn.ReLU):
            _m.inplace = False
    return _model

torch.manual_seed(1)
with torch.no_grad():
    _y = NiNBlock(3, 8, 3, 1, 1)(torch.randn(2, 3, 6, 6))
assert bool((_y >= 0).all()), ("your NiNBlock outputs negative values.\n  hint: every convolution of a NiN block, "
                               "the last 1x1 included, is followed by a ReLU")
checks.same_function(NiNBlock(3, 8, 5, 2, 2), _out_of_place(zoolib.NiNBlock(3, 8, 5, 2, 2)), torch.randn(1, 3, 11, 11),
                     what="your NiNBlock(3, 8, 5, 2, 2) (batch 1, 11x11)")
checks.same_function(NiNBlock(6, 10, 3, 1, 1), _out_of_place(zoolib.NiNBlock(6, 10, 3, 1, 1)), torch.randn(4, 6, 7, 5),
                     what="your NiNBlock(6, 10, 3, 1, 1) (batch 4, 7x5)")
checks.gradients_flow(NiNBlock(4, 8, 3, 1, 1), torch.randn(2, 4, 6, 6), what="your NiNBlock")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The parameters of a NiN block
#
# A $k\times k$ convolution from $c_{in}$ to $c_{out}$ channels has $k^2\,c_{in}\,c_{out}$
# weights and $c_{out}$ biases. Write `nin_block_params` so that it returns the number of
# parameters of a NiN block (all three convolutions, biases included) as an `int`, for a
# square kernel of side `kernel_size`. Notice what the count does *not* depend on: the
# stride, the padding and the size of the image.
#
# For the first block of the ImageNet NiN (3 → 96 channels, 11×11) it is 53,568, of which
# the two 1×1 convolutions account for 18,624.

# %% [solution id=nin_block_params]
def nin_block_params(in_channels, out_channels, kernel_size):
    """Parameters of a NiN block: a kernel_size conv and two 1x1 convs, all with biases."""
    ### BEGIN SOLUTION
    first = kernel_size * kernel_size * in_channels * out_channels + out_channels
    pointwise = out_channels * out_channels + out_channels
    return first + 2 * pointwise
    ### END SOLUTION

# %% [tests id=test_nin_block_params points=2]
assert nin_block_params(3, 96, 11) == 53_568, \
    f"NiNBlock(3, 96, 11): got {nin_block_params(3, 96, 11):,}, expected 53,568"
### BEGIN HIDDEN TESTS
import zoolib

def _reference_params(c_in, c_out, k):
    with torch.device("meta"):
        return checks.param_count(zoolib.NiNBlock(c_in, c_out, k))

checks.not_reference(nin_block_params, what="nin_block_params")
_cases = [(3, 96, 11), (96, 256, 5), (256, 384, 3), (384, 1000, 3), (384, 10, 3), (1, 1, 1), (5, 7, 2),
          (192, 160, 5), (7, 3, 4)]
checks.function_matches(nin_block_params, _reference_params, _cases, what="nin_block_params",
                        hint="k*k*c_in*c_out + c_out for the first convolution, c_out*c_out + c_out for each 1x1")
assert isinstance(nin_block_params(3, 96, 11), int), \
    f"nin_block_params should return an int, not a {type(nin_block_params(3, 96, 11)).__name__}"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The ImageNet NiN
#
# The lecture's NiN takes AlexNet's first three convolutions, turns each into a NiN block
# and puts a 3×3 max pool of stride 2 after each. AlexNet's dense layers are gone: a
# dropout layer, then one more NiN block with one output channel per class, then global
# average pooling turns every class map into one number.
#
# Write `nin(num_classes)` so that it returns an `nn.Sequential` of exactly these ten
# modules, in this order, built from your `NiNBlock`:
#
# | position | module | output at 224×224 (10 classes) |
# | --- | --- | --- |
# | 0 | NiN block, 96 channels, 11×11, stride 4, padding 0 | 96×54×54 |
# | 1 | max pool 3×3, stride 2 | 96×26×26 |
# | 2 | NiN block, 256 channels, 5×5, stride 1, padding 2 | 256×26×26 |
# | 3 | max pool 3×3, stride 2 | 256×12×12 |
# | 4 | NiN block, 384 channels, 3×3, stride 1, padding 1 | 384×12×12 |
# | 5 | max pool 3×3, stride 2 | 384×5×5 |
# | 6 | dropout, p = 0.5 | 384×5×5 |
# | 7 | NiN block, `num_classes` channels, 3×3, stride 1, padding 1 | 10×5×5 |
# | 8 | global average pooling (`nn.AdaptiveAvgPool2d(1)`) | 10×1×1 |
# | 9 | `nn.Flatten()` | 10 |
#
# The input has 3 channels. Note that the class block ends with a ReLU, as in the lecture's
# code, so the logits are never negative.

# %% [solution id=nin_network]
def nin(num_classes):
    ### BEGIN SOLUTION
    return nn.Sequential(
        NiNBlock(3, 96, 11, 4, 0), nn.MaxPool2d(3, stride=2),
        NiNBlock(96, 256, 5, 1, 2), nn.MaxPool2d(3, stride=2),
        NiNBlock(256, 384, 3, 1, 1), nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        NiNBlock(384, num_classes, 3, 1, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten())
    ### END SOLUTION

# %% [tests id=test_nin_network points=4]
import zoolib

net = nin(10)
checks.expect_shape(net, (2, 3, 224, 224), (2, 10), what="your nin(10)",
                    reference=zoolib.get_model("nin", num_classes=10))
### BEGIN HIDDEN TESTS
import zoolib

checks.not_reference(nin, what="your nin function")
checks.not_reference(net, what="your NiN")  # built from the student's own NiNBlock: allowed
_reference = zoolib.get_model("nin", num_classes=10)
checks.same_structure(net, _reference, (1, 3, 224, 224), what="your nin(10)")
checks.same_structure(nin(1000), zoolib.get_model("nin"), (1, 3, 224, 224), what="your nin(1000)")
checks.same_structure(nin(7), zoolib.get_model("nin", num_classes=7), (1, 3, 131, 131),
                      what="your nin(7) on a 131x131 input")

# The lecture's table of stage shapes, module by module.
checks.stage_shapes(net, (1, 3, 224, 224), [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12),
                                            (384, 5, 5), (384, 5, 5), (10, 5, 5), (10, 1, 1), (10,)],
                    what="your nin(10)")
_drop = [m for m in net if isinstance(m, nn.Dropout)]
assert len(_drop) == 1 and _drop[0].p == 0.5, "nin needs one nn.Dropout(0.5), between the last max pool and the class block"

# Defined again, as in test_nin_block, on purpose: a test cell must not rely on another having run to its end.
def _out_of_place(_model):
    """The reference with ordinary ReLUs: an in-place ReLU would overwrite the layer outputs a diagnosis compares."""
    for _m in _model.modules():
        if isinstance(_m, nn.ReLU):
            _m.inplace = False
    return _model

torch.manual_seed(2)
checks.same_function(nin(10), _out_of_place(zoolib.get_model("nin", num_classes=10)), torch.randn(1, 3, 67, 67),
                     what="your nin(10) (batch 1, 67x67, eval mode)")
checks.same_function(nin(4), _out_of_place(zoolib.get_model("nin", num_classes=4)), torch.randn(2, 3, 99, 99),
                     what="your nin(4) (batch 2, 99x99, eval mode)")
### END HIDDEN TESTS
