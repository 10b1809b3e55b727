"""The hostile corpus: broken and cheating submissions graded in one batch with honest ones.

``autograder/hostile/<assignment>.yml`` lists each submission, the points each test cell must
score and the messages its feedback must show. The corpus is graded twice, on two fresh
copies of the course: by ``zoo-grade``'s parallel engine (2 workers), and by plain
``nbgrader autograde``, which gets the same defences from ``nbgrader_config.py``. Both must
give every cell exactly its points, and nothing may leave a submission's folder.
"""
from __future__ import annotations

import copy
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from test_autograder import _hidden_lines
from zoograde.bench import IGNORE, solution_cells

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "autograder"
CORPUS = yaml.safe_load((COURSE / "hostile" / "03_network_in_network.yml").read_text())
ASSIGNMENT = CORPUS["assignment"]
LIMITS = CORPUS["limits"]
NAMES = [s["name"] for s in CORPUS["submissions"]]
BIN = Path(sys.executable).parent
ESCAPES = ["escaped.txt", "escaped-too.txt"]


def _env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "ZOOGRADE_TIME_LIMIT": str(LIMITS["time_limit"]), "ZOOGRADE_CELL_TIME_LIMIT": str(LIMITS["cell_time_limit"]),
            "ZOOGRADE_MEMORY_LIMIT": str(LIMITS["memory_limit_mb"])}


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    run = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=_env(), capture_output=True, text=True,
                         timeout=1800)
    assert run.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{(run.stdout + run.stderr)[-4000:]}"
    return run


def _cell(nb, gid):
    return next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid)


def build_submission(course: Path, spec: dict) -> Path:
    """Write one corpus submission to submitted/<name>/<assignment>/<assignment>.ipynb."""
    target = course / "submitted" / spec["name"] / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    if "file" in spec:
        target.write_text(spec["file"])
        return target
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    if spec.get("notebook") == "empty":
        nbformat.write(nbformat.v4.new_notebook(), target)
        return target
    nb = copy.deepcopy(release)
    if spec.get("notebook") != "release":
        for gid, answer in solution_cells(course, ASSIGNMENT).items():
            _cell(nb, gid).source = answer
    for edit in spec.get("edits", []):
        cell = _cell(nb, edit["cell"])
        assert edit["old"] in cell.source, f"{spec['name']}: {edit['old']!r} not in {edit['cell']}"
        cell.source = cell.source.replace(edit["old"], edit["new"])
    for gid, code in spec.get("append", {}).items():
        _cell(nb, gid).source += "\n" + code
    for gid, fields in spec.get("metadata", {}).items():
        _cell(nb, gid).metadata["nbgrader"].update(fields)
    for gid, size in spec.get("outputs", {}).items():
        _cell(nb, gid).outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * size)]
    for extra in spec.get("extra_cells", []):
        cell = nbformat.v4.new_code_cell(extra["source"])
        if "nbgrader" in extra:
            cell.metadata["nbgrader"] = dict(extra["nbgrader"])
        nb.cells.append(cell)
    nb.cells = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                not in set(spec.get("delete", []))]
    nbformat.write(nb, target)
    return target


def released_course(tmp: Path) -> Path:
    """A fresh copy of the course (no gradebook, no submissions) with the assignment released."""
    course = tmp / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns(*IGNORE, "hostile"))
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    return course


def make_course(tmp: Path) -> tuple[Path, dict[str, str]]:
    course = released_course(tmp)
    digests = {}
    for spec in CORPUS["submissions"]:
        path = build_submission(course, spec)
        digests[spec["name"]] = hashlib.sha256(path.read_bytes()).hexdigest()
    return course, digests


def scores(course: Path, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        return {g.name: g.score for g in nb.grades}


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    """The corpus graded by zoo-grade's engine with 2 workers, then feedback generated."""
    from zoograde import batch

    for leftover in ["/tmp/zoo-escaped.txt"]:
        Path(leftover).unlink(missing_ok=True)
    course, digests = make_course(tmp_path_factory.mktemp("parallel"))
    saved = dict(os.environ)
    os.environ.update(_env())
    try:
        result = batch.autograde(course, ASSIGNMENT, workers=2, time_limit=LIMITS["time_limit"],
                                 memory_limit_mb=LIMITS["memory_limit_mb"], progress=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")
    return course, digests, result


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The corpus graded by plain `nbgrader autograde` (defences from nbgrader_config.py only)."""
    course, digests = make_course(tmp_path_factory.mktemp("plain"))
    run = nbgrader(course, "autograde", ASSIGNMENT)
    return course, run


def test_the_batch_grades_every_submission(parallel):
    _, _, result = parallel
    assert sorted(r["student"] for r in result.results) == sorted(NAMES)
    assert [r for r in result.results if r["status"] != "graded"] == []


@pytest.mark.parametrize("name", NAMES)
def test_parallel_scores_exactly_the_earned_points(parallel, name):
    course, _, _ = parallel
    spec = next(s for s in CORPUS["submissions"] if s["name"] == name)
    assert scores(course, name) == {k: float(v) for k, v in spec["points"].items()}


@pytest.mark.parametrize("name", NAMES)
def test_feedback_says_what_happened_and_shows_no_hidden_test(parallel, name):
    course, _, _ = parallel
    spec = next(s for s in CORPUS["submissions"] if s["name"] == name)
    page = (course / "feedback" / name / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for message in spec.get("messages", []):
        assert message in text, f"{name}: the feedback lacks {message!r}"
    leaked = [line for line in _hidden_lines(ASSIGNMENT) if line in text]
    assert not leaked, f"{name}: hidden test lines in the feedback: {leaked[:2]}"


def test_nothing_left_the_submission_folders_and_nothing_was_lost(parallel):
    course, digests, _ = parallel
    for name in ESCAPES:
        assert not (course / name).exists(), f"{name} was written outside the submission folder"
    assert not Path("/tmp/zoo-escaped.txt").exists()
    assert (course / "autograded" / "write_outside" / ASSIGNMENT / "inside.txt").exists()
    for name, digest in digests.items():  # every file handed in is still there, unchanged
        path = course / "submitted" / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("name", NAMES)
def test_plain_nbgrader_gives_the_same_scores(plain, name):
    course, _ = plain
    spec = next(s for s in CORPUS["submissions"] if s["name"] == name)
    assert scores(course, name) == {k: float(v) for k, v in spec["points"].items()}
