"""``zoo-grade export``: the gradebook as CSV, one row per student (``grades.csv``), with the points
each column is out of (``grades-max.csv``)."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .course import gradebook


def format_score(x: float | None) -> str:
    if x is None:
        return ""
    x = float(x)
    return str(int(x)) if x.is_integer() else format(x, ".10g")


def _cell_order(course: Path, assignment: str, notebook: str) -> list[str]:
    """grade_ids in the order of the source notebook (the gradebook does not keep an order)."""
    path = course / "source" / assignment / f"{notebook}.ipynb"
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.get("cells", [])]


@dataclass
class Column:
    assignment: str
    notebook: str
    cell: str
    max_score: float
    name: str


def graded_columns(course: Path, assignment) -> list[Column]:
    cols = []
    several = len(assignment.notebooks) > 1
    for nb in assignment.notebooks:
        order = _cell_order(course, assignment.name, nb.name)
        cells = sorted(nb.grade_cells + nb.task_cells,
                       key=lambda c: (order.index(c.name) if c.name in order else len(order), c.name))
        for c in cells:
            name = f"{assignment.name}/{nb.name}/{c.name}" if several else f"{assignment.name}/{c.name}"
            cols.append(Column(assignment.name, nb.name, c.name, float(c.max_score), name))
    return cols


def cell_scores(submission) -> dict[tuple[str, str], float]:
    """(notebook, cell) -> score of one SubmittedAssignment (manual score if set, else auto score)."""
    return {(nb.name, g.name): float(g.score) for nb in submission.notebooks for g in nb.grades}


@dataclass
class ExportResult:
    path: Path
    max_path: Path
    students: int
    assignments: list[str]
    header: list[str]


def export(course: Path, output: str | os.PathLike | None = None) -> ExportResult:
    """The gradebook as one CSV row per student, and the max points in ``<output stem>-max.csv``.

    Columns: ``student_id``; per assignment (in the gradebook's order: due date, then name)
    one column per graded cell ``<assignment>/<grade_id>`` (in notebook order),
    ``<assignment>/late_penalty`` (points taken off by the late policy) and
    ``<assignment>/total`` (the cells less the penalty); then ``total`` and ``max_total``. A student without a submission
    for an assignment has empty cells there; ``total`` counts only what was submitted.
    The companion file has the same columns and one row, ``student_id`` = ``max_points``.
    """
    from nbgrader.api import MissingEntry

    path = Path(output).expanduser() if output else course / "exports" / "grades.csv"
    max_path = path.with_name(f"{path.stem}-max{path.suffix or '.csv'}")
    with gradebook(course) as gb:
        assignments = gb.assignments
        plan = [(a.name, graded_columns(course, a)) for a in assignments]
        header = ["student_id"]
        for name, cols in plan:
            header += [c.name for c in cols] + [f"{name}/late_penalty", f"{name}/total"]
        header += ["total", "max_total"]
        max_total = sum(c.max_score for _, cols in plan for c in cols)
        rows = []
        for student in sorted(gb.students, key=lambda s: s.id):
            row, total = [student.id], 0.0
            for name, cols in plan:
                try:
                    submission = gb.find_submission(name, student.id)
                except MissingEntry:
                    row += [""] * (len(cols) + 2)
                    continue
                scores = cell_scores(submission)
                values = [scores.get((c.notebook, c.cell)) for c in cols]
                penalty = float(submission.late_submission_penalty or 0)   # zoograde.deadlines' policy
                subtotal = sum(v for v in values if v is not None) - penalty
                row += [format_score(v) for v in values] + [format_score(penalty), format_score(subtotal)]
                total += subtotal
            rows.append(row + [format_score(total), format_score(max_total)])
        max_row = ["max_points"]
        for name, cols in plan:
            max_row += [format_score(c.max_score) for c in cols] + ["", format_score(sum(c.max_score for c in cols))]
        max_row += [format_score(max_total), format_score(max_total)]
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, body in ((path, rows), (max_path, [max_row])):
        with target.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(body)
    return ExportResult(path, max_path, len(rows), [name for name, _ in plan], header)


