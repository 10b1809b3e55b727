"""Before a submission runs: read what can be read, and put the assignment's cells back.

Plugged into ``nbgrader autograde`` by ``nbgrader_config.py``:

* :class:`TolerantExporter` (``Autograde.exporter_class``) reads a file that is not a
  notebook (invalid JSON, empty, binary, too large) as an empty notebook with a note
  instead of failing. The student's file itself is left untouched in ``submitted/``.
* :class:`RepairMetadata` drops grading metadata that does not belong to the assignment
  (an invented ``grade_id``, a forged schema version that would make nbgrader stop the
  whole batch), and notes it.
* :class:`RestoreCells` puts back every cell of the released assignment that is missing
  (a deleted test cell, answer cell or setup cell), at its place, and notes edited test
  cells. nbgrader's ``OverwriteCells``, which runs next, restores the tests' original
  source, hidden tests included.

The notes travel in the notebook's metadata to :class:`zoograde.execute.GuardedExecute`,
which prints them at the top of the autograded notebook.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os

import nbformat
from nbconvert.exporters import NotebookExporter
from nbformat.v4 import new_markdown_cell, new_notebook
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import ClearSolutions, NbGraderPreprocessor
from traitlets import Integer, Unicode

from zoograde.execute import NOTES_KEY


def note(nb, text: str) -> None:
    notes = nb.metadata.setdefault(NOTES_KEY, {}).setdefault("notes", [])
    if text not in notes:
        notes.append(text)


def notebook_problem(path: str, max_mb: float, max_cells: int = 10_000) -> tuple[object | None, str | None]:
    """(notebook, None) when ``path`` holds a readable notebook, else (None, why it is not one)."""
    try:
        size = os.path.getsize(path)
    except OSError as error:
        return None, f"it could not be opened ({error.strerror})"
    if size == 0:
        return None, "the file is empty (0 bytes)"
    if size > max_mb * 2**20:
        return None, f"the file is {size / 2**20:,.1f} MiB, more than the {max_mb:g} MiB a notebook may have"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        return None, "the file is not text (is it a notebook at all?)"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"the file is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
    if not isinstance(raw, dict) or "cells" not in raw:
        return None, "the file is JSON but not a notebook (no 'cells')"
    if isinstance(raw["cells"], list) and len(raw["cells"]) > max_cells:  # before validating: that is slow per cell
        return None, f"the notebook has {len(raw['cells']):,} cells, more than the {max_cells:,} a submission may have"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # noqa: BLE001  (nbformat raises several kinds)
        return None, f"the file is not a valid notebook ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    return nb, None


class TolerantExporter(NotebookExporter):
    """``NotebookExporter`` that grades an unreadable submission as an empty one, with a note."""

    max_notebook_mb = Integer(50, help="larger files are not read").tag(config=True)
    max_cells = Integer(10_000, help="notebooks with more cells are not read (a release has a few dozen)"
                        ).tag(config=True)

    def from_filename(self, filename, resources=None, **kw):
        nb, problem = notebook_problem(filename, self.max_notebook_mb, self.max_cells)
        if nb is None:
            self.log.warning("%s is not a readable notebook: %s", filename, problem)
            nb = new_notebook(cells=[], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                  "language": "python"}})
            note(nb, f"Your file could not be read as a notebook: {problem}. It was graded as an empty "
                     f"submission. Nothing was lost: the file you handed in is kept as it was.")
            resources = self._init_resources(resources)
            resources.setdefault("metadata", {})["path"] = os.path.dirname(os.path.abspath(filename))
            return self.from_notebook_node(nb, resources=resources, **kw)
        return super().from_filename(filename, resources=resources, **kw)


class RepairMetadata(NbGraderPreprocessor):
    """Grading metadata the assignment does not have is removed, so nbgrader cannot be stopped by it."""

    def preprocess(self, nb, resources):
        known = _known_cells(resources)
        seen = set()
        for index, cell in enumerate(nb.cells):
            meta = cell.get("metadata", {}).get("nbgrader")
            if meta is None:
                continue
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            bad = (not isinstance(meta, dict) or not isinstance(gid, str) or gid not in known
                   or gid in seen or not isinstance(meta.get("schema_version", 3), int)
                   or meta.get("schema_version", 3) != 3)
            if bad and isinstance(gid, str) and gid in known and gid not in seen and isinstance(meta, dict):
                # the assignment's own cell with forged fields: keep its identity, nbgrader rewrites the rest
                meta["schema_version"] = 3
                bad = False
            if not bad and isinstance(gid, str) and gid in known:
                flags = known[gid]  # a test turned into an answer (or back) would escape OverwriteCells: restore
                changed = sorted(k for k, v in flags.items() if bool(meta.get(k, False)) != v)
                if changed:
                    meta.update(flags)
                    note(nb, f"cell '{gid}' had its grading flags changed ({', '.join(changed)}); the assignment's "
                             f"were restored")
            if bad:
                del cell.metadata["nbgrader"]
                if gid in seen:
                    note(nb, f"cell {index + 1} was a copy of '{gid}'; the copy was graded as an ordinary cell")
                else:
                    note(nb, f"cell {index + 1} carried grading metadata that is not part of the assignment "
                             f"({str(gid)[:40]!r}); it was ignored")
            else:
                seen.add(gid)
        return nb, resources


class RestoreCells(NbGraderPreprocessor):
    """Missing cells of the released assignment go back in their place; edited test cells are noted."""

    release_notebook = Unicode("{root}/release/{assignment}/{notebook}.ipynb").tag(config=True)
    source_notebook = Unicode("{root}/source/{assignment}/{notebook}.ipynb").tag(config=True)

    def preprocess(self, nb, resources):
        template = self._template(resources)
        if template is None:
            return nb, resources
        present = {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells)
                   if isinstance(c.get("metadata", {}).get("nbgrader"), dict) and "grade_id" in c.metadata.nbgrader}
        empty = not nb.cells
        missing = []
        position = 0  # where the next restored cell goes: after the last template cell found so far
        for cell in template.cells:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid is None:
                continue
            if gid in present:
                position = present[gid] + 1
                if utils.is_grade(cell) and not utils.is_solution(cell):
                    submitted = nb.cells[present[gid]]
                    if _digest(submitted.source) != _digest(cell.source):
                        note(nb, f"test cell '{gid}' had been edited; the original test ran instead")
                continue
            restored = copy.deepcopy(cell)
            if restored.cell_type == "code":
                restored.outputs, restored.execution_count = [], None
            nb.cells.insert(position, restored)
            present = {k: (v + 1 if v >= position else v) for k, v in present.items()}
            present[gid] = position
            position += 1
            missing.append(gid)
        if empty and not nb.metadata.get(NOTES_KEY, {}).get("notes"):
            note(nb, "Your notebook had no cells: the assignment's cells were put back and graded as unanswered")
        if missing and not empty:
            kinds = [("answer" if utils.is_solution(c) else "test" if utils.is_grade(c) else
                      "instructions" if c.cell_type == "markdown" else "setup") + f" '{g}'"
                     for g in missing for c in template.cells if c.metadata.get("nbgrader", {}).get("grade_id") == g]
            note(nb, f"{len(missing)} cell(s) of the assignment were missing from your notebook and were put back: "
                     f"{', '.join(kinds)}" + (". Missing answers were graded as unanswered" if any(
                         k.startswith("answer") for k in kinds) else ""))
        return nb, resources

    def _template(self, resources):
        root = self.config.get("CourseDirectory", {}).get("root", "") or os.getcwd()
        fields = dict(root=root, assignment=resources["nbgrader"]["assignment"],
                      notebook=resources["nbgrader"]["notebook"])
        release = self.release_notebook.format(**fields)
        if os.path.exists(release):
            return nbformat.read(release, as_version=4)
        source = self.source_notebook.format(**fields)
        if os.path.exists(source):  # not released from this folder: strip the solutions ourselves
            nb = nbformat.read(source, as_version=4)
            nb, _ = ClearSolutions(parent=self).preprocess(nb, {"nbgrader": dict(resources["nbgrader"])})
            return nb
        self.log.warning("no release or source notebook for %s; missing cells cannot be restored", fields)
        return None


def _known_cells(resources) -> dict[str, dict[str, bool]]:
    """grade_id -> the assignment's own flags of that cell (grade, solution, locked)."""
    info = resources["nbgrader"]
    try:
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            grade = {c.name for c in notebook.grade_cells}
            solution = {c.name for c in notebook.solution_cells}
            locked = {c.name: bool(c.locked) for c in notebook.source_cells}
            return {name: {"grade": name in grade, "solution": name in solution, "locked": locked.get(name, False)}
                    for name in grade | solution | set(locked)}
    except MissingEntry:
        return {}


def _digest(source: str) -> str:
    return hashlib.sha256("\n".join(line.rstrip() for line in source.strip().splitlines()).encode()).hexdigest()
