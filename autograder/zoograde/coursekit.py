"""A class of submissions built by hand, for ``make bench``, the synthetic class and the tests.

A throwaway copy of the course; submissions in nbgrader's layout,
``submitted/<student>/<assignment>/<assignment>.ipynb``, made from a notebook with the reference
answers filled in and then edited as a case of ``<assignment>.cases.yml`` says; the scores the
gradebook holds afterwards. The package's bench cannot import ``tests/``, so this lives here.
"""
from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path

# What a copy of the course leaves behind: everything grading writes, and local leftovers.
IGNORE = ("gradebook.db", "gradebook.db-*", "release", "submitted", "autograded", "feedback", "exports",
          ".zoograde", "__pycache__", "*.csv")


def tool_env(env: dict | None = None) -> dict:
    """``env`` (default: this process's environment) with this Python's bin folder first on the PATH, where
    ``nbgrader``, ``zoo-grade`` and ``dask`` are, and the ``alembic`` that nbgrader runs."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class EditError(ValueError):
    """An edit whose ``old`` text is not in its cell (the case no longer matches the reference)."""


def copy_course(source: Path, target: Path, *also_ignore: str) -> Path:
    """A copy of the course in ``source`` without grading's outputs (and without ``also_ignore``)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*IGNORE, *also_ignore), dirs_exist_ok=True)
    return target


def submission_path(course: Path, student: str, assignment: str) -> Path:
    return course / "submitted" / student / assignment / f"{assignment}.ipynb"


def write_submission(course: Path, student: str, assignment: str, nb) -> Path:
    """Hand in ``nb`` (a notebook, or text written as it is: a broken file is a submission too)."""
    import nbformat

    path = submission_path(course, student, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, str):
        path.write_text(nb)
    else:
        nbformat.write(nb, path)
    return path


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cell_of(nb, gid: str):
    """The cell of ``nb`` (a notebook, or its JSON as a dict) whose grade_id is ``gid``; StopIteration if none."""
    return next(c for c in nb["cells"] if grade_id(c) == gid)


def solution_cells(course: Path, assignment: str) -> dict[str, str]:
    """grade_id -> the reference answer (the source's solution cell without its BEGIN/END SOLUTION lines)."""
    import nbformat

    nb = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            out[meta["grade_id"]] = "\n".join(line for line in cell.source.splitlines()
                                              if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    return out


def answered(nb, solutions: dict[str, str]):
    """A copy of ``nb`` (a release or the book's page) with each answer cell holding its reference answer."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if grade_id(cell) in solutions:
            cell.source = solutions[grade_id(cell)]
    return nb


def apply_edits(nb, edits: list[dict], where: str = "", answer_cells=None) -> None:
    """Each edit ``{cell, old, new}`` replaces ``old`` in that cell; with ``answer_cells``, only those may be edited."""
    for edit in edits:
        if answer_cells is not None and edit["cell"] not in answer_cells:
            raise EditError(f"{where}: {edit['cell']} is not an answer cell")
        cell = cell_of(nb, edit["cell"])
        if edit["old"] not in cell.source:
            raise EditError(f"{where}: {edit['old']!r} is not in cell {edit['cell']!r}")
        cell.source = cell.source.replace(edit["old"], edit["new"])


def gradebook_scores(course: Path, assignment: str, url: str | None = None) -> dict[str, dict[str, float | None]]:
    """student -> {grade_id: auto score} for every graded code cell of every submission of ``assignment``, from the
    course's SQLite gradebook or the database at ``url``."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    scores: dict[str, dict[str, float | None]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(url or f"sqlite:///{course / 'gradebook.db'}") as gb:
            try:
                submissions = gb.find_assignment(assignment).submissions
            except MissingEntry:
                return scores
            for submission in submissions:
                cells = scores.setdefault(submission.student_id, {})
                for nb in submission.notebooks:
                    for grade in nb.grades:
                        if grade.cell_type == "code":
                            cells[grade.name] = None if grade.auto_score is None else float(grade.auto_score)
    return scores
