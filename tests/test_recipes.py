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
        assert (full.batch_size, full.epochs, full.optimizer) == (128, 10, "sgd"), name
        assert full.n_train is None and full.n_test is None and full.source.startswith("d2l 1.0.3"), name


def test_tables_say_not_yet_recorded_until_a_gpu_run_is_saved(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_MODE", "fast")
    monkeypatch.setattr(recipes, "RECORDED_FILE", tmp_path / "full.json")
    table = recipes.results_table({"lenet": 0.8612})
    assert table.iloc[0].tolist()[1] == "not yet recorded" and table.iloc[0].tolist()[0] == "0.861"
    log = tmp_path / "runs.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"model": "lenet", "mode": "full", "device": "cpu", "test_acc": 0.5},        # not a GPU run
        {"model": "lenet", "mode": "fast", "device": "cuda", "test_acc": 0.6},       # not full mode
        {"model": "lenet", "mode": "full", "device": "cuda:0", "test_acc": 0.8312, "epochs": 10},
    ]) + "\n")
    assert runs.main([str(log), "--save"]) == 0
    assert recipes.recorded_full("lenet").startswith("0.831 (GPU, ")
    assert recipes.recorded_full("googlenet") == "not yet recorded"
