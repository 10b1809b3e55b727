"""``zoo-grade report``: one assignment's class summary (``summary.md``) and score histograms
(``histograms.png``) in ``<course>/exports/report-<assignment>/``."""
from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from .course import CourseError, NotReady, gradebook, assignment_names
from .export import graded_columns, cell_scores


@dataclass
class CellStats:
    name: str
    max_score: float
    scores: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores) if self.scores else math.nan

    @property
    def full(self) -> float:
        return sum(s >= self.max_score for s in self.scores) / len(self.scores) if self.scores else math.nan

    @property
    def zero(self) -> float:
        return sum(s == 0 for s in self.scores) / len(self.scores) if self.scores else math.nan


@dataclass
class ReportResult:
    assignment: str
    folder: Path
    graded: int
    ungraded: int
    cells: list[CellStats]
    total: CellStats
    table: str
    figure: object | None = None

    # The files it wrote. SimilarityResult names its own the same way: alike in shape only, one short property each.
    @property
    def summary_path(self) -> Path:
        return self.folder / "summary.md"

    @property
    def png_path(self) -> Path:
        return self.folder / "histograms.png"


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.0f}%"


def _num(x: float) -> str:
    return "-" if math.isnan(x) else format(round(x, 2), "g")


def summary_table(cells: list[CellStats], total: CellStats) -> str:
    lines = ["| cell | max points | mean | full marks | zero |", "| --- | ---: | ---: | ---: | ---: |"]
    for c in [*cells, total]:
        name = f"**{c.name}**" if c is total else f"`{c.name}`"
        lines.append(f"| {name} | {_num(c.max_score)} | {_num(c.mean)} | {_pct(c.full)} | {_pct(c.zero)} |")
    return "\n".join(lines)


def histograms(cells: list[CellStats], total: CellStats, title: str = ""):
    """One bar chart per graded cell and one of the totals: a bar for every possible score."""
    from matplotlib.figure import Figure

    panels = [*cells, total]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.4 * ncols, 2.6 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        fig.delaxes(ax)
    for ax, c in zip(axes, panels):
        top = max(c.max_score, max(c.scores, default=0))
        positions = sorted(set(range(int(math.floor(top)) + 1)) | set(c.scores))
        counts = [sum(s == p for s in c.scores) for p in positions]
        gaps = [b - a for a, b in zip(positions, positions[1:])]
        ax.bar(positions, counts, width=0.8 * min(gaps, default=1), color="#4c72b0" if c is not total else "#dd8452")
        ax.set_title(f"{c.name} (max {_num(c.max_score)})", fontsize=9)
        ax.set_xlabel("points", fontsize=8)
        ax.set_ylabel("students", fontsize=8)
        ax.set_xlim(-0.6, top + 0.6)
        if top <= 12:
            ax.set_xticks(range(int(math.floor(top)) + 1))
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def grading_cost(course: Path, assignment: str) -> str | None:
    """One line on what grading cost per notebook, from the grader's notes (``.zoograde/notes``):
    the wall time, and the part spent judging the test cells (in the grader, asking the kernel)."""
    from zoograde.execute import NOTES_DIR

    seconds, judged, requests = [], [], []
    for path in sorted((course / NOTES_DIR / assignment).glob("*/*.json")):
        try:
            note = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(note, dict) and isinstance(note.get("seconds"), (int, float)):
            seconds.append(float(note["seconds"]))
            judge = note.get("judge")
            if isinstance(judge, dict) and isinstance(judge.get("seconds"), (int, float)):
                judged.append(float(judge["seconds"]))
                requests.append(int(judge.get("requests") or 0))
    if not seconds:
        return None
    line = (f"- grading time per notebook ({len(seconds)} notebooks): median {statistics.median(seconds):.1f} s, "
            f"max {max(seconds):.1f} s")
    if judged:
        line += (f"; judging the tests: median {statistics.median(judged):.1f} s, max {max(judged):.1f} s, "
                 f"median {statistics.median(requests):.0f} requests to the kernel")
    return line


def report(course: Path, assignment: str, output: str | os.PathLike | None = None) -> ReportResult:
    """Class summary of one assignment: ``summary.md`` and ``histograms.png`` in ``output``."""
    from nbgrader.api import MissingEntry

    known = assignment_names(course)
    folder = Path(output).expanduser() if output else course / "exports" / f"report-{assignment}"
    with gradebook(course) as gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            if assignment not in known:
                raise CourseError(f"unknown assignment {assignment!r}; the course has: {', '.join(known)}") from None
            raise NotReady(f"{assignment} is not in the gradebook yet: release and autograde it first") from None
        cols = graded_columns(course, a)
        per_cell: dict[tuple[str, str], list[float]] = {(c.notebook, c.cell): [] for c in cols}
        totals, graded, ungraded = [], 0, 0
        for sub in a.submissions:
            grades = [g for nb in sub.notebooks for g in nb.grades]
            if not any(g.auto_score is not None or g.manual_score is not None for g in grades):
                ungraded += 1
                continue
            graded += 1
            scores = cell_scores(sub)
            for key in per_cell:
                per_cell[key].append(scores.get(key, 0.0))
            totals.append(sum(scores.get(key, 0.0) for key in per_cell))
    cells = [CellStats(c.cell, c.max_score, per_cell[(c.notebook, c.cell)]) for c in cols]
    total = CellStats("total", sum(c.max_score for c in cols), totals)
    table = summary_table(cells, total)
    result = ReportResult(assignment, folder, graded, ungraded, cells, total, table)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# {assignment}: class summary", "",
             f"- submissions graded: {graded}" + (f" ({ungraded} more in the gradebook not graded yet)" if ungraded else "")]
    if totals:
        lines.append(f"- total (out of {_num(total.max_score)}): mean {_num(statistics.fmean(totals))}, "
                     f"median {_num(statistics.median(totals))}, min {_num(min(totals))}, max {_num(max(totals))}")
    cost = grading_cost(course, assignment)
    if cost:
        lines.append(cost)
    lines += ["", table, "", "![histograms](histograms.png)" if totals else "(no graded submissions: no histograms)", ""]
    result.summary_path.write_text("\n".join(lines))
    if totals:
        result.figure = histograms(cells, total, title=f"{assignment}: {graded} graded submissions")
        result.figure.savefig(result.png_path, dpi=110)
    return result
