"""d2l (the course's textbook package) is installed and zoolib's models compute what d2l's do.

``make setup`` installs d2l 1.0.3 with ``--no-deps``: its hard pins (numpy 1.23.5, matplotlib
3.7.2, pandas 2.0.3, scipy 1.10.1) no longer install on current Pythons, and it runs with ours.
Weights are copied from d2l's model into zoolib's, so equal outputs mean equal functions.
"""
from importlib import metadata

import pytest
import torch
from torch import nn

import zoolib
from zoolib.models.resnet import ResidualBlock
from support import randomize_batchnorm

d2l = pytest.importorskip("d2l.torch", reason="d2l is installed by `make setup` (pip install --no-deps d2l==1.0.3)")


def test_d2l_imports_with_our_numpy_torch_and_matplotlib():
    import matplotlib
    import numpy

    assert metadata.version("d2l") == "1.0.3"
    # d2l's own pins are not what runs: the project's versions are
    assert numpy.__version__ != "1.23.5" and matplotlib.__version__ != "3.7.2"
    x = torch.arange(6.0).reshape(2, 3)
    assert d2l.numpy(d2l.reduce_sum(x, axis=1)).tolist() == [3.0, 12.0]
    for name in ("LeNet", "Residual", "resnet18", "init_cnn", "FashionMNIST", "Trainer", "train_ch6"):
        assert hasattr(d2l, name), name


def _copy_params(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter of ``src`` into ``dst`` in registration order (shapes must agree)."""
    ps, pd_ = list(src.parameters()), list(dst.parameters())
    assert [p.shape for p in ps] == [p.shape for p in pd_]
    with torch.no_grad():
        for a, b in zip(ps, pd_):
            b.copy_(a)


def test_lenet_is_d2ls_lenet():
    torch.manual_seed(0)
    theirs = d2l.LeNet(num_classes=10)
    x = torch.rand(8, 1, 28, 28)
    theirs.apply_init([x], d2l.init_cnn)          # materialises the lazy layers, as d2l does
    ours = zoolib.get_model("lenet")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters()) == 61_706
    _copy_params(theirs, ours)
    torch.testing.assert_close(ours(x), theirs(x))


def _residual_from_d2l(theirs, ours: ResidualBlock) -> None:
    """d2l's block has conv biases and a plain 1x1 shortcut; zoolib's (torchvision's) has no conv
    bias and a BN after the shortcut. A bias before BN is cancelled by BN in training and folds
    into the running mean in evaluation; the shortcut BN is made the identity plus d2l's bias."""
    with torch.no_grad():
        for c in ("conv1", "conv2"):
            getattr(ours, c).weight.copy_(getattr(theirs, c).weight)
        for bn, conv in (("bn1", "conv1"), ("bn2", "conv2")):
            o, t = getattr(ours, bn), getattr(theirs, bn)
            o.weight.copy_(t.weight), o.bias.copy_(t.bias), o.running_var.copy_(t.running_var)
            o.running_mean.copy_(t.running_mean - getattr(theirs, conv).bias)
        if theirs.conv3 is not None:
            conv, bn = ours.conv3
            conv.weight.copy_(theirs.conv3.weight)
            bn.weight.fill_(1), bn.running_mean.zero_(), bn.running_var.fill_(1 - bn.eps)
            bn.bias.copy_(theirs.conv3.bias)


@pytest.mark.parametrize("shape_change", [False, True])
def test_residual_block_computes_what_d2ls_does(shape_change):
    torch.manual_seed(0)
    cin, cout, stride = (32, 64, 2) if shape_change else (32, 32, 1)
    x = torch.randn(4, cin, 12, 12)
    theirs = d2l.Residual(cout, use_1x1conv=shape_change, strides=stride)
    theirs(x)                                      # materialise the lazy layers
    for m in theirs.modules():                     # d2l's lazy convs start with random biases: keep them
        if isinstance(m, nn.Conv2d):
            assert m.bias is not None
    randomize_batchnorm(theirs)
    ours = ResidualBlock(cin, cout, stride, use_1x1conv=shape_change)
    _residual_from_d2l(theirs, ours)
    theirs.eval(), ours.eval()
    torch.testing.assert_close(ours(x), theirs(x))
    theirs.train(), ours.train()                   # batch statistics: the conv biases cancel
    if not shape_change:                           # (the shortcut's BN has no batch-stat twin in d2l)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)


def test_resnet18_stages_and_head_are_d2ls():
    """d2l's ``resnet18`` is the CIFAR-style variant (3x3 stem, no max-pool); its four stages of
    two blocks and its head are the paper's, which is what zoolib's ResNet-18 must match."""
    torch.manual_seed(0)
    theirs = d2l.resnet18(10, in_channels=1)
    x = torch.randn(2, 1, 32, 32)
    theirs(x)
    randomize_batchnorm(theirs)
    theirs.eval()
    ours = zoolib.get_model("resnet18", num_classes=10, in_channels=1).eval()
    d2l_stages = [theirs.resnet_block1, theirs.resnet_block2, theirs.resnet_block3, theirs.resnet_block4]
    assert len(ours.stages) == len(d2l_stages)
    for our_stage, their_stage in zip(ours.stages, d2l_stages):
        assert len(our_stage) == len(their_stage) == 2
        for o, t in zip(our_stage, their_stage):
            _residual_from_d2l(t, o)
    with torch.no_grad():
        ours.fc.weight.copy_(theirs.fc[1].weight), ours.fc.bias.copy_(theirs.fc[1].bias)
    stem = theirs[:3]                              # d2l's stem, in place of the ImageNet one
    torch.testing.assert_close(ours.forward_head(ours.stages(stem(x))), theirs(x))
