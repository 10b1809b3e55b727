"""Datasets for the chapters: Fashion-MNIST when it can be had, scikit-learn's digits otherwise.

``load_data`` first looks for Fashion-MNIST in the data folder, then tries to download it
(unless ``ZOO_OFFLINE=1``), and falls back to the 1,797 handwritten digits that ship inside
scikit-learn: real data, no network. It always says which dataset it used, and the
returned bundle carries that name so a chapter can print it next to its results.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
import socket
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from . import config

__all__ = ["DataBundle", "load_data", "FASHION_CLASSES", "sample_image"]

FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot"]


@dataclass
class DataBundle:
    name: str                 # "Fashion-MNIST" or "scikit-learn digits"
    source: str               # where it came from
    train: Dataset
    test: Dataset
    classes: list[str]
    image_size: int
    batch_size: int
    loader_kwargs: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return 1

    def train_iter(self) -> DataLoader:
        return DataLoader(self.train, self.batch_size, shuffle=True, **self.loader_kwargs)

    def test_iter(self) -> DataLoader:
        return DataLoader(self.test, self.batch_size, shuffle=False, **self.loader_kwargs)

    def describe(self) -> str:
        return (f"Dataset: {self.name} ({self.source}); {len(self.train):,} training and {len(self.test):,} "
                f"test images, {self.image_size}x{self.image_size}, {self.num_classes} classes")


class _Resized(Dataset):
    """Wraps a uint8 image tensor dataset: scales to [0, 1] and resizes on the fly."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int):
        self.images, self.labels, self.size = images, labels, size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float().div(255).unsqueeze(0)
        if x.shape[-1] != self.size:
            x = F.interpolate(x.unsqueeze(0), size=(self.size, self.size), mode="bilinear",
                              align_corners=False).squeeze(0)
        return x, int(self.labels[i])


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _fashion_mnist(root, download: bool):
    from torchvision.datasets import FashionMNIST

    with _socket_timeout(10):
        train = FashionMNIST(root, train=True, download=download)
        test = FashionMNIST(root, train=False, download=download)
    return (train.data, train.targets), (test.data, test.targets)


def _digits(seed: int = 0):
    """scikit-learn's 8x8 digits (values 0..16), split 80/20 with a fixed seed, as uint8 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy((digits.images * (255 / 16)).round().astype(np.uint8))
    labels = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(labels))
    tr, te = order[:cut], order[cut:]
    return (images[tr], labels[tr]), (images[te], labels[te])


def _subset(ds: Dataset, n: int | None, seed: int) -> Dataset:
    if n is None or n >= len(ds):
        return ds
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
    return Subset(ds, idx.tolist())


def _shown(root) -> str:
    """The data folder as printed: relative to the checkout when inside it (outputs stay portable)."""
    checkout = Path(__file__).resolve().parents[1]
    try:
        return str(root.resolve().relative_to(checkout)) + "/"
    except ValueError:
        return str(root)


def load_data(batch_size: int = 128, resize: int | None = None, n_train: int | None = None,
              n_test: int | None = None, dataset: str = "auto", seed: int = 0, verbose: bool = True) -> DataBundle:
    """Fashion-MNIST (or the digits fallback) as a :class:`DataBundle`.

    ``resize`` sets the image side (28 by default); ``n_train``/``n_test`` take a fixed random
    subset (fast mode uses them). ``dataset`` may force ``"fashion_mnist"`` or ``"digits"``.
    """
    if dataset not in ("auto", "fashion_mnist", "digits"):
        raise ValueError(f"dataset must be 'auto', 'fashion_mnist' or 'digits', not {dataset!r}")
    root = config.data_dir()
    where = _shown(root)
    bundle, problem = None, ""
    if dataset in ("auto", "fashion_mnist"):
        try:
            bundle = _fashion_mnist(root, download=False)
        except Exception:  # not there (or incomplete): try to download it
            if config.offline():
                problem = f"not in {where}, and ZOO_OFFLINE=1 forbids downloading it"
            else:
                try:
                    bundle = _fashion_mnist(root, download=True)
                except Exception as err:  # no network, a blocked mirror, a corrupt archive
                    reason = f"{type(err).__name__}: {err}".splitlines()[0][:120]
                    problem = f"not in {where}, and downloading failed ({reason})"
        if bundle is None and dataset == "fashion_mnist":
            raise RuntimeError(f"Fashion-MNIST is not available: {problem}")
        if bundle is not None:
            name, source, classes = "Fashion-MNIST", f"torchvision, {where}", FASHION_CLASSES
            (xtr, ytr), (xte, yte) = bundle
    if bundle is None:
        (xtr, ytr), (xte, yte) = _digits(seed)
        name, classes = "scikit-learn digits", [str(d) for d in range(10)]
        source = "the offline fallback shipped with scikit-learn" + (f"; Fashion-MNIST is {problem}" if problem else "")
    size = resize or 28
    train = _subset(_Resized(xtr, ytr, size), n_train, seed)
    test = _subset(_Resized(xte, yte, size), n_test, seed + 1)
    data = DataBundle(name, source, train, test, classes, size, batch_size)
    if verbose:
        print(data.describe())
    return data


def sample_image(size: int | None = None) -> torch.Tensor:
    """Chelsea the cat (scikit-image's sample photo) as a 1x3xHxW float tensor in [0, 1]."""
    from skimage import data as skdata

    img = torch.from_numpy(skdata.chelsea().copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    if size:
        img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return img
