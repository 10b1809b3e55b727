"""CNN Zoo: reference CNNs from LeNet to Inception-ResNet, a profiler and course helpers.

>>> import zoolib
>>> model = zoolib.get_model("googlenet")
>>> zoolib.profile(model, (1, 3, 224, 224))["inception3a"].macs   # Table 1 says 128M
128049152
"""
from ._registry import ModelSpec, get_model, list_models, model_spec, register_model
from .profiler import Profile, ProfileRow, profile
from . import models  # noqa: F401  (registers the zoo)

__version__ = "0.1.0"

__all__ = ["ModelSpec", "get_model", "list_models", "model_spec", "register_model",
           "Profile", "ProfileRow", "profile"]
