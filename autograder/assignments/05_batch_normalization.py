# %% [markdown]
# # Assignment 5: Batch normalization and BN-Inception
#
# Batch normalization (Ioffe & Szegedy, 2015) standardises every channel with the mean and
# variance of the current mini-batch, then rescales it with a learned $\gamma$ and shifts it by
# a learned $\beta$. In this assignment you write it from scratch, so that it computes exactly
# what PyTorch's `nn.BatchNorm1d` and `nn.BatchNorm2d` compute, and then build the module of
# the network the paper introduced, BN-Inception:
#
# 1. the `batch_norm` function, in training mode (3 points);
# 2. the `BatchNorm` layer: running statistics and evaluation mode (3 points);
# 3. the BN-Inception module (4 points).
#
# Each answer cell is followed by a test cell. The visible test checks one thing on one
# input; when you submit, more tests run (dense and convolutional inputs, other sizes, batch
# size 1, training and evaluation mode, gradients, the reference's outputs with the same
# weights). Their messages tell you what is wrong. You can run `zoolib.checks` yourself while
# you work (`checks.batchnorm_matches` compares a batch norm layer with PyTorch's).
#
# Write your own code: an answer that imports or subclasses the course's reference
# implementation (`zoolib`) earns no points for that block. In parts 1 and 2 do not call
# PyTorch's batch norm either (`F.batch_norm`, `nn.BatchNorm1d`, ...): the point is to write it.

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
# ## 1. The batch norm function
#
# For a mini-batch, BN computes per feature (dense input of shape $(N, F)$) or per channel
# (convolutional input of shape $(N, C, H, W)$: over all $N\cdot H\cdot W$ values of the
# channel) the mean and the **biased** variance (divide by the number of values $n$):
#
# $$\mu_B = \frac{1}{n}\sum_i x_i, \qquad \sigma_B^2 = \frac{1}{n}\sum_i (x_i-\mu_B)^2, \qquad
# y_i = \gamma\,\frac{x_i-\mu_B}{\sqrt{\sigma_B^2+\epsilon}} + \beta .$$
#
# ($\epsilon$ sits under the square root, as in the paper's Algorithm 1 and in PyTorch.)
#
# It also keeps running estimates for evaluation. In training mode they are updated with
# PyTorch's convention: `momentum` is the weight of the **new** value (0.1 by default), and
# the running variance takes the **unbiased** batch variance (divide by $n-1$):
#
# $$\text{mean} \leftarrow (1-m)\,\text{mean} + m\,\mu_B, \qquad
# \text{var} \leftarrow (1-m)\,\text{var} + m\,\frac{n}{n-1}\,\sigma_B^2 .$$
#
# In evaluation mode (`training=False`) BN normalises with the running estimates instead of
# the batch's and leaves them unchanged.
#
# Write `batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum, training)`. It
# returns a tuple `(Y, new_moving_mean, new_moving_var)`. `X` has 2 dimensions (dense) or 4
# (convolution). `gamma`, `beta`, `moving_mean` and `moving_var` have the shape that broadcasts
# against `X`: `(1, F)` for a dense input, `(1, C, 1, 1)` for a convolutional one; return the
# new statistics in the same shape. Compute them without tracking gradients (inside
# `torch.no_grad()`): they are estimates, not trained weights.
#
# This part's test checks `Y` in training mode; part 2 checks the running statistics and
# evaluation mode, through your `BatchNorm` layer.

# %% [solution id=batch_norm]
def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum, training):
    """Batch norm of X; returns (Y, new moving_mean, new moving_var)."""
    ### BEGIN SOLUTION
    if not training:
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
        return gamma * X_hat + beta, moving_mean, moving_var
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    mean = X.mean(dim=dims, keepdim=True)
    var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
    X_hat = (X - mean) / torch.sqrt(var + eps)
    Y = gamma * X_hat + beta
    n = X.numel() // X.shape[1]
    with torch.no_grad():
        new_mean = (1 - momentum) * moving_mean + momentum * mean
        new_var = (1 - momentum) * moving_var + momentum * var * n / (n - 1)
    return Y, new_mean, new_var
    ### END SOLUTION

# %% [tests id=test_bn_training points=3]
_x = torch.tensor([[1.0, 0.0], [3.0, 10.0], [5.0, 20.0]])
_y = batch_norm(_x, torch.ones(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), 1e-5, 0.1, True)[0]
_expected = torch.tensor([[-1.2247, -1.2247], [0.0, 0.0], [1.2247, 1.2247]])
assert torch.allclose(_y, _expected, atol=1e-4), (
    f"batch_norm of [[1, 0], [3, 10], [5, 20]] in training mode (gamma 1, beta 0) should give "
    f"[[-1.2247, -1.2247], [0, 0], [1.2247, 1.2247]], got {torch.round(_y, decimals=4).tolist()}: "
    f"subtract each column's mean and divide by sqrt(biased variance + eps), the variance dividing by n = 3")
### BEGIN HIDDEN TESTS
def _bn_diagnosis(_X, _g, _b, _eps, _Y):
    """Which common mistake produces _Y? (a hint for the message)"""
    _dims = (0,) if _X.dim() == 2 else (0, 2, 3)
    _mean = _X.mean(dim=_dims, keepdim=True)
    _var = _X.var(dim=_dims, unbiased=False, keepdim=True)
    _guesses = {
        "you divided by the unbiased variance (n - 1); normalise with the biased one (divide by n)":
            _g * (_X - _mean) / torch.sqrt(_X.var(dim=_dims, unbiased=_X.numel() // _X.shape[1] > 1, keepdim=True) + _eps) + _b,
        "eps belongs under the square root: (x - mean) / sqrt(var + eps)":
            _g * (_X - _mean) / (torch.sqrt(_var) + _eps) + _b,
        "a convolutional input has one mean and variance per channel, over the batch AND the height and width":
            _g * (_X - _X.mean(0, keepdim=True)) / torch.sqrt(_X.var(0, unbiased=False, keepdim=True) + _eps) + _b,
        "scale by gamma and shift by beta after normalising: gamma * x_hat + beta":
            (_X - _mean) / torch.sqrt(_var + _eps),
    }
    for _hint, _guess in _guesses.items():
        if _guess.shape == _Y.shape and torch.allclose(_guess, _Y, atol=1e-4):
            return _hint
    return "subtract the batch mean and divide by sqrt(biased variance + eps), per feature or per channel"

checks.not_reference(batch_norm, what="batch_norm")
_TORCH_BN = {"batch_norm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d"}
checks.does_not_call(batch_norm, _TORCH_BN, what="batch_norm",
                     why="Write the computation yourself (means, variances, the update).")
torch.manual_seed(3)
for _shape in ((8, 4), (2, 1), (5, 16), (4, 3, 5, 6), (1, 6, 3, 3), (2, 1, 2, 2)):
    _c = _shape[1]
    _pshape = (1, _c) if len(_shape) == 2 else (1, _c, 1, 1)
    _X = torch.randn(_shape) * 3 + 2
    _g, _b = torch.rand(_pshape) + 0.5, torch.randn(_pshape)
    for _eps in (1e-5, 1e-2):
        _out = batch_norm(_X, _g, _b, torch.zeros(_pshape), torch.ones(_pshape), _eps, 0.1, True)
        assert isinstance(_out, tuple) and len(_out) == 3, \
            "batch_norm must return a tuple of three tensors: (Y, new moving_mean, new moving_var)"
        _ref = F.batch_norm(_X, None, None, _g.flatten(), _b.flatten(), training=True, eps=_eps)
        assert _out[0].shape == _X.shape, \
            f"batch_norm returns Y of shape {tuple(_out[0].shape)} for an input of {tuple(_X.shape)}; Y has the input's shape"
        _diff = (_out[0] - _ref).abs().max().item()
        assert _diff < 1e-4, (
            f"in training mode, batch_norm on an input of shape {tuple(_X.shape)} with eps={_eps} differs from "
            f"PyTorch's batch norm by up to {_diff:.3g}.\n  hint: {_bn_diagnosis(_X, _g, _b, _eps, _out[0])}")

# The gradients through the batch statistics, as PyTorch's.
for _shape in ((6, 5), (3, 4, 3, 2)):
    _pshape = (1, _shape[1]) if len(_shape) == 2 else (1, _shape[1], 1, 1)
    _X = (torch.randn(_shape) * 2 + 1).requires_grad_()
    _g = (torch.rand(_pshape) + 0.5).requires_grad_()
    _b = torch.randn(_pshape).requires_grad_()
    _w = torch.randn(_shape)
    _, _grads = checks.vjp(batch_norm, (_X, _g, _b, torch.zeros(_pshape), torch.ones(_pshape), 1e-5, 0.1, True),
                           upstream=_w, index=0)
    _Xr, _gr, _br = (t.detach().clone().requires_grad_() for t in (_X, _g, _b))
    (F.batch_norm(_Xr, None, None, _gr.flatten(), _br.flatten(), training=True) * _w).sum().backward()
    for _name, _mine, _theirs in (("X", _grads[0], _Xr), ("gamma", _grads[1], _gr), ("beta", _grads[2], _br)):
        assert _mine is not None, f"no gradient reaches {_name}: avoid .detach() and .data on the way to Y"
        assert torch.allclose(_mine, _theirs.grad, atol=1e-4), (
            f"the gradient of {_name} differs from PyTorch's batch norm (input of shape {_shape}).\n  hint: compute "
            f"the batch mean and variance from X itself, inside the graph; only the moving statistics are computed "
            f"without gradients")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The `BatchNorm` layer
#
# Wrap your function in a layer, `BatchNorm(num_features, num_dims)`, where `num_dims` is 2
# after a dense layer and 4 after a convolution. It has
#
# - two parameters (`nn.Parameter`), `gamma` (ones) and `beta` (zeros), and
# - two buffers, `moving_mean` (zeros) and `moving_var` (ones), created with
#   `self.register_buffer`, so that they are saved in the `state_dict` and move with
#   `.to(device)`, but are not trained,
#
# all four of shape `(1, num_features)` or `(1, num_features, 1, 1)`. Use `eps=1e-5` and
# `momentum=0.1`, PyTorch's defaults. `forward` calls your `batch_norm` with
# `self.training` and stores the new statistics back in the buffers
# (`self.moving_mean = ...` replaces a registered buffer).
#
# The tests train your layer and PyTorch's side by side for a few steps and compare the
# outputs and the running statistics after every step, then compare them in evaluation mode,
# for batches of any size, including 1.

# %% [solution id=batchnorm_layer]
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        ### BEGIN SOLUTION
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))
        self.eps, self.momentum = 1e-5, 0.1
        ### END SOLUTION

    def forward(self, X):
        ### BEGIN SOLUTION
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var, self.eps, self.momentum, self.training)
        return Y
        ### END SOLUTION

# %% [tests id=test_bn_running points=3]
bn = BatchNorm(3, num_dims=2)
bn(torch.tensor([[0.0, 1.0, 2.0], [2.0, 3.0, 6.0]]))   # one training step; the batch means are 1, 2, 4
assert torch.allclose(bn.moving_mean.flatten(), torch.tensor([0.1, 0.2, 0.4])), (
    f"after one training step on a batch with means [1, 2, 4], moving_mean should be [0.1, 0.2, 0.4] "
    f"(0.9 * old + 0.1 * batch mean, from zeros); got {[round(v, 4) for v in bn.moving_mean.flatten().tolist()]}")
### BEGIN HIDDEN TESTS
checks.not_reference(BatchNorm, what="your BatchNorm class")
checks.not_reference(bn, what="your BatchNorm layer")
assert not any(isinstance(_m, nn.modules.batchnorm._NormBase) for _m in bn.modules()), \
    "your BatchNorm uses PyTorch's batch norm: write it with your batch_norm function"
_TORCH_BN = {"batch_norm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d"}
checks.does_not_call(BatchNorm, _TORCH_BN, what="your BatchNorm", why="Write it with your batch_norm function.")
_layer = BatchNorm(5, num_dims=4)
_params, _buffers = dict(_layer.named_parameters()), dict(_layer.named_buffers())
assert sorted(_params) == ["beta", "gamma"], \
    f"BatchNorm's parameters should be exactly gamma and beta; found {sorted(_params)}"
assert "moving_mean" in _buffers and "moving_var" in _buffers, (
    f"register moving_mean and moving_var with self.register_buffer (found the buffers {sorted(_buffers)}): "
    f"then they are saved in the state_dict and move with .to(device)")
for _name, _value in (("gamma", 1.0), ("beta", 0.0), ("moving_mean", 0.0), ("moving_var", 1.0)):
    _t = _layer.state_dict()[_name]
    assert tuple(_t.shape) == (1, 5, 1, 1) and bool((_t == _value).all()), (
        f"a new BatchNorm(5, num_dims=4) should have {_name} of shape (1, 5, 1, 1), all {_value}; "
        f"got shape {tuple(_t.shape)}")
assert tuple(BatchNorm(7, num_dims=2).moving_var.shape) == (1, 7), "BatchNorm(7, num_dims=2)'s statistics have shape (1, 7)"

for _dims, _features, _batch in ((2, 6, 8), (4, 6, 4), (2, 1, 5), (4, 16, 2), (2, 32, 3), (4, 3, 1)):
    checks.batchnorm_matches(lambda: BatchNorm(_features, num_dims=_dims), num_dims=_dims, num_features=_features,
                             batch=_batch, what=f"your BatchNorm({_features}, num_dims={_dims})")

_layer = BatchNorm(4, num_dims=2)
checks.vjp(_layer, (torch.randn(6, 4, requires_grad=True),))  # one training step, then backpropagation
assert not _layer.moving_mean.requires_grad and not _layer.moving_var.requires_grad, (
    "after a training step the moving statistics require gradients.\n  hint: compute them inside torch.no_grad() "
    "(or detach them): backpropagation does not train them")
assert "moving_mean" in _layer.state_dict(), "after a training step moving_mean is no longer a registered buffer"
checks.gradients_flow(BatchNorm(5, num_dims=4), torch.randn(4, 5, 3, 3), what="your BatchNorm(5, num_dims=4)")
checks.gradients_flow(BatchNorm(7, num_dims=2), torch.randn(6, 7), what="your BatchNorm(7, num_dims=2)")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The BN-Inception module
#
# BN-Inception is GoogLeNet with batch normalization after every convolution, and with each
# 5×5 convolution replaced by two stacked 3×3 ("double 3×3"). Its module (the paper's
# Figure 5) has four branches, concatenated along the channels in this order:
#
# | attribute | layers |
# | --- | --- |
# | `branch1` | 1×1 conv to `ch1x1` |
# | `branch2` | 1×1 conv to `ch3x3red`, 3×3 conv to `ch3x3` (padding 1) |
# | `branch3` | 1×1 conv to `ch3x3dblred`, 3×3 conv to `ch3x3dbl` (padding 1), 3×3 conv `ch3x3dbl` → `ch3x3dbl` (padding 1) |
# | `branch4` | 3×3 pool (stride 1, padding 1), 1×1 conv to `pool_proj` |
#
# Every "conv" in the table is three layers, one after the other: an `nn.Conv2d` **without
# bias** (the BN's $\beta$ does its job), an `nn.BatchNorm2d` with `eps=1e-3` (the value of
# the Inception family's TensorFlow originals, `zoolib.BN_EPS`), and a ReLU. Here you may use
# PyTorch's `nn.BatchNorm2d`. The pool of `branch4` is `nn.AvgPool2d(3, stride=1, padding=1)`
# when `pool == "avg"` and `nn.MaxPool2d(3, stride=1, padding=1)` when `pool == "max"`
# (keep PyTorch's other defaults).
#
# The paper also has two stride-2 modules (3c and 4e) without the 1×1 branch and with an
# unprojected pool branch; you write only the stride-1 modules with a projection, that is,
# these rows of Figure 5:
#
# | module | input | #1×1 | #3×3 reduce | #3×3 | double #3×3 reduce | double #3×3 | pool + proj |
# | --- | --- | --- | --- | --- | --- | --- | --- |
# | inception (3a) | 28×28×192 | 64 | 64 | 64 | 64 | 96 | avg + 32 |
# | inception (3b) | 28×28×256 | 64 | 64 | 96 | 64 | 96 | avg + 64 |
# | inception (4a) | 14×14×576 | 224 | 64 | 96 | 96 | 128 | avg + 128 |
# | inception (5a) | 7×7×1024 | 352 | 192 | 320 | 160 | 224 | avg + 128 |
# | inception (5b) | 7×7×1024 | 352 | 192 | 320 | 192 | 224 | max + 128 |
#
# (4b–4d are like 4a with other widths.) The constructor takes the input channels and the
# columns in the table's order: `BNInception(in_channels, ch1x1, ch3x3red, ch3x3,
# ch3x3dblred, ch3x3dbl, pool, pool_proj)`.

# %% [solution id=bn_inception]
class BNInception(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch3x3dblred, ch3x3dbl, pool, pool_proj):
        super().__init__()
        ### BEGIN SOLUTION
        def conv_bn_relu(c_in, c_out, kernel_size, padding=0):
            return nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size, padding=padding, bias=False),
                                 nn.BatchNorm2d(c_out, eps=1e-3), nn.ReLU())

        pooling = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        self.branch1 = conv_bn_relu(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(conv_bn_relu(in_channels, ch3x3red, 1),
                                     conv_bn_relu(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(conv_bn_relu(in_channels, ch3x3dblred, 1),
                                     conv_bn_relu(ch3x3dblred, ch3x3dbl, 3, padding=1),
                                     conv_bn_relu(ch3x3dbl, ch3x3dbl, 3, padding=1))
        self.branch4 = nn.Sequential(pooling(3, stride=1, padding=1), conv_bn_relu(in_channels, pool_proj, 1))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)
        ### END SOLUTION

# %% [tests id=test_bn_inception points=4]
import zoolib

module = BNInception(192, 64, 64, 64, 64, 96, "avg", 32)
checks.expect_shape(module, (2, 192, 28, 28), (2, 256, 28, 28), what='BNInception(192, 64, 64, 64, 64, 96, "avg", 32)',
                    reference=zoolib.BNInception(192, 64, 64, 64, 64, 96, "avg", 32))
### BEGIN HIDDEN TESTS
import zoolib
from zoolib.models.googlenet import BN_INCEPTION_TABLE

def _randomize_bn(_model, _seed):
    """Random BN weights and running statistics, so that eval mode is a real test."""
    _gen = torch.Generator().manual_seed(_seed)
    with torch.no_grad():
        for _m in _model.modules():
            if isinstance(_m, nn.BatchNorm2d):
                _m.weight.copy_(torch.rand(_m.num_features, generator=_gen) + 0.5)
                _m.bias.copy_(torch.randn(_m.num_features, generator=_gen) * 0.5)
                _m.running_mean.copy_(torch.randn(_m.num_features, generator=_gen) * 0.5)
                _m.running_var.copy_(torch.rand(_m.num_features, generator=_gen) + 0.5)
    for _m in _model.modules():  # an in-place ReLU would overwrite the BN outputs that a diagnosis compares
        if isinstance(_m, nn.ReLU):
            _m.inplace = False
    return _model

checks.not_reference(BNInception, what="your BNInception class")
checks.not_reference(module, what="your BN-Inception module")
for _name, _c_in, _size in (("inception3a", 192, 28), ("inception4a", 576, 14), ("inception5b", 1024, 7)):
    _row = BN_INCEPTION_TABLE[_name]
    checks.same_structure(BNInception(_c_in, *_row[:7]), zoolib.BNInception(_c_in, *_row), (1, _c_in, _size, _size),
                          what=f"your BNInception with {_name}'s widths")
checks.same_structure(BNInception(3, 2, 3, 4, 1, 2, "max", 1), zoolib.BNInception(3, 2, 3, 4, 1, 2, "max", 1),
                      (2, 3, 5, 6), what='your BNInception(3, 2, 3, 4, 1, 2, "max", 1) on a 5x6 input')
for _path, _m in module.named_modules():
    if isinstance(_m, nn.modules.batchnorm._NormBase):
        assert isinstance(_m, nn.BatchNorm2d) and abs(_m.eps - 1e-3) < 1e-12 and _m.momentum == 0.1, (
            f"'{_path}' in your BN-Inception module is a {type(_m).__name__} with eps={_m.eps}, momentum="
            f"{_m.momentum}; use nn.BatchNorm2d(channels, eps=1e-3) and PyTorch's default momentum")

torch.manual_seed(4)
for _pool, _x in (("avg", torch.randn(1, 16, 7, 7)), ("max", torch.randn(3, 16, 5, 6))):
    _args = (16, 4, 6, 8, 4, 6, _pool, 4)
    checks.same_function(BNInception(*_args), _randomize_bn(zoolib.BNInception(*_args), 5), _x,
                         what=f"your BNInception{_args} in eval mode (batch {_x.shape[0]})", atol=1e-4)

# Training mode: the batch's statistics, and the running statistics updated as the reference's.
_args = (8, 3, 4, 5, 2, 3, "max", 2)
_mine, _ref = BNInception(*_args), _randomize_bn(zoolib.BNInception(*_args), 6)
checks.same_function(_mine, _ref, torch.randn(4, 8, 6, 6), what=f"your BNInception{_args} in training mode",
                     atol=1e-4, train=True)
checks.gradients_flow(BNInception(*_args), torch.randn(2, 8, 5, 5), what=f"your BNInception{_args}")
### END HIDDEN TESTS
