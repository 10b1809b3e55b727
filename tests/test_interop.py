"""Weight loading: clear errors offline, shape-checked positional transfer."""
import urllib.error

import pytest
import torch
import torchvision
from torch import nn

import zoolib
from zoolib.interop import WeightsUnavailableError, transfer_state

IDENTICAL = {"vgg11": "torchvision", "vgg13": "torchvision", "vgg16": "torchvision", "vgg19": "torchvision",
             "resnet18": "torchvision", "inception_v3": "torchvision", "inception_v4": "timm",
             "inception_resnet_v2": "timm"}


def test_twins_are_declared_where_the_architecture_is_identical():
    declared = {n: next(iter(zoolib.model_spec(n).twins)) for n in zoolib.list_models() if zoolib.model_spec(n).twins}
    assert declared == IDENTICAL


@pytest.mark.parametrize("name,source", sorted(IDENTICAL.items()))
def test_every_twin_state_dict_lines_up(name, source):
    from zoolib.interop import build_twin

    with torch.device("meta"):
        ours, twin = zoolib.get_model(name), build_twin(name, source)
    ours_shapes = [tuple(v.shape) for v in ours.state_dict().values()]
    twin_shapes = [tuple(v.shape) for v in twin.state_dict().values()]
    assert ours_shapes == twin_shapes


def test_offline_torchvision_weights_fail_with_a_clear_message(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(WeightsUnavailableError, match="network") as err:
        zoolib.get_model("resnet18", weights="torchvision")
    assert "resnet18" in str(err.value) and "TORCH_HOME" in str(err.value)


def test_offline_timm_weights_fail_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="HF_HOME"):
        zoolib.get_model("inception_v4", weights="timm")


def test_weights_need_an_identical_twin():
    with pytest.raises(ValueError, match="no identical torchvision twin"):
        zoolib.get_model("googlenet", weights="torchvision")
    with pytest.raises(ValueError, match="weights must be one of"):
        zoolib.get_model("vgg16", weights="imagenet")
    with pytest.raises(ValueError, match="num_classes=1000"):
        zoolib.get_model("vgg16", weights="torchvision", num_classes=10)


def test_transfer_names_the_first_mismatch():
    a = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 16, 3))
    b = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 32, 3))
    with pytest.raises(ValueError, match=r"state entry 2: zoolib '1.weight' \(16, 8, 3, 3\)"):
        transfer_state(a, b)
    with pytest.raises(ValueError, match="has 4 state entries, source has 3"):
        transfer_state(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)),
                       nn.Sequential(nn.Linear(2, 2), nn.Conv1d(2, 2, 1, bias=False)))


def test_transfer_copies_values():
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    transfer_state(a, b)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
