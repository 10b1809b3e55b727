"""GoogLeNet (Table 1 of Szegedy et al. 2014) and BN-Inception (Figure 5 of Ioffe & Szegedy 2015).

The paper tables are copied here on their own, so the tests check the model against the
papers rather than against the model's own data.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoolib import get_model, list_models, model_spec, profile
from zoolib.models.googlenet import (BNInception, GoogLeNetOutputs, Inception, InceptionAux,
                                     googlenet_loss)

INCEPTIONS = ["inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
              "inception4d", "inception4e", "inception5a", "inception5b"]

# Table 1, Szegedy et al. 2014: in_channels, grid (H = W), #1x1, #3x3 reduce, #3x3,
# #5x5 reduce, #5x5, pool proj, output depth, params ("K" = 1024 weights), ops (M = 1e6 MACs).
TABLE1 = {
    "inception3a": (192, 28, 64, 96, 128, 16, 32, 32, 256, 159, 128),
    "inception3b": (256, 28, 128, 128, 192, 32, 96, 64, 480, 380, 304),
    "inception4a": (480, 14, 192, 96, 208, 16, 48, 64, 512, 364, 73),
    "inception4b": (512, 14, 160, 112, 224, 24, 64, 64, 512, 437, 88),
    "inception4c": (512, 14, 128, 128, 256, 24, 64, 64, 512, 463, 100),
    "inception4d": (512, 14, 112, 144, 288, 32, 64, 64, 528, 580, 119),
    "inception4e": (528, 14, 256, 160, 320, 32, 128, 128, 832, 840, 170),
    "inception5a": (832, 7, 256, 160, 320, 32, 128, 128, 832, 1072, 54),
    "inception5b": (832, 7, 384, 192, 384, 48, 128, 128, 1024, 1388, 71),
}
# The true weight counts (= the formula on the table's columns, checked below).
BLOCK_WEIGHTS = {"inception3a": 163_328, "inception3b": 388_096, "inception4a": 375_552,
                 "inception4b": 448_512, "inception4c": 509_440, "inception4d": 604_672,
                 "inception4e": 867_328, "inception5a": 1_042_432, "inception5b": 1_442_816}
# Rows whose params column is more than 1% off its own channel columns (errata of the
# paper's table): 4c 497.5K vs 463K, 4d 590.5K vs 580K, 5a 1018K vs 1072K, 5b 1409K vs 1388K.
PARAMS_ERRATA = {"inception4c", "inception4d", "inception5a", "inception5b"}
# 5a's ops column (54M) is likewise 5% above the 51.1M its columns give.
OPS_ERRATA = {"inception5a"}


def weights(module: nn.Module) -> int:
    """Weights only: conv kernels and linear matrices (no biases; GoogLeNet has no BN)."""
    return sum(p.numel() for p in module.parameters() if p.dim() > 1)


@pytest.fixture(scope="module")
def macs(net):
    """Multiply-adds per module at 224x224, as zoolib's profiler counts them on a forward pass."""
    prof = profile(net, (1, 3, 224, 224))
    return lambda name: prof[name].macs


@pytest.fixture(scope="module")
def net():
    return get_model("googlenet").eval()


def test_registered():
    assert list_models("googlenet") == ["googlenet", "bn_inception"]
    for name in ("googlenet", "bn_inception"):
        spec = model_spec(name)
        assert spec.input_size == (3, 224, 224)
        assert spec.default_num_classes == 1000
        assert spec.twins == {}
    assert model_spec("googlenet").relatives == {"torchvision": "googlenet"}


@pytest.mark.parametrize("name", INCEPTIONS)
def test_block_weights_follow_table1_columns(net, name):
    cin, _, c1, r3, c3, r5, c5, pp, depth, _, _ = TABLE1[name]
    block = getattr(net, name)
    assert isinstance(block, Inception)
    formula = cin * c1 + cin * r3 + 9 * r3 * c3 + cin * r5 + 25 * r5 * c5 + cin * pp
    assert weights(block) == formula == BLOCK_WEIGHTS[name]
    assert block.out_channels == c1 + c3 + c5 + pp == depth


@pytest.mark.parametrize("name", INCEPTIONS)
def test_block_weights_against_table1_params_column(net, name):
    paper = TABLE1[name][9] * 1024
    error = abs(weights(getattr(net, name)) / paper - 1)
    if name in PARAMS_ERRATA:
        assert error > 0.01  # the paper's figure does not follow from its own columns
    else:
        assert error < 0.01


def test_table1_examples_from_the_lecture(net, macs):
    assert weights(net.inception3a) == 163_328  # 159.5K; the paper prints 159K
    assert weights(net.inception3b) == 388_096  # 379.0K; the paper prints 380K
    assert macs("inception3a") == pytest.approx(128e6, rel=0.01)
    assert macs("inception3b") == pytest.approx(304e6, rel=0.01)


@pytest.mark.parametrize("name", INCEPTIONS)
def test_block_macs_against_table1_ops_column(macs, name):
    hw, paper = TABLE1[name][1], TABLE1[name][10] * 1e6
    counted = macs(name)
    assert counted == hw * hw * BLOCK_WEIGHTS[name]  # every weight once per position (stride 1, same padding)
    if name in OPS_ERRATA:
        assert counted == 51_079_168 and counted < 0.95 * paper
    else:
        assert counted == pytest.approx(paper, rel=0.01)


def test_stem_and_classifier_against_table1(net, macs):
    # conv1: Table 1 prints 2.7K params and 34M ops, but a 7x7 conv from 3 to 64 channels
    # at 112x112 has 9,408 weights and 118M multiply-adds: an erratum in the table.
    assert weights(net.conv1) == 7 * 7 * 3 * 64 == 9_408
    assert macs("conv1") == 112 * 112 * 9_408 == 118_013_952
    # Table 1's second "convolution" row is conv2 (1x1, 64) + conv3 (3x3, 192): 112K, 360M.
    conv23 = weights(net.conv2) + weights(net.conv3)
    assert conv23 == 64 * 64 + 9 * 64 * 192 == 112 * 1024
    assert macs("conv2") + macs("conv3") == 56 * 56 * conv23 == pytest.approx(360e6, rel=0.01)
    assert weights(net.fc) == 1024 * 1000 == macs("fc")  # 1000K params, 1M ops


def test_parameter_totals():
    # The slide's "6,797,700 parameters" is Table 1's params column summed as thousands.
    paper_k = [2.7, 112] + [TABLE1[n][9] for n in INCEPTIONS] + [1000]
    assert sum(paper_k) * 1000 == pytest.approx(6_797_700)
    plain, aux = get_model("googlenet"), get_model("googlenet", aux_logits=True)
    assert weights(plain) == 9_408 + 114_688 + sum(BLOCK_WEIGHTS.values()) + 1_024_000 == 6_990_272
    assert sum(p.numel() for p in plain.parameters()) == 6_998_552
    assert weights(aux) == 13_365_696
    assert sum(p.numel() for p in aux.parameters()) == 13_378_280
    # Each auxiliary head: 1x1 conv 128, fc 2048 -> 1024, fc 1024 -> 1000 (plus biases).
    for head, cin in ((aux.aux1, 512), (aux.aux2, 528)):
        assert sum(p.numel() for p in head.parameters()) == (
            cin * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000)


@pytest.mark.slow
def test_shapes_at_224(net):
    expected = {
        "conv1": (64, 112, 112), "maxpool1": (64, 56, 56), "conv2": (64, 56, 56),
        "conv3": (192, 56, 56), "maxpool2": (192, 28, 28), "inception3a": (256, 28, 28),
        "inception3b": (480, 28, 28), "maxpool3": (480, 14, 14), "inception4a": (512, 14, 14),
        "inception4b": (512, 14, 14), "inception4c": (512, 14, 14), "inception4d": (528, 14, 14),
        "inception4e": (832, 14, 14), "maxpool4": (832, 7, 7), "inception5a": (832, 7, 7),
        "inception5b": (1024, 7, 7), "fc": (1000,)}
    shapes = {}
    hooks = [getattr(net, n).register_forward_hook(
        lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:]))) for n in expected]
    try:
        with torch.no_grad():
            out = net(torch.randn(2, 3, 224, 224))  # a real forward at the paper's size
    finally:
        for h in hooks:
            h.remove()
    assert shapes == expected
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_structure(net):
    children = dict(net.named_children())
    assert [n for n in children if n.startswith("inception")] == INCEPTIONS
    assert isinstance(children["maxpool3"], nn.MaxPool2d)
    assert isinstance(children["maxpool4"], nn.MaxPool2d)
    for m in net.modules():
        if isinstance(m, nn.MaxPool2d) and m.stride == 2:
            assert m.ceil_mode  # Caffe rounds up: 224 -> 112/56/28/14/7
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert all(m.bias is not None for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    for name in INCEPTIONS:  # a real 5x5, not torchvision's 3x3
        conv5 = getattr(net, name).branch3[1].conv
        assert conv5.kernel_size == (5, 5) and conv5.padding == (2, 2)
    lrns = [m for m in net.modules() if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2
    assert all((m.size, m.alpha, m.beta) == (5, 1e-4, 0.75) for m in lrns)
    assert isinstance(net.dropout, nn.Dropout) and net.dropout.p == 0.4
    assert net.aux1 is None and net.aux2 is None


def test_lrn_switch_changes_no_parameters():
    with_lrn, without = get_model("googlenet"), get_model("googlenet", lrn=False)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in without.modules())
    assert list(with_lrn.state_dict()) == list(without.state_dict())


def test_stages_are_unregistered_views(net):
    n_params, keys = len(list(net.parameters())), list(net.state_dict())
    stages = net.stages()
    assert len(stages) == 5
    assert stages[2][0] is net.inception3a and stages[3][-1] is net.maxpool4
    assert len(list(net.parameters())) == n_params == 116  # 57 convs + fc, weight and bias
    assert list(net.state_dict()) == keys
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        y = x
        for stage in stages:
            y = stage(y)
        assert torch.equal(y, net.forward_features(x))
        assert torch.equal(net.forward_head(y), net(x))


def test_num_classes_and_in_channels():
    model = get_model("googlenet", num_classes=10, in_channels=1).eval()
    assert model.conv1.conv.in_channels == 1 and model.fc.out_features == 10
    with torch.no_grad():
        assert model(torch.randn(2, 1, 96, 96)).shape == (2, 10)


def test_aux_logits_only_in_training():
    torch.manual_seed(0)
    model = get_model("googlenet", num_classes=10, aux_logits=True)
    assert isinstance(model.aux1, InceptionAux) and model.aux1.fc1.in_features == 4 * 4 * 128
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():  # training mode is what matters, not gradients
        out = model.train()(x)
        assert isinstance(out, GoogLeNetOutputs)
        assert [t.shape for t in out] == [(2, 10)] * 3
        assert isinstance(model.eval()(x), torch.Tensor)
        plain = get_model("googlenet", num_classes=10).train()
        assert isinstance(plain(x), torch.Tensor)


def test_aux_pool_gives_4x4_on_the_14x14_grid():
    head = InceptionAux(512, 10)
    assert head.pool(torch.randn(1, 512, 14, 14)).shape == (1, 512, 4, 4)


def test_googlenet_loss():
    torch.manual_seed(0)
    target = torch.tensor([1, 3])
    logits, a1, a2 = (torch.randn(2, 5) for _ in range(3))
    total = googlenet_loss(GoogLeNetOutputs(logits, a1, a2), target)
    expected = (F.cross_entropy(logits, target) + 0.3 * F.cross_entropy(a1, target)
                + 0.3 * F.cross_entropy(a2, target))
    assert torch.allclose(total, expected)
    assert torch.allclose(googlenet_loss(logits, target), F.cross_entropy(logits, target))


# Figure 5, Ioffe & Szegedy 2015: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3,
# pool, proj (0 = pass through), stride. Deliberately the same rows as the model's
# BN_INCEPTION_TABLE: transcribed again from the paper, so that a slip in either copy fails.
FIGURE5 = {
    "inception3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "inception3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "inception3c": (0, 128, 160, 64, 96, "max", 0, 2),
    "inception4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "inception4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "inception4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "inception4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "inception4e": (0, 128, 192, 192, 256, "max", 0, 2),
    "inception5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "inception5b": (352, 192, 320, 192, 224, "max", 128, 1),
}
# Output (depth, grid) at 224 as the columns give them. The table prints 576 for 4c and 4d
# (the columns give 608), 1024 for 4e (1056) and 28x28 for 3c (a stride-2 module: 14x14).
BN_OUTPUTS = {"inception3a": (256, 28), "inception3b": (320, 28), "inception3c": (576, 14),
              "inception4a": (576, 14), "inception4b": (576, 14), "inception4c": (608, 14),
              "inception4d": (608, 14), "inception4e": (1056, 7), "inception5a": (1024, 7),
              "inception5b": (1024, 7)}


@pytest.fixture(scope="module")
def bn_net():
    return get_model("bn_inception").eval()


def test_bn_inception_parameter_count(bn_net):
    def conv_bn(k, cin, cout):  # conv without bias, BatchNorm's weight and bias
        return k * k * cin * cout + 2 * cout

    total = conv_bn(7, 3, 64) + conv_bn(1, 64, 64) + conv_bn(3, 64, 192)
    cin = 192
    for c1, r3, c3, rd, cd, _, proj, _ in FIGURE5.values():
        total += (conv_bn(1, cin, c1) if c1 else 0) + conv_bn(1, cin, r3) + conv_bn(3, r3, c3)
        total += conv_bn(1, cin, rd) + conv_bn(3, rd, cd) + conv_bn(3, cd, cd)
        total += conv_bn(1, cin, proj) if proj else 0
        cin = c1 + c3 + cd + (proj or cin)
    total += cin * 1000 + 1000
    assert sum(p.numel() for p in bn_net.parameters()) == total == 11_285_224


def test_bn_inception_depths_and_shapes(bn_net):
    shapes = {}
    with torch.device("meta"):  # shapes only: no weights, no arithmetic
        model = get_model("bn_inception").eval()
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", *BN_OUTPUTS]
    for n in names:
        getattr(model, n).register_forward_hook(
            lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
    out = model(torch.empty(1, 3, 224, 224, device="meta"))
    assert out.shape == (1, 1000)
    assert shapes == {"conv1": (64, 112, 112), "maxpool1": (64, 56, 56), "conv2": (64, 56, 56),
                      "conv3": (192, 56, 56), "maxpool2": (192, 28, 28),
                      **{n: (d, g, g) for n, (d, g) in BN_OUTPUTS.items()}}
    for name, (depth, _) in BN_OUTPUTS.items():
        assert getattr(bn_net, name).out_channels == depth
    assert bn_net.fc.in_features == 1024


def test_bn_inception_structure(bn_net):
    convs = [m for m in bn_net.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is None for m in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn_net.modules()) == len(convs) == 69
    assert not any(isinstance(m, (nn.Dropout, nn.LocalResponseNorm)) for m in bn_net.modules())
    assert [n for n, _ in bn_net.named_children() if n.startswith("inception")] == list(FIGURE5)
    for name, (c1, _, _, _, _, pool, proj, stride) in FIGURE5.items():
        block = getattr(bn_net, name)
        assert isinstance(block, BNInception)
        assert (block.branch1 is None) == (c1 == 0)
        assert type(block.branch4[0]) is {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}[pool]
        assert len(block.branch4) == (2 if proj else 1)  # pool alone = pass through
        assert block.branch2[1].conv.stride == block.branch3[2].conv.stride == (stride, stride)
        assert all(m.kernel_size in ((1, 1), (3, 3)) for m in block.modules()
                   if isinstance(m, nn.Conv2d))  # no 5x5 left


def test_bn_inception_forward_and_options(bn_net):
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        feats = bn_net.forward_features(x)
        assert feats.shape == (2, 1024, 3, 3)
        y = x
        for stage in bn_net.stages():
            y = stage(y)
        assert torch.equal(y, feats)
        out = bn_net(x)
        assert torch.equal(bn_net.forward_head(feats), out)
    assert out.shape == (2, 1000) and torch.isfinite(out).all()
    small = get_model("bn_inception", num_classes=10, in_channels=1).eval()
    with torch.no_grad():
        assert small(torch.randn(2, 1, 96, 96)).shape == (2, 10)
    with pytest.raises(ValueError):
        BNInception(64, 8, 8, 8, 8, 8, "min", 8)


def test_naive_inception_module_grows_and_costs_854m():
    from zoolib.models.googlenet import NaiveInception

    block = NaiveInception(256, ch1x1=128, ch3x3=192, ch5x5=96)
    out = block(torch.randn(1, 256, 28, 28))
    assert out.shape == (1, 128 + 192 + 96 + 256, 28, 28) and block.out_channels == 672
    # 28*28*(128*1*1*256 + 192*3*3*256 + 96*5*5*256), the lecture's naive-module sum
    from zoolib import profile

    assert profile(block, (1, 256, 28, 28)).total_macs == 854_196_224


def test_width_divisor_keeps_the_topology_and_divides_every_width():
    from zoolib.models.googlenet import GoogLeNet

    full, narrow = GoogLeNet(10, 1), GoogLeNet(10, 1, width_divisor=4)
    convs = lambda m: [c for c in m.modules() if isinstance(c, nn.Conv2d)]  # noqa: E731
    assert len(convs(full)) == len(convs(narrow)) == 57          # 3 in the stem + 9 modules x 6
    for a, b in zip(convs(full), convs(narrow)):
        assert b.out_channels * 4 == a.out_channels and b.kernel_size == a.kernel_size and b.stride == a.stride
    assert narrow.inception5b.out_channels == 256 and narrow.fc.in_features == 256
    assert narrow.eval()(torch.rand(2, 1, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="width_divisor"):
        GoogLeNet(10, 1, width_divisor=3)


def test_every_listed_departure_from_torchvision_is_real():
    # GoogLeNet's docstring lists 8 ways torchvision's googlenet departs from the paper; each is
    # checked on torchvision's own model, and the paper's choice on ours.
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    ours = get_model("googlenet", aux_logits=True)
    # 1. BatchNorm (eps 1e-3) after bias-free convolutions
    tv_bns = [m for m in tv.modules() if isinstance(m, nn.BatchNorm2d)]
    assert tv_bns and {m.eps for m in tv_bns} == {1e-3}
    assert all(m.bias is None for m in tv.modules() if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ours.modules())
    assert all(m.bias is not None for m in ours.modules() if isinstance(m, nn.Conv2d))
    # 2. the "5x5" branch
    assert tv.inception3a.branch3[1].conv.kernel_size == (3, 3)
    assert ours.inception3a.branch3[1].conv.kernel_size == (5, 5)
    # 3. LRN
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in tv.modules()) == 0
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in ours.modules()) == 2
    # 4. maxpool4, and both reach 7x7 at 224
    assert (tv.maxpool4.kernel_size, ours.maxpool4.kernel_size) == (2, 3)
    for pool in (tv.maxpool4, ours.maxpool4):
        assert pool(torch.zeros(1, 1, 14, 14)).shape[-2:] == (7, 7)
    # 5. final dropout
    assert (tv.dropout.p, ours.dropout.p) == (0.2, 0.4)
    # 6. the auxiliary heads' 5x5/3 average pool
    assert not any(isinstance(m, nn.AvgPool2d) for m in tv.aux1.modules())
    assert isinstance(ours.aux1.pool, nn.AvgPool2d) and ours.aux1.pool.kernel_size == 5
    # 7. the order of the outputs: which one did aux1 (on 4a) compute?
    for model, aux1_at in ((tv, 2), (ours, 1)):
        seen = []
        handle = model.aux1.register_forward_hook(lambda m, i, o: seen.append(o))
        with torch.no_grad():
            out = model.train()(torch.randn(2, 3, 224, 224))
        handle.remove()
        assert torch.equal(out[aux1_at], seen[0])
    # 8. initialisation: std 0.01 against Caffe's xavier, 1/sqrt(fan_in) = 1/sqrt(3*7*7) for conv1
    assert abs(tv.conv1.conv.weight.std().item() - 0.01) < 0.001
    assert abs(ours.conv1.conv.weight.std().item() - (3 * 49) ** -0.5) < 0.01
