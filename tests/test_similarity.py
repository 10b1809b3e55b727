"""``zoo-grade similarity``: copied answers rank on top; bad input is reported; no grade changes.

One course copy with a small class of ``04_inception``: four students who each wrote the
answers their own way, one who copied a classmate (names, comments and layout changed), one
who pasted zoolib's reference code, and submissions that are unreadable, unanswered,
oversized or missing a cell. Nothing is graded (no kernel runs).
"""
from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from pathlib import Path

import pytest

from zoograde import cli, similarity, synthetic  # noqa: E402
from zoograde.coursekit import copy_course, grade_id, write_submission

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "autograder"
A = "04_inception"


def zoolib_source(module: str, name: str) -> str:
    """The text of one top-level definition of a zoolib module, as a student would copy it."""
    path = ROOT / "zoolib" / module
    text = path.read_text()
    node = next(n for n in ast.parse(text).body if getattr(n, "name", None) == name)
    return "\n".join(text.splitlines()[node.lineno - 1:node.end_lineno]) + "\n"


def disguise(answer: str) -> str:
    """What a copier does to a classmate's answer: other names, other comments, other layout."""
    renames = {"macs": "total_cost", "layers": "convs", "total": "acc", "conv": "make_conv", "outputs": "outs",
               "block_a": "first", "block_b": "second", "pool": "downsample", "loss": "value", "main": "logits"}
    for old, new in renames.items():
        answer = re.sub(rf"\b{old}\b", new, answer)
    lines = []
    for line in answer.splitlines():
        lines.append(line)
        if line.rstrip().endswith(":") and line.lstrip().startswith("def "):
            lines.append(" " * (len(line) - len(line.lstrip()) + 4) + "# worked this out myself")
            lines.append("")
    return "\n".join(lines) + "\n"


def style(i: int) -> dict[str, str]:
    reference = synthetic.reference_answers()
    return {cell: reference[cell] if styles[i] is None else styles[i] for cell, styles in synthetic.STYLES.items()}


def write(course: Path, student: str, nb: dict | str) -> Path:
    # as JSON text: some of these notebooks are malformed on purpose, and nbformat would not write them
    return write_submission(course, student, A, nb if isinstance(nb, str) else json.dumps(nb))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = copy_course(COURSE, tmp_path_factory.mktemp("similarity") / "course")
    for student, i in (("ada", 1), ("ben", 2), ("cy", 3), ("dee", 0)):   # four honest styles
        write(course, student, synthetic.notebook_with(style(i)))
    write(course, "eve", synthetic.notebook_with({c: disguise(t) for c, t in style(1).items()}))   # copies ada
    pasted = {"inception_block": zoolib_source("layers.py", "ConvReLU") + "\n\n" +
              zoolib_source("models/googlenet.py", "Inception"),
              "aux_loss": zoolib_source("models/googlenet.py", "googlenet_loss")}
    write(course, "fay", synthetic.notebook_with(pasted))                  # the rest left unanswered
    write(course, "gus", "{ not a notebook")
    write(course, "hal", synthetic.notebook_with({}))                      # the release, untouched
    huge = style(2)
    huge["aux_loss"] += "\n".join(f"x_{k} = {k}" for k in range(5000))     # ~50 kB in one cell
    huge["stage3"] = huge["stage3"].replace("):", ")", 1)                  # and a syntax error
    ivy = synthetic.notebook_with(huge)
    ivy["cells"] = [c for c in ivy["cells"] if grade_id(c) != "inception_macs"]
    write(course, "ivy", ivy)
    write(course, "jo", {"cells": ["text", {"metadata": [], "source": 3}, {"metadata": {"nbgrader": {"grade_id": []}}}],
                         "nbformat": 4})                                   # cells that are not cells
    return course


@pytest.fixture(scope="module")
def result(course):
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (course / "submitted").rglob("*") if p.is_file()}
    out = similarity.similarity(course, A, threshold=0.6)
    # it flags and changes nothing: no gradebook, the submissions byte for byte as they were
    assert not (course / "gradebook.db").exists()
    assert digests == {p: hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in (course / "submitted").rglob("*") if p.is_file()}
    return out


def test_copied_answers_rank_on_top(result):
    top = {(p.a, p.b) for p in result.pairs[:2]}
    assert top == {("ada", "eve"), ("fay", "zoolib")}, [(p.a, p.b, round(p.score, 3)) for p in result.pairs[:6]]
    # names, comments and layout do not count, so the disguised copy is whole; so is the pasted zoolib code
    assert result.pairs[0].score > 0.95 and result.pairs[1].score > 0.95
    fay = next(p for p in result.pairs if p.a == "fay")
    sources = fay.references["inception_block"].split(" + ")
    assert sources[0] == "zoolib/models/googlenet.py:Inception" and "zoolib/layers.py:ConvReLU" in sources
    assert fay.references["aux_loss"].startswith("zoolib/models/googlenet.py:googlenet_loss")
    assert set(fay.cells) == {"inception_block", "aux_loss"}                # unanswered cells are not compared
    # students who wrote their own answers are well below the copies
    honest = [p.score for p in result.pairs if {p.a, p.b} <= {"ada", "ben", "cy", "dee", "zoolib"}
              and (p.a, p.b) != ("ada", "eve")]
    assert max(honest) < result.pairs[1].score - 0.2, sorted(honest)[-3:]
    assert [p.score for p in result.pairs] == sorted((p.score for p in result.pairs), reverse=True)


def test_release_boilerplate_does_not_count(result):
    """hal handed in the release itself: the given lines and stubs are no answer, so hal is in no pair."""
    assert "hal" in result.students
    assert not [p for p in result.pairs if "hal" in (p.a, p.b)]


def test_bad_input_is_reported_not_fatal(result):
    problems = "\n".join(result.problems)
    assert re.search(r"gus: .* is not a readable notebook", problems)
    assert "ivy: answer cell 'inception_macs' is missing" in problems
    assert re.search(r"ivy: answer cell 'aux_loss' has [\d,]+ characters: only the first 20,000 were compared",
                     problems)
    assert "ivy: answer cell 'stage3' does not parse as Python" in problems
    assert "jo: answer cell 'inception_block' is missing" in problems
    # ivy wrote as ben did and padded one answer with junk: the other answers still show it
    ivy = next(p for p in result.pairs if (p.a, p.b) == ("ben", "ivy"))
    assert ivy.cells["inception_block"] > 0.95 and ivy.cells["aux_loss"] < 0.1 and ivy.score >= result.threshold


def test_html_report(result):
    page = result.html_path.read_text()
    assert page.count("<h3 id='r") == len(result.pairs[:40])
    first = page.index("<h3 id='r1'>")
    assert "ada and eve" in page[first:first + 200] or "fay and zoolib" in page[first:first + 200]
    assert "<mark>" in page and "data:image/png;base64," in page
    assert "gus:" in page                                                  # the problems are listed
    with result.csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["student"], r["other"]) for r in rows] == [(p.a, p.b) for p in result.pairs]
    from matplotlib.image import imread

    assert imread(result.png_path).shape[1] > 400


def test_cli(course, capsys, tmp_path):
    assert cli.main(["--course", str(course), "similarity", A, "--output", str(tmp_path / "r")]) == 1   # flagged
    out = capsys.readouterr().out
    assert "submission(s) compared" in out and (tmp_path / "r" / "index.html").is_file()
    assert cli.main(["--course", str(course), "similarity", "99_nothing"]) == 2
