"""zoograde.provenance: reuse of the reference decided from the submitted source, in the grader.

The findings are pinned against what Python's import system would bind: each snippet below
is a way a student could reach zoolib's reference blocks (or torchvision's and timm's), and
each must be found; the assignments' own reference answers and ordinary tool use must not.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoograde.provenance import allowed_reuse, analyse, analyse_notebook, review_submission

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "autograder" / "source").glob("*/*.ipynb"))


def _answers(nb: dict) -> set[str]:
    return {c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")}


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_the_reference_answers_reuse_nothing_they_may_not(path):
    nb = json.loads(path.read_text())
    assert review_submission(nb, path.stem, _answers(nb)) == []


def test_reuse_allowances_come_from_the_assignment_file():
    assert allowed_reuse("02_curse_of_the_last_layer")["vgg16_gap"] == ["zoolib.get_model"]
    assert allowed_reuse("03_network_in_network") == {k: [] for k in allowed_reuse("03_network_in_network")}


GIVEN = "import torch\nfrom torch import nn\nimport zoolib\nfrom zoolib import checks\n"


@pytest.mark.parametrize("answer,name", [
    ("from zoolib.models.nin import NiNBlock as B\nblock = B(3, 96, 11, 4, 0)", "zoolib.models.nin.NiNBlock"),
    ("import zoolib.models.nin as n\nclass NiNBlock(n.NiNBlock):\n    pass", "zoolib.models.nin.NiNBlock"),
    ("from zoolib.models import googlenet\nInception = googlenet.Inception", "zoolib.models.googlenet.Inception"),
    ("def net():\n    return zoolib.get_model('nin')", "zoolib.get_model"),
    ("f = getattr(zoolib, 'get_model')", "zoolib.get_model"),
    ("from torchvision.models.googlenet import Inception", "torchvision.models.googlenet.Inception"),
    ("import timm\nm = timm.create_model('inception_v4')", "timm.create_model"),
    ("from zoolib.arith import conv_output_size", "zoolib.arith.conv_output_size"),
    ("class Inception(zoolib.Inception):\n    pass", "zoolib.Inception"),     # a top-level re-export
    ("from zoolib import NiNBlock", "zoolib.NiNBlock"),
])
def test_reuse_of_the_reference_is_found(answer, name):
    cells = [{"cell_type": "code", "source": GIVEN, "metadata": {}},
             {"cell_type": "code", "source": answer, "metadata": {"nbgrader": {"grade_id": "mine", "solution": True}}}]
    found = analyse_notebook(cells, {"mine"})
    assert any(f.kind == "reference" and f.name == name and f.cell == "mine" for f in found), found


@pytest.mark.parametrize("answer,name", [
    ("m = __import__('zoo' + 'lib')", "__import__"),
    ("import importlib\nm = importlib.import_module('zoolib.models')", "importlib"),
    ("exec('from zoolib.models.nin import NiNBlock')", "exec"),
    ("B = eval('zoolib.models.nin.NiNBlock')", "eval"),
    ("name = 'models'\nm = getattr(zoolib, name)", "getattr"),
    ("import sys\nm = sys.modules['zoolib.models.nin']", "sys.modules"),
    ("g = globals()['zoolib']", "globals"),
    ("code = checks.same_structure.__globals__", "__globals__"),
    ("%load_ext autoreload", "%load_ext"),
    ("def broken(:\n    pass", "SyntaxError"),
    ("x = 1\n" * 150_000, "size"),                                       # not parsed: bounded time
])
def test_what_cannot_be_resolved_is_flagged_for_review(answer, name):
    cells = [{"cell_type": "code", "source": GIVEN, "metadata": {}},
             {"cell_type": "code", "source": answer, "metadata": {"nbgrader": {"grade_id": "mine", "solution": True}}}]
    found = analyse_notebook(cells, {"mine"})
    assert any(f.kind == "review" and f.name == name for f in found), found


@pytest.mark.parametrize("answer", [
    "class NiNBlock(nn.Module):\n    def __init__(self, c, o, k, s, p):\n        super().__init__()\n"
    "        self.body = nn.Sequential(nn.Conv2d(c, o, k, s, p), nn.ReLU())",
    "from zoolib.models.googlenet import GOOGLENET_TABLE\nwidths = GOOGLENET_TABLE['inception3a']",
    "checks.expect_shape(torch.nn.Identity(), (1, 3, 8, 8), (1, 3, 8, 8))",
    "data = zoolib.data.load_data(batch_size=8)",
    "getattr(torch.nn, 'ReLU')()",
    "import math\nx = math.prod([2, 3])",
])
def test_own_code_and_the_course_tools_are_not_flagged(answer):
    cells = [{"cell_type": "code", "source": GIVEN, "metadata": {}},
             {"cell_type": "code", "source": answer, "metadata": {"nbgrader": {"grade_id": "mine", "solution": True}}}]
    assert analyse_notebook(cells, {"mine"}) == []


def test_a_forged_allowance_in_the_submission_changes_nothing():
    nb = json.loads((ROOT / "autograder" / "source" / "03_network_in_network" / "03_network_in_network.ipynb").read_text())
    answer_ids = _answers(nb)
    gid = sorted(answer_ids)[0]
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") == gid:
            cell["source"] = "from zoolib.models.nin import NiNBlock\n"
            meta["reuse"] = "zoolib"                  # the submission claims it may
    found = review_submission(nb, "03_network_in_network", answer_ids)
    # the import rebinds the name NiNBlock, so the later answers that call it use the reference too
    assert (found[0].cell, found[0].kind, found[0].name) == (gid, "reference", "zoolib.models.nin.NiNBlock")
    assert {(f.kind, f.name) for f in found} == {("reference", "zoolib.models.nin.NiNBlock")}


def test_answers_and_added_cells_are_judged_the_course_setup_is_not():
    found = analyse("x = 1\nfrom zoolib.models.nin import NiN\n", cell="a")
    assert [(f.line, f.name) for f in found] == [(2, "zoolib.models.nin.NiN")]
    given = {"nbgrader": {"grade_id": "setup", "locked": True, "solution": False, "grade": False}}
    test = {"nbgrader": {"grade_id": "t", "locked": True, "solution": False, "grade": True, "points": 1}}
    cells = [{"cell_type": "code", "source": "from zoolib.models.nin import NiN", "metadata": given},
             {"cell_type": "code", "source": "from zoolib.models.nin import NiN", "metadata": test}]
    assert analyse_notebook(cells, set()) == []
    # a cell the student added (no grading metadata) is the student's code: its reuse is found
    cells.append({"cell_type": "code", "source": "import zoolib.probe\nfrom zoolib import NiNBlock", "metadata": {}})
    found = analyse_notebook(cells, set())
    assert [(f.cell, f.kind, f.name) for f in found if f.kind == "reference"] == [
        ("added cell 1", "reference", "zoolib.NiNBlock")]


def test_judge_reuse_fails_the_tests_of_a_reusing_answer_and_only_those():
    import nbformat

    from zoograde.provenance import JudgeReuse

    path = ROOT / "autograder" / "source" / "04_inception" / "04_inception.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "inception_block":
            cell.source = "import zoolib\n\nclass Inception(zoolib.Inception):\n    pass\n"
        elif cell.metadata.get("nbgrader", {}).get("grade_id") == "aux_loss":
            cell.source += "\nhelper = getattr(torch, 'nn' if True else 'x')\nname = 'nn'\nx = getattr(torch, name)\n"
    nb, _ = JudgeReuse().preprocess(nb, {"nbgrader": {"assignment": "04_inception"}})
    failed = {c.metadata["nbgrader"]["grade_id"]: c.outputs[-1]["evalue"] for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade") and c.get("outputs")
              and c.outputs[-1].get("output_type") == "error"}
    assert list(failed) == ["test_inception_block"]
    assert "subclasses the reference zoolib.models.googlenet.Inception" in failed["test_inception_block"]
    assert "earns no points" in failed["test_inception_block"]
    # both getattr calls compute their attribute name (a conditional, a variable)
    assert [(r["cell"], r["name"]) for r in nb.metadata["zoograde"]["review"]] == [("aux_loss", "getattr")] * 2
