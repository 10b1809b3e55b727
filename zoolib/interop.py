"""Weights from torchvision and timm for the models whose architecture is identical.

The transfer is positional: two identical architectures register the same tensors in
the same order, so the i-th entry of one state dict goes to the i-th entry of the
other, and every shape must agree. Names are free to differ (``inception3a`` here,
``Mixed_5b`` there), which lets zoolib name its blocks after the papers.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ._registry import ModelSpec, model_spec

__all__ = ["WeightsUnavailableError", "build_twin", "transfer_state", "load_pretrained"]

SOURCES = ("torchvision", "timm")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be fetched (usually: no network)."""


def build_twin(name_or_spec, source: str, *, pretrained: bool = False, **kwargs) -> nn.Module:
    """The torchvision or timm model whose architecture equals zoolib's ``name``."""
    spec = name_or_spec if isinstance(name_or_spec, ModelSpec) else model_spec(name_or_spec)
    if source not in spec.twins:
        have = ", ".join(spec.twins) or "none"
        raise ValueError(f"{spec.name!r} has no identical {source} twin (twins: {have})")
    twin = spec.twins[source]
    if source == "torchvision":
        import torchvision

        weights = "DEFAULT" if pretrained else None
        if twin == "inception_v3":
            kwargs.setdefault("init_weights", False)  # skip torchvision's slow truncated-normal init
        return torchvision.models.get_model(twin, weights=weights, **kwargs)
    import timm

    return timm.create_model(twin, pretrained=pretrained, **kwargs)


def transfer_state(dst: nn.Module, src: Mapping[str, torch.Tensor] | nn.Module,
                   *, src_label: str = "source") -> nn.Module:
    """Copy ``src``'s tensors into ``dst`` entry by entry, checking every shape."""
    src_state = src.state_dict() if isinstance(src, nn.Module) else src
    dst_state = dst.state_dict()
    if len(src_state) != len(dst_state):
        raise ValueError(
            f"architectures differ: zoolib {type(dst).__name__} has {len(dst_state)} state "
            f"entries, {src_label} has {len(src_state)}")
    mapped = {}
    for i, ((dk, dv), (sk, sv)) in enumerate(zip(dst_state.items(), src_state.items())):
        if dv.shape != sv.shape:
            raise ValueError(
                f"architectures differ at state entry {i}: zoolib {dk!r} {tuple(dv.shape)} "
                f"vs {src_label} {sk!r} {tuple(sv.shape)}")
        mapped[dk] = sv
    dst.load_state_dict(mapped)
    return dst


def load_pretrained(spec: ModelSpec, source: str, **kwargs) -> nn.Module:
    """Build ``spec``'s model and fill it with ``source``'s pretrained ImageNet weights."""
    if source not in SOURCES:
        raise ValueError(f"weights must be one of {SOURCES} or None, not {source!r}")
    if kwargs.get("num_classes", 1000) != 1000 or kwargs.get("in_channels", 3) != 3:
        raise ValueError("pretrained ImageNet weights need num_classes=1000 and in_channels=3")
    if source not in spec.twins:
        build_twin(spec, source)  # raises the "no identical twin" error
    try:
        twin = build_twin(spec, source, pretrained=True)
    except Exception as err:  # URLError, hub offline errors, corrupt cache: all say the same
        raise WeightsUnavailableError(
            f"could not fetch the {source} weights for {spec.name!r} ({type(err).__name__}: "
            f"{err}). Pretrained weights need the network once; on an offline machine, copy "
            f"the cache (TORCH_HOME for torchvision, HF_HOME for timm) from a machine that "
            f"has downloaded them.") from err
    model = spec.builder(**kwargs)
    if hasattr(twin, "transform_input") and hasattr(model, "transform_input"):
        model.transform_input = twin.transform_input  # torchvision's v3 weights expect it
    return transfer_state(model, twin, src_label=f"{source} {spec.twins[source]}")
