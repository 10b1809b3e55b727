"""Datasets for the chapters: the real Fashion-MNIST, offline; scikit-learn's digits only as a last resort.

``load_data`` looks for the four original Fashion-MNIST files (``train-images-idx3-ubyte.gz``,
``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``), each
either directly in a folder or in its ``FashionMNIST/raw/`` (torchvision's layout), in this order:

1. ``ZOO_DATA``, when set;
2. ``data/`` in a source checkout (``~/.cache/cnn-zoo`` for an installed package);
3. ``/usr/share/datasets/fashion-mnist/``, where Debian's package ``dataset-fashion-mnist``
   installs them (``make setup`` installs it when it runs as root on Debian);
4. a download with torchvision into the first of those folders (not with ``ZOO_OFFLINE=1``);
5. the 1,797 8x8 handwritten digits that ship inside scikit-learn, saying so and where it looked.

The files are read here, with numpy and gzip, and checked (gzip stream, IDX magic number, shape,
length, labels): a corrupt or truncated file raises :class:`DatasetError` naming the file, it never
falls back silently.

Why not d2l's ``FashionMNIST`` / ``load_data_fashion_mnist``: both construct torchvision's dataset
with ``download=True`` under ``../data``, so offline they fail unless the files were put exactly
there; they resize every image again in every epoch (``transforms.Resize`` in the loader), and
they take neither a fixed subset nor a fallback. The chapters need all four on a 2-core CPU with
no network. ``DataBundle.train_iter``/``test_iter`` keep d2l's names and return plain
``DataLoader``s of ``(X, y)`` with ``X`` in [0, 1] and shape ``(batch, 1, side, side)``, as d2l's do,
so d2l's training code (``d2l.train_ch6``, ``d2l.evaluate_accuracy_gpu``) takes them unchanged.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import os
import socket
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from . import config

__all__ = ["DataBundle", "DatasetError", "load_data", "read_idx", "find_fashion_mnist", "FASHION_CLASSES",
           "FASHION_FILES", "DEBIAN_DIR", "sample_image"]

FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot"]
# (split, images file, labels file): the names Zalando published and Debian and torchvision keep.
FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"

# IDX format (LeCun's MNIST page): 2 zero bytes, a type code (0x08 = unsigned byte), the number of
# dimensions, then one big-endian uint32 per dimension, then the data in C order.
IDX_UBYTE = 0x08
IDX_MAGIC = {1: 2049, 3: 2051}  # labels, images

# Above this many bytes of float32 pixels a split is resized batch by batch instead of once up front.
PRECOMPUTE_LIMIT = 1 << 30


class DatasetError(RuntimeError):
    """A dataset file exists but cannot be used (corrupt, truncated, wrong format), or none was found."""


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except EOFError as err:  # the gzip stream stops early: a truncated download or copy
        raise DatasetError(f"{path}: the gzip stream is truncated ({err}); delete the file and fetch it again") from err
    except (gzip.BadGzipFile, zlib.error, OSError) as err:
        raise DatasetError(f"{path}: not a readable gzip file ({err}); delete the file and fetch it again") from err


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped or not) with ``ndim`` dimensions, as a numpy array.

    Every inconsistency raises :class:`DatasetError` naming the file: a bad gzip stream, a wrong
    magic number, a payload shorter or longer than the header's shape promises.
    """
    path = Path(path)
    raw = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: {len(raw)} bytes, shorter than an IDX header ({header} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != IDX_MAGIC[ndim]:
        kind = "images" if ndim == 3 else "labels"
        raise DatasetError(f"{path}: magic number {magic} (0x{magic:08x}), expected {IDX_MAGIC[ndim]} for IDX "
                           f"{kind} of unsigned bytes in {ndim} dimension(s); is it the right file?")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    payload = len(raw) - header
    if payload != expected:
        what = "truncated" if payload < expected else "longer than its header says"
        raise DatasetError(f"{path}: {what}: the header promises {'x'.join(map(str, shape))} = {expected:,} "
                           f"bytes of data, the file holds {payload:,}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _split_files(folder: Path) -> dict[str, Path] | None:
    """The four files in ``folder`` or its ``FashionMNIST/raw``, gzipped or not; None if any is missing."""
    for base in (folder, folder / "FashionMNIST" / "raw"):
        found = {}
        for name in (n for pair in FASHION_FILES.values() for n in pair):
            candidates = [base / f"{name}.gz", base / name]
            found[name] = next((p for p in candidates if p.is_file()), None)
        if all(found.values()):
            return found
    return None


def _read_split(files: dict[str, Path], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images_file, labels_file = (files[n] for n in FASHION_FILES[split])
    images, labels = read_idx(images_file, 3), read_idx(labels_file, 1)
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{images_file}: images are {images.shape[1]}x{images.shape[2]}, Fashion-MNIST's are 28x28")
    if len(images) != len(labels):
        raise DatasetError(f"{images_file} holds {len(images):,} images but {labels_file} {len(labels):,} labels")
    if labels.size and labels.max() >= len(FASHION_CLASSES):
        raise DatasetError(f"{labels_file}: label {labels.max()} out of range 0..{len(FASHION_CLASSES) - 1}")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


@functools.lru_cache(maxsize=4)
def _read_fashion(files_key: tuple[tuple[str, str, float, int], ...]):
    files = {name: Path(path) for name, path, _, _ in files_key}
    return _read_split(files, "train"), _read_split(files, "test")


def _search_dirs() -> list[tuple[str, Path]]:
    """Where to look, in order, each with how to name it in messages."""
    dirs = []
    if os.environ.get("ZOO_DATA"):
        dirs.append(("ZOO_DATA", Path(os.environ["ZOO_DATA"]).expanduser()))
    local = config.data_dir(ignore_env=True)
    dirs.append(("data folder", local))
    dirs.append((f"Debian's {DEBIAN_PACKAGE}", DEBIAN_DIR))
    return dirs


def find_fashion_mnist() -> tuple[Path, dict[str, Path]] | tuple[None, list[str]]:
    """The first folder holding all four files, with the files; or None and the places looked in."""
    looked = []
    for label, folder in _search_dirs():
        files = _split_files(folder)
        if files:
            return folder, files
        looked.append(f"{_shown(folder)} ({label})")
    return None, looked


def _load_fashion(files: dict[str, Path]):
    key = tuple(sorted((name, str(p), p.stat().st_mtime, p.stat().st_size) for name, p in files.items()))
    return _read_fashion(key)


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _download(root: Path) -> dict[str, Path]:
    """torchvision's downloader (checksums included) into ``root/FashionMNIST/raw``; our reader reads them."""
    from torchvision.datasets import FashionMNIST

    with _socket_timeout(10):
        for train in (True, False):
            FashionMNIST(root, train=train, download=True)
    files = _split_files(root)
    if files is None:
        raise DatasetError(f"torchvision's download left no complete Fashion-MNIST in {root}")
    return files


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


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 N x H x W -> float N x 1 x size x size in [0, 1] (bilinear; antialiased when shrinking)."""
    x = images.unsqueeze(1).float().div_(255)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < x.shape[-1]).clamp_(0, 1)
    return x


class _ResizeBatch:
    """collate_fn for large splits: stacks the uint8 images of a batch and resizes them together."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, items):
        images = torch.stack([im for im, _ in items])
        if images.dtype == torch.uint8:  # the other split may be small enough to be resized already
            images = _resize(images, self.size)
        return images, torch.tensor([int(y) for _, y in items], dtype=torch.int64)


def _make_split(images: torch.Tensor, labels: torch.Tensor, size: int, n: int | None, seed: int) -> Dataset:
    if n is not None and n < len(labels):
        idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n]
        images, labels = images[idx], labels[idx]
    if len(labels) * size * size * 4 <= PRECOMPUTE_LIMIT:  # small enough: resize once, not every epoch
        return TensorDataset(torch.cat([_resize(c, size) for c in images.split(4096)]) if len(labels)
                             else torch.empty(0, 1, size, size), labels)
    return TensorDataset(images, labels)  # uint8, resized per batch by _ResizeBatch


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


def _shown(folder: Path) -> str:
    """A folder as printed: relative to the checkout when inside it (outputs stay portable)."""
    checkout = Path(__file__).resolve().parents[1]
    try:
        return str(folder.resolve().relative_to(checkout)) + "/"
    except ValueError:
        return str(folder).rstrip("/") + "/"


def load_data(batch_size: int = 128, resize: int | None = None, n_train: int | None = None,
              n_test: int | None = None, dataset: str = "auto", seed: int = 0, verbose: bool = True) -> DataBundle:
    """Fashion-MNIST (or, failing everything, the digits) as a :class:`DataBundle`.

    ``resize`` sets the image side (28 by default); ``n_train``/``n_test`` take a fixed random
    subset (fast mode uses them). ``dataset`` may force ``"fashion_mnist"`` (an error instead of the
    fallback) or ``"digits"``. See the module docstring for where the files are looked for.
    """
    if dataset not in ("auto", "fashion_mnist", "digits"):
        raise ValueError(f"dataset must be 'auto', 'fashion_mnist' or 'digits', not {dataset!r}")
    splits, problem = None, ""
    if dataset != "digits":
        folder, found = find_fashion_mnist()
        if folder is not None:
            splits = _load_fashion(found)  # a corrupt file raises here: no silent fallback
            label = next(lbl for lbl, d in _search_dirs() if d == folder)
            source = f"{label}, {_shown(folder)}"
        else:
            looked = "; ".join(found)
            target = _search_dirs()[0][1]
            if config.offline():
                problem = f"not in {looked}, and ZOO_OFFLINE=1 forbids downloading it"
            else:
                try:
                    splits = _load_fashion(_download(target))
                    source = f"downloaded by torchvision into {_shown(target)}"
                except Exception as err:  # no network, a blocked mirror, a read-only folder
                    reason = f"{type(err).__name__}: {err}".splitlines()[0][:120]
                    problem = f"not in {looked}, and downloading it failed ({reason})"
        if splits is None and dataset == "fashion_mnist":
            raise DatasetError(f"Fashion-MNIST is not available: {problem}. Install Debian's {DEBIAN_PACKAGE} "
                               f"or copy the four *-ubyte.gz files into one of those folders")
    if splits is not None:
        name, classes = "Fashion-MNIST", FASHION_CLASSES
    else:
        splits = _digits(seed)
        name, classes = "scikit-learn digits", [str(d) for d in range(10)]
        source = "the offline fallback shipped with scikit-learn" + (f"; Fashion-MNIST is {problem}" if problem else "")
    (xtr, ytr), (xte, yte) = splits
    size = resize or 28
    train = _make_split(xtr, ytr, size, n_train, seed)
    test = _make_split(xte, yte, size, n_test, seed + 1)
    lazy = train.tensors[0].dtype == torch.uint8 or test.tensors[0].dtype == torch.uint8
    data = DataBundle(name, source, train, test, classes, size, batch_size,
                      loader_kwargs={"collate_fn": _ResizeBatch(size)} if lazy else {})
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
