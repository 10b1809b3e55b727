"""The hostile corpus: broken and cheating submissions graded in one batch with honest ones.

``autograder/hostile/<assignment>.yml`` lists each submission, the points each test cell must
score and the messages its feedback must show. The corpus is graded twice, on two fresh
copies of the course: by ``zoo-grade``'s parallel engine (2 workers), and by plain
``nbgrader autograde``, which gets the same defences from ``nbgrader_config.py``. Both must
give every cell exactly its points, and nothing may leave a submission's folder. Honest work
(the reference, the blank release, an honest mistake) is graded in the same batch as the attacks;
the assignments' wrong cases and correct variants are graded by both engines in
tests/test_autograder.py and tests/test_autograder_plain.py.

The attacks on the operating system's boundary (``os_*``) are graded once more on the same two
course copies, as students ``noaudit_os_*``, with the in-process audit hook switched off
(``ZOOGRADE_AUDIT=0``): the sandbox alone must keep every file outside the submission's folder,
the gradebook, the other students, the grader's processes and its loopback as they were.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import socket
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import yaml
import support
from zoograde.coursekit import (answered, apply_edits, cell_of, copy_course, grade_id, gradebook_scores,
                                solution_cells, submission_path, tool_env, write_submission)

# Plain nbgrader grades the 50-odd submissions one after the other, inside a module fixture.
pytestmark = pytest.mark.timeout(1800)
ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "autograder"
CORPUS = yaml.safe_load((COURSE / "hostile" / "03_network_in_network.yml").read_text())
ASSIGNMENT = CORPUS["assignment"]
LIMITS = CORPUS["limits"]
# The assignment's wrong cases and correct variants are not repeated here: tests/test_autograder.py and
# tests/test_autograder_plain.py grade every one of them, for every assignment, with both engines. Honest
# work shares this batch with the attacks as the reference, the blank release and an honest mistake.
SUBMISSIONS = CORPUS["submissions"]
NAMES = [s["name"] for s in SUBMISSIONS]
ESCAPES = ["escaped.txt", "escaped-too.txt"]
OS_ATTACKS = [s for s in CORPUS["submissions"] if s["name"].startswith("os_")]
NO_AUDIT = [{**s, "name": f"noaudit_{s['name']}"} for s in OS_ATTACKS]
# A service of the grader's on its loopback, which no kernel may reach (the os_loopback submission tries).
LOOPBACK = socket.socket()
LOOPBACK.bind(("127.0.0.1", 0))
LOOPBACK.listen(8)
LOOPBACK.setblocking(False)
# What grading may change in a course folder; everything else must stay byte for byte as it was.
GRADER_WRITES = ("autograded", "feedback", "exports", ".zoograde", "gradebook.db", "gradebook.db-journal")


def _env() -> dict:
    return {**tool_env(), "ZOOGRADE_TIME_LIMIT": str(LIMITS["time_limit"]),
            "ZOOGRADE_CELL_TIME_LIMIT": str(LIMITS["cell_time_limit"]), "ZOOGRADE_MEMORY_LIMIT": str(LIMITS["memory_limit_mb"])}


def nbgrader(course: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return support.nbgrader(course, *args, env={**_env(), **(env or {})})


def build_submission(course: Path, spec: dict) -> Path:
    """Write one corpus submission to submitted/<name>/<assignment>/<assignment>.ipynb."""
    if "file" in spec:
        return write_submission(course, spec["name"], ASSIGNMENT, spec["file"])
    if spec.get("notebook") == "empty":
        return write_submission(course, spec["name"], ASSIGNMENT, nbformat.v4.new_notebook())
    nb = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    if spec.get("notebook") != "release":
        nb = answered(nb, solution_cells(course, ASSIGNMENT))
    apply_edits(nb, spec.get("edits", []), where=spec["name"])
    for gid, code in spec.get("append", {}).items():
        cell_of(nb, gid).source += "\n" + code
    for gid, code in spec.get("replace", {}).items():
        cell_of(nb, gid).source = code
    for gid, fields in spec.get("metadata", {}).items():
        cell_of(nb, gid).metadata["nbgrader"].update(fields)
    for gid, size in spec.get("outputs", {}).items():
        cell_of(nb, gid).outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * size)]
    for extra in spec.get("extra_cells", []):
        source = extra["source"].replace("@COURSE@", str(course)).replace("@PORT@", str(LOOPBACK.getsockname()[1]))
        cell = nbformat.v4.new_code_cell(source)
        if "nbgrader" in extra:
            cell.metadata["nbgrader"] = dict(extra["nbgrader"])
        nb.cells.append(cell)
    nb.cells = [c for c in nb.cells if grade_id(c) not in set(spec.get("delete", []))]
    if spec.get("many_cells"):
        # written as JSON: nbformat validates every cell it makes and every notebook it writes, which took
        # 75 s for 300,000 empty cells (for each of the two courses)
        nb.cells += [{"cell_type": "code", "id": f"many-{i}", "metadata": {}, "source": "", "outputs": [],
                      "execution_count": None} for i in range(spec["many_cells"])]
        return write_submission(course, spec["name"], ASSIGNMENT, json.dumps(nb, indent=1))
    return write_submission(course, spec["name"], ASSIGNMENT, nb)


def released_course(tmp: Path, env: dict | None = None) -> Path:
    """A fresh copy of the course (no gradebook, no submissions) with the assignment released."""
    course = tmp / "course"
    copy_course(COURSE, course, "hostile")
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force", env=env)
    return course


def make_course(tmp: Path, specs: list[dict] | None = None, course: Path | None = None) -> tuple[Path, dict[str, str]]:
    course = course or released_course(tmp)
    digests = {}
    for spec in SUBMISSIONS if specs is None else specs:
        path = build_submission(course, spec)
        digests[spec["name"]] = hashlib.sha256(path.read_bytes()).hexdigest()
    return course, digests


def outside_files(course: Path) -> dict[str, str]:
    """Digest of every file of the course that grading does not write (source, release, submissions, config)."""
    return {str(p.relative_to(course)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(course.rglob("*")) if p.is_file() and p.relative_to(course).parts[0] not in GRADER_WRITES}


def no_connection_came() -> bool:
    try:
        LOOPBACK.accept()[0].close()
    except BlockingIOError:
        return True
    return False




@dataclass
class Graded:
    course: Path
    digests: dict            # submitted notebook -> sha256, as handed in
    outside: dict            # outside_files() before grading
    results: dict            # student -> zoo-grade's result (notes, status); empty for plain nbgrader
    no_connection: bool      # no kernel reached the grader's loopback
    scores: dict             # student -> {grade_id: points}, from the gradebook


def _leftovers() -> list[Path]:
    return [Path("/tmp/zoo-escaped.txt"), Path("/tmp/zoo-escaped-process.txt")]


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    """The corpus graded by zoo-grade's engine with 2 workers, then the OS attacks again without the audit hook,
    on the same course copy; then feedback."""
    from zoograde import batch

    for leftover in _leftovers():
        leftover.unlink(missing_ok=True)
    course, digests = make_course(tmp_path_factory.mktemp("parallel"))
    _, more = make_course(course, NO_AUDIT, course=course)
    digests.update(more)
    outside = outside_files(course)
    saved = dict(os.environ)
    os.environ.update(_env())
    results = {}
    try:
        for students, audit in ((NAMES, True), ([s["name"] for s in NO_AUDIT], False)):
            run = batch.autograde(course, ASSIGNMENT, students=students, workers=2, time_limit=LIMITS["time_limit"],
                                  memory_limit_mb=LIMITS["memory_limit_mb"], progress=False, audit=audit)
            results.update({r.student: r for r in run.results})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")
    return Graded(course, digests, outside, results, no_connection_came(), gradebook_scores(course, ASSIGNMENT))


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The corpus graded by plain `nbgrader autograde` (defences from nbgrader_config.py only); then, on the same
    copy, the OS attacks without the audit hook (nbgrader skips what it graded already)."""
    course, digests = make_course(tmp_path_factory.mktemp("plain"))
    _, more = make_course(course, NO_AUDIT, course=course)
    digests.update(more)
    outside = outside_files(course)
    no_audit = course / "submitted.no-audit"
    for spec in NO_AUDIT:  # handed in after the first run
        shutil.move(course / "submitted" / spec["name"], no_audit / spec["name"])
    nbgrader(course, "autograde", ASSIGNMENT)
    for spec in NO_AUDIT:
        shutil.move(no_audit / spec["name"], course / "submitted" / spec["name"])
    no_audit.rmdir()
    run = nbgrader(course, "autograde", ASSIGNMENT, env={"ZOOGRADE_AUDIT": "0"})
    assert "noaudit_os_signals" in run.stdout + run.stderr  # the second run graded the attacks
    return Graded(course, digests, outside, {}, no_connection_came(), gradebook_scores(course, ASSIGNMENT))


ALL = SUBMISSIONS + NO_AUDIT


def _spec(name: str) -> dict:
    return next(s for s in ALL if s["name"] == name)


def test_the_batch_grades_every_submission(parallel):
    assert sorted(parallel.results) == sorted(s["name"] for s in ALL)
    assert [r for r in parallel.results.values() if r.status != "graded"] == []


@pytest.mark.parametrize("name", [s["name"] for s in ALL])
def test_parallel_scores_exactly_the_earned_points(parallel, name):
    assert parallel.scores[name] == {k: float(v) for k, v in _spec(name)["points"].items()}


@pytest.mark.parametrize("name", [s["name"] for s in ALL])
def test_feedback_says_what_happened_and_shows_no_hidden_test(parallel, name):
    spec = _spec(name)
    page = (parallel.course / "feedback" / name / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for message in spec.get("messages", []):
        assert message in text, f"{name}: the feedback lacks {message!r}"
    graded = nbformat.read(parallel.course / "autograded" / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    notes = " ".join(c.source for c in graded.cells if c.get("metadata", {}).get("zoograde_notes"))
    for forged in spec.get("absent", []):  # e.g. a grading note the notebook wrote itself
        assert forged not in notes, f"{name}: the grading notes show {forged!r}"
        assert forged not in " ".join(parallel.results[name].notes), f"{name}: the summary shows {forged!r}"
    # compared with every kind of space (no-break, zero-width) and compatibility form folded away
    folded = _fold(text)
    # a line the student wrote in their own answers is not a leak (a hidden line can be ordinary code too)
    handed_in = submission_path(parallel.course, name, ASSIGNMENT)
    try:  # read as JSON: nbformat would validate all 300,000 cells of huge_notebook (10 s)
        own = _fold(" ".join("".join(c.get("source", "")) for c in json.loads(handed_in.read_text())["cells"]))
    except Exception:  # noqa: BLE001 - the corpus holds notebooks that do not parse
        own = ""
    leaked = [line for line in support.hidden_lines(ASSIGNMENT) if _fold(line) in folded and _fold(line) not in own]
    assert not leaked, f"{name}: hidden test lines in the feedback: {leaked[:2]}"


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u200b", "").replace("\ufeff", "")
    return " ".join(text.split())


@pytest.mark.parametrize("engine", ["parallel", "plain"])
def test_nothing_outside_the_submission_folders_changed(request, engine):
    graded = request.getfixturevalue(engine)
    course = graded.course
    assert outside_files(course) == graded.outside, "a file outside every submission's folder changed"
    for name in ESCAPES:
        assert not (course / name).exists(), f"{name} was written outside the submission folder"
    for leftover in _leftovers():
        assert not leftover.exists(), leftover
    assert (course / "autograded" / "write_outside" / ASSIGNMENT / "inside.txt").exists()
    for name, digest in graded.digests.items():  # every file handed in is still there, unchanged
        path = submission_path(course, name, ASSIGNMENT)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name
    for spec in OS_ATTACKS + NO_AUDIT:  # what a kernel left in its copy came back as data, never as a link
        folder = course / "autograded" / spec["name"] / ASSIGNMENT
        assert not [p for p in folder.rglob("*") if p.is_symlink()], spec["name"]
        assert not list(folder.glob(".zoograde*")), spec["name"]
    assert graded.no_connection, "a kernel connected to the grader's loopback"


@pytest.mark.parametrize("engine", ["parallel", "plain"])
def test_no_kernel_wrote_the_gradebook(request, engine):
    from nbgrader.api import Gradebook

    graded = request.getfixturevalue(engine)
    with Gradebook(f"sqlite:///{graded.course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(ASSIGNMENT, "reference")
        assert submission.score == 10.0
        for student in gb.students:
            for grade in gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student.id).grades:
                assert (grade.manual_score, grade.extra_credit) == (None, None), (student.id, grade.name)


@pytest.mark.parametrize("name", [s["name"] for s in ALL])
def test_plain_nbgrader_gives_the_same_scores(plain, name):
    assert plain.scores[name] == {k: float(v) for k, v in _spec(name)["points"].items()}
