"""Network in Network: the ImageNet NiN (d2l) and the CIFAR NiN (the lecture's code)."""
import pytest
import torch
from torch import nn

from zoolib import get_model, list_models, model_spec
from zoolib.arith import conv_out_size, conv_params
from zoolib.models.nin import MLPConv, NiNBlock
from support import n_params


def mlpconv_params(c_in: int, widths, k: int) -> int:
    c1, c2, c3 = widths
    """A k x k convolution then two 1x1 convolutions, all with biases."""
    return conv_params(k, c_in, c1) + conv_params(1, c1, c2) + conv_params(1, c2, c3)


def test_registered():
    assert list_models("nin") == ["nin", "nin_cifar"]
    assert model_spec("nin").input_size == (3, 224, 224)
    assert model_spec("nin").default_num_classes == 1000
    assert model_spec("nin_cifar").input_size == (3, 32, 32)
    assert model_spec("nin_cifar").default_num_classes == 10


def test_nin_block():
    block = NiNBlock(3, 8, kernel_size=5, stride=2, padding=2)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == \
        [(3, 8, (5, 5), (2, 2)), (8, 8, (1, 1), (1, 1)), (8, 8, (1, 1), (1, 1))]
    assert sum(isinstance(m, nn.ReLU) for m in block.modules()) == 3
    assert block(torch.randn(1, 3, 16, 16)).shape == (1, 8, 8, 8)
    assert n_params(block) == mlpconv_params(3, (8, 8, 8), 5)


def test_nin_parameter_count_by_formula():
    expected = (mlpconv_params(3, (96,) * 3, 11) + mlpconv_params(96, (256,) * 3, 5)
                + mlpconv_params(256, (384,) * 3, 3) + mlpconv_params(384, (1000,) * 3, 3))
    assert expected == 7_439_608
    assert n_params(get_model("nin")) == expected


@pytest.mark.slow
def test_nin_stage_shapes_as_on_the_slide():
    model = get_model("nin", num_classes=10).eval()
    assert conv_out_size(224, 11, 4) == 54
    x = torch.randn(1, 3, 224, 224)
    shapes = []
    with torch.no_grad():
        for layer in [*model.features, *model.head]:
            x = layer(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12),
                      (384, 12, 12), (384, 5, 5),
                      (384, 5, 5),  # dropout
                      (10, 5, 5), (10, 1, 1), (10,)]
    assert isinstance(model.head[0], nn.Dropout) and model.head[0].p == 0.5
    assert all(isinstance(b, NiNBlock) for b in model.modules() if isinstance(b, MLPConv))


def test_nin_cifar_parameter_count_by_formula():
    expected = (mlpconv_params(3, (192, 160, 96), 5) + mlpconv_params(96, (192, 192, 192), 5)
                + mlpconv_params(192, (192, 192, 10), 3))
    assert expected == 966_986
    assert n_params(get_model("nin_cifar")) == expected


def test_nin_cifar_shapes():
    model = get_model("nin_cifar").eval()
    assert conv_out_size(32, 3, 2, ceil=True) == 16
    assert conv_out_size(16, 3, 2, ceil=True) == 8
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 192, 8, 8)
        y = x
        pooled = []
        for layer in model.features:
            y = layer(y)
            if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
                pooled.append(y.shape[-1])
        assert pooled == [16, 8]
        out = model(x)
    assert out.shape == (2, 10)
    torch.testing.assert_close(out, model.forward_head(feats))
    pools = [m for m in model.features if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert [type(p) for p in pools] == [nn.MaxPool2d, nn.AvgPool2d]
    assert all(p.ceil_mode for p in pools)
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2


def test_nin_cifar_global_pool_matches_the_lectures_fixed_pool():
    model = get_model("nin_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = model.head[1](model.forward_features(x))  # the class block's 8x8 class maps
        fixed = nn.AvgPool2d(8, stride=1)(maps).flatten(1)
        torch.testing.assert_close(model(x), fixed)
        # the adaptive pool also takes other sizes, which AvgPool2d(8) would not
        assert model(torch.randn(1, 3, 48, 48)).shape == (1, 10)


@pytest.mark.slow
def test_nin_honours_num_classes_and_in_channels():
    assert get_model("nin", num_classes=7, in_channels=1)(torch.randn(1, 1, 224, 224)).shape == (1, 7)
    assert get_model("nin_cifar", num_classes=100, in_channels=1)(
        torch.randn(1, 1, 32, 32)).shape == (1, 100)
