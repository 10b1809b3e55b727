"""ResNet-18: parameter count, stage shapes, the residual block, torchvision equivalence."""
import pytest
import torch
from torch import nn

from zoolib import get_model, list_models, model_spec
from zoolib.interop import build_twin, transfer_state
from zoolib.models.resnet import ResidualBlock
from support import n_params, randomize_batchnorm


def test_registered():
    assert list_models("resnet") == ["resnet18"]
    spec = model_spec("resnet18")
    assert spec.input_size == (3, 224, 224)
    assert spec.twins == {"torchvision": "resnet18"}


def test_parameter_count():
    model = get_model("resnet18")
    assert n_params(model) == 11_689_512 == n_params(build_twin("resnet18", "torchvision"))


def test_batchnorm_uses_pytorch_default_eps():
    bns = [m for m in get_model("resnet18").modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 1 + 8 * 2 + 3  # stem, two per block, three projections
    assert all(bn.eps == 1e-5 for bn in bns)


def test_weight_transfer_gives_torchvision_outputs():
    torch.manual_seed(0)
    twin = build_twin("resnet18", "torchvision")
    randomize_batchnorm(twin)  # an eps of 1e-3 instead of 1e-5 would show
    twin.eval()
    ours = transfer_state(get_model("resnet18"), twin).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = twin(x)
        assert expected.abs().max() < 1e3
        torch.testing.assert_close(ours(x), expected)


@pytest.mark.slow
def test_stage_shapes():
    model = get_model("resnet18").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        x = model.stem(x)
        assert x.shape == (1, 64, 56, 56)
        shapes = []
        for stage in model.stages:
            x = stage(x)
            shapes.append(tuple(x.shape[1:]))
        assert shapes == [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
        assert model.forward_head(x).shape == (1, 1000)


def test_residual_block():
    block = ResidualBlock(64, 64)
    assert block.conv3 is None
    assert block(torch.randn(2, 64, 8, 8)).shape == (2, 64, 8, 8)
    block = ResidualBlock(64, 128, stride=2, use_1x1conv=True)
    conv, bn = block.conv3
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.stride == (2, 2)
    assert isinstance(bn, nn.BatchNorm2d)
    # the projection comes after bn2 in the state dict, as torchvision's downsample does
    assert list(block.state_dict())[-6].startswith("conv3.0")
    assert block(torch.randn(2, 64, 8, 8)).shape == (2, 128, 4, 4)
    with pytest.raises(ValueError, match="use_1x1conv"):
        ResidualBlock(64, 128, stride=2)


def test_residual_block_adds_its_input():
    block = ResidualBlock(4, 4).eval()
    with torch.no_grad():
        block.bn2.weight.zero_()  # the residual branch now outputs bn2's bias, 0
        x = torch.randn(1, 4, 5, 5)
        torch.testing.assert_close(block(x), torch.relu(x))


def test_honours_num_classes_and_in_channels():
    model = get_model("resnet18", num_classes=10, in_channels=1)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


# -- the CIFAR-10 networks of He et al. 2015, Sec. 4.2 ------------------------------------------------

from zoolib.models.resnet import CifarBlock, cifar_resnet  # noqa: E402

# He et al. 2015, Table 6: depth -> parameters ("0.27M" ... "1.7M")
PAPER_TABLE_6 = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6}


@pytest.mark.parametrize("depth", sorted(PAPER_TABLE_6))
def test_cifar_resnet_parameters_match_table_6(depth):
    quoted = PAPER_TABLE_6[depth]
    digits = 0.01e6 if quoted < 1e6 else 0.1e6   # the table's precision
    assert abs(n_params(cifar_resnet(depth)) - quoted) <= digits / 2


def test_cifar_resnet20_parameters_by_hand():
    # stem: 3x3x3x16 conv + BN; per block two 3x3 convs + two BNs; option A shortcuts hold nothing
    def block(c_in, c_out):
        return 9 * c_in * c_out + 9 * c_out * c_out + 4 * c_out
    total = 9 * 3 * 16 + 2 * 16
    total += 3 * block(16, 16) + block(16, 32) + 2 * block(32, 32) + block(32, 64) + 2 * block(64, 64)
    total += 64 * 10 + 10
    assert n_params(cifar_resnet(20)) == total == n_params(cifar_resnet(20, plain=True))


def test_cifar_resnet_depth_counts_weighted_layers():
    for depth in (20, 56):
        weighted = [m for m in cifar_resnet(depth).modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert len(weighted) == depth
    with pytest.raises(ValueError, match="6n \\+ 2"):
        cifar_resnet(21)


def test_cifar_shapes_halve_the_grid_twice():
    model = cifar_resnet(20, in_channels=1).eval()
    x = model.stem(torch.randn(2, 1, 28, 28))
    shapes = []
    for stage in model.stages:
        x = stage(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(16, 28, 28), (32, 14, 14), (64, 7, 7)]


def test_option_a_shortcut_and_the_plain_block():
    """With the residual branch silenced, a block passes relu(x), subsampled and zero-padded; a plain one passes 0."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6)
    for shortcut in (True, False):
        block = CifarBlock(4, 8, stride=2, shortcut=shortcut).eval()
        nn.init.zeros_(block.conv2.weight)   # F(x) = bn2(0) = 0 in eval mode with fresh statistics
        y = block(x)
        assert y.shape == (2, 8, 3, 3)
        if shortcut:
            torch.testing.assert_close(y[:, :4], torch.relu(x[:, :, ::2, ::2]))
            assert (y[:, 4:] == 0).all()
        else:
            assert (y == 0).all()
