"""CNN Zoo: reference CNNs from LeNet to Inception-ResNet, a profiler and course helpers.

>>> import zoolib
>>> model = zoolib.get_model("googlenet")
>>> zoolib.profile(model, (1, 3, 224, 224))["inception3a"].macs   # Table 1 says 128M
128049152
"""
from ._registry import ModelSpec, get_model, list_models, model_spec, register_model
from .profiler import Profile, ProfileRow, profile
from . import models  # noqa: F401  (registers the zoo)
from .layers import BN_EPS, BasicConv2d, ConvReLU
from .models import inception_v3 as v3, inception_v4 as v4
from .models.classic import VGGBlock
from .models.nin import MLPConv, NiNBlock
from .models.googlenet import BNInception, Inception, NaiveInception, googlenet_loss
# Inception-v3's modules, named after the paper's figures and grids; Inception-v4's blocks
# keep that paper's letters and live in zoolib.v4 (zoolib.v4.InceptionA, ...).
from .models.inception_v3 import (GridReduction17to8, GridReduction35to17, InceptionFig5,
                                  InceptionFig6, InceptionFig7)
from .models.inception_v4 import Block8, Block17, Block35
from .models.resnet import ResidualBlock

__version__ = "0.1.0"

__all__ = ["ModelSpec", "get_model", "list_models", "model_spec", "register_model",
           "Profile", "ProfileRow", "profile",
           "BN_EPS", "BasicConv2d", "ConvReLU", "VGGBlock", "NiNBlock", "MLPConv", "Inception",
           "NaiveInception", "BNInception", "googlenet_loss", "InceptionFig5", "InceptionFig6",
           "InceptionFig7", "GridReduction35to17", "GridReduction17to8", "Block35", "Block17", "Block8", "ResidualBlock", "v3", "v4"]
