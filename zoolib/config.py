"""One switch for every chapter: ``ZOO_MODE=fast`` (default) or ``ZOO_MODE=full``.

- fast: CPU, small data, few steps; what CI and offline laptops run.
- full: the real recipes; CUDA is picked automatically when present.

``ZOO_DEVICE`` overrides the device, ``ZOO_DATA`` the data folder, and ``ZOO_OFFLINE=1``
stops any download attempt (the tests set it).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["mode", "is_fast", "device", "data_dir", "offline", "pick"]

MODES = ("fast", "full")


def mode() -> str:
    value = os.environ.get("ZOO_MODE", "fast").strip().lower() or "fast"
    if value not in MODES:
        raise ValueError(f"ZOO_MODE must be one of {MODES}, not {value!r}")
    return value


def is_fast() -> bool:
    return mode() == "fast"


def pick(fast, full):
    """The value for the current mode: ``epochs = pick(fast=1, full=10)``."""
    return fast if is_fast() else full


def device() -> torch.device:
    forced = os.environ.get("ZOO_DEVICE")
    if forced:
        return torch.device(forced)
    if mode() == "full" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def offline() -> bool:
    return os.environ.get("ZOO_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def data_dir(ignore_env: bool = False) -> Path:
    """``ZOO_DATA``, else ``data/`` in a source checkout, else ``~/.cache/cnn-zoo``.

    ``zoolib.data`` also looks in Debian's ``/usr/share/datasets/fashion-mnist``.
    """
    if os.environ.get("ZOO_DATA") and not ignore_env:
        return Path(os.environ["ZOO_DATA"]).expanduser()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout / "data"
    return Path.home() / ".cache" / "cnn-zoo"
