"""Regrading: ``zoo-grade autograde A --student S [--cell ID]``, logged, keeping what instructors set.

Every autograde run that grades a submission again (``--force``, ``--student``, ``--cell``, a
re-collected file) goes through :func:`run`:

1. the gradebook's grades of the submissions about to be graded are read first;
2. the engine grades (the whole notebook always runs: later cells depend on earlier ones);
3. with ``--cell ID`` every other cell's automatic score is put back as it was, so only that
   cell is regraded;
4. manual scores, extra credit and comments set by an instructor are put back if the run
   changed them, and the late penalty is recomputed from the final scores;
5. one line per regraded submission goes to ``<course>/exports/regrade-log.jsonl`` (who,
   when, by whom, which cell, every cell's score and the total before and after). The log is
   outside the folders a grading kernel may write to.
"""
from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from pathlib import Path

LOG = Path("exports") / "regrade-log.jsonl"


def graded_cells(course: Path, assignment: str) -> list[str]:
    """grade_ids of the graded (test) cells of the source notebook, in order."""
    out = []
    for path in sorted((course / "source" / assignment).glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade"):
                out.append(meta["grade_id"])
    return out


def snapshot(course: Path, assignment: str, students: list[str] | None = None) -> dict[str, dict]:
    """student -> {"cells": {grade_id: {auto, manual, extra, needs_manual}}, "comments": {...},
    "penalty": late penalty, "total": score} for the submissions in the gradebook."""
    from nbgrader.api import MissingEntry

    from .course import NotReady, gradebook

    out: dict[str, dict] = {}
    try:
        gb_context = gradebook(course)
    except NotReady:
        return out
    with gb_context as gb:
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return out
        for sub in submissions:
            if students and sub.student_id not in students:
                continue
            cells, comments, penalty = {}, {}, 0.0
            for nb in sub.notebooks:
                penalty += nb.late_submission_penalty or 0.0
                for g in nb.grades:
                    cells[g.name] = {"auto": g.auto_score, "manual": g.manual_score, "extra": g.extra_credit,
                                     "needs_manual": g.needs_manual_grade, "notebook": nb.name}
                for c in nb.comments:
                    if c.manual_comment:
                        comments[c.name] = {"manual": c.manual_comment, "notebook": nb.name}
            if any(c["auto"] is not None or c["manual"] is not None for c in cells.values()):
                out[sub.student_id] = {"cells": cells, "comments": comments, "penalty": penalty,
                                       "total": float(sub.score) - penalty}
    return out


def _score(cell: dict) -> float | None:
    value = cell["manual"] if cell["manual"] is not None else cell["auto"]
    return None if value is None else float(value) + float(cell["extra"] or 0.0)


def restore(course: Path, assignment: str, before: dict[str, dict], students: list[str], cell: str | None) -> None:
    """Steps 3 and 4 of the module's docstring, for the students just graded."""
    from nbgrader.api import MissingEntry

    from . import deadlines
    from .course import gradebook, load_config

    config = load_config(course)
    with gradebook(course) as gb:
        for student in students:
            old = before.get(student)
            if old is None:
                continue
            for name, was in old["cells"].items():
                try:
                    grade = gb.find_grade(name, was["notebook"], assignment, student)
                except MissingEntry:
                    continue
                if cell is not None and name != cell:
                    grade.auto_score, grade.needs_manual_grade = was["auto"], was["needs_manual"]
                if was["manual"] is not None and grade.manual_score != was["manual"]:
                    grade.manual_score = was["manual"]
                if was["extra"] is not None and grade.extra_credit != was["extra"]:
                    grade.extra_credit = was["extra"]
                if was["manual"] is not None:
                    grade.needs_manual_grade = False
            for name, was in old["comments"].items():
                try:
                    comment = gb.find_comment(name, was["notebook"], assignment, student)
                except MissingEntry:
                    continue
                comment.manual_comment = was["manual"]
            gb.db.commit()
            deadlines.reapply(gb, config, assignment, student)


def log(course: Path, assignment: str, before: dict, after: dict, students: list[str], cell: str | None) -> list[dict]:
    """Append one JSON line per regraded student to the regrade log; returns the entries."""
    path = course / LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = os.environ.get("USER", "unknown")
    entries = []
    for student in students:
        if student not in before or student not in after:
            continue
        old, new = before[student], after[student]
        entries.append({
            "time": now, "by": who, "assignment": assignment, "student": student, "cell": cell,
            "before": {name: _score(c) for name, c in old["cells"].items()},
            "after": {name: _score(c) for name, c in new["cells"].items()},
            "total_before": old["total"], "total_after": new["total"],
            "late_penalty_before": old["penalty"], "late_penalty_after": new["penalty"],
            "kept": sorted(name for name, c in old["cells"].items() if c["manual"] is not None or c["extra"]),
        })
    with path.open("a") as fh:
        for entry in entries:
            fh.write(json.dumps(entry) + "\n")
    return entries


def check_cell(course: Path, assignment: str, cell: str) -> str:
    from .course import CourseError, check_assignment

    check_assignment(course, assignment)
    known = graded_cells(course, assignment)
    if cell not in known:
        raise CourseError(f"{cell!r} is not a graded cell of {assignment}; its graded cells are: {', '.join(known)}")
    return cell


def run(course: Path, assignment: str, students: list[str] | None, cell: str | None, grade):
    """Grade with ``grade()`` (the engine, returning its BatchResult), then restore and log as above."""
    from . import deadlines
    from .course import CourseError, load_config

    if cell is not None:
        check_cell(course, assignment, cell)
    try:  # a policy that cannot be applied fails every notebook inside nbgrader: say why before grading
        deadlines.DeadlinePolicy(config=load_config(course)).rules()
    except deadlines.PolicyError as exc:
        raise CourseError(f"nbgrader_config.py: {exc}") from None
    before = snapshot(course, assignment, students)
    result = grade()
    regraded = [r.student for r in getattr(result, "results", []) if r.status == "graded" and r.student in before]
    if regraded:
        restore(course, assignment, before, regraded, cell)
        after = snapshot(course, assignment, regraded)
        result.regrade_log = log(course, assignment, before, after, regraded, cell)
    return result
