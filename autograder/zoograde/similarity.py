"""``zoo-grade similarity ASSIGNMENT``: which answers look copied, from each other or from zoolib.

The answer (solution) cells of every pair of submissions are compared cell by cell, and every
answer against every function and class of zoolib's own source, which the students have
installed. The fingerprints are copydetect's (MOSS-style winnowing over Pygments tokens, with
names, strings and comments normalised away); what the release gave every student (the cell's
``def``/``class`` lines, docstrings, the code stub) is boilerplate and never counts.

Scores. For two students and one cell: the fingerprinted tokens of both answers found in the
other answer, over the tokens of both (1.0: the same answer up to names, comments and layout).
A pair's score is the mean over the cells both answered, so padding one answer with junk
does not hide the others. For a student against zoolib, per cell: the share of the answer's
tokens found anywhere in zoolib's source (a copy may join several definitions), averaged over
the cells the student answered. The report ranks both kinds of pair together.

It flags; it never changes a grade. A high score is a reason to read the two answers side by
side (the report shows the matching lines), not a verdict: short answers to a tightly
specified exercise can be alike by nature.
"""
from __future__ import annotations

import ast
import base64
import csv
import html
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NOISE = 25          # copydetect's default noise threshold: matches shorter than 25 filtered characters never count
GUARANTEE = 30      # every match this long (filtered characters) is guaranteed to be found
MAX_CELL_CHARS = 20_000   # a longer answer is compared on its first 20,000 characters, and reported
MIN_TOKENS = 40     # answers with fewer fingerprinted characters than this are too short to compare


@dataclass
class Answer:
    student: str
    cell: str
    text: str
    fingerprint: object = None      # copydetect.CodeFingerprint
    coverage: float = 0.0           # fingerprinted characters after the boilerplate is removed


@dataclass
class Pair:
    a: str
    b: str                          # a student id, or "zoolib"
    score: float
    cells: dict[str, float]         # per-cell score
    references: dict[str, str] = field(default_factory=dict)   # cell -> best zoolib definition (b == "zoolib")

    @property
    def kind(self) -> str:
        return "zoolib" if self.b == "zoolib" else "pair"


@dataclass
class SimilarityResult:
    assignment: str
    students: list[str]
    cells: list[str]
    pairs: list[Pair]               # ranked, most similar first
    problems: list[str]
    folder: Path
    seconds: float
    threshold: float

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.score >= self.threshold]

    # The files it wrote, like ReportResult's: alike in shape only, one short property each.
    @property
    def html_path(self) -> Path:
        return self.folder / "index.html"

    @property
    def csv_path(self) -> Path:
        return self.folder / "pairs.csv"

    @property
    def png_path(self) -> Path:
        return self.folder / "distribution.png"


# ---------------------------------------------------------------------------------------------
# reading


def _fingerprint(text: str, name: str, boilerplate=None):
    from copydetect import CodeFingerprint

    return CodeFingerprint(f"{name}.py", NOISE, GUARANTEE - NOISE + 1, boilerplate=boilerplate,
                           language="python", fp=io.StringIO(text))


def solution_cells(course: Path, assignment: str) -> tuple[str, list[str], dict[str, str]]:
    """(notebook name, grade_ids of the answer cells in order, grade_id -> the cell as released).

    The released notebook is ``release/<assignment>/``'s when the assignment was released,
    else nbgrader's ClearSolutions is applied to the source here, as the release would.
    """
    from .course import CourseError

    notebooks = sorted((course / "source" / assignment).glob("*.ipynb"))
    if not notebooks:
        raise CourseError(f"no notebook in {course / 'source' / assignment}")
    name = notebooks[0].stem
    released_path = course / "release" / assignment / f"{name}.ipynb"
    if released_path.is_file():
        cells = json.loads(released_path.read_text(encoding="utf-8"))["cells"]
    else:
        import nbformat
        from nbgrader.preprocessors import ClearSolutions

        from .course import load_config

        nb = nbformat.read(notebooks[0], as_version=4)
        nb, _ = ClearSolutions(config=load_config(course)).preprocess(nb, {})
        cells = json.loads(nbformat.writes(nb))["cells"]
    ids, released = [], {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "code" and meta.get("solution"):
            ids.append(meta["grade_id"])
            released[meta["grade_id"]] = "".join(cell["source"])
    return name, ids, released


def zoolib_definitions() -> dict[str, str]:
    """``zoolib/<module>.py:<name>`` -> the source of every top-level function and class of zoolib."""
    from importlib.util import find_spec

    root = Path(find_spec("zoolib").origin).resolve().parent      # found, not imported (that loads torch)
    found = {}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        lines = text.splitlines(keepends=True)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
                found[f"zoolib/{path.relative_to(root).as_posix()}:{node.name}"] = "".join(lines[start:node.end_lineno])
    return found


def _read_answers(course: Path, assignment: str, notebook: str, cells: list[str], released: dict[str, str],
                  boilerplate: dict[str, np.ndarray], problems: list[str]) -> tuple[list[str], dict]:
    folder = course / "submitted"
    students = sorted(p.parent.name for p in folder.glob(f"*/{assignment}") if p.is_dir()) if folder.is_dir() else []
    answers: dict[tuple[str, str], Answer] = {}
    for student in students:
        path = folder / student / assignment / f"{notebook}.ipynb"
        try:
            nb = json.loads(path.read_bytes().decode("utf-8"))
            raw_cells = nb["cells"]
            if not isinstance(raw_cells, list):
                raise ValueError("'cells' is not a list")
        except FileNotFoundError:
            problems.append(f"{student}: no {notebook}.ipynb in submitted/{student}/{assignment}/: not compared")
            continue
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{student}: {notebook}.ipynb is not a readable notebook ({type(exc).__name__}: "
                            f"{str(exc)[:80]}): not compared")
            continue
        by_id = {}
        for cell in raw_cells:   # a malformed cell (not a dict, odd metadata) is simply not an answer
            meta = cell.get("metadata") if isinstance(cell, dict) else None
            meta = meta.get("nbgrader") if isinstance(meta, dict) else None
            grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
            if isinstance(grade_id, str) and grade_id in released and grade_id not in by_id:
                source = cell.get("source", "")
                by_id[grade_id] = "".join(map(str, source)) if isinstance(source, list) else str(source)
        for cell in cells:
            text = by_id.get(cell)
            if text is None:
                problems.append(f"{student}: answer cell '{cell}' is missing: not compared")
                continue
            if text.strip() == released[cell].strip():
                continue        # unanswered: the release's stub, nothing to compare
            if len(text) > MAX_CELL_CHARS:
                problems.append(f"{student}: answer cell '{cell}' has {len(text):,} characters: only the first "
                                f"{MAX_CELL_CHARS:,} were compared")
                text = text[:MAX_CELL_CHARS]
            try:
                ast.parse(text)
            except SyntaxError as exc:
                problems.append(f"{student}: answer cell '{cell}' does not parse as Python (line {exc.lineno}: "
                                f"{exc.msg}): compared as text")
            except (ValueError, RecursionError) as exc:
                problems.append(f"{student}: answer cell '{cell}' does not parse as Python ({exc}): compared as text")
            try:
                fp = _fingerprint(text, f"{student}-{cell}", boilerplate[cell])
            except Exception as exc:  # noqa: BLE001 - one unreadable answer must not stop the class
                problems.append(f"{student}: answer cell '{cell}' could not be fingerprinted ({exc}): not compared")
                continue
            if fp.token_coverage >= MIN_TOKENS:
                answers[(student, cell)] = Answer(student, cell, text, fp, float(fp.token_coverage))
    return students, answers


# ---------------------------------------------------------------------------------------------
# comparing


def _overlap(f1, f2) -> tuple[float, float]:
    """Fingerprinted characters of each side found in the other (copydetect.compare_files)."""
    from copydetect import compare_files

    _, (s1, s2), _ = compare_files(f1, f2)
    return s1 * f1.token_coverage, s2 * f2.token_coverage


def _covered(fp, hashes) -> float:
    """Fingerprinted characters of ``fp`` covered by these of its hashes (as copydetect.compare_files counts)."""
    from copydetect.utils import get_copied_slices

    if not hashes:
        return 0.0
    idx = np.concatenate([np.asarray(fp.hash_idx[h]) for h in hashes])
    starts, ends = get_copied_slices(idx, fp.k)
    return float(np.sum(ends - starts))


def _sources(fp, references: dict, most: int = 3) -> list[str]:
    """The zoolib definitions that an answer's matches come from, as a greedy cover.

    The first is the definition sharing most fingerprints with the answer; each next one is the
    definition that explains most of the matches not yet explained. Near-copies of the first
    (``NaiveInception`` beside ``Inception``) add nothing new, so a pasted helper class is named.
    """
    left = set(fp.hashes) & set().union(*(ref.hashes for ref in references.values())) if references else set()
    total, names = len(left), []
    while left and len(names) < most:
        gain, name = max((len(left & ref.hashes), name) for name, ref in references.items())
        if not gain or gain < 0.05 * total:
            break
        names.append(name)
        left -= references[name].hashes
    return names


def compare(course: Path, assignment: str, problems: list[str] | None = None):
    """(students, cells, answers, ranked pairs) without writing anything."""
    from .course import check_assignment

    check_assignment(course, assignment)
    problems = [] if problems is None else problems
    notebook, cells, released = solution_cells(course, assignment)
    boilerplate = {c: np.array(sorted(_fingerprint(released[c], f"release-{c}").hashes)) for c in cells}
    students, answers = _read_answers(course, assignment, notebook, cells, released, boilerplate, problems)
    references = {name: _fingerprint(text, name) for name, text in zoolib_definitions().items()}

    pairs: list[Pair] = []
    by_cell = {c: [answers[(s, c)] for s in students if (s, c) in answers] for c in cells}
    per_cell: dict[tuple[str, str], dict[str, float]] = {}
    for cell, group in by_cell.items():
        for i, x in enumerate(group):
            for y in group[i + 1:]:
                ox, oy = _overlap(x.fingerprint, y.fingerprint)
                if ox or oy:
                    per_cell.setdefault((x.student, y.student), {})[cell] = float((ox + oy) / (x.coverage + y.coverage))
    for (a, b), scores in per_cell.items():
        both = [c for c in cells if (a, c) in answers and (b, c) in answers]
        pairs.append(Pair(a, b, sum(scores.values()) / len(both), scores))

    # against zoolib: the answer's fingerprints found anywhere in zoolib (a copy may join several definitions)
    in_zoolib = set().union(*(ref.hashes for ref in references.values())) if references else set()
    for student in students:
        cell_scores, best_refs = {}, {}
        mine = [c for c in cells if (student, c) in answers]
        for cell in mine:
            fp = answers[(student, cell)].fingerprint
            covered = _covered(fp, fp.hashes & in_zoolib)
            if covered:
                cell_scores[cell] = covered / answers[(student, cell)].coverage
                best_refs[cell] = " + ".join(_sources(fp, references))
        if cell_scores:
            pairs.append(Pair(student, "zoolib", sum(cell_scores.values()) / len(mine), cell_scores, best_refs))
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return students, cells, answers, pairs, references


# ---------------------------------------------------------------------------------------------
# the report


def _side_by_side(left: str, right: str, left_fp, right_fp) -> tuple[str, str]:
    from copydetect import compare_files
    from copydetect.utils import highlight_overlap

    _, _, (s1, s2) = compare_files(left_fp, right_fp)
    out = []
    for text, slices in ((left, s1), (right, s2)):
        if len(slices) and slices.shape[1]:
            marked, _ = highlight_overlap(text, slices, "<mark>", "</mark>", escape_html=True)
        else:
            marked = html.escape(text)
        out.append(marked)
    return out[0], out[1]


def _distribution(pairs: list[Pair], n_students: int, threshold: float, path: Path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    n_pairs = n_students * (n_students - 1) // 2
    between = [p.score for p in pairs if p.kind == "pair"]
    between += [0.0] * (n_pairs - len(between))           # pairs with nothing in common score 0
    zoo = [p.score for p in pairs if p.kind == "zoolib"]
    zoo += [0.0] * (n_students - len(zoo))
    bins = np.linspace(0, 1, 41)
    for ax, values, title, color in ((ax1, between, f"pairs of students ({n_pairs:,})", "#4c72b0"),
                                     (ax2, zoo, f"students vs zoolib ({n_students})", "#dd8452")):
        ax.hist(values, bins=bins, color=color)
        if values:
            ax.set_yscale("log")
        ax.axvline(threshold, color="#c44e52", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("similarity", fontsize=8)
        ax.set_ylabel("count (log scale)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.savefig(path, dpi=100)
    return fig


CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}th{background:#eee}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:8px}.pair>div{min-width:0}pre{background:#f8f8f8;padding:6px;overflow-x:auto;
font-size:12px;margin:0}mark{background:#ffd54f}.flag{background:#fde0dc}h3{margin-top:1.6em}"""


def write_report(result: SimilarityResult, answers: dict, zoolib_text: dict[str, str],
                 top: int) -> None:
    folder = result.folder
    folder.mkdir(parents=True, exist_ok=True)
    with result.csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["rank", "student", "other", "score"] + [f"cell:{c}" for c in result.cells])
        for rank, p in enumerate(result.pairs, 1):
            writer.writerow([rank, p.a, p.b, f"{p.score:.4f}"] +
                            [f"{p.cells[c]:.4f}" if c in p.cells else "" for c in result.cells])
    _distribution(result.pairs, len(result.students), result.threshold, result.png_path)
    png = base64.b64encode(result.png_path.read_bytes()).decode()
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>Similarity: {e(result.assignment)}</title>",
             f"<style>{CSS}</style><h1>Similarity of {e(result.assignment)}</h1>",
             f"<p>{len(result.students)} submissions, answer cells {', '.join(e(c) for c in result.cells)}; "
             f"{len(result.flagged)} pair(s) at or above {result.threshold:.0%}. Compared in {result.seconds:.1f} s. "
             "Scores flag answers to read side by side; they change no grade. The release's own code (stubs, "
             "given lines) never counts; names, strings, comments and layout are ignored.</p>",
             f"<img alt='distribution of the similarity scores' src='data:image/png;base64,{png}'>"]
    if result.problems:
        parts.append(f"<h2>Input that needs a look ({len(result.problems)})</h2><ul>" +
                     "".join(f"<li>{e(p)}</li>" for p in result.problems) + "</ul>")
    parts.append(f"<h2>Most similar (top {min(top, len(result.pairs))} of {len(result.pairs)}; all in pairs.csv)</h2>"
                 "<table><tr><th>rank</th><th>student</th><th>compared with</th><th>score</th>" +
                 "".join(f"<th>{e(c)}</th>" for c in result.cells) + "</tr>")
    for rank, p in enumerate(result.pairs[:top], 1):
        flag = " class='flag'" if p.score >= result.threshold else ""
        parts.append(f"<tr{flag}><td>{rank}</td><td>{e(p.a)}</td><td><a href='#r{rank}'>{e(p.b)}</a></td>"
                     f"<td>{p.score:.0%}</td>" +
                     "".join(f"<td>{p.cells[c]:.0%}</td>" if c in p.cells else "<td></td>" for c in result.cells) +
                     "</tr>")
    parts.append("</table>")
    for rank, p in enumerate(result.pairs[:top], 1):
        parts.append(f"<h3 id='r{rank}'>{rank}. {e(p.a)} and {e(p.b)}: {p.score:.0%}</h3>")
        for cell in result.cells:
            if cell not in p.cells:
                continue
            left = answers[(p.a, cell)]
            if p.kind == "zoolib":
                name = p.references[cell]
                right_text = "\n\n".join(zoolib_text[n] for n in name.split(" + "))
                right_fp, right_name = _fingerprint(right_text, "zoolib"), name
            else:
                right = answers[(p.b, cell)]
                right_text, right_fp, right_name = right.text, right.fingerprint, f"{p.b}: {cell}"
            lhs, rhs = _side_by_side(left.text, right_text, left.fingerprint, right_fp)
            parts.append(f"<p><b>{e(cell)}</b>: {p.cells[cell]:.0%}</p><div class='pair'>"
                         f"<div><i>{e(p.a)}: {e(cell)}</i><pre>{lhs}</pre></div>"
                         f"<div><i>{e(right_name)}</i><pre>{rhs}</pre></div></div>")
    result.html_path.write_text("\n".join(parts), encoding="utf-8")


def similarity(course: Path, assignment: str, output: str | os.PathLike | None = None, threshold: float = 0.6,
               top: int = 40) -> SimilarityResult:
    """Compare every pair of submissions of ``assignment`` and each against zoolib; write the report."""
    started = time.monotonic()
    problems: list[str] = []
    students, cells, answers, pairs, references = compare(course, assignment, problems)
    folder = Path(output).expanduser() if output else course / "exports" / f"similarity-{assignment}"
    result = SimilarityResult(assignment, students, cells, pairs, problems, folder,
                              round(time.monotonic() - started, 2), threshold)
    zoolib_text = zoolib_definitions()
    write_report(result, answers, zoolib_text, top)
    return result


def summary(result: SimilarityResult, lines: int = 10) -> str:
    out = [f"{result.assignment}: {len(result.students)} submission(s) compared in {result.seconds:.1f} s; "
           f"{len(result.flagged)} pair(s) at or above {result.threshold:.0%}"]
    for p in result.pairs[:lines]:
        cells = ", ".join(f"{c} {v:.0%}" for c, v in p.cells.items())
        out.append(f"  {p.score:5.0%}  {p.a:<16} {p.b:<16} ({cells})")
    if result.problems:
        out.append(f"{len(result.problems)} input problem(s), listed in the report; the first ones:")
        out += [f"  {p}" for p in result.problems[:5]]
    out.append(f"report: {result.html_path}")
    return "\n".join(out)
