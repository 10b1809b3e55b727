"""Student versions of the assignments for the book: ``python -m zoograde.pages``.

Each ``book/assignments/<name>.ipynb`` is what ``nbgrader generate_assignment`` releases:
the same nbgrader preprocessors remove the solutions (leaving the course's code stub) and
the hidden tests. The book renders them unexecuted, with download and launch buttons.

A page is a notebook a student can download, answer and hand in, so it keeps nbgrader's cell
metadata (the grader finds the answers and tests by it) and starts with two cells the
release does not have: how to install, work offline, test and hand in, and an install cell
that does nothing where the course package is already installed. The grader ignores cells
without nbgrader metadata, and the install cell finds the package there.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import yaml
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
from traitlets.config import Config

from .sources import ROOT, generate, write_generated

BOOK = ROOT.parent / "book" / "assignments"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"  # as in nbgrader_config.py


def repository_url() -> str:
    """The course's repository, as ``_config.yml`` names it (a fork changes it there)."""
    config = yaml.safe_load((ROOT.parent / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def how_to(name: str) -> str:
    return f"""## Before you start

**Install.** Run the next cell first. Where the course package `zoolib` is missing (Google
Colab, a fresh Jupyter), it installs it from the course repository; where it is installed
(your clone after `make setup`, the course's JupyterHub), it does nothing. On a laptop
without a GPU, the book's *Setting up* page shows how to install the much smaller CPU-only
PyTorch first.

**Offline.** Once the package is installed, nothing here needs the network: the tests
build their own random inputs, and no dataset is downloaded.

**Test your work.** Each answer cell is followed by a test cell: run it after your answer.
It prints nothing, or a short note, when your code passes, and says what is wrong when it
does not. Before you hand in, run everything from a fresh start (*Kernel → Restart Kernel
and Run All Cells*, or *Runtime → Restart and run all* on Colab): the grader runs the
notebook the same way, top to bottom, with more tests.

**Hand in** this one notebook, as an `.ipynb` file (not a PDF, not a zip), where your
instructor asks, usually the assignment's page on your course's learning platform. Keep
its name, `{name}.ipynb`; if you are asked to send the file itself, name it
`<your student id>_{name}.ipynb`. Do not delete, split or edit the test cells: a missing
cell is put back unanswered and an edited test is replaced by the original.
"""


def install_cell() -> str:
    return f"""# Installs the course package where it is missing (Colab); else does nothing.
try:
    import zoolib
except ImportError:
    %pip install --quiet "cnn-zoo @ git+{repository_url()}"
"""


def student_version(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "source" / name / f"{name}.ipynb", as_version=4)
    config = Config({"ClearSolutions": {"code_stub": {"python": CODE_STUB}}})
    for pp in (ClearSolutions(config=config), ClearHiddenTests(config=config)):
        nb, _ = pp.preprocess(nb, {})
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    header = [nbformat.v4.new_markdown_cell(how_to(name)), nbformat.v4.new_code_cell(install_cell().rstrip())]
    header[0]["id"], header[1]["id"] = "zoo-before-you-start", "zoo-install"
    nb.cells[1:1] = header   # after the title
    return nb


def write(name: str) -> Path:
    return write_generated(student_version(name), BOOK / f"{name}.ipynb")


def main(argv: list[str] | None = None) -> int:
    return generate(argv, write)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
