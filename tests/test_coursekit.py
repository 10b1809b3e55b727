"""``zoograde.coursekit``, which builds the submissions of the bench and of the grading tests: a case whose edit
no longer matches the reference must stop the build, not hand in the reference unchanged."""
from __future__ import annotations

import nbformat
import pytest

from zoograde.coursekit import EditError, answered, apply_edits, cell_of, submission_path, write_submission


def release() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for gid, source in (("block", "raise NotImplementedError()"), ("test_block", "assert block() == 3")):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {"grade_id": gid}
        nb.cells.append(cell)
    return nb


def test_answered_fills_the_answer_cells_of_a_copy():
    given = release()
    nb = answered(given, {"block": "def block():\n    return 3"})
    assert cell_of(nb, "block").source == "def block():\n    return 3"
    assert cell_of(nb, "test_block").source == "assert block() == 3"
    assert cell_of(given, "block").source == "raise NotImplementedError()"   # the release is left as it was


def test_edits_apply_and_a_stale_one_fails():
    nb = answered(release(), {"block": "def block():\n    return 3"})
    apply_edits(nb, [{"cell": "block", "old": "return 3", "new": "return 4"}])
    assert cell_of(nb, "block").source == "def block():\n    return 4"
    with pytest.raises(EditError, match="case1: 'return 3' is not in cell 'block'"):
        apply_edits(nb, [{"cell": "block", "old": "return 3", "new": "return 5"}], where="case1")
    with pytest.raises(EditError, match="test_block is not an answer cell"):
        apply_edits(nb, [{"cell": "test_block", "old": "3", "new": "4"}], answer_cells={"block"})


def test_a_submission_lands_where_nbgrader_looks(tmp_path):
    path = write_submission(tmp_path, "ada", "03_nin", "{ not a notebook")
    assert path == tmp_path / "submitted" / "ada" / "03_nin" / "03_nin.ipynb" == submission_path(tmp_path, "ada", "03_nin")
    assert path.read_text() == "{ not a notebook"
    write_submission(tmp_path, "ada", "03_nin", release())
    assert cell_of(nbformat.read(path, as_version=4), "block").source == "raise NotImplementedError()"
