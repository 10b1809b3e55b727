"""Student versions of the assignments for the book: ``python -m zoograde.pages``.

Each ``book/assignments/<name>.ipynb`` is what ``nbgrader generate_assignment`` releases:
the same nbgrader preprocessors remove the solutions (leaving the course's code stub) and
the hidden tests. The book renders them unexecuted, with download and launch buttons.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
from traitlets.config import Config

from .sources import ROOT, names

BOOK = ROOT.parent / "book" / "assignments"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"  # as in nbgrader_config.py


def student_version(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "source" / name / f"{name}.ipynb", as_version=4)
    config = Config({"ClearSolutions": {"code_stub": {"python": CODE_STUB}}})
    for pp in (ClearSolutions(config=config), ClearHiddenTests(config=config)):
        nb, _ = pp.preprocess(nb, {})
    for cell in nb.cells:  # the book shows the text, not nbgrader's bookkeeping
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def write(name: str) -> Path:
    BOOK.mkdir(parents=True, exist_ok=True)
    out = BOOK / f"{name}.ipynb"
    text = nbformat.writes(student_version(name)) + "\n"
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return out


def main(argv: list[str] | None = None) -> int:
    for name in (argv if argv else names()):
        print(write(name).relative_to(ROOT.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
