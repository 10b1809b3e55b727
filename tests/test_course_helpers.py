"""Mode switch and the training loop used by the chapters (the data: test_data.py)."""
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


def test_training_learns_the_digits(monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    bundle = data.load_data(batch_size=64, resize=12, n_train=1024, n_test=300, dataset="digits", verbose=False)
    model = nn.Sequential(nn.Flatten(), nn.Linear(144, 64), nn.ReLU(), nn.Linear(64, 10))
    hist = train.train(model, bundle, epochs=3, lr=0.5, eval_every=8, progress=False, device=torch.device("cpu"))
    assert hist.final_test_acc > 0.8, hist.summary()      # chance is 0.1
    assert len(hist.epochs) == 3 and hist.steps[0] == 8 and hist.steps_to(0.5) is not None
    assert hist.steps_to(1.01) is None


def test_diverging_training_stops_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    bundle = data.load_data(batch_size=64, resize=8, n_train=256, n_test=64, dataset="digits", verbose=False)
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
    bundle = data.load_data(batch_size=64, resize=8, n_train=128, n_test=64, dataset="digits", verbose=False)
    train.train(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), bundle, epochs=1, lr=0.1, progress=False,
                device=torch.device("cpu"))
    row = json.loads((tmp_path / "runs.jsonl").read_text())
    assert row["dataset"] == "scikit-learn digits" and row["epochs"] == 1 and 0 <= row["test_acc"] <= 1


def test_he_initialisation_keeps_the_signal_through_relu_layers_and_xavier_does_not():
    """The reason the fast NiN and GoogLeNet runs use init="he": measured on a 20-layer ReLU stack."""
    torch.manual_seed(0)
    x = torch.randn(256, 64)
    stds = {}
    for scheme in ("he", "xavier"):
        net = nn.Sequential(*[m for _ in range(20) for m in (nn.Linear(64, 64), nn.ReLU())])
        train.init_weights(net, scheme)
        if scheme == "xavier":                      # d2l's init_cnn leaves PyTorch's biases; zero them to compare weights
            for m in net.modules():
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)
        with torch.no_grad():
            stds[scheme] = net(x).std().item()
    assert stds["he"] > 0.2 and stds["xavier"] < 0.01, stds
    with pytest.raises(ValueError, match="scheme"):
        train.init_weights(nn.Linear(2, 2), "orthogonal")


class _Shift(nn.Module):
    """Logits ``w`` for every image, so that the loss ``mean(logits[:, 0])`` has gradient 1 on ``w[0]``."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return self.w.expand(x.shape[0], 10)


@pytest.mark.parametrize("schedule, share", [("constant", 1.0), ("cosine", None)])
def test_cosine_schedule_takes_half_the_steps_size(monkeypatch, schedule, share):
    """Plain SGD with a constant gradient moves a weight by the sum of the learning rates it used.

    Over n steps a half cosine from lr to 0 sums to lr * (n + 1) / 2 (its values pair up around lr/2,
    and the first step, at lr, has no partner), so the weight moves (n + 1) / (2 n) as far as with
    a constant rate, and never past the constant run.
    """
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    bundle = data.load_data(batch_size=16, resize=8, n_train=160, n_test=16, dataset="digits", verbose=False)
    steps = len(bundle.train_iter()) * 2
    model = _Shift()
    train.train(model, bundle, epochs=2, lr=0.1, progress=False, device=torch.device("cpu"), schedule=schedule,
                loss_fn=lambda out, y: out[:, 0].mean())
    moved = -model.w[0].item()
    expected = 0.1 * steps * (share if share is not None else (steps + 1) / (2 * steps))
    assert moved == pytest.approx(expected, rel=1e-5)
    assert model.w[1:].abs().max().item() == 0


def test_an_unknown_schedule_is_refused(monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    bundle = data.load_data(batch_size=16, resize=8, n_train=32, n_test=16, dataset="digits", verbose=False)
    with pytest.raises(ValueError, match="schedule must be"):
        train.train(_Shift(), bundle, epochs=1, lr=0.1, progress=False, schedule="step")


def test_every_chapter_starts_with_the_assignments_install_cell():
    """The Colab button opens a chapter on a machine without zoolib: its first code cell installs it
    (the same cell as the assignments', hidden in the rendered book), and does nothing elsewhere."""
    import json
    from pathlib import Path

    from zoograde import pages

    chapters = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
    assert len(chapters) == 7
    for path in chapters:
        cells = json.loads(path.read_text())["cells"]
        first = next(c for c in cells if c["cell_type"] == "code")
        assert "".join(first["source"]) == pages.install_cell().rstrip("\n"), path.name
        assert "hide-input" in first["metadata"].get("tags", []), path.name
        assert not first.get("outputs"), path.name   # where zoolib is installed it prints nothing


def test_every_chapter_figure_has_a_caption_and_alt_text():
    """Issue 13: figures come with a caption and alt text (MyST-NB's `mystnb` cell metadata)."""
    import json
    from pathlib import Path

    missing, figures = [], 0
    for path in sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] != "code" or not any(
                    {"image/png", "image/svg+xml"} & set(out.get("data", {})) for out in cell["outputs"]):
                continue
            figures += 1
            meta = cell["metadata"].get("mystnb", {})
            caption = meta.get("figure", {}).get("caption", "")
            alt = meta.get("image", {}).get("alt", "")
            if len(caption) < 20 or len(alt) < 20 or caption == alt:
                missing.append(f"{path.name} cell {i}")
    assert figures >= 30
    assert not missing, f"figures without a caption or alt text: {missing}"


def _long_code_lines(limit: int, hidden_only: bool) -> list[str]:
    import json
    from pathlib import Path

    long = []
    for path in sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            tags = cell["metadata"].get("tags", [])
            lines = "".join(cell["source"]).splitlines()
            if cell["cell_type"] == "markdown" and not hidden_only:
                # code shown in the text, such as an exercise's solution: ```python ... ```
                fenced, inside = [], False
                for line in lines:
                    if line.strip().startswith("```"):
                        inside = line.strip() == "```python" if not inside else False
                    elif inside:
                        fenced.append(line)
                lines = fenced
            elif not (cell["cell_type"] == "code" and "remove-input" not in tags and (
                    not hidden_only or "hide-input" in tags)):
                continue
            long += [f"{path.name} cell {i}: {len(line)}" for line in lines if len(line) > limit]
    return long


def test_hidden_code_fits_its_narrower_block():
    """A hide-input cell's code shows in a narrower block when opened: in Chromium, lines over
    77 characters scrolled there (found twice by the browser test), so they are kept shorter."""
    long = _long_code_lines(77, hidden_only=True)
    assert not long, long


def test_chapter_code_lines_fit_the_column():
    """Issue 13: chapter code lines are at most 88 characters, which the browser test found to
    fit the book's code block without scrolling (`black --unstable -l 88` splits long strings)."""
    long = _long_code_lines(88, hidden_only=False)
    assert not long, long
