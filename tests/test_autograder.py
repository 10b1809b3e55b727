"""The nbgrader course, round trip: release, submit, autograde, feedback, export.

On a temporary copy of ``autograder/``, with nbgrader's own commands (autograding through
``zoograde.batch``, which runs nbgrader's ``Autograde`` for each submission in parallel):

- the released notebooks carry no solution and no hidden test;
- the reference solutions score full marks, the untouched release scores zero;
- every wrong submission in ``assignments/<name>.cases.yml`` scores exactly its points,
  and its feedback shows the diagnostic message and no hidden test;
- the correct variants of ``variants:`` score full marks. They are combined to keep the number of
  notebooks down: submission ``variantK`` applies the K-th variant of every block at once
  (``tests/test_cases_inprocess.py`` grades each variant alone, in process).
"""
from __future__ import annotations

import csv
import json
import os
import re
import statistics
from pathlib import Path

import nbformat
import pytest
import yaml
from support import hidden_lines, nbgrader
from zoograde.coursekit import answered, apply_edits, copy_course, gradebook_scores, solution_cells, write_submission

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "autograder"
ASSIGNMENTS = sorted(p.stem for p in (COURSE / "assignments").glob("*.py"))
if os.environ.get("ZOO_ASSIGNMENTS"):  # while writing an assignment: grade only that one
    ASSIGNMENTS = [a for a in ASSIGNMENTS if a in os.environ["ZOO_ASSIGNMENTS"].split(",")]
# The session fixture grades every submission (reference, blank, book page, each wrong case and the combined
# correct variants: about 110 notebooks); its setup counts towards the first test's time limit.
pytestmark = pytest.mark.timeout(3600)


def _cases(name: str) -> dict:
    return yaml.safe_load((COURSE / "assignments" / f"{name}.cases.yml").read_text())


def _combined_variants(name: str) -> list[list[dict]]:
    """Submission k: the k-th variant of every block (blocks with fewer variants start over)."""
    by_cell: dict[str, list[dict]] = {}
    for v in _cases(name).get("variants", []):
        by_cell.setdefault(v["cell"], []).append(v)
    n = max((len(vs) for vs in by_cell.values()), default=0)
    return [[vs[k % len(vs)] for vs in by_cell.values()] for k in range(n)]


def _variant_edits(variants: list[dict]) -> list[dict]:
    return [{**e, "cell": v["cell"]} for v in variants for e in v["edits"]]


def test_sources_are_built_from_the_assignment_files():
    from zoograde import sources

    for name in ASSIGNMENTS:
        expected = nbformat.writes(sources.to_notebook(sources.parse((COURSE / "assignments" / f"{name}.py").read_text()))) + "\n"
        assert (COURSE / "source" / name / f"{name}.ipynb").read_text() == expected, \
            f"source/{name} is stale: run `make generate`"


def test_every_assignment_has_graded_blocks_and_cases():
    for name in ASSIGNMENTS:
        nb = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
        tests = [c for c in nb.cells if c.metadata["nbgrader"].get("grade")]
        assert 3 <= len(tests) <= 6, f"{name}: {len(tests)} graded blocks"
        assert all("BEGIN HIDDEN TESTS" in c.source for c in tests), f"{name}: a test cell has no hidden tests"
        assert sum(c.metadata["nbgrader"]["points"] for c in tests) == _cases(name)["max_points"]


def build_class(folder: Path) -> tuple[Path, dict[str, dict]]:
    """A copy of the course in ``folder`` with every assignment released and handed in by: the reference,
    the blank release, each wrong case, the combined correct variants and the book's page. Returns the
    course and, per assignment, each student's case (None for reference, blank and book)."""
    course = copy_course(COURSE, folder)
    students: dict[str, dict] = {}
    # nbgrader globs the assignment folders: one command releases all seven (each start of nbgrader costs
    # about 1.5 s of imports, here on the way to every graded class)
    nbgrader(course, "generate_assignment", "*", "--force")
    assert sorted(p.name for p in (course / "release").iterdir()) == sorted(ASSIGNMENTS)
    for name in ASSIGNMENTS:
        release = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
        solutions = solution_cells(COURSE, name)
        cases = _cases(name)
        plan = [("reference", [], None), ("blank", None, None)] + [
            (f"case{i}", case["edits"], case) for i, case in enumerate(cases["cases"])] + [
            (f"variant{k}", _variant_edits(combo), {"name": f"variant{k}", "variants": combo})
            for k, combo in enumerate(_combined_variants(name))]
        plan.append(("book", [], None))   # the reference answers, in the notebook downloaded from the book
        book_page = nbformat.read(ROOT / "book" / "assignments" / f"{name}.ipynb", as_version=4)
        for student, edits, case in plan:
            nb = book_page if student == "book" else release
            if edits is not None:  # the blank hands in the release as it is
                nb = answered(nb, solutions)
                apply_edits(nb, edits, where=f"{name}/{case['name'] if case else student}", answer_cells=solutions)
            write_submission(course, student, name, nb)
            students.setdefault(name, {})[student] = case
    return course, students


def expected_scores(name: str, student: str, case: dict | None) -> dict[str, float]:
    """What a submission must score per test cell, from the cases file: full marks for the reference, the
    book's page and the correct variants, zero for the blank, a wrong case its points."""
    nb = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
    full = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"]) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}
    if student == "blank":
        return {k: 0.0 for k in full}
    if student.startswith("case"):
        return {k: float(v) for k, v in case["points"].items()}
    return full


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Release every assignment, submit the reference, the blank release and the wrong cases; grade all."""
    course, students = build_class(tmp_path_factory.mktemp("course"))
    # Grading with zoo-grade's engine: nbgrader's Autograde per submission, two at a time, on one pool of
    # local workers for all assignments (plain `nbgrader autograde` grades the same class in
    # tests/test_autograder_plain.py).
    from zoograde import batch

    with batch.LocalPool(2) as pool:
        for name in ASSIGNMENTS:
            result = batch.autograde(course, name, scheduler=pool, progress=False)
            assert [r for r in result.results if r.status != "graded"] == [], result.summary()
    nbgrader(course, "generate_feedback", "*", "--force")
    nbgrader(course, "export")
    return course, students


def _scores(course: Path, name: str, student: str) -> dict[str, float]:
    return gradebook_scores(course, name)[student]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(graded, name):
    course, _ = graded
    text = (course / "release" / name / f"{name}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    leaked = [line for line in hidden_lines(name) if line in text]
    assert not leaked, f"hidden test lines in the release: {leaked[:3]}"
    solutions = [l.strip() for s in solution_cells(COURSE, name).values() for l in s.splitlines()
                 if len(l.strip()) > 30 and not l.strip().startswith(("def ", "class ", "return", '"""', "super"))]
    assert not [l for l in solutions if l in text], "solution code in the release"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_reference_full_marks_and_blank_zero(graded, name):
    course, _ = graded
    max_points = _cases(name)["max_points"]
    assert sum(_scores(course, name, "reference").values()) == max_points, _scores(course, name, "reference")
    assert sum(_scores(course, name, "blank").values()) == 0, _scores(course, name, "blank")
    # a student who works in the notebook downloaded from the book is graded like one who used the release
    assert _scores(course, name, "book") == _scores(course, name, "reference")


@pytest.mark.parametrize("name,index", [(n, i) for n in ASSIGNMENTS for i in range(len(_cases(n)["cases"]))])
def test_wrong_submission_scores_its_points_and_is_told_why(graded, name, index):
    course, students = graded
    case = students[name][f"case{index}"]
    assert _scores(course, name, f"case{index}") == {k: float(v) for k, v in case["points"].items()}, case["name"]
    feedback = (course / "feedback" / f"case{index}" / name / f"{name}.html").read_text()
    import html

    text = html.unescape(re.sub(r"<[^>]+>", "", feedback))
    if sum(case["points"].values()) < _cases(name)["max_points"]:  # a wrong case names its mistake
        assert case.get("feedback"), f"{case['name']}: a wrong case must pin the words of its message"
    for message in case.get("feedback", []):  # correct variants pin none
        assert message in text, f"{case['name']}: feedback lacks {message!r}"
    leaked = [line for line in hidden_lines(name) if line in text]
    assert not leaked, f"hidden tests in the feedback: {leaked[:2]}"


def _answer_before(name: str) -> dict[str, str]:
    """Each test cell's grade id -> the answer cell it grades (the last one before it)."""
    nb = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
    out, last = {}, None
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution"):
            last = meta["grade_id"]
        elif meta.get("grade"):
            out[meta["grade_id"]] = last
    return out


@pytest.mark.parametrize("name,index", [(n, k) for n in ASSIGNMENTS for k in range(len(_combined_variants(n)))])
def test_correct_variants_combined_score_full_marks(graded, name, index):
    course, students = graded
    combo = students[name][f"variant{index}"]["variants"]
    scores = _scores(course, name, f"variant{index}")
    nb = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
    full = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"]) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}
    if scores == full:
        return
    import html

    feedback = html.unescape(re.sub(r"<[^>]+>", "", (course / "feedback" / f"variant{index}" / name /
                                                      f"{name}.html").read_text()))
    by_cell = {v["cell"]: v for v in combo}
    answer_of = _answer_before(name)
    lost = []
    for test, points in full.items():
        if scores.get(test) != points:
            v = by_cell.get(answer_of[test])
            which = (f"variant {index} of block {answer_of[test]} ({v['name']!r})" if v else
                     f"block {answer_of[test]} (unchanged; it uses the variants of earlier blocks)")
            lost.append(f"{test}: {scores.get(test)}/{points} - {which}")
    applied = "; ".join(f"{c}: {v['name']}" for c, v in by_cell.items())
    pytest.fail(f"{name}, combined variants #{index}, lost points:\n  " + "\n  ".join(lost) +
                f"\napplied: {applied}\n(run `python tests/test_cases_inprocess.py {name}` to grade each alone)\n"
                f"feedback (end): {feedback[-1500:]}")


def test_export_has_every_submission_with_its_score(graded):
    course, students = graded
    # nbgrader exports one row per student and assignment, submitted or not
    rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader((course / "grades.csv").open())}
    for name, submitted in students.items():
        for student in submitted:
            row = rows[(name, student)]
            assert float(row["score"]) == sum(_scores(course, name, student).values())
            assert float(row["max_score"]) == _cases(name)["max_points"]


def test_the_report_says_what_grading_cost(graded, tmp_path):
    """Every notebook graded here left the grader's notes; the class report sums them up (time, judging)."""
    from zoograde import report as R

    course, students = graded
    for name in ASSIGNMENTS:
        notes = [json.loads(p.read_text()) for p in (course / ".zoograde" / "notes" / name).glob("*/*.json")]
        assert len(notes) == len(students[name]), name
        # judging happens inside the notebook's run: it cannot take longer than the whole run
        assert all(0 < n["judge"]["seconds"] <= n["seconds"] and n["judge"]["requests"] > 0 for n in notes), name
        R.report(course, name, tmp_path / name)
        summary = (tmp_path / name / "summary.md").read_text()
        median = statistics.median(n["seconds"] for n in notes)
        assert f"grading time per notebook ({len(notes)} notebooks): median {median:.1f} s" in summary, summary


def test_book_pages_are_the_student_versions():
    from zoograde import pages

    for name in ASSIGNMENTS:
        page = ROOT / "book" / "assignments" / f"{name}.ipynb"
        assert page.read_text() == nbformat.writes(pages.student_version(name)) + "\n", \
            f"book/assignments/{name}.ipynb is stale: run `make generate`"
        text = page.read_text()
        assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
        # a downloaded page is a submission: the grader finds every answer and test by its grade id
        released = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
        ids = lambda nb: [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
        assert ids(nbformat.reads(text, as_version=4)) == ids(released)
        assert f"`{name}.ipynb`" in text and "Restart" in text and "offline" in text.lower()


def test_the_install_cell_installs_only_where_the_package_is_missing(monkeypatch):
    import sys

    from IPython.core.inputtransformer2 import TransformerManager

    from zoograde import pages

    code = TransformerManager().transform_cell(pages.install_cell())   # %pip, as IPython runs it
    calls = []

    class Shell:
        def run_line_magic(self, magic, line):
            calls.append((magic, line))

    exec(code, {"get_ipython": Shell})
    assert calls == []                                   # zoolib is installed here
    monkeypatch.setitem(sys.modules, "zoolib", None)     # as on Colab: `import zoolib` fails
    exec(code, {"get_ipython": Shell})
    assert calls == [("pip", f'install --quiet "cnn-zoo @ git+{pages.repository_url()}"')]


def test_the_assignments_page_lists_every_assignment_with_its_points():
    table = (ROOT / "book" / "assignments" / "index.md").read_text()
    listed = dict(re.findall(r"\{doc\}`(\w+)` \| [^|]+ \| (\d+) \|", table))
    every = sorted(p.stem for p in (COURSE / "assignments").glob("*.py"))
    assert sorted(listed) == every
    assert all(int(listed[n]) == _cases(n)["max_points"] for n in every)
