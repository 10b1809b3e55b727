"""Full mode is d2l's recipe; the result tables never invent a GPU figure."""
import inspect
import json

import pytest

from zoolib import recipes, runs

d2l = pytest.importorskip("d2l.torch", reason="d2l is installed by `make setup`")


def test_full_mode_is_d2ls_recipe(monkeypatch):
    monkeypatch.setenv("ZOO_MODE", "full")
    lenet = recipes.recipe("lenet")
    # d2l 1.0.3's LeNet trains with its default lr under plain SGD (Classifier.configure_optimizers)
    assert lenet.lr == inspect.signature(d2l.LeNet).parameters["lr"].default == 0.1
    assert "lr=self.lr" in inspect.getsource(d2l.Classifier.configure_optimizers).replace(" ", "")
    for name, modes in recipes.RECIPES.items():
        full = modes["full"]
        if full.source == recipes.V3_PAPER:
            # d2l has no Inception-v3: the paper's Sec. 8 settings, in both modes
            for r in modes.values():
                assert (r.batch_size, r.lr, r.optimizer, r.momentum, r.label_smoothing, r.clip_grad_norm) == (
                    32, 0.045, "rmsprop_tf", 0.9, 0.1, 2.0), name
            continue
        assert (full.batch_size, full.epochs, full.optimizer) == (128, 10, "sgd"), name
        assert full.n_train is None and full.n_test is None and full.source.startswith("d2l 1.0.3"), name


def test_tables_say_not_yet_recorded_until_a_gpu_run_is_saved(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_MODE", "fast")
    monkeypatch.setattr(recipes, "RECORDED_FILE", tmp_path / "full.json")
    table = recipes.results_table({"lenet": 0.8612}, "Fashion-MNIST")
    assert table.loc[:, table.columns.str.startswith("full mode")].iloc[0, 0] == "not yet recorded"
    assert table.iloc[0, 0] == "0.861" and table.iloc[0, 1] == "0.85"
    log = tmp_path / "runs.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"model": "lenet", "mode": "full", "device": "cpu", "test_acc": 0.5},        # not a GPU run
        {"model": "lenet", "mode": "fast", "device": "cuda", "test_acc": 0.6},       # not full mode
        {"model": "lenet", "mode": "full", "device": "cuda:0", "test_acc": 0.8312, "epochs": 10},
    ]) + "\n")
    assert runs.main([str(log), "--save"]) == 0
    assert recipes.recorded_full("lenet").startswith("0.831 (GPU, ")
    assert recipes.recorded_full("googlenet") == "not yet recorded"


# Issue 12's table, written out here: the test accuracy each trained network reaches in fast
# mode on Fashion-MNIST.
ISSUE_12_FLOORS = {"lenet": 0.85, "bn_lenet": 0.85, "alexnet": 0.80, "vgg": 0.80, "nin": 0.80,
                   "googlenet": 0.75, "resnet32": 0.80}


def test_the_floors_are_issue_12s():
    assert {k: v for k, v in recipes.FAST_FLOORS.items() if k in ISSUE_12_FLOORS} == ISSUE_12_FLOORS
    # every floor but these belongs to a network of the Inception-v3/v4 chapters (0.80)
    assert all(v == 0.80 for k, v in recipes.FAST_FLOORS.items() if k not in ISSUE_12_FLOORS)
    assert set(recipes.FAST_FLOORS) <= set(recipes.RECIPES)
    assert not set(recipes.CONTRASTS) & set(recipes.FAST_FLOORS)


def test_a_fast_run_under_its_floor_fails_the_chapter(monkeypatch):
    monkeypatch.setenv("ZOO_MODE", "fast")
    with pytest.raises(recipes.FloorError, match=r"nin: 0\.799 < 0\.80"):
        recipes.results_table({"nin": 0.7994}, "Fashion-MNIST")
    recipes.results_table({"nin": 0.80}, "Fashion-MNIST")              # at the floor: passes
    recipes.results_table({"nin": 0.5}, "digits (scikit-learn)")        # the fallback: no promise
    # a contrast is not held to a floor, but its learning partner must be in the same table
    table = recipes.results_table({"resnet32": 0.82, "plain32": 0.70}, "Fashion-MNIST")
    assert table.iloc[1, 1] == "none (contrast to resnet32)"
    with pytest.raises(ValueError, match="plain32 needs its partner resnet32"):
        recipes.results_table({"plain32": 0.70}, "Fashion-MNIST")
    monkeypatch.setenv("ZOO_MODE", "full")
    recipes.results_table({"nin": 0.5}, "Fashion-MNIST")                # full mode: d2l's recipe


def test_every_floor_is_checked_by_a_chapter():
    """Each network with a floor is in some chapter's results table, which nbval executes."""
    import ast
    import pathlib

    import nbformat

    shown = set()
    for path in sorted(pathlib.Path(__file__).parents[1].glob("notebooks/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or "results_table" not in cell.source:
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "results_table":
                    assert len(node.args) + len(node.keywords) == 2, (path.name, "pass the dataset")
                    shown |= {k.value for k in node.args[0].keys}
    assert set(recipes.FAST_FLOORS) <= shown, set(recipes.FAST_FLOORS) - shown
