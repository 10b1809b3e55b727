"""Plain ``nbgrader autograde``, the course's other engine, on the class of test_autograder.py.

Every assignment is released and handed in by the same students (the reference, the blank release,
the book's page, each wrong case of ``assignments/<name>.cases.yml`` and the combined correct
variants), then graded with nbgrader's own commands, one notebook after the other, as an
instructor without ``zoo-grade`` would, through the course's ``nbgrader_config.py``. Each
submission must score what its cases file says, per test cell, and each wrong case's feedback
must carry the words its case pins and no hidden test. test_autograder.py checks the same class
graded by ``zoo-grade``'s parallel workers.
"""
from __future__ import annotations

import html
import re

import pytest
from support import hidden_lines, nbgrader
from test_autograder import ASSIGNMENTS, build_class, expected_scores
from zoograde.coursekit import gradebook_scores

pytestmark = pytest.mark.timeout(3600)  # the session fixture grades about 110 notebooks, one at a time


@pytest.fixture(scope="session")
def plain(tmp_path_factory):
    course, students = build_class(tmp_path_factory.mktemp("plain-course"))
    # "*": nbgrader globs submitted/*/<assignment>, so one command grades every assignment, notebook after
    # notebook, as seven would, with one start of nbgrader and of the kernels' fork server instead of seven
    # (about 5 s each)
    run = nbgrader(course, "autograde", "*")
    graded = {p.parent.name for p in (course / "autograded").glob("*/*/*.ipynb")}
    assert graded == set(ASSIGNMENTS), f"graded: {sorted(graded)}\n{run.stderr[-2000:]}"
    nbgrader(course, "generate_feedback", "*")
    return course, students


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_plain_nbgrader_gives_every_submission_its_points_and_says_why(plain, name):
    course, students = plain
    scores = gradebook_scores(course, name)
    wrong = []
    for student, case in students[name].items():
        want = expected_scores(name, student, case)
        if scores.get(student) != want:
            wrong.append(f"{student} ({case['name'] if case else 'no edits'}): {scores.get(student)}, expected {want}")
    assert not wrong, "\n".join(wrong)
    for student, case in students[name].items():
        if not student.startswith("case"):
            continue
        text = html.unescape(re.sub(r"<[^>]+>", "", (course / "feedback" / student / name / f"{name}.html").read_text()))
        missing = [m for m in case.get("feedback", []) if m not in text]
        assert not missing, f"{name} {student} ({case['name']}): the feedback lacks {missing}"
        leaked = [line for line in hidden_lines(name) if line in text]
        assert not leaked, f"{name} {student}: hidden tests in the feedback: {leaked[:2]}"
