# %% [markdown]
# # Assignment 4: Inception blocks and GoogLeNet
#
# In this assignment you build the pieces of GoogLeNet (Szegedy et al., 2014) yourself:
#
# 1. the cost of an Inception block, by formula (2 points);
# 2. the Inception block (4 points);
# 3. stage 3 of GoogLeNet, from your block (2 points);
# 4. the loss with the two auxiliary classifiers (2 points).
#
# Each answer cell is followed by a test cell. The visible test checks one shape on one
# input; when you submit, more tests run (other sizes, parameter counts, outputs with the
# reference's weights, gradients). Their messages tell you which branch or layer is wrong.
# You can run `zoolib.checks` yourself while you work.
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
# ## 1. The cost of an Inception block
#
# An Inception block has four paths: a 1×1 convolution; a 1×1 reduction followed by a 3×3;
# a 1×1 reduction followed by a 5×5; and a 3×3 max pool followed by a 1×1 projection. Every
# convolution keeps the grid at $h \times w$. A $k\times k$ convolution from $c_{in}$ to $c_{out}$
# channels costs $h\,w\,k^2\,c_{in}\,c_{out}$ multiply-adds (biases, ReLUs and pooling count
# nothing).
#
# Write `inception_macs` so that it returns the multiply-adds of the whole block, as an `int`.
# For `inception3a` (28×28, 192 input channels, widths 64, 96, 128, 16, 32, 32) the paper's
# Table 1 says 128M.

# %% [solution id=inception_macs]
def inception_macs(h, w, c_in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
    """Multiply-adds of one Inception block on an h x w grid with c_in input channels."""
    ### BEGIN SOLUTION
    per_pixel = (c_in * ch1x1                       # 1x1
                 + c_in * ch3x3red + 9 * ch3x3red * ch3x3    # 1x1 -> 3x3
                 + c_in * ch5x5red + 25 * ch5x5red * ch5x5   # 1x1 -> 5x5
                 + c_in * pool_proj)                # pool -> 1x1
    return h * w * per_pixel
    ### END SOLUTION

# %% [tests id=test_inception_macs points=2]
assert inception_macs(28, 28, 192, 64, 96, 128, 16, 32, 32) == 128_049_152, \
    f"inception3a: got {inception_macs(28, 28, 192, 64, 96, 128, 16, 32, 32):,}, expected 128,049,152"
### BEGIN HIDDEN TESTS
import zoolib
from zoolib.models.googlenet import GOOGLENET_TABLE

def _reference_macs(h, w, c_in, *widths):
    return zoolib.profile(zoolib.Inception(c_in, *widths), (1, c_in, h, w)).total_macs

checks.not_reference(inception_macs, what="inception_macs")
_cases = [(28, 28, 192, 64, 96, 128, 16, 32, 32), (1, 1, 3, 1, 1, 1, 1, 1, 1), (7, 5, 832, 384, 192, 384, 48, 128, 128),
          (14, 14, 480, 192, 96, 208, 16, 48, 64), (3, 3, 8, 1, 4, 4, 2, 2, 2)]
checks.function_matches(inception_macs, _reference_macs, _cases, what="inception_macs",
                        hint="add up h*w*k*k*c_in*c_out over the six convolutions of the four paths")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The Inception block
#
# Write the block with dimension reductions (the paper's Figure 2b). Its constructor takes
# the input channels and the six widths of Table 1, in the table's column order. Each branch
# runs its layers in the order of the table, each convolution followed by a ReLU. The tests
# follow the data through your block, so the attribute names below are only the usual ones, and
# the order in which you create the layers or run the branches is up to you:
#
# | attribute | layers |
# | --- | --- |
# | `branch1` | 1×1 conv to `ch1x1` |
# | `branch2` | 1×1 conv to `ch3x3red`, 3×3 conv to `ch3x3` (padding 1) |
# | `branch3` | 1×1 conv to `ch5x5red`, 5×5 conv to `ch5x5` (padding 2) |
# | `branch4` | 3×3 max pool (stride 1, padding 1), 1×1 conv to `pool_proj` |
#
# `forward` concatenates the four results along the channel dimension, in that order.
# All convolutions have a bias (GoogLeNet has no batch normalization).

# %% [solution id=inception_block]
class Inception(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        ### BEGIN SOLUTION
        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1), nn.ReLU())
        self.branch2 = nn.Sequential(nn.Conv2d(in_channels, ch3x3red, 1), nn.ReLU(),
                                     nn.Conv2d(ch3x3red, ch3x3, 3, padding=1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.Conv2d(in_channels, ch5x5red, 1), nn.ReLU(),
                                     nn.Conv2d(ch5x5red, ch5x5, 5, padding=2), nn.ReLU())
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     nn.Conv2d(in_channels, pool_proj, 1), nn.ReLU())
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)
        ### END SOLUTION

# %% [tests id=test_inception_block points=4]
import zoolib

block = Inception(192, 64, 96, 128, 16, 32, 32)
checks.expect_shape(block, (2, 192, 28, 28), (2, 256, 28, 28), what="Inception(192, 64, 96, 128, 16, 32, 32)",
                    reference=zoolib.Inception(192, 64, 96, 128, 16, 32, 32))
### BEGIN HIDDEN TESTS
import zoolib
from zoolib.models.googlenet import GOOGLENET_TABLE

checks.not_reference(Inception, what="your Inception class")
checks.not_reference(block, what="your Inception block")
for _name in ("inception3a", "inception4e", "inception5b"):
    _row = GOOGLENET_TABLE[_name]
    _c_in = {"inception3a": 192, "inception4e": 528, "inception5b": 832}[_name]
    _size = {"inception3a": 28, "inception4e": 14, "inception5b": 7}[_name]
    checks.same_structure(Inception(_c_in, *_row), zoolib.Inception(_c_in, *_row), (1, _c_in, _size, _size),
                          what=f"your Inception with {_name}'s widths")
checks.same_structure(Inception(3, 2, 3, 4, 1, 2, 1), zoolib.Inception(3, 2, 3, 4, 1, 2, 1), (1, 3, 5, 6),
                      what="your Inception(3, 2, 3, 4, 1, 2, 1) on a 5x6 input")
torch.manual_seed(1)
checks.same_function(Inception(32, 8, 12, 16, 4, 8, 8), zoolib.Inception(32, 8, 12, 16, 4, 8, 8),
                     torch.randn(1, 32, 9, 9), what="your Inception (batch 1, 9x9)")
checks.same_function(Inception(32, 8, 12, 16, 4, 8, 8), zoolib.Inception(32, 8, 12, 16, 4, 8, 8),
                     torch.randn(3, 32, 4, 7), what="your Inception (batch 3, 4x7)")
checks.gradients_flow(Inception(16, 4, 4, 8, 2, 4, 4), torch.randn(2, 16, 6, 6), what="your Inception")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Stage 3 of GoogLeNet
#
# Stage 3 takes the 28×28×192 output of stage 2 through `inception3a` and `inception3b`
# and then halves the grid with a 3×3 max pool of stride 2 (`ceil_mode=True`, as the
# paper's model rounds up). Use the widths of Table 1:
#
# | block | #1×1 | #3×3 reduce | #3×3 | #5×5 reduce | #5×5 | pool proj |
# | --- | --- | --- | --- | --- | --- | --- |
# | inception (3a) | 64 | 96 | 128 | 16 | 32 | 32 |
# | inception (3b) | 128 | 128 | 192 | 32 | 96 | 64 |
#
# Return an `nn.Sequential` of your two `Inception` blocks and the pool.

# %% [solution id=stage3]
def googlenet_stage3():
    ### BEGIN SOLUTION
    return nn.Sequential(Inception(192, 64, 96, 128, 16, 32, 32),
                         Inception(256, 128, 128, 192, 32, 96, 64),
                         nn.MaxPool2d(3, stride=2, ceil_mode=True))
    ### END SOLUTION

# %% [tests id=test_stage3 points=2]
import zoolib

stage3 = googlenet_stage3()
_googlenet = zoolib.get_model("googlenet")
checks.expect_shape(stage3, (1, 192, 28, 28), (1, 480, 14, 14), what="your stage 3",
                    reference=nn.Sequential(_googlenet.inception3a, _googlenet.inception3b, _googlenet.maxpool3))
### BEGIN HIDDEN TESTS
import zoolib

_net = zoolib.get_model("googlenet")
_reference_stage = nn.Sequential(_net.inception3a, _net.inception3b, _net.maxpool3)
checks.not_reference(stage3, what="your stage 3")
checks.same_structure(stage3, _reference_stage, (1, 192, 28, 28), what="your stage 3")
checks.same_structure(googlenet_stage3(), _reference_stage, (1, 192, 27, 27), what="your stage 3 on a 27x27 input")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The loss with auxiliary classifiers
#
# During training GoogLeNet returns three sets of logits: the main classifier's and those
# of the two auxiliary classifiers on inception (4a) and (4d). The paper adds the auxiliary
# losses with weight 0.3:
#
# $$\mathcal{L} = \mathrm{CE}(\text{main}) + 0.3\,\mathrm{CE}(\text{aux}_1) + 0.3\,\mathrm{CE}(\text{aux}_2)$$
#
# Write `googlenet_loss(outputs, target)` for `outputs = (main, aux1, aux2)`. When `outputs`
# is a single tensor (evaluation mode), return the plain cross-entropy.

# %% [solution id=aux_loss]
def googlenet_loss(outputs, target):
    ### BEGIN SOLUTION
    if isinstance(outputs, torch.Tensor):
        return F.cross_entropy(outputs, target)
    main, aux1, aux2 = outputs
    return F.cross_entropy(main, target) + 0.3 * (F.cross_entropy(aux1, target) + F.cross_entropy(aux2, target))
    ### END SOLUTION

# %% [tests id=test_aux_loss points=2]
_logits = (torch.zeros(4, 10), torch.zeros(4, 10), torch.zeros(4, 10))
_value = float(googlenet_loss(_logits, torch.arange(4)))
assert abs(_value - 1.6 * torch.log(torch.tensor(10.0)).item()) < 1e-5, \
    f"with all-zero logits the loss is 1.6 * ln(10) = 3.684, got {_value:.4f}"
### BEGIN HIDDEN TESTS
import zoolib

checks.not_reference(googlenet_loss, what="googlenet_loss")
torch.manual_seed(2)
for _batch in (1, 5):
    _outs = tuple(torch.randn(_batch, 7) * 3 for _ in range(3))
    _target = torch.randint(0, 7, (_batch,))
    _mine, _ref = googlenet_loss(_outs, _target), zoolib.googlenet_loss(_outs, _target)
    assert torch.allclose(_mine, _ref, atol=1e-6), (
        f"googlenet_loss on a batch of {_batch}: got {float(_mine):.5f}, expected {float(_ref):.5f}; "
        f"hint: main + 0.3 * aux1 + 0.3 * aux2, each a mean cross-entropy")
    _single = googlenet_loss(_outs[0], _target)
    assert torch.allclose(_single, F.cross_entropy(_outs[0], _target)), \
        "with a single tensor (eval mode) the loss is the plain cross-entropy"
_outs = tuple(torch.randn(3, 5, requires_grad=True) for _ in range(3))
_, _grads = checks.vjp(googlenet_loss, (_outs, torch.tensor([0, 1, 2])))
assert all(g is not None and g.abs().sum() > 0 for g in _grads[:3]), "the loss must depend on all three outputs"
### END HIDDEN TESTS
