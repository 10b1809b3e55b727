"""``make bench``, grading part: plain ``nbgrader autograde`` against ``zoo-grade autograde`` on this machine.

    python -m zoograde.bench [--assignment 03_network_in_network] [--n 40] [--workers 2] [--rounds 3]
                             [--no-marginal] [--csv results/bench-grading.csv] [--workdir DIR] [--keep]

One run measures, for one assignment, in ``--rounds`` paired rounds (default 3):

1. **Setup (not timed).** A temporary copy of the course (``autograder/`` without its gradebook,
   release, submissions, outputs and markers), ``nbgrader generate_assignment``, and N submissions,
   a realistic class: of every ten students, seven hand in the reference solution (the source's
   solution cells without their ``### BEGIN/END SOLUTION`` lines, put into the release notebook),
   one the untouched release (blank), and two a wrong submission from
   ``assignments/<assignment>.cases.yml``, the cases taken in turn. Student ``i`` is
   ``s<iii>-<kind>``, e.g. ``s000-reference``, ``s001-blank``, ``s003-case0``.
2. **A, sequential.** ``nbgrader autograde <assignment>`` as a subprocess, in a fresh copy of
   that course (wall time, nbgrader's start-up included).
3. **B, parallel.** ``zoo-grade autograde <assignment> --workers W`` as a subprocess, in a second
   fresh copy (wall time, its start-up, the workers' start and stop included).
4. **C, marginal** (unless ``--no-marginal``). B again, on a third copy holding only the first
   N/2 submissions (same mix): the marginal cost of one more notebook is
   ``(T_B - T_C) / (N - N/2)``, what is left when the fixed costs (workers, imports) cancel out.
5. **Rounds.** Steps 2 to 4 are repeated ``--rounds`` times, each time on fresh copies, in the
   order A B C, then C B A, then A B C again, and so on: a machine that slows down or speeds up
   during the run then weighs on A and on B alike. Each round gives its own speed-up
   T_A / T_B and marginal cost, from timings taken minutes apart on the same machine. The
   report gives their median (the goal is judged on it) and their spread (smallest, largest).
6. **Check.** In every round, A and B must give every student the same score in every graded
   cell (read from both gradebooks with ``nbgrader.api``), every submission must be graded, and
   the reference must score full marks, the blank zero and each wrong case its points from the
   cases file. Anything else is an error: it is printed and the exit status is 1.
7. **Report.** A Markdown table on standard output and one row appended to the CSV file.

Goals (issue 10): a speed-up A/B of at least 1.8 with 2 workers on 2 cores, and a marginal cost of
at most 1.0 s per notebook. They are reported, never enforced (exit status 0 when the scores are right).
With a few notebooks per worker the speed-up mostly measures the fixed costs: judge it at N = 40.
One round alone varies by 10-15 % on a shared machine (1.73-1.98x for assignment 3 on one
evening), which is why a run has several.

The gradebooks are SQLite files in the temporary copies, whatever ``ZOO_GRADEBOOK_URL`` says
(it is ignored here, so a shared gradebook is never touched). The copies are deleted at the end
unless ``--keep``.

CSV columns (one row per run, header written when the file is new):

==========================  =================================================================
``date``                    when the run ended, local time, ISO 8601
``host``                    ``platform.node()``
``assignment``              the assignment graded
``n``                       submissions graded by A and B
``workers``                 worker processes of B and C
``cores``                   ``os.cpu_count()``
``rounds``                  paired rounds (A, B and C each once per round)
``sequential_s``            T_A, wall seconds of ``nbgrader autograde`` (median of the rounds)
``parallel_s``              T_B, wall seconds of ``zoo-grade autograde`` (median of the rounds)
``speedup``                 T_A / T_B, the median of the rounds' own ratios
``speedup_min``             the smallest round's T_A / T_B
``speedup_max``             the largest round's T_A / T_B
``sequential_s_per_nb``     T_A / n
``parallel_s_per_nb``       T_B / n
``work_s_per_nb``           mean seconds a B worker spent on one notebook (median of the rounds)
``marginal_n``              submissions of C (N/2; empty with ``--no-marginal``)
``marginal_parallel_s``     T_C (median of the rounds; empty with ``--no-marginal``)
``marginal_s_per_nb``       (T_B - T_C) / (n - marginal_n), the median of the rounds' own (empty with
                            ``--no-marginal``)
``marginal_s_per_nb_max``   the largest round's marginal cost (empty with ``--no-marginal``)
``speedup_goal``            ``yes`` / ``no``: median speed-up >= 1.8 (the goal is for 2 workers on 2 cores)
``marginal_goal``           ``yes`` / ``no``: median marginal <= 1.0 s (empty with ``--no-marginal``)
``scores_identical``        ``yes`` / ``no``: A and B agree on every student and cell
``scores_expected``         ``yes`` / ``no``: reference full marks, blank 0, cases their points
``load_before``             1-minute load average when the run started (timings taken on a
                            busy machine are not comparable: the bench warns above 0.5 per core)
``nbgrader``                nbgrader's version
==========================  =================================================================
"""
from __future__ import annotations

import argparse
import copy
import csv
import datetime as dt
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .coursekit import (EditError, answered, apply_edits, copy_course, gradebook_scores, solution_cells,
                        tool_env, write_submission)

COURSE = Path(__file__).resolve().parents[1]
DEFAULT_ASSIGNMENT = "03_network_in_network"
SPEEDUP_GOAL = 1.8       # with 2 workers on 2 cores (issue 10)
MARGINAL_GOAL = 1.0      # seconds per notebook (issue 10)
FOLDERS = {"A": "A-sequential", "B": "B-parallel", "C": "C-half"}   # each run's course copy, under the bench's root
CSV_COLUMNS = ("date", "host", "assignment", "n", "workers", "cores", "rounds", "sequential_s", "parallel_s",
               "speedup", "speedup_min", "speedup_max", "sequential_s_per_nb", "parallel_s_per_nb", "work_s_per_nb",
               "marginal_n", "marginal_parallel_s", "marginal_s_per_nb", "marginal_s_per_nb_max", "speedup_goal",
               "marginal_goal", "scores_identical", "scores_expected", "load_before", "nbgrader")


class BenchError(Exception):
    """The bench could not measure (a step failed); the message says which."""


# ---------------------------------------------------------------------------------------------------
# The class

@dataclass
class Student:
    id: str
    kind: str                 # "reference", "blank" or "case<k>"
    expected: dict | None     # grade_id -> points it must score (None: the whole max for the reference)


def class_plan(n: int, cases: list[dict]) -> list[str]:
    """The kind of each of ``n`` students: per ten, 7 reference, 1 blank, 2 wrong cases (taken in turn)."""
    kinds, next_case = [], 0
    for i in range(n):
        slot = i % 10
        if slot == 1:
            kinds.append("blank")
        elif slot in (3, 6) and cases:
            kinds.append(f"case{next_case % len(cases)}")
            next_case += 1
        else:
            kinds.append("reference")
    return kinds


def _read_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def write_submissions(course: Path, assignment: str, n: int) -> list[Student]:
    """Put ``n`` submissions into ``course/submitted/`` (the release must exist); returns the class."""
    import nbformat

    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    solutions = solution_cells(course, assignment)
    cases_file = COURSE / "assignments" / f"{assignment}.cases.yml"
    cases = _read_yaml(cases_file)["cases"] if cases_file.is_file() else []
    students = []
    for i, kind in enumerate(class_plan(n, cases)):
        nb = copy.deepcopy(release) if kind == "blank" else answered(release, solutions)
        expected = None
        if kind.startswith("case"):
            case = cases[int(kind[4:])]
            expected = {k: float(v) for k, v in case["points"].items()}
            try:
                apply_edits(nb, case["edits"], where=f"{cases_file.name}, case {case['name']!r}")
            except EditError as e:
                raise BenchError(str(e)) from None
        student = Student(f"s{i:03d}-{kind}", kind, expected)
        write_submission(course, student.id, assignment, nb)
        students.append(student)
    return students


# ---------------------------------------------------------------------------------------------------
# Courses and nbgrader

def _bin() -> Path:
    return Path(sys.executable).parent


def _env() -> dict:
    """The environment of nbgrader: the venv's bin first (nbgrader runs ``alembic``), no shared gradebook."""
    return tool_env({k: v for k, v in os.environ.items() if k != "ZOO_GRADEBOOK_URL"})


def nbgrader(course: Path, *args: str, timeout: float | None = None) -> float:
    """Run ``nbgrader ARGS`` in ``course``; wall seconds. Raises BenchError with nbgrader's output on failure."""
    exe = _bin() / "nbgrader"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "nbgrader"]
    started = time.monotonic()
    run = subprocess.run([*cmd, *args], cwd=course, env=_env(), capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    if run.returncode != 0:
        raise BenchError(f"nbgrader {' '.join(args)} failed (exit {run.returncode}):\n"
                         f"{(run.stdout + run.stderr)[-3000:]}")
    return seconds


def fresh_copy(template: Path, target: Path, students: list[Student] | None = None, assignment: str = "") -> Path:
    """A copy of the prepared course; with ``students``, only their submissions."""
    shutil.copytree(template, target, symlinks=True)
    if students is not None:
        keep = {s.id for s in students}
        for folder in (target / "submitted").iterdir():
            if folder.name not in keep:
                shutil.rmtree(folder)
    return target


def max_points(course: Path, assignment: str) -> dict[str, float]:
    import nbformat

    nb = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"]) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"}


# ---------------------------------------------------------------------------------------------------
# The measurement

@dataclass
class Round:
    """One round's wall seconds: A (sequential), B (parallel) and C (parallel, N/2; None without it)."""
    sequential_s: float
    parallel_s: float
    work_s_per_nb: float = 0.0
    marginal_parallel_s: float | None = None

    @property
    def speedup(self) -> float:
        return self.sequential_s / self.parallel_s if self.parallel_s else float("nan")


@dataclass
class Report:
    assignment: str
    n: int
    workers: int
    cores: int
    rounds: list[Round] = field(default_factory=list)
    marginal_n: int | None = None
    problems: list[str] = field(default_factory=list)
    scores_identical: bool = False
    scores_expected: bool = False
    score_summary: str = ""
    load_before: float | None = None

    @staticmethod
    def _median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    @property
    def sequential_s(self) -> float:
        return self._median([r.sequential_s for r in self.rounds])

    @property
    def parallel_s(self) -> float:
        return self._median([r.parallel_s for r in self.rounds])

    @property
    def work_s_per_nb(self) -> float:
        return self._median([r.work_s_per_nb for r in self.rounds])

    @property
    def marginal_parallel_s(self) -> float | None:
        values = [r.marginal_parallel_s for r in self.rounds if r.marginal_parallel_s is not None]
        return self._median(values) if values else None

    @property
    def speedups(self) -> list[float]:
        return [r.speedup for r in self.rounds]

    @property
    def speedup(self) -> float:
        """The median of the rounds' own T_A / T_B (each pair measured minutes apart)."""
        return self._median(self.speedups)

    @property
    def marginals(self) -> list[float]:
        if not self.marginal_n or self.n <= self.marginal_n:
            return []
        return [(r.parallel_s - r.marginal_parallel_s) / (self.n - self.marginal_n) for r in self.rounds
                if r.marginal_parallel_s is not None]

    @property
    def marginal_s_per_nb(self) -> float | None:
        values = self.marginals
        return self._median(values) if values else None

    @property
    def busy(self) -> bool:
        return self.load_before is not None and self.load_before > 0.5 * self.cores

    @property
    def speedup_goal(self) -> bool:
        return self.speedup >= SPEEDUP_GOAL

    @property
    def marginal_goal(self) -> bool | None:
        m = self.marginal_s_per_nb
        return None if m is None else m <= MARGINAL_GOAL

    def table(self) -> str:
        yes = lambda b: "n/a" if b is None else ("yes" if b else "**no**")
        goal_setup = "" if (self.workers, self.cores) == (2, 2) else \
            f" (the goal is for 2 workers on 2 cores; this ran {self.workers} on {self.cores})"
        m = self.marginal_s_per_nb
        several = len(self.rounds) > 1
        median = " (median)" if several else ""
        each = lambda values, fmt: ", ".join(fmt.format(v) for v in values)
        rows = [
            ("assignment", f"`{self.assignment}`"),
            ("notebooks (N)", f"{self.n}"),
            ("workers", f"{self.workers}"),
            ("cores (os.cpu_count())", f"{self.cores}"),
            ("rounds (A, B, C each once per round)", f"{len(self.rounds)}"),
            ("A: sequential `nbgrader autograde`", f"{self.sequential_s:.1f} s{median}"
             + (f"; rounds: {each([r.sequential_s for r in self.rounds], '{:.1f}')} s" if several else "")),
            ("B: parallel `zoo-grade autograde`", f"{self.parallel_s:.1f} s{median}"
             + (f"; rounds: {each([r.parallel_s for r in self.rounds], '{:.1f}')} s" if several else "")),
            ("speed-up A/B", f"{self.speedup:.2f}×{median}"
             + (f"; rounds: {each(self.speedups, '{:.2f}')}× (spread {min(self.speedups):.2f}–"
                f"{max(self.speedups):.2f}×)" if several else "")),
            ("A: seconds per notebook", f"{self.sequential_s / self.n:.2f} s"),
            ("B: seconds per notebook (wall)", f"{self.parallel_s / self.n:.2f} s"),
            ("B: seconds of work per notebook (one worker)", f"{self.work_s_per_nb:.2f} s"),
            ("C: parallel, N/2 notebooks", "not measured (--no-marginal)" if self.marginal_parallel_s is None
             else f"{self.marginal_parallel_s:.1f} s for {self.marginal_n}{median}"),
            ("marginal cost per notebook (T_B − T_C) / (N − N/2)", "n/a" if m is None else f"{m:.2f} s{median}"
             + (f"; rounds: {each(self.marginals, '{:.2f}')} s" if several else "")),
            (f"goal: speed-up ≥ {SPEEDUP_GOAL}", yes(self.speedup_goal) + goal_setup),
            (f"goal: marginal ≤ {MARGINAL_GOAL:g} s per notebook", yes(self.marginal_goal)),
            ("A and B: same score for every student and cell", yes(self.scores_identical)),
            ("scores as expected (reference full, blank 0, cases their points)", yes(self.scores_expected)),
            ("load average before the run (1 min)", "n/a" if self.load_before is None else
             f"{self.load_before:.2f}" + (" (**busy machine**: timings not representative)" if self.busy else "")),
        ]
        lines = ["| measure | value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
        return "\n".join(lines)

    def csv_row(self) -> dict:
        from importlib.metadata import version

        blank = lambda x, fmt="{:.2f}": "" if x is None else fmt.format(x)
        yn = lambda b: "" if b is None else ("yes" if b else "no")
        return {
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "host": platform.node(),
            "assignment": self.assignment, "n": self.n, "workers": self.workers, "cores": self.cores,
            "rounds": len(self.rounds), "sequential_s": f"{self.sequential_s:.2f}",
            "parallel_s": f"{self.parallel_s:.2f}", "speedup": f"{self.speedup:.3f}",
            "speedup_min": f"{min(self.speedups):.3f}", "speedup_max": f"{max(self.speedups):.3f}",
            "sequential_s_per_nb": f"{self.sequential_s / self.n:.3f}",
            "parallel_s_per_nb": f"{self.parallel_s / self.n:.3f}", "work_s_per_nb": f"{self.work_s_per_nb:.3f}",
            "marginal_n": blank(self.marginal_n, "{}"), "marginal_parallel_s": blank(self.marginal_parallel_s),
            "marginal_s_per_nb": blank(self.marginal_s_per_nb, "{:.3f}"),
            "marginal_s_per_nb_max": blank(max(self.marginals) if self.marginals else None, "{:.3f}"),
            "speedup_goal": yn(self.speedup_goal),
            "marginal_goal": yn(self.marginal_goal), "scores_identical": yn(self.scores_identical),
            "scores_expected": yn(self.scores_expected), "load_before": blank(self.load_before),
            "nbgrader": version("nbgrader"),
        }


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _parallel(course: Path, assignment: str, workers: int, expected_n: int, label: str) -> tuple[float, float]:
    """(wall seconds, mean seconds of work per notebook) of ``zoo-grade autograde`` on ``course``, run as a
    command, as A runs nbgrader's: its start-up (imports, workers, fork server) is part of the time."""
    exe = _bin() / "zoo-grade"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "zoograde.cli"]
    started = time.monotonic()
    run = subprocess.run([*cmd, "--course", str(course), "autograde", assignment, "--workers", str(workers),
                          "--no-progress"], cwd=course, env=_env(), capture_output=True, text=True)
    seconds = time.monotonic() - started
    out = run.stdout + run.stderr
    graded = re.search(rf"{re.escape(assignment)}: (\d+) graded, ", out)
    if run.returncode != 0 or graded is None or int(graded.group(1)) != expected_n:
        raise BenchError(f"{label}: zoo-grade autograde did not grade all {expected_n} submissions "
                         f"(exit {run.returncode}):\n{out[-3000:]}")
    work = re.search(r"([\d.]+) s of work per notebook on average", out)
    return seconds, float(work.group(1)) if work else 0.0


def compare(a: dict, b: dict, students: list[Student], points: dict[str, float]) -> tuple[list[str], list[str], str]:
    """(differences between A and B, unexpected scores, a one-line summary of the scores per kind)."""
    differences, unexpected = [], []
    total = sum(points.values())
    for s in students:
        sa, sb = a.get(s.id), b.get(s.id)
        if sa is None or sb is None:
            differences.append(f"{s.id}: not graded by {'A' if sa is None else 'B'}")
            continue
        for cell in sorted(set(sa) | set(sb) | set(points)):
            if sa.get(cell) != sb.get(cell):
                differences.append(f"{s.id} {cell}: A {sa.get(cell)} vs B {sb.get(cell)}")
        want = (dict(points) if s.kind == "reference" else {c: 0.0 for c in points} if s.kind == "blank"
                else s.expected)
        got = {c: sa.get(c) for c in points}
        if got != want:
            unexpected.append(f"{s.id}: {got}, expected {want}")
    summary = {}
    for s in students:
        cells = a.get(s.id) or {}
        score = sum(v for v in cells.values() if v is not None)
        summary.setdefault(s.kind, []).append(score)
    text = ", ".join(f"{kind} {'/'.join(f'{v:g}' for v in sorted(set(vals)))} of {total:g} (×{len(vals)})"
                     for kind, vals in summary.items())
    return differences, unexpected, text


def run_bench(assignment: str = DEFAULT_ASSIGNMENT, n: int = 40, workers: int = 2, marginal: bool = True,
              workdir: Path | None = None, keep: bool = False, quiet: bool = False, rounds: int = 3) -> Report:
    if n < 2:
        raise BenchError("--n must be at least 2")
    if rounds < 1:
        raise BenchError("--rounds must be at least 1")
    if not (COURSE / "source" / assignment / f"{assignment}.ipynb").is_file():
        raise BenchError(f"no assignment {assignment!r} in {COURSE / 'source'}")
    if os.environ.pop("ZOO_GRADEBOOK_URL", None):
        _say("ZOO_GRADEBOOK_URL is ignored: the bench grades into SQLite gradebooks of its own", quiet)
    root = Path(tempfile.mkdtemp(prefix="zoograde-bench-", dir=workdir))
    report = Report(assignment, n, workers, os.cpu_count() or 1)
    if hasattr(os, "getloadavg"):
        report.load_before = os.getloadavg()[0]
        if report.busy:
            _say(f"warning: the machine is busy (load average {report.load_before:.2f} on {report.cores} cores): "
                 f"the timings will not be representative", quiet)
    try:
        _say(f"preparing {n} submissions of {assignment} in {root}", quiet)
        template = root / "template"
        copy_course(COURSE, template)
        nbgrader(template, "generate_assignment", assignment, "--force")
        students = write_submissions(template, assignment, n)
        points = max_points(template, assignment)
        half = students[: n // 2]
        if marginal:
            report.marginal_n = len(half)
        report.scores_identical = report.scores_expected = True
        for number in range(1, rounds + 1):
            # round 1 keeps the folder names of a one-round run; later rounds are suffixed
            folders = {step: root / f"{name}{'' if number == 1 else f'-{number}'}" for step, name in FOLDERS.items()}
            tag = f"round {number}/{rounds}: " if rounds > 1 else ""
            times: dict[str, float] = {}
            work: dict[str, float] = {}   # seconds of work per notebook, B and C
            steps = ["A", "B"] + (["C"] if marginal else [])
            for step in (steps if number % 2 else steps[::-1]):   # A B C, then C B A: drift weighs on both
                subset = half if step == "C" else None
                graded = subset or students
                course = fresh_copy(template, folders[step], subset)
                if step == "A":
                    _say(f"{tag}A: nbgrader autograde {assignment} ({n} notebooks, one after the other)", quiet)
                    times["A"] = nbgrader(course, "autograde", assignment)
                else:
                    _say(f"{tag}{step}: zoo-grade autograde, {workers} workers, {len(graded)} notebooks", quiet)
                    times[step], work[step] = _parallel(course, assignment, workers, len(graded), step)
                _say(f"   {times[step]:.1f} s", quiet)
            report.rounds.append(Round(times["A"], times["B"], work["B"], times.get("C")))

            a, b = gradebook_scores(folders["A"], assignment), gradebook_scores(folders["B"], assignment)
            differences, unexpected, summary = compare(a, b, students, points)
            report.score_summary = report.score_summary or summary
            report.scores_identical &= not differences
            report.scores_expected &= not unexpected
            report.problems += [f"{tag}A and B differ: {d}" for d in differences]
            report.problems += [f"{tag}unexpected score: {u}" for u in unexpected]
            if not keep and number > 1:
                for folder in folders.values():
                    shutil.rmtree(folder, ignore_errors=True)
    finally:
        if keep:
            _say(f"kept the courses in {root}", quiet)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return report


def append_csv(path: Path, row: dict) -> None:
    """Append ``row``; a file with other columns (an older version of the bench) is moved aside first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if tuple(header) != CSV_COLUMNS:
            aside = path.with_name(f"{path.stem}.{int(path.stat().st_mtime)}{path.suffix}")
            os.replace(path, aside)
            print(f"{path} had other columns: moved to {aside}", file=sys.stderr)
            new = True
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def kernel_cost(repeats: int = 8) -> list[dict]:
    """Seconds to start a grading kernel, run one cell and stop it, with and without the OS sandbox, forked and
    cold: one notebook of one cell graded ``repeats`` times per variant, after one unmeasured warm-up."""
    import statistics

    import nbformat
    from traitlets.config import Config

    from zoograde import forkserver
    from zoograde.execute import GuardedExecute

    variants = [(sandbox, prewarm) for prewarm in (True, False) for sandbox in (True, False)]
    times: dict = {v: [] for v in variants}
    folder = Path(tempfile.mkdtemp(prefix="zoograde-kernel-cost-"))
    try:
        for sandbox, prewarm in variants:
            config = Config()
            config.CourseDirectory.root = str(folder)
            config.GuardedExecute.sandbox, config.GuardedExecute.prewarm = sandbox, prewarm
            forkserver.stop()
            for round_ in range(repeats + 1):  # round 0 (not timed) starts this variant's fork server
                nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 6 * 7")])
                started = time.perf_counter()
                GuardedExecute(config=config).preprocess(nb, {"metadata": {"path": str(folder)}})
                if round_:
                    times[(sandbox, prewarm)].append(time.perf_counter() - started)
    finally:
        forkserver.stop()
        shutil.rmtree(folder, ignore_errors=True)
    rows = []
    for (sandbox, prewarm), values in times.items():
        rows.append({"kernel": "forked" if prewarm else "cold", "sandbox": sandbox, "n": len(values),
                     "median_s": statistics.median(values), "min_s": min(values), "max_s": max(values)})
    return rows


def kernel_cost_table(rows: list[dict]) -> str:
    lines = ["| kernel | sandbox | n | median s | min s | max s |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['kernel']} | {'on' if r['sandbox'] else 'off'} | {r['n']} | {r['median_s']:.3f} | "
                     f"{r['min_s']:.3f} | {r['max_s']:.3f} |")
    by = {(r["kernel"], r["sandbox"]): r["median_s"] for r in rows}
    for kernel in ("forked", "cold"):
        lines.append(f"\nthe sandbox's own cost per {kernel} kernel (medians): "
                     f"{by[(kernel, True)] - by[(kernel, False)]:+.3f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zoograde.bench", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Time plain sequential `nbgrader autograde` against parallel `zoo-grade autograde` on this "
                    "machine, check that both give the same scores, and append the numbers to a CSV file.",
        epilog="Exit status: 0 measured (goals are reported, not enforced), 1 wrong or different scores or a "
               "failed step, 2 usage error.")
    parser.add_argument("--assignment", default=DEFAULT_ASSIGNMENT, help=f"default: {DEFAULT_ASSIGNMENT}")
    parser.add_argument("--n", type=int, default=40, help="submissions to grade (default: 40)")
    parser.add_argument("--workers", type=int, default=2, help="parallel worker processes (default: 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="paired rounds of A, B and C; the report gives their median and spread (default: 3)")
    parser.add_argument("--no-marginal", action="store_true",
                        help="skip run C (N/2 submissions) and so the marginal cost per notebook")
    parser.add_argument("--csv", default="results/bench-grading.csv",
                        help="append the results to this CSV file (default: results/bench-grading.csv)")
    parser.add_argument("--workdir", help="where the temporary courses go (default: the system's temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary courses (their path is printed)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages on standard error")
    parser.add_argument("--kernel-cost", type=int, metavar="N", default=0,
                        help="only measure what one kernel costs (start, one cell, stop), with and without the OS "
                             "sandbox, forked and cold, N times each")
    args = parser.parse_args(argv)
    if args.kernel_cost:
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
        print(kernel_cost_table(kernel_cost(args.kernel_cost)))
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return 0
    if args.n < 2 or args.workers < 1 or args.rounds < 1:
        parser.error("--n must be at least 2, --workers and --rounds at least 1")
    try:
        report = run_bench(args.assignment, args.n, args.workers, not args.no_marginal,
                           Path(args.workdir) if args.workdir else None, args.keep, args.quiet, args.rounds)
    except BenchError as exc:
        print(f"zoograde.bench: {exc}", file=sys.stderr)
        return 1
    print(f"\n## Grading {report.assignment}: sequential nbgrader vs zoo-grade\n")
    print(report.table())
    print(f"\nscores (A): {report.score_summary}")
    append_csv(Path(args.csv), report.csv_row())
    print(f"appended to {args.csv}")
    for problem in report.problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
