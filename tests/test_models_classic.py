"""LeNet, AlexNet and VGG: parameter arithmetic, stage shapes, torchvision equivalence."""
import pytest
import torch
import torchvision
from torch import nn

from zoolib import get_model, list_models, model_spec
from zoolib.arith import conv_out_size, conv_params, linear_params
from zoolib.interop import build_twin, transfer_state
from zoolib.models.classic import VGGBlock
from support import n_params

VGG_NAMES = ["vgg11", "vgg13", "vgg16", "vgg19"]
# Table 1 of Simonyan & Zisserman (2015), configurations A, B, D, E: 3x3 convolutions per
# block, the blocks being 64, 128, 256, 512, 512 channels wide.
VGG_TABLE_1 = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}



def meta_model(name: str, **kw) -> nn.Module:
    """Build without allocating or initialising real tensors (fast even for VGG-19)."""
    with torch.device("meta"):
        return get_model(name, **kw)


def test_registered_in_course_order():
    assert list_models("classic") == ["lenet", "alexnet", *VGG_NAMES]
    for name in list_models("classic"):
        assert model_spec(name).family == "classic"
    assert model_spec("lenet").input_size == (1, 28, 28)
    assert model_spec("lenet").default_num_classes == 10
    assert model_spec("alexnet").input_size == (3, 227, 227)
    assert model_spec("alexnet").relatives == {"torchvision": "alexnet"}
    assert model_spec("alexnet").twins == {}
    for name in VGG_NAMES:
        assert model_spec(name).input_size == (3, 224, 224)
        assert model_spec(name).twins == {"torchvision": name}


# ---------------------------------------------------------------- LeNet


def test_lenet_parameter_count_by_formula():
    # (k*k*c_in + 1) * c_out for the convolutions, (n_in + 1) * n_out for the dense layers
    expected = ((5 * 5 * 1 + 1) * 6         # C1: 156
                + (5 * 5 * 6 + 1) * 16      # C3: 2,416 (all 6 maps, no partial table)
                + (16 * 5 * 5 + 1) * 120    # 48,120
                + (120 + 1) * 84            # 10,164
                + (84 + 1) * 10)            # 850
    assert expected == 61_706
    assert n_params(get_model("lenet")) == expected


def test_lenet_shapes_and_layers():
    model = get_model("lenet")
    x = torch.randn(2, 1, 28, 28)
    feats = model.forward_features(x)
    assert feats.shape == (2, 16, 5, 5)
    out = model(x)
    assert out.shape == (2, 10)
    torch.testing.assert_close(out, model.forward_head(feats))
    assert sum(isinstance(m, nn.Sigmoid) for m in model.modules()) == 4
    assert sum(isinstance(m, nn.AvgPool2d) for m in model.modules()) == 2
    assert not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in model.modules())


def test_lenet_honours_num_classes_and_in_channels():
    model = get_model("lenet", num_classes=5, in_channels=3)
    assert model(torch.randn(1, 3, 28, 28)).shape == (1, 5)


# ---------------------------------------------------------------- AlexNet


def test_alexnet_per_layer_parameters():
    model = get_model("alexnet")
    convs = [model.features.get_submodule(f"conv{i}") for i in range(1, 6)]
    assert [n_params(c) for c in convs] == [34_944, 614_656, 885_120, 1_327_488, 884_992]
    # The same numbers from the formula (k*k*c_in + 1) * c_out, ungrouped.
    assert [n_params(c) for c in convs] == [conv_params(11, 3, 96), conv_params(5, 96, 256),
                                            conv_params(3, 256, 384), conv_params(3, 384, 384),
                                            conv_params(3, 384, 256)]
    # the paper's two-GPU split (groups=2) would halve the weights of conv2, conv4, conv5
    assert conv_params(5, 96, 256, groups=2) == 307_456
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [n_params(m) for m in linears] == [linear_params(9216, 4096), linear_params(4096, 4096),
                                              4_097_000]
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.classifier) == 2
    assert n_params(model) == 62_378_344


@pytest.mark.slow
def test_alexnet_stage_shapes():
    model = get_model("alexnet").eval()
    size = conv_out_size(227, 11, 4)
    assert size == 55
    assert conv_out_size(size, 3, 2) == 27
    assert conv_out_size(27, 3, 2) == 13
    assert conv_out_size(13, 3, 2) == 6
    expected = {"conv1": (96, 55), "pool1": (96, 27), "conv2": (256, 27), "pool2": (256, 13),
                "conv3": (384, 13), "conv4": (384, 13), "conv5": (256, 13), "pool5": (256, 6)}
    x = torch.randn(1, 3, 227, 227)
    for name, layer in model.features.named_children():
        x = layer(x)
        c, s = expected[name]
        assert x.shape == (1, c, s, s), name
    assert model(torch.randn(1, 3, 227, 227)).shape == (1, 1000)


@pytest.mark.slow
def test_alexnet_lrn_option():
    plain = get_model("alexnet")
    with_lrn = get_model("alexnet", lrn=True)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in plain.modules())
    names = [n for n, _ in with_lrn.features.named_children()]
    assert names == ["conv1", "lrn1", "pool1", "conv2", "lrn2", "pool2", "conv3", "conv4",
                     "conv5", "pool5"]
    # The paper's formula: b_i = a_i / (k + alpha * sum_{|j-i|<=2} a_j^2)^beta, k=2, alpha=1e-4, beta=0.75
    a = torch.rand(1, 8, 3, 3) * 40
    sq = torch.nn.functional.pad(a.pow(2), (0, 0, 0, 0, 2, 2))
    window = sum(sq[:, j:j + 8] for j in range(5))
    torch.testing.assert_close(with_lrn.features.lrn1(a), a / (2 + 1e-4 * window).pow(0.75))
    assert n_params(with_lrn) == n_params(plain)  # LRN has no parameters
    assert with_lrn(torch.randn(1, 3, 227, 227)).shape == (1, 1000)


@pytest.mark.slow
def test_alexnet_is_not_torchvisions_alexnet():
    ours = meta_model("alexnet")
    with torch.device("meta"):
        theirs = torchvision.models.alexnet()
    with pytest.raises(ValueError, match="architectures differ"):
        transfer_state(ours, theirs)


@pytest.mark.slow
def test_alexnet_other_sizes_and_classes():
    model = get_model("alexnet", num_classes=10, in_channels=1).eval()
    assert model.forward_features(torch.randn(1, 1, 224, 224)).shape == (1, 256, 5, 5)
    assert model(torch.randn(1, 1, 224, 224)).shape == (1, 10)


# ---------------------------------------------------------------- VGG

VGG_COUNTS = {"vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544,
              "vgg19": 143_667_240}


@pytest.mark.parametrize("name", VGG_NAMES)
def test_vgg_parameter_count_matches_torchvision(name):
    ours = meta_model(name)
    with torch.device("meta"):
        twin = build_twin(name, "torchvision")
    assert n_params(ours) == VGG_COUNTS[name] == n_params(twin)


@pytest.mark.parametrize("name", VGG_NAMES)
def test_vgg_state_dict_positions_match_torchvision(name):
    ours = meta_model(name)
    with torch.device("meta"):
        twin = build_twin(name, "torchvision")
    assert [v.shape for v in ours.state_dict().values()] == \
        [v.shape for v in twin.state_dict().values()]
    assert [n for n, _ in ours.named_children()] == ["features", "avgpool", "classifier"]
    assert ours.avgpool.output_size in (7, (7, 7))


@pytest.mark.parametrize("name", VGG_NAMES)
def test_vgg_built_from_blocks_of_table_1(name):
    model = meta_model(name)
    blocks = list(model.features)
    assert all(isinstance(b, VGGBlock) for b in blocks)
    convs = [[m for m in b.modules() if isinstance(m, nn.Conv2d)] for b in blocks]
    assert [(len(cs), cs[0].out_channels) for cs in convs] == list(zip(VGG_TABLE_1[name], (64, 128, 256, 512, 512)))
    assert all(c.kernel_size == (3, 3) for cs in convs for c in cs)
    depth = sum(len(cs) for cs in convs) + 3
    assert depth == int(name[3:])


def test_vgg11_weight_transfer_gives_torchvision_outputs():
    torch.manual_seed(0)
    twin = build_twin("vgg11", "torchvision").eval()
    ours = transfer_state(get_model("vgg11"), twin).eval()
    x = torch.randn(1, 3, 64, 64)  # the adaptive pool makes small inputs work
    with torch.no_grad():
        torch.testing.assert_close(ours(x), twin(x))


@pytest.mark.slow
def test_vgg16_stage_shapes():
    model = get_model("vgg16").eval()
    x = torch.randn(1, 3, 224, 224)
    shapes = []
    with torch.no_grad():
        for block in model.features:
            x = block(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]


def test_vgg_block():
    block = VGGBlock(3, 16, 32)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == \
        [(16, 32, (3, 3), (1, 1)), (32, 32, (3, 3), (1, 1)), (32, 32, (3, 3), (1, 1))]
    assert sum(isinstance(m, nn.ReLU) for m in block.modules()) == 3
    assert isinstance(block[-1], nn.MaxPool2d)
    assert block(torch.randn(2, 16, 10, 10)).shape == (2, 32, 5, 5)


def test_vgg_honours_num_classes_and_in_channels():
    model = get_model("vgg11", num_classes=10, in_channels=1).eval()
    feats = model.forward_features(torch.randn(1, 1, 32, 32))
    assert feats.shape == (1, 512, 1, 1)
    assert model.forward_head(feats).shape == (1, 10)


def test_vgg_is_initialised_as_torchvision_initialises_it():
    """VGG skips PyTorch's default initialisation (its layers are built on the meta device),
    so every tensor must be drawn again: kaiming-normal convolutions (fan-out, ReLU gain),
    N(0, 0.01) dense layers, zero biases, as torchvision's VGG does. Uninitialised memory
    left behind would show up as a wrong spread or as non-finite values."""
    torch.manual_seed(0)
    model = get_model("vgg11", num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    dense = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == 8 and len(dense) == 3
    for m in convs:
        fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        std = (2 / fan_out) ** 0.5
        assert m.weight.mean().abs() < 0.05 * std and abs(m.weight.std().item() / std - 1) < 0.05
    for m in dense:
        assert m.weight.mean().abs() < 1e-3 and abs(m.weight.std().item() / 0.01 - 1) < 0.05
    for m in convs + dense:
        assert torch.isfinite(m.weight).all() and torch.count_nonzero(m.bias) == 0
    assert next(model.parameters()).device.type == "cpu"
    with torch.device("meta"):   # built inside a meta context, it stays there
        assert next(get_model("vgg11").parameters()).device.type == "meta"
