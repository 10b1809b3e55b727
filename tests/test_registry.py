import pytest
import torch

import zoolib
from zoolib._registry import register_model

EXPECTED = ["lenet", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "nin", "nin_cifar", "googlenet",
            "bn_inception", "inception_v3", "inception_v4", "inception_resnet_v1", "inception_resnet_v2",
            "resnet18"]


def test_the_zoo_is_complete():
    assert sorted(zoolib.list_models()) == sorted(EXPECTED)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(KeyError, match="googlenet"):
        zoolib.get_model("googlenet_v9")


def test_registering_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        register_model("lenet", input_size=(1, 28, 28), family="x", paper="x")(
            lambda num_classes=10, in_channels=1: None)


def test_builders_must_accept_num_classes_and_in_channels():
    with pytest.raises(TypeError, match="in_channels"):
        register_model("broken", input_size=(1, 28, 28), family="x", paper="x")(lambda num_classes=10: None)


@pytest.mark.parametrize("name", EXPECTED)
def test_num_classes_and_in_channels_are_honoured(name):
    spec = zoolib.model_spec(name)
    model = zoolib.get_model(name, num_classes=7, in_channels=2).to("meta").eval()
    with torch.no_grad():
        out = model(torch.empty(2, 2, *spec.input_size[1:], device="meta"))
    assert tuple(out.shape) == (2, 7)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_model_has_features_and_head(name):
    spec = zoolib.model_spec(name)
    model = zoolib.get_model(name).to("meta").eval()
    x = torch.empty(1, *spec.input_size, device="meta")
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.dim() == 4, "forward_features returns the last feature map (N, C, H, W)"
        assert model.forward_head(feats).shape == model(x).shape == (1, spec.default_num_classes)


def test_blocks_are_exported_for_chapters_and_assignments():
    block = zoolib.Inception(192, 64, 96, 128, 16, 32, 32)
    assert block(torch.randn(1, 192, 8, 8)).shape == (1, 256, 8, 8)
    assert zoolib.InceptionFig5 is zoolib.v3.InceptionFig5 and not hasattr(zoolib, "InceptionA")
    for name in zoolib.__all__:
        assert hasattr(zoolib, name), name
