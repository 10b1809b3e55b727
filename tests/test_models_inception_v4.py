"""Inception-v4, Inception-ResNet-v2 (both identical to timm) and Inception-ResNet-v1."""
from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from zoolib._registry import get_model, list_models, model_spec
from zoolib.interop import transfer_state
from zoolib.layers import BN_EPS, Concat
from zoolib.models import inception_v4 as iv4
from support import n_params, randomize_batchnorm

TWINS = {"inception_v4": 42_679_816, "inception_resnet_v2": 55_843_464}
IR_V1_PARAMS = 22_756_328  # derived by formula from the figures in test_ir_v1_total_params



def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


def meta_input(size: int = 299, channels: int = 3, width: int | None = None) -> torch.Tensor:
    return torch.empty(1, channels, size, width or size, device="meta")


# --- the registry ---------------------------------------------------------------------


def test_registered():
    assert list_models("inception_v4") == ["inception_v4", "inception_resnet_v2",
                                           "inception_resnet_v1"]
    for name in list_models("inception_v4"):
        spec = model_spec(name)
        assert spec.input_size == (3, 299, 299)
        assert spec.default_num_classes == 1000
    assert model_spec("inception_v4").twins == {"timm": "inception_v4"}
    assert model_spec("inception_resnet_v2").twins == {"timm": "inception_resnet_v2"}
    assert model_spec("inception_resnet_v1").twins == {}


# --- identity with timm -------------------------------------------------------------------


@pytest.mark.parametrize("name", TWINS)
def test_twin_param_count(name):
    with torch.device("meta"):
        twin = timm.create_model(name)
    assert n_params(meta_model(name)) == n_params(twin) == TWINS[name]


def randomize(model: nn.Module) -> None:
    """Weights under which the output depends on every layer.

    PyTorch's default init shrinks the signal layer by layer and, in eval mode with fresh
    BatchNorm statistics, nothing restores it: the logits of a 60-layer network are then
    the classifier's bias, and two networks differing in their stems would still agree.
    He-normal weights and BatchNorm near the identity keep activations of order one.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
    randomize_batchnorm(model, scale=0.2)


@pytest.mark.slow
@pytest.mark.parametrize("name", TWINS)
def test_twin_weight_transfer_gives_same_outputs(name):
    torch.manual_seed(0)
    twin = timm.create_model(name).eval()
    randomize(twin)
    model = transfer_state(get_model(name), twin).eval()
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        ours, theirs = model(x), twin(x)
    assert ours.shape == (1, 1000)
    assert theirs.std() > 1.0  # the logits carry signal, not just the classifier's bias
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


# --- stage shapes at 299x299 (meta device: shapes only) -------------------------------------

STAGES = {
    "inception_v4": [("stem", 384, 35), ("inception_a", 384, 35), ("reduction_a", 1024, 17),
                     ("inception_b", 1024, 17), ("reduction_b", 1536, 8),
                     ("inception_c", 1536, 8)],
    "inception_resnet_v2": [("stem", 320, 35), ("inception_resnet_a", 320, 35),
                            ("reduction_a", 1088, 17), ("inception_resnet_b", 1088, 17),
                            ("reduction_b", 2080, 8), ("inception_resnet_c", 2080, 8),
                            ("final_conv", 1536, 8)],
    "inception_resnet_v1": [("stem", 256, 35), ("inception_resnet_a", 256, 35),
                            ("reduction_a", 896, 17), ("inception_resnet_b", 896, 17),
                            ("reduction_b", 1792, 8), ("inception_resnet_c", 1792, 8)],
}


@pytest.mark.parametrize("name", STAGES)
def test_stage_shapes(name):
    model = meta_model(name)
    x = meta_input()
    for stage, channels, grid in STAGES[name]:
        x = getattr(model, stage)(x)
        assert tuple(x.shape) == (1, channels, grid, grid), stage
    assert tuple(model.forward_features(meta_input()).shape) == tuple(x.shape)
    assert tuple(model.forward_head(x).shape) == (1, 1000)


@pytest.mark.parametrize("name, shapes", [
    # Figure 3: 149x149x32, 147x147x32, 147x147x64, 73x73x160, 71x71x192, 35x35x384
    ("inception_v4", [(32, 149), (32, 147), (64, 147), (160, 73), (192, 71), (384, 35)]),
    # Figure 14: ... 73x73x64 (pool), 73x73x80, 71x71x192, 35x35x256
    ("inception_resnet_v1", [(32, 149), (32, 147), (64, 147), (64, 73), (80, 73), (192, 71),
                             (256, 35)]),
    # timm: Figure 14 up to 71x71x192, then max pool 35x35x192 and Mixed5b 35x35x320
    ("inception_resnet_v2", [(32, 149), (32, 147), (64, 147), (64, 73), (80, 73), (192, 71),
                             (192, 35), (320, 35)]),
])
def test_stem_shapes(name, shapes):
    x = meta_input()
    for layer, (channels, grid) in zip(meta_model(name).stem, shapes, strict=True):
        x = layer(x)
        assert tuple(x.shape) == (1, channels, grid, grid), layer


# --- builder arguments and input checks -------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_num_classes_and_in_channels(name):
    model = meta_model(name, num_classes=7, in_channels=1)
    assert tuple(model(meta_input(channels=1)).shape) == (1, 7)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 1


@pytest.mark.parametrize("name", STAGES)
def test_too_small_input(name):
    model = meta_model(name).eval()  # eval: training-mode BatchNorm rejects a 1x1 batch of 1
    assert tuple(model.forward_features(meta_input(75)).shape)[2:] == (1, 1)
    for h, w in [(64, 64), (74, 74), (74, 299), (299, 74)]:
        with pytest.raises(ValueError, match="at least 75x75"):
            model(meta_input(h, width=w))


def test_bn_eps_is_shared_constant():
    for name in STAGES:
        bns = [m for m in meta_model(name).modules() if isinstance(m, nn.BatchNorm2d)]
        assert bns and all(bn.eps == BN_EPS == 1e-3 for bn in bns)


# --- residual blocks --------------------------------------------------------------------


def test_residual_scales_and_last_block():
    v2 = meta_model("inception_resnet_v2")
    assert [b.scale for b in v2.inception_resnet_a] == [0.17] * 10
    assert [b.scale for b in v2.inception_resnet_b] == [0.10] * 20
    c = list(v2.inception_resnet_c)
    assert [b.scale for b in c] == [0.20] * 9 + [1.0]
    assert all(isinstance(b.relu, nn.ReLU) for b in c[:-1]) and isinstance(c[-1].relu, nn.Identity)

    v1 = meta_model("inception_resnet_v1", scales=(0.3, 0.2, 0.1))
    stages = (v1.inception_resnet_a, v1.inception_resnet_b, v1.inception_resnet_c)
    assert [len(s) for s in stages] == [5, 10, 5]
    for stage, scale in zip(stages, (0.3, 0.2, 0.1)):
        assert all(b.scale == scale and isinstance(b.relu, nn.ReLU) for b in stage)
    assert isinstance(v1.final_conv, nn.Identity)


def test_residual_block_formula():
    torch.manual_seed(0)
    block = iv4.Block8(6, branch0=2, branch1=(2, 3, 4), scale=0.5, no_relu=True).eval()
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        branches = torch.cat([block.branches[0](x), block.branches[1](x)], dim=1)
        torch.testing.assert_close(block(x), x + 0.5 * block.up(branches))
        block.scale = 0.0  # a zero-scaled linear block is the identity
        torch.testing.assert_close(block(x), x)


# --- parameter counts from the figures' widths --------------------------------------------


def conv_bn(k, cin: int, cout: int) -> int:
    """A k x k (or kh x kw) convolution without bias, plus BatchNorm's gamma and beta."""
    kh, kw = (k, k) if isinstance(k, int) else k
    return kh * kw * cin * cout + 2 * cout


def linear_1x1(cin: int, cout: int) -> int:
    """The residual blocks' "1x1 Conv (Linear)": weights and bias, no BatchNorm."""
    return cin * cout + cout


# Each value is written out from the figure named, independently of the model code.
IR_V1_BLOCKS = {
    # Figure 14: 3x3/2 32, 3x3 32, 3x3 64, pool, 1x1 80, 3x3 192, 3x3/2 256
    "stem": conv_bn(3, 3, 32) + conv_bn(3, 32, 32) + conv_bn(3, 32, 64) + conv_bn(1, 64, 80)
    + conv_bn(3, 80, 192) + conv_bn(3, 192, 256),
    # Figure 10: 32 | 32 -> 32 | 32 -> 32 -> 32, linear 1x1 96 -> 256
    "inception_resnet_a": conv_bn(1, 256, 32) + conv_bn(1, 256, 32) + conv_bn(3, 32, 32)
    + conv_bn(1, 256, 32) + 2 * conv_bn(3, 32, 32) + linear_1x1(96, 256),
    # Figure 7 with Table 1's k, l, m, n = 192, 192, 256, 384
    "reduction_a": conv_bn(3, 256, 384) + conv_bn(1, 256, 192) + conv_bn(3, 192, 192)
    + conv_bn(3, 192, 256),
    # Figure 11: 128 | 128 -> 1x7 128 -> 7x1 128, linear 1x1 256 -> 896
    "inception_resnet_b": 2 * conv_bn(1, 896, 128) + conv_bn((1, 7), 128, 128)
    + conv_bn((7, 1), 128, 128) + linear_1x1(256, 896),
    # Figure 12: 256 -> 384/2 | 256 -> 256/2 | 256 -> 256 -> 256/2 | pool
    "reduction_b": 3 * conv_bn(1, 896, 256) + conv_bn(3, 256, 384) + 3 * conv_bn(3, 256, 256),
    # Figure 13: 192 | 192 -> 1x3 192 -> 3x1 192, linear 1x1 384 -> 1792
    "inception_resnet_c": 2 * conv_bn(1, 1792, 192) + conv_bn((1, 3), 192, 192)
    + conv_bn((3, 1), 192, 192) + linear_1x1(384, 1792),
}

IR_V2_BLOCKS = {  # timm's widths; branch widths from Figures 16, 17, 18, 19
    "inception_resnet_a": conv_bn(1, 320, 32) * 3 + conv_bn(3, 32, 32) + conv_bn(3, 32, 48)
    + conv_bn(3, 48, 64) + linear_1x1(128, 320),
    "reduction_a": conv_bn(3, 320, 384) + conv_bn(1, 320, 256) + conv_bn(3, 256, 256)
    + conv_bn(3, 256, 384),
    "inception_resnet_b": conv_bn(1, 1088, 192) + conv_bn(1, 1088, 128)
    + conv_bn((1, 7), 128, 160) + conv_bn((7, 1), 160, 192) + linear_1x1(384, 1088),
    "reduction_b": 3 * conv_bn(1, 1088, 256) + conv_bn(3, 256, 384) + conv_bn(3, 256, 288)
    + conv_bn(3, 256, 288) + conv_bn(3, 288, 320),
    "inception_resnet_c": 2 * conv_bn(1, 2080, 192) + conv_bn((1, 3), 192, 224)
    + conv_bn((3, 1), 224, 256) + linear_1x1(448, 2080),
}


# Table 1 of the paper, written out again: Reduction-A's k, l, m, n for each network.
TABLE1 = {"inception_v4": (192, 224, 256, 384), "inception_resnet_v1": (192, 192, 256, 384),
          "inception_resnet_v2": (256, 256, 384, 384)}


@pytest.mark.parametrize("name", list(TABLE1))
def test_reduction_a_widths_are_table1(name):
    # Figure 7: n is the lone 3x3/2 branch; k -> l -> m the 1x1 -> 3x3 -> 3x3/2 branch. This
    # pins which named width (ch3x3, ch3x3dblred, ...) plays which letter.
    k, l, m, n = TABLE1[name]  # noqa: E741
    convs = [c for c in meta_model(name).reduction_a.modules() if isinstance(c, nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.out_channels) for c in convs] == [
        ((3, 3), (2, 2), n), ((1, 1), (1, 1), k), ((3, 3), (1, 1), l), ((3, 3), (2, 2), m)]


@pytest.mark.parametrize("name, blocks", [("inception_resnet_v1", IR_V1_BLOCKS),
                                          ("inception_resnet_v2", IR_V2_BLOCKS)])
def test_block_params_match_figures(name, blocks):
    model = meta_model(name)
    for stage, expected in blocks.items():
        module = getattr(model, stage)
        if isinstance(module, nn.Sequential) and stage.startswith("inception_resnet"):
            counts = {n_params(block) for block in module}
            assert counts == {expected}, stage
        else:
            assert n_params(module) == expected, stage


def test_ir_v1_total_params():
    b = IR_V1_BLOCKS
    total = (b["stem"] + 5 * b["inception_resnet_a"] + b["reduction_a"]
             + 10 * b["inception_resnet_b"] + b["reduction_b"] + 5 * b["inception_resnet_c"]
             + 1792 * 1000 + 1000)  # Figure 15: average pooling, dropout, linear 1792 -> 1000
    assert total == IR_V1_PARAMS
    assert n_params(meta_model("inception_resnet_v1")) == IR_V1_PARAMS


@pytest.mark.parametrize("name", ["inception_v3", "inception_v4", "inception_resnet_v1",
                                  "inception_resnet_v2"])
def test_every_fork_names_each_of_its_branches_once(name):
    # Concatenation follows branch_names, not attribute order: a submodule a block holds but
    # does not list would be silently dropped, and one listed twice would double its channels.
    forks = [m for m in meta_model(name).modules() if isinstance(m, Concat)]
    assert len(forks) >= 2
    for fork in forks:
        children = [child for child, _ in fork.named_children()]
        assert sorted(fork.branch_names) == sorted(children), type(fork).__name__
