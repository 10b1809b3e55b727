"""The reference zoo, one file per family (importing them registers the models)."""
from . import classic, nin, googlenet, inception_v3, inception_v4, resnet  # noqa: F401
