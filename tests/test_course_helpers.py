"""Mode switch, data fallback and the training loop used by the chapters."""
import pytest
import torch
from torch import nn

from zoolib import config, data, train


def test_mode_switch(monkeypatch):
    monkeypatch.delenv("ZOO_MODE", raising=False)
    assert config.mode() == "fast" and config.pick(fast=1, full=10) == 1
    monkeypatch.setenv("ZOO_MODE", "full")
    assert config.pick(fast=1, full=10) == 10
    assert config.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("ZOO_MODE", "fastest")
    with pytest.raises(ValueError, match="ZOO_MODE"):
        config.mode()
    monkeypatch.setenv("ZOO_MODE", "fast")
    monkeypatch.setenv("ZOO_DEVICE", "meta")
    assert config.device().type == "meta"


def test_offline_falls_back_to_digits_and_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    bundle = data.load_data(batch_size=32, n_train=256, n_test=64)
    out = capsys.readouterr().out
    assert bundle.name == "scikit-learn digits" and "scikit-learn digits" in out and "ZOO_OFFLINE" in out
    assert len(bundle.train) == 256 and len(bundle.test) == 64 and bundle.num_classes == 10
    x, y = next(iter(bundle.train_iter()))
    assert x.shape == (32, 1, 28, 28) and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.int64
    with pytest.raises(RuntimeError, match="Fashion-MNIST is not available: not in .* ZOO_OFFLINE=1"):
        data.load_data(dataset="fashion_mnist", verbose=False)


def test_digits_split_is_fixed_and_disjoint(monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    (xtr, _), (xte, _) = data._digits(seed=0)
    (xtr2, _), _ = data._digits(seed=0)
    assert torch.equal(xtr, xtr2) and len(xtr) + len(xte) == 1797 and len(xte) == 360


def test_fashion_mnist_is_read_from_the_data_folder(monkeypatch, tmp_path):
    """Write a tiny dataset in torchvision's raw format and check it is picked up offline."""
    import gzip
    import struct

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    n = 20
    for prefix, count in (("train", n), ("t10k", n // 2)):
        images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8)
        labels = torch.arange(count, dtype=torch.uint8) % 10
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, count, 28, 28) + images.numpy().tobytes())
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, count) + labels.numpy().tobytes())
    for f in raw.glob("*.gz"):  # torchvision also wants the extracted files
        (raw / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    bundle = data.load_data(batch_size=4, verbose=False)
    assert bundle.name == "Fashion-MNIST" and len(bundle.train) == n and bundle.classes[0] == "t-shirt"


def test_training_learns_the_digits(monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    bundle = data.load_data(batch_size=64, resize=12, n_train=1024, n_test=300, verbose=False)
    model = nn.Sequential(nn.Flatten(), nn.Linear(144, 64), nn.ReLU(), nn.Linear(64, 10))
    hist = train.train(model, bundle, epochs=3, lr=0.5, eval_every=8, progress=False, device=torch.device("cpu"))
    assert hist.final_test_acc > 0.8, hist.summary()      # chance is 0.1
    assert len(hist.epochs) == 3 and hist.steps[0] == 8 and hist.steps_to(0.5) is not None
    assert hist.steps_to(1.01) is None


def test_diverging_training_stops_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    bundle = data.load_data(batch_size=64, resize=8, n_train=256, n_test=64, verbose=False)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(FloatingPointError, match="lower the learning rate"):  # weights overflow to inf
        train.train(model, bundle, epochs=2, lr=1e38, momentum=0.9, progress=False, device=torch.device("cpu"))


def test_sample_image_is_the_cat():
    img = data.sample_image(64)
    assert img.shape == (1, 3, 64, 64) and 0 <= img.min() and img.max() <= 1


def test_runs_are_recorded_when_asked(monkeypatch, tmp_path):
    import json

    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_RECORD", str(tmp_path / "runs.jsonl"))
    bundle = data.load_data(batch_size=64, resize=8, n_train=128, n_test=64, verbose=False)
    train.train(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), bundle, epochs=1, lr=0.1, progress=False,
                device=torch.device("cpu"))
    row = json.loads((tmp_path / "runs.jsonl").read_text())
    assert row["dataset"] == "scikit-learn digits" and row["epochs"] == 1 and 0 <= row["test_acc"] <= 1
