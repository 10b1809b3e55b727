"""The lectures' formulas against what PyTorch layers really do."""
import itertools

import pytest
import torch
from torch import nn

from zoolib import arith


@pytest.mark.parametrize("size,kernel,stride,padding", [
    (s, k, st, p) for s, k, st, p in itertools.product((7, 28, 55, 224, 227), (1, 3, 5, 7, 11), (1, 2, 4), (0, 1, 2, 3))
    if p <= k // 2 and s + 2 * p >= k])
def test_conv_out_size_matches_conv2d(size, kernel, stride, padding):
    conv = nn.Conv2d(1, 1, kernel, stride, padding)
    out = conv(torch.zeros(1, 1, size, size)).shape[-1]
    assert arith.conv_out_size(size, kernel, stride, padding) == out


@pytest.mark.parametrize("size,kernel,stride,padding", [
    (112, 3, 2, 0), (55, 3, 2, 0), (14, 3, 2, 0), (28, 3, 2, 1), (6, 3, 2, 1), (32, 3, 2, 0), (16, 3, 2, 0)])
def test_ceil_mode_pooling_matches_maxpool(size, kernel, stride, padding):
    pool = nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)
    out = pool(torch.zeros(1, 1, size, size)).shape[-1]
    assert arith.conv_out_size(size, kernel, stride, padding, ceil=True) == out


def test_lecture_alexnet_examples():
    assert arith.conv_out_size(227, 11, 4) == 55
    assert arith.conv_out_size(55, 3, 2) == 27
    assert arith.conv_weights(11, 3, 96) == 34_848
    assert arith.conv_params(11, 3, 96) == 34_944
    assert arith.linear_params(4096, 1000) == 4_097_000


def test_too_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match="does not fit"):
        arith.conv_out_size(5, 7)


@pytest.mark.parametrize("k,cin,cout,groups", [(3, 64, 128, 1), ((1, 7), 128, 192, 1), (5, 96, 256, 2), (1, 1, 1, 1)])
def test_conv_params_match_pytorch(k, cin, cout, groups):
    conv = nn.Conv2d(cin, cout, k, groups=groups)
    assert arith.conv_params(k, cin, cout, groups) == sum(p.numel() for p in conv.parameters())
    assert arith.conv_weights(k, cin, cout, groups) == conv.weight.numel()


@pytest.mark.parametrize("k,cin,cout,groups,stride", [(3, 8, 16, 1, 1), ((1, 7), 12, 6, 1, 1), (5, 8, 4, 2, 2)])
def test_conv_macs_match_pytorchs_flop_counter(k, cin, cout, groups, stride):
    from torch.utils.flop_counter import FlopCounterMode

    conv = nn.Conv2d(cin, cout, k, stride=stride, groups=groups)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = conv(torch.zeros(1, cin, 17, 15))
    h, w = out.shape[-2:]
    assert 2 * arith.conv_macs(k, cin, cout, h, w, groups) == counter.get_total_flops()  # a MAC is 2 FLOPs


def _measured_receptive_field(layers: nn.Sequential, size: int = 64) -> int:
    """Width of the input region whose gradient reaches the centre output unit."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = layers(x)
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    cols = (x.grad[0, 0].abs().sum(0) > 0).nonzero()
    return int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("spec", [[(3, 1)] * 3, [(7, 1)], [(3, 1)] * 2, [(3, 2), (3, 1)], [(5, 2), (3, 2), (3, 1)],
                                  [(11, 4), (3, 2), (5, 1)]])
def test_receptive_field_matches_gradient(spec):
    layers = nn.Sequential(*[nn.Conv2d(1, 1, k, s) for k, s in spec])
    with torch.no_grad():
        for m in layers:
            m.weight.fill_(1.0)
            m.bias.zero_()
    assert arith.receptive_field(spec) == _measured_receptive_field(layers, 128)


def test_three_3x3_see_what_one_7x7_sees():
    assert arith.receptive_field([(3, 1)] * 3) == arith.receptive_field([(7, 1)]) == 7
