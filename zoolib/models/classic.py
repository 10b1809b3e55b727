"""The classic plain CNNs: LeNet-5, AlexNet and VGG (family ``"classic"``).

Every model splits into ``forward_features`` (input -> last feature map) and
``forward_head`` (feature map -> logits); ``forward`` is the two in turn.

LeNet (LeCun et al. 1998), as the lectures (d2l) build it
    conv 5x5/6 (pad 2) -> avg-pool 2 -> conv 5x5/16 -> avg-pool 2 -> dense 120 -> 84 -> classes,
    with sigmoid activations. Padding the 28x28 MNIST digit by 2 stands in for the paper's
    32x32 input, so the flattened features are 16x5x5 = 400 and the model takes 28x28 inputs
    only. Simplifications against the paper, kept because the lectures make them: the
    paper's squashing function is a scaled tanh (1.7159 tanh(2a/3)), not the logistic
    sigmoid; its subsampling layers S2/S4 multiply the 2x2 sum by a trainable coefficient
    and add a trainable bias (here plain average pooling, no parameters); its C3 layer
    connects each of the 16 maps to only a subset of the 6 input maps (the partial
    connection table of Table I; here every map sees all 6); and its output layer is 10
    Euclidean RBF units (here an ordinary dense layer). None of these is reproduced.
    61,706 parameters with 10 classes.

AlexNet (Krizhevsky, Sutskever & Hinton 2012), the paper's 96-256-384-384-256 network at
    227x227 (torchvision's ``alexnet`` is the 64-192-384-256-256 variant of Krizhevsky's
    later "one weird trick" paper, hence only a relative). The paper's text says 224x224,
    but its 55x55 conv1 output needs 227: (227 - 11) / 4 + 1 = 55. The paper split conv2,
    conv4 and conv5 across two GPUs, each half seeing only the input channels on its own
    GPU, i.e. ``groups=2``, which halves those layers' weights.
    This is the single-GPU (ungrouped) form whose per-layer counts the lecture works out:
    34,944 / 614,656 / 885,120 / 1,327,488 / 884,992 for conv1..conv5.
    Local response normalisation (after the ReLUs of conv1 and conv2, before their
    max-pools, as in the paper) is off by default: it has no parameters, so the parameter
    arithmetic ignores it, and later work (VGG's paper, Sec. 4.1) found it does not help.
    ``lrn=True`` adds the paper's LRN (n=5, alpha=1e-4, beta=0.75, k=2). PyTorch (like
    Caffe) divides ``alpha`` by the window size and the paper's formula does not, so the
    paper's layer is ``nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)``.
    An ``AdaptiveAvgPool2d(6)`` (as in torchvision) sits before the classifier: at 227x227
    the feature map is already 6x6 and it is the identity; at other sizes (224 gives 5x5)
    it lets the 9216-wide dense layer still apply.

VGG-11/13/16/19 (Simonyan & Zisserman 2014), configurations A, B, D and E of Table 1,
    built from d2l-style ``VGGBlock``s. The module layout (``features``, ``avgpool``,
    ``classifier``) and the order of the tensors in the state dict are torchvision's
    ``vgg11``..``vgg19`` (no BatchNorm), so their weights transfer one to one; only the
    key names differ (``features.0.0.conv.weight`` here, ``features.0.weight`` there).
    The initialisation is torchvision's too.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from .._registry import register_model
from ..layers import ConvReLU

__all__ = ["LeNet", "AlexNet", "VGG", "VGGBlock", "LENET_CONVS", "LENET_DENSE",
           "ALEXNET_CONVS", "ALEXNET_DENSE", "VGG_CONFIGS", "VGG_DENSE",
           "lenet", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19"]

# (out_channels, kernel, padding) of C1 and C3, each followed by a 2x2/2 average pool.
# Source: LeCun et al. 1998, Fig. 2, with d2l's padding of the 28x28 input.
LENET_CONVS = ((6, 5, 2), (16, 5, 0))
# Widths of the hidden dense layers (C5 and F6 of the paper).
LENET_DENSE = (120, 84)
LENET_POOL = 5  # spatial size of the last feature map at 28x28

# (out_channels, kernel, stride, padding, max-pool 3/2 after it) for conv1..conv5.
# Source: Krizhevsky et al. 2012, Sec. 3.5 and Fig. 2 (both GPU halves together), 227x227 input.
ALEXNET_CONVS = (
    (96, 11, 4, 0, True),
    (256, 5, 1, 2, True),
    (384, 3, 1, 1, False),
    (384, 3, 1, 1, False),
    (256, 3, 1, 1, True),
)
ALEXNET_DENSE = (4096, 4096)  # hidden dense layers, each after a dropout of 0.5
ALEXNET_POOL = 6  # spatial size of the last feature map at 227x227

# (num_convs, out_channels) of each VGG block (3x3 convs, then a 2x2/2 max-pool).
# Source: Simonyan & Zisserman 2014, Table 1, columns A (11), B (13), D (16) and E (19).
VGG_CONFIGS = {
    "vgg11": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    "vgg13": ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    "vgg16": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "vgg19": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}
VGG_DENSE = (4096, 4096)
VGG_POOL = 7  # spatial size of the last feature map at 224x224

LENET_PAPER = "LeCun, Bottou, Bengio & Haffner 1998, Gradient-Based Learning Applied to Document Recognition"
ALEXNET_PAPER = ("Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep "
                 "Convolutional Neural Networks")
VGG_PAPER = ("Simonyan & Zisserman 2014, Very Deep Convolutional Networks for Large-Scale "
             "Image Recognition (arXiv:1409.1556)")


class _Classifier(nn.Module):
    """``features`` -> ``avgpool`` -> flatten -> ``classifier``, split at the feature map."""

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class LeNet(_Classifier):
    """LeNet-5 as d2l builds it (sigmoid, average pooling); see the module docstring."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        channels = in_channels
        for i, (out, kernel, padding) in enumerate(LENET_CONVS, start=1):
            layers += [(f"conv{i}", nn.Conv2d(channels, out, kernel, padding=padding)),
                       (f"act{i}", nn.Sigmoid()),
                       (f"pool{i}", nn.AvgPool2d(2, stride=2))]
            channels = out
        self.features = nn.Sequential(OrderedDict(layers))
        dense: list[nn.Module] = [nn.Flatten()]
        width = channels * LENET_POOL ** 2
        for hidden in LENET_DENSE:
            dense += [nn.Linear(width, hidden), nn.Sigmoid()]
            width = hidden
        dense.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*dense)

    def forward_head(self, x: Tensor) -> Tensor:  # fixed 5x5 input, no pooling to a size
        return self.classifier(x)


class AlexNet(_Classifier):
    """AlexNet, single-GPU form of the paper's 96-256-384-384-256 network."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, lrn: bool = False,
                 dropout: float = 0.5):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        channels = in_channels
        for i, (out, kernel, stride, padding, pool) in enumerate(ALEXNET_CONVS, start=1):
            layers.append((f"conv{i}", ConvReLU(channels, out, kernel, stride, padding)))
            if lrn and i <= 2:
                # alpha = 5 x the paper's 1e-4: PyTorch divides it by the window size (5)
                layers.append((f"lrn{i}", nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)))
            if pool:
                layers.append((f"pool{i}", nn.MaxPool2d(3, stride=2)))
            channels = out
        self.features = nn.Sequential(OrderedDict(layers))
        self.avgpool = nn.AdaptiveAvgPool2d(ALEXNET_POOL)
        # The paper's order: dropout -> linear -> ReLU for each hidden layer.
        dense: list[nn.Module] = []
        width = channels * ALEXNET_POOL ** 2
        for hidden in ALEXNET_DENSE:
            dense += [nn.Dropout(dropout), nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        dense.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*dense)


class VGGBlock(nn.Sequential):
    """``num_convs`` 3x3 convolutions (pad 1) with ReLU, then a 2x2 max-pool of stride 2."""

    def __init__(self, num_convs: int, in_channels: int, out_channels: int):
        convs = [ConvReLU(in_channels if i == 0 else out_channels, out_channels, 3, padding=1)
                 for i in range(num_convs)]
        super().__init__(*convs, nn.MaxPool2d(2, stride=2))


class VGG(_Classifier):
    """VGG from a table of ``(num_convs, out_channels)`` blocks, laid out as torchvision's."""

    def __init__(self, config, num_classes: int = 1000, in_channels: int = 3,
                 dropout: float = 0.5):
        super().__init__()
        # Every weight is drawn again below, so the layers are built on the meta device and
        # skip PyTorch's default initialisation: for VGG16's 138M weights that was half of
        # the build time. They then move to the device in effect (meta stays meta).
        device = torch.empty(0).device
        with torch.device("meta"):
            blocks = []
            channels = in_channels
            for num_convs, out in config:
                blocks.append(VGGBlock(num_convs, channels, out))
                channels = out
            self.features = nn.Sequential(*blocks)
            self.avgpool = nn.AdaptiveAvgPool2d(VGG_POOL)
            # torchvision's order: linear -> ReLU -> dropout (dropout after each hidden layer).
            layers: list[nn.Module] = []
            width = channels * VGG_POOL ** 2
            for hidden in VGG_DENSE:
                layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
                width = hidden
            layers.append(nn.Linear(width, num_classes))
            self.classifier = nn.Sequential(*layers)
        self.to_empty(device=device)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


@register_model(input_size=(1, 28, 28), family="classic", paper=LENET_PAPER)
def lenet(num_classes: int = 10, in_channels: int = 1) -> LeNet:
    return LeNet(num_classes, in_channels)


@register_model(input_size=(3, 227, 227), family="classic", paper=ALEXNET_PAPER,
                relatives={"torchvision": "alexnet"})
def alexnet(num_classes: int = 1000, in_channels: int = 3, lrn: bool = False) -> AlexNet:
    return AlexNet(num_classes, in_channels, lrn=lrn)


# One registered builder per configuration of Table 1, deliberately alike (as torchvision's):
# the registry, the profiler and the book list each network by its own name.
@register_model(input_size=(3, 224, 224), family="classic", paper=VGG_PAPER,
                twins={"torchvision": "vgg11"})
def vgg11(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    return VGG(VGG_CONFIGS["vgg11"], num_classes, in_channels)


@register_model(input_size=(3, 224, 224), family="classic", paper=VGG_PAPER,
                twins={"torchvision": "vgg13"})
def vgg13(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    return VGG(VGG_CONFIGS["vgg13"], num_classes, in_channels)


@register_model(input_size=(3, 224, 224), family="classic", paper=VGG_PAPER,
                twins={"torchvision": "vgg16"})
def vgg16(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    return VGG(VGG_CONFIGS["vgg16"], num_classes, in_channels)


@register_model(input_size=(3, 224, 224), family="classic", paper=VGG_PAPER,
                twins={"torchvision": "vgg19"})
def vgg19(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    return VGG(VGG_CONFIGS["vgg19"], num_classes, in_channels)
