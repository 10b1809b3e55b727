"""Assignments are written as percent-format Python files; this turns them into nbgrader notebooks.

``autograder/assignments/<name>.py`` holds one assignment. A line ``# %% [kind key=value ...]``
starts a cell:

- ``# %% [markdown]``: text; each line's leading ``# `` is removed;
- ``# %% [code]``: setup code the students see and may not change (locked);
- ``# %% [solution id=NAME]``: a graded answer cell; ``### BEGIN SOLUTION`` / ``### END SOLUTION``
  mark what nbgrader removes from the student version; ``reuse=zoolib.get_model`` (comma-separated)
  names reference code this answer may use (read by :mod:`zoograde.provenance` from this file,
  never from a submission);
- ``# %% [tests id=NAME points=N]``: an autograded test cell (locked); ``### BEGIN HIDDEN TESTS`` /
  ``### END HIDDEN TESTS`` mark tests that only the autograder runs.

``python -m zoograde.sources`` (re)writes ``autograder/source/<name>/<name>.ipynb`` for every file.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]          # autograder/
ASSIGNMENTS = ROOT / "assignments"
SOURCE = ROOT / "source"
HEADER = re.compile(r"^# %% \[(\w+)((?:\s+\w+=[\w.,-]+)*)\]\s*$")
KINDS = ("markdown", "code", "solution", "tests")


class SourceError(ValueError):
    pass


def parse(text: str, filename: str = "<assignment>") -> list[dict]:
    cells, current = [], None
    for lineno, line in enumerate(text.splitlines(), 1):
        m = HEADER.match(line)
        if m:
            kind, opts = m.group(1), dict(kv.split("=", 1) for kv in m.group(2).split())
            if kind not in KINDS:
                raise SourceError(f"{filename}:{lineno}: unknown cell kind {kind!r} (use one of {KINDS})")
            if kind in ("solution", "tests") and "id" not in opts:
                raise SourceError(f"{filename}:{lineno}: a {kind} cell needs id=NAME")
            if kind == "tests" and "points" not in opts:
                raise SourceError(f"{filename}:{lineno}: a tests cell needs points=N")
            current = {"kind": kind, "opts": opts, "lines": [], "line": lineno}
            cells.append(current)
        elif current is None:
            if line.strip():
                raise SourceError(f"{filename}:{lineno}: text before the first '# %% [...]' header")
        else:
            current["lines"].append(line)
    ids = [c["opts"]["id"] for c in cells if "id" in c["opts"]]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise SourceError(f"{filename}: duplicate cell ids {sorted(dupes)}")
    return cells


def _body(cell: dict) -> str:
    lines = cell["lines"]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    while lines and not lines[0].strip():
        lines = lines[1:]
    if cell["kind"] == "markdown":
        lines = [l[2:] if l.startswith("# ") else l.lstrip("#") for l in lines]
    return "\n".join(lines)


def to_notebook(cells: list[dict]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.language_info = {"name": "python"}
    for i, cell in enumerate(cells):
        kind, opts, body = cell["kind"], cell["opts"], _body(cell)
        if kind == "markdown":
            nbcell = nbformat.v4.new_markdown_cell(body)
            meta = {"grade": False, "solution": False, "locked": True, "grade_id": opts.get("id", f"text-{i}")}
        else:
            nbcell = nbformat.v4.new_code_cell(body)
            meta = {"grade": kind == "tests", "solution": kind == "solution", "locked": kind != "solution",
                    "grade_id": opts.get("id", f"setup-{i}")}
            if kind == "tests":
                meta["points"] = float(opts["points"])
        meta.update({"schema_version": 3, "task": False})
        nbcell.metadata = {"nbgrader": meta, "deletable": kind != "tests" and kind != "solution",
                           "editable": kind == "solution"}
        nbcell["id"] = meta["grade_id"].replace("_", "-")
        nb.cells.append(nbcell)
    return nb


def write_generated(nb, out: Path) -> Path:
    """Write ``nb`` to ``out`` only if its text changed, so that an unchanged file keeps its timestamp."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = nbformat.writes(nb) + "\n"
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return out


def build(name: str) -> Path:
    src = ASSIGNMENTS / f"{name}.py"
    return write_generated(to_notebook(parse(src.read_text(), str(src))), SOURCE / name / f"{name}.ipynb")


def names() -> list[str]:
    return sorted(p.stem for p in ASSIGNMENTS.glob("*.py"))


def generate(argv: list[str] | None, write_one) -> int:
    """``write_one(name)`` for the assignments named in ``argv`` (default: all), printing each file written."""
    for name in (argv if argv else names()):
        print(write_one(name).relative_to(ROOT.parent))
    return 0


def main(argv: list[str] | None = None) -> int:
    return generate(argv, build)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
