"""zoolib.data: where Fashion-MNIST is looked for, the IDX reader's checks, and the real files."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from zoolib import config, data

SPLIT_SIZES = {"train": 20, "test": 10}


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, compress: bool = True) -> bytes:
    """An IDX file as LeCun's MNIST page specifies it: magic, big-endian uint32 dims, uint8 data."""
    magic = magic if magic is not None else {1: 2049, 3: 2051}[array.ndim]
    raw = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return raw


def write_fashion(folder: Path, seed: int = 0, compress: bool = True) -> dict:
    """A tiny dataset with the four original file names; returns what was written."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, (images_name, labels_name) in data.FASHION_FILES.items():
        n = SPLIT_SIZES[split]
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{images_name}{suffix}", images, compress=compress)
        write_idx(folder / f"{labels_name}{suffix}", labels, compress=compress)
        written[split] = (images, labels)
    return written


@pytest.fixture
def places(monkeypatch, tmp_path):
    """Empty stand-ins for ZOO_DATA, the checkout's data/ and Debian's folder."""
    dirs = {name: tmp_path / name for name in ("zoo_data", "checkout_data", "debian")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_DATA", str(dirs["zoo_data"]))
    monkeypatch.setattr(config, "data_dir", lambda ignore_env=False: dirs["checkout_data"])
    monkeypatch.setattr(data, "DEBIAN_DIR", dirs["debian"])
    data._read_fashion.cache_clear()
    return dirs


def test_reads_what_was_written_pixel_for_pixel(places):
    written = write_fashion(places["debian"])
    bundle = data.load_data(batch_size=4, verbose=False)
    assert bundle.name == "Fashion-MNIST" and bundle.source.startswith("Debian's dataset-fashion-mnist")
    assert len(bundle.train) == 20 and len(bundle.test) == 10 and bundle.classes[9] == "ankle boot"
    x, y = bundle.test[3]
    images, labels = written["test"]
    torch.testing.assert_close(x[0], torch.from_numpy(images[3]).float() / 255)
    assert y == labels[3] == 3


def test_search_order_zoo_data_then_data_folder_then_debian(places):
    write_fashion(places["debian"], seed=1)
    write_fashion(places["checkout_data"] / "FashionMNIST" / "raw", seed=2, compress=False)  # torchvision's layout
    assert data.load_data(verbose=False).source.startswith("data folder")
    write_fashion(places["zoo_data"], seed=3)
    assert data.load_data(verbose=False).source.startswith("ZOO_DATA")


def test_missing_dataset_says_where_it_looked(places, capsys):
    (places["zoo_data"] / "train-images-idx3-ubyte.gz").write_bytes(b"")  # an incomplete folder is passed over
    bundle = data.load_data(batch_size=32, n_train=256, n_test=64)
    out = capsys.readouterr().out
    assert bundle.name == "scikit-learn digits" and "scikit-learn digits" in out and "ZOO_OFFLINE=1" in out
    for d in places.values():
        assert str(d) in out
    assert len(bundle.train) == 256 and len(bundle.test) == 64 and bundle.num_classes == 10
    x, y = next(iter(bundle.train_iter()))
    assert x.shape == (32, 1, 28, 28) and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.int64
    with pytest.raises(data.DatasetError, match="Fashion-MNIST is not available: not in .*debian.*ZOO_OFFLINE=1"):
        data.load_data(dataset="fashion_mnist", verbose=False)


def _break(folder: Path, name: str, how: str) -> Path:
    path = folder / f"{name}.gz"
    raw = gzip.decompress(path.read_bytes())
    if how == "magic":
        path.write_bytes(gzip.compress(struct.pack(">I", 2051 if "labels" in name else 2049) + raw[4:]))
    elif how == "truncated data":
        path.write_bytes(gzip.compress(raw[:-5]))
    elif how == "truncated gzip":
        path.write_bytes(path.read_bytes()[:-20])
    elif how == "not gzip":
        path.write_bytes(b"<html>404 Not Found</html>")
    elif how == "too long":
        path.write_bytes(gzip.compress(raw + b"\0"))
    return path


@pytest.mark.parametrize("name, how, message", [
    ("train-labels-idx1-ubyte", "magic", r"magic number 2051 \(0x00000803\), expected 2049"),
    ("t10k-images-idx3-ubyte", "truncated data", r"truncated: the header promises 10x28x28 = 7,840 bytes.* holds 7,835"),
    ("train-images-idx3-ubyte", "truncated gzip", "gzip stream is truncated"),
    ("t10k-labels-idx1-ubyte", "not gzip", "not a readable gzip file"),
    ("train-labels-idx1-ubyte", "too long", "longer than its header says"),
])
def test_a_corrupt_file_is_an_error_naming_it_not_a_fallback(places, name, how, message):
    write_fashion(places["checkout_data"])
    broken = _break(places["checkout_data"], name, how)
    with pytest.raises(data.DatasetError, match=message) as err:
        data.load_data(verbose=False)             # "auto" too: no silent switch to the digits
    assert str(err.value).startswith(str(broken))


def test_images_and_labels_must_agree(places):
    write_fashion(places["debian"])
    write_idx(places["debian"] / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(data.DatasetError, match="holds 10 images but .*t10k-labels-idx1-ubyte.gz 9 labels"):
        data.load_data(verbose=False)
    write_idx(places["debian"] / "t10k-labels-idx1-ubyte.gz", np.full(10, 10, np.uint8))
    with pytest.raises(data.DatasetError, match="label 10 out of range 0..9"):
        data.load_data(verbose=False)


def test_subsets_resize_and_large_splits_resize_per_batch(places, monkeypatch):
    write_fashion(places["debian"])
    small = data.load_data(batch_size=5, resize=64, n_train=12, verbose=False)
    monkeypatch.setattr(data, "PRECOMPUTE_LIMIT", 0)   # as for full mode's 60,000 images at 224x224
    lazy = data.load_data(batch_size=5, resize=64, n_train=12, verbose=False)
    assert len(small.train) == len(lazy.train) == 12
    (xs, ys), (xl, yl) = next(iter(small.test_iter())), next(iter(lazy.test_iter()))
    assert xs.shape == xl.shape == (5, 1, 64, 64) and xl.dtype == torch.float32
    torch.testing.assert_close(xs, xl)
    assert torch.equal(ys, yl)


def test_digits_split_is_fixed_and_disjoint():
    (xtr, _), (xte, _) = data._digits(seed=0)
    (xtr2, _), _ = data._digits(seed=0)
    assert torch.equal(xtr, xtr2) and len(xtr) + len(xte) == 1797 and len(xte) == 360


debian = pytest.mark.skipif(not all((data.DEBIAN_DIR / f"{n}.gz").is_file()
                                    for pair in data.FASHION_FILES.values() for n in pair),
                            reason="Debian's dataset-fashion-mnist is not installed (make setup installs it as root)")


@debian
def test_the_real_fashion_mnist_from_debian(tmp_path):
    """Facts of the published dataset (Xiao, Rasul & Vollgraf 2017): 60,000 + 10,000 28x28 images,
    10 balanced classes; and the same tensors as torchvision's own IDX reader."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    files = data._split_files(data.DEBIAN_DIR)
    (xtr, ytr), (xte, yte) = data._load_fashion(files)
    assert xtr.shape == (60_000, 28, 28) and xte.shape == (10_000, 28, 28) and xtr.dtype == torch.uint8
    assert torch.bincount(ytr).tolist() == [6_000] * 10 and torch.bincount(yte).tolist() == [1_000] * 10
    assert ytr[0] == 9  # the first training image is an ankle boot, as in the dataset's README
    for name, ours in (("t10k-images-idx3-ubyte", xte), ("t10k-labels-idx1-ubyte", yte)):
        plain = tmp_path / name
        plain.write_bytes(gzip.decompress(files[name].read_bytes()))
        theirs = (read_image_file if "images" in name else read_label_file)(str(plain))
        assert torch.equal(ours, theirs.to(ours.dtype))
