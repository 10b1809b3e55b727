"""Model registry: ``register_model`` / ``get_model`` / ``list_models``.

Every reference network in the zoo registers a builder together with the facts a
chapter or a test needs about it: the input size its paper uses, its family, the
paper, and the torchvision or timm model whose architecture is *identical* (so
that weights can be transferred one to one).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

__all__ = ["ModelSpec", "register_model", "get_model", "list_models", "model_spec"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]  # (channels, height, width) used by the paper
    family: str
    paper: str
    # Library models with the same architecture, e.g. {"torchvision": "vgg16"}.
    twins: dict[str, str] = field(default_factory=dict)
    # Library models that are close but not identical (used by `make bench` only).
    relatives: dict[str, str] = field(default_factory=dict)

    @property
    def default_num_classes(self) -> int:
        return inspect.signature(self.builder).parameters["num_classes"].default


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str | None = None, *, input_size: tuple[int, int, int], family: str,
                   paper: str, twins: dict[str, str] | None = None,
                   relatives: dict[str, str] | None = None):
    """Decorator registering ``fn(num_classes=..., in_channels=..., **kw) -> nn.Module``."""

    def wrap(fn: Callable[..., nn.Module]):
        key = name or fn.__name__
        params = inspect.signature(fn).parameters
        missing = {"num_classes", "in_channels"} - set(params)
        if missing:
            raise TypeError(f"builder {fn.__qualname__} must accept {sorted(missing)}")
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        _REGISTRY[key] = ModelSpec(key, fn, tuple(input_size), family, paper,
                                   dict(twins or {}), dict(relatives or {}))
        return fn

    return wrap


def list_models(family: str | None = None) -> list[str]:
    """Names of the registered models, in the order of the course (LeNet first)."""
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}") from None


def get_model(name: str, *, num_classes: int | None = None, in_channels: int | None = None,
              weights: str | None = None, **kwargs) -> nn.Module:
    """Build a registered model.

    ``weights`` may be ``"torchvision"`` or ``"timm"`` for models whose architecture
    is identical to that library's; it needs the network (or a filled cache).
    """
    spec = model_spec(name)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_channels is not None:
        kwargs["in_channels"] = in_channels
    if weights is None:
        return spec.builder(**kwargs)
    from .interop import load_pretrained  # imported lazily: it imports torchvision/timm

    return load_pretrained(spec, weights, **kwargs)
