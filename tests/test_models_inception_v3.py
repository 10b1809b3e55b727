"""Inception-v3: parameter counts, stage shapes, size limits and torchvision weight transfer."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from zoolib import get_model, list_models, model_spec
from zoolib.interop import build_twin, transfer_state
from zoolib.models.inception_v3 import InceptionV3Outputs, inception_v3
from support import n_params


def test_registered():
    spec = model_spec("inception_v3")
    assert "inception_v3" in list_models("inception_v3")
    assert spec.input_size == (3, 299, 299)
    assert spec.default_num_classes == 1000
    assert spec.twins == {"torchvision": "inception_v3"}
    assert isinstance(get_model("inception_v3", num_classes=10, aux_logits=False).fc, nn.Linear)


@pytest.mark.parametrize("aux_logits, expected", [(True, 27_161_264), (False, 23_834_568)])
def test_parameter_count(aux_logits, expected):
    with torch.device("meta"):
        ours = inception_v3(aux_logits=aux_logits)
        theirs = torchvision.models.inception_v3(weights=None, aux_logits=aux_logits,
                                                 init_weights=False)
    assert n_params(ours) == expected == n_params(theirs)


def test_stage_shapes_at_299():
    with torch.device("meta"):
        model = inception_v3().eval()
        x = torch.empty(1, 3, 299, 299)
        x = model.stem(x)
        assert x.shape == (1, 192, 35, 35)
        x = model.fig5(x)
        assert x.shape == (1, 288, 35, 35)
        x = model.grid35to17(x)
        assert x.shape == (1, 768, 17, 17)
        x = model.fig6(x)
        assert x.shape == (1, 768, 17, 17)
        assert model.aux(x).shape == (1, 1000)
        x = model.grid17to8(x)
        assert x.shape == (1, 1280, 8, 8)
        x = model.fig7(x)
        assert x.shape == (1, 2048, 8, 8)
        assert model.forward_features(torch.empty(1, 3, 299, 299)).shape == (1, 2048, 8, 8)
    assert len(model.fig5) == 3 and len(model.fig6) == 4 and len(model.fig7) == 2


def test_outputs_by_mode():
    with torch.device("meta"):
        model = inception_v3(num_classes=7)
        out = model.train()(torch.empty(2, 3, 299, 299))
        assert isinstance(out, InceptionV3Outputs)
        assert out.logits.shape == out.aux_logits.shape == (2, 7)
        assert model.eval()(torch.empty(2, 3, 299, 299)).shape == (2, 7)
        plain = inception_v3(num_classes=7, aux_logits=False).train()
        assert plain.aux is None
        assert plain(torch.empty(2, 3, 299, 299)).shape == (2, 7)


def test_num_classes_and_in_channels():
    with torch.device("meta"):
        model = get_model("inception_v3", num_classes=10, in_channels=1)
        assert model.stem[0].conv.in_channels == 1
        assert model.fc.out_features == model.aux.fc.out_features == 10
        out = model.train()(torch.empty(2, 1, 299, 299))
        assert out.logits.shape == out.aux_logits.shape == (2, 10)
    with pytest.raises(ValueError, match="in_channels=3"):
        inception_v3(in_channels=1, transform_input=True)
    with torch.device("meta"):
        assert inception_v3(transform_input=True).transform_input


def test_minimum_input_size():
    with torch.device("meta"):
        model = inception_v3().eval()
        assert model(torch.empty(1, 3, 75, 75)).shape == (1, 1000)
        for h, w in [(64, 64), (74, 75), (75, 74)]:
            with pytest.raises(ValueError, match="at least 75x75"):
                model(torch.empty(1, 3, h, w))
        # Training with the auxiliary classifier needs the full 17x17 grid, i.e. 299x299.
        with pytest.raises(ValueError, match="at least 299x299"):
            model.train()(torch.empty(2, 3, 298, 298))
        assert inception_v3(aux_logits=False).train()(torch.empty(2, 3, 75, 75)).shape == (2, 1000)


@pytest.fixture(scope="module")
def torchvision_twin():
    """A random torchvision inception_v3 whose BatchNorm statistics are those of one batch.

    With torchvision's initialisation (std 0.1) and untouched running statistics the eval
    logits reach ~1e12, where 1e-5 means nothing; calibrated, they are of order one.
    """
    torch.manual_seed(0)
    twin = build_twin("inception_v3", "torchvision", aux_logits=True, transform_input=False,
                      init_weights=True)
    for m in twin.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0  # running statistics := this batch's
    with torch.no_grad():
        twin.train()(torch.randn(2, 3, 299, 299))
    return twin.eval()


@pytest.mark.slow
@pytest.mark.parametrize("transform_input", [False, True])
def test_weight_transfer_matches_torchvision(torchvision_twin, transform_input, monkeypatch):
    monkeypatch.setattr(torchvision_twin, "transform_input", transform_input)
    ours = transfer_state(inception_v3(aux_logits=True), torchvision_twin).eval()
    # Set after building, as zoolib.interop.load_pretrained does for torchvision's weights.
    ours.transform_input = transform_input
    x = torch.randn(1, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = torchvision_twin(x)
        assert expected.abs().max() < 1e3  # calibrated: agreeing to 1e-5 means something
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-5)


# torchvision's module of the same place in the network: Mixed_5b, 6a, 6b, 7a, 7b
TV_FIRST_OF_STAGE = ("Mixed_5b", "Mixed_6a", "Mixed_6b", "Mixed_7a", "Mixed_7b")


def _conv_widths(module: nn.Module) -> list[int]:
    return [m.out_channels for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_the_small_network_is_the_released_modules_divided():
    from zoolib.models.inception_v3 import small_inception_v3

    with torch.device("meta"):
        tv = torchvision.models.inception_v3(weights=None, init_weights=False, aux_logits=False)
    full = small_inception_v3(in_channels=3, shrink=1)
    small = small_inception_v3()
    # shrink=1: the first module receives 192 channels, as Mixed_5b does, and holds exactly its
    # parameters; the later ones get fewer input channels (one module per stage, not 3, 4, 2)
    assert n_params(full[2]) == n_params(tv.Mixed_5b)
    for i, name in enumerate(TV_FIRST_OF_STAGE):
        released = getattr(tv, name)
        assert sorted(_conv_widths(full[2 + i])) == sorted(_conv_widths(released)), name
        # shrink=8: the same convolutions, every width divided by 8 (as a multiset: the
        # registration orders of the branches differ between the two code bases)
        assert sorted(_conv_widths(small[2 + i])) == sorted(w // 8 for w in _conv_widths(released)), name


def test_the_small_network_at_28x28():
    from zoolib.models.inception_v3 import small_inception_v3

    model = small_inception_v3()
    # freshly built: no probe has moved a BatchNorm statistic
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert bn.num_batches_tracked.item() == 0
    x = torch.zeros(2, 1, 28, 28)
    sides = []
    for layer in model[:7]:
        x = layer(x)
        sides.append(x.shape[-1])
    # 28 -> conv 3x3 pad 1: 28 -> pool 3/2 pad 1: (28 + 2 - 3) // 2 + 1 = 14 -> A keeps 14
    # -> reduction (3 - 1 unpadded, stride 2): (14 - 3) // 2 + 1 = 6 -> B keeps 6 -> (6 - 3) // 2 + 1 = 2
    assert sides == [28, 14, 14, 6, 6, 2, 2]
    # widths: A 8+8+12+4, reduction A 48+12 plus its 32 input channels, B 4 x 24,
    # reduction B 40+24 plus 96, C 40 + 2x48 + 2x48 + 24
    assert x.shape[1] == 256 and model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
