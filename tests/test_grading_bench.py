"""``python -m zoograde.bench`` (the grading half of ``make bench``), on a class of four.

It runs as ``make bench`` runs it, with ``--n 4 --rounds 1 --no-marginal`` and everything in a
temporary folder, and the test then reads both gradebooks itself: the sequential nbgrader run (A)
and the parallel ``zoo-grade autograde`` run (B) each graded all four submissions, with the same
score in every cell, the reference solutions full marks (10) and the untouched release 0. It
checks that the table and the CSV row carry every field the module's docstring documents.

Several rounds (``make bench`` runs three) are checked without grading, which would double the
time of this file: the order of the steps and the comparison of every round's scores with
stand-ins for nbgrader and zoo-grade that record what they were asked, and the medians and
spread on timings whose results are derived by hand.

It asserts no speed-up: with two notebooks per worker the parallel run mostly measures the
workers' start and imports, and CI machines are noisy. The speed-up and the
marginal cost are judged by the lead on the full run (N = 40), not here.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from zoograde.coursekit import gradebook_scores, tool_env

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "03_network_in_network"


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading-bench")
    out_csv = tmp / "bench-grading.csv"
    env = tool_env({k: v for k, v in os.environ.items() if k != "ZOO_GRADEBOOK_URL"})
    run = subprocess.run([sys.executable, "-m", "zoograde.bench", "--n", "4", "--rounds", "1", "--no-marginal",
                          "--csv", str(out_csv), "--workdir", str(tmp), "--keep"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"the bench failed:\n{(run.stdout + run.stderr)[-4000:]}"
    kept = list(tmp.glob("zoograde-bench-*"))
    assert len(kept) == 1, kept
    return run.stdout, out_csv, kept[0]


def _scores(course: Path) -> dict[str, dict[str, float]]:
    return gradebook_scores(course, ASSIGNMENT)


def test_table_has_every_field(bench_run):
    stdout, _, _ = bench_run
    rows = dict(line.strip("|").split("|")[:2] for line in stdout.splitlines() if line.startswith("| "))
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    for key in ("notebooks (N)", "workers", "cores (os.cpu_count())", "rounds (A, B, C each once per round)",
                "A: sequential `nbgrader autograde`",
                "B: parallel `zoo-grade autograde`", "speed-up A/B", "A: seconds per notebook",
                "B: seconds per notebook (wall)", "marginal cost per notebook (T_B − T_C) / (N − N/2)",
                "goal: speed-up ≥ 1.8", "goal: marginal ≤ 1 s per notebook",
                "A and B: same score for every student and cell", "load average before the run (1 min)"):
        assert key in rows, f"the table has no row {key!r}:\n{stdout}"
    assert rows["notebooks (N)"] == "4" and rows["workers"] == "2"
    assert rows["cores (os.cpu_count())"] == str(os.cpu_count())
    assert rows["marginal cost per notebook (T_B − T_C) / (N − N/2)"] == "n/a"   # --no-marginal
    assert rows["A and B: same score for every student and cell"] == "yes"
    assert rows["goal: speed-up ≥ 1.8"].split()[0] in ("yes", "**no**")       # reported, not asserted


def test_csv_row_has_the_documented_columns(bench_run):
    from zoograde import bench

    _, out_csv, _ = bench_run
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    row = rows[0]
    assert tuple(row) == bench.CSV_COLUMNS
    for column in bench.CSV_COLUMNS:   # the docstring documents every column
        assert f"``{column}``" in bench.__doc__, column
    assert row["assignment"] == ASSIGNMENT and row["n"] == "4" and row["workers"] == "2"
    assert row["cores"] == str(os.cpu_count()) and row["rounds"] == "1"
    assert row["speedup_min"] == row["speedup_max"] == row["speedup"]   # one round: no spread
    sequential, parallel = float(row["sequential_s"]), float(row["parallel_s"])
    assert sequential > 0 and parallel > 0
    assert float(row["speedup"]) == pytest.approx(sequential / parallel, rel=0.01)
    assert float(row["sequential_s_per_nb"]) == pytest.approx(sequential / 4, rel=0.01)
    assert row["marginal_n"] == row["marginal_parallel_s"] == row["marginal_s_per_nb"] == row["marginal_goal"] == ""
    assert row["marginal_s_per_nb_max"] == ""
    assert row["scores_identical"] == "yes" and row["scores_expected"] == "yes"
    assert row["speedup_goal"] in ("yes", "no")


def test_rounds_alternate_and_every_round_is_checked(monkeypatch, tmp_path):
    """Three rounds with stand-ins for the graders: the order is A B C, C B A, A B C; a round whose B
    scores differ from its A is an error naming that round; the report holds each round's timings."""
    from zoograde import bench

    calls, timings = [], iter([60, 30, 16, 18, 36, 66, 50, 30, 14])   # in the order the steps run

    def fake_nbgrader(course, *args, timeout=None):
        if args[0] == "autograde":
            calls.append(f"A {course.name}")
            return float(next(timings))
        return 0.0

    def fake_parallel(course, assignment, workers, expected_n, label):
        calls.append(f"{label} {course.name}")
        return float(next(timings)), 1.0

    def fake_scores(course, assignment):
        differs = course.name == "B-parallel-2"   # round 2's B gives another score
        return {"s000-reference": {"cell": 5.0 if differs else 10.0}}

    monkeypatch.setattr(bench, "copy_course", lambda source, target: target.mkdir())
    monkeypatch.setattr(bench, "nbgrader", fake_nbgrader)
    monkeypatch.setattr(bench, "_parallel", fake_parallel)
    monkeypatch.setattr(bench, "write_submissions", lambda course, assignment, n: [
        bench.Student("s000-reference", "reference", None)])
    monkeypatch.setattr(bench, "max_points", lambda course, assignment: {"cell": 10.0})
    monkeypatch.setattr(bench, "gradebook_scores", fake_scores)
    monkeypatch.setattr(bench, "fresh_copy", lambda template, target, students=None, assignment="": (
        target.mkdir(), target)[1])
    report = bench.run_bench(ASSIGNMENT, n=4, workdir=tmp_path, quiet=True, rounds=3)
    assert calls == ["A A-sequential", "B B-parallel", "C C-half",
                     "C C-half-2", "B B-parallel-2", "A A-sequential-2",
                     "A A-sequential-3", "B B-parallel-3", "C C-half-3"]
    assert [(r.sequential_s, r.parallel_s, r.marginal_parallel_s) for r in report.rounds] == [
        (60, 30, 16), (66, 36, 18), (50, 30, 14)]
    assert report.problems == ["round 2/3: A and B differ: s000-reference cell: A 10.0 vs B 5.0"], report.problems
    assert not report.scores_identical
    assert not list(tmp_path.iterdir()), "the courses are deleted without --keep"


def test_median_and_spread_of_three_rounds():
    """The aggregation on three rounds with known timings (no grading): the speed-ups are 60/30 = 2.0,
    66/36 = 1.83 and 50/30 = 1.67, their median 1.83 (the ratio of the medians would be 60/30 = 2.0);
    the marginal costs (30-16)/20 = 0.7, (36-18)/20 = 0.9 and (30-14)/20 = 0.8 s, their median 0.8 s."""
    from zoograde.bench import Report, Round

    report = Report("x", 40, 2, 2, rounds=[Round(60, 30, 1.0, 16), Round(66, 36, 1.2, 18), Round(50, 30, 1.1, 14)],
                    marginal_n=20)
    assert report.sequential_s == 60 and report.parallel_s == 30 and report.work_s_per_nb == 1.1
    assert report.speedup == pytest.approx(66 / 36)
    assert report.speedups == pytest.approx([2.0, 66 / 36, 50 / 30])
    assert report.marginal_s_per_nb == pytest.approx(0.8) and max(report.marginals) == pytest.approx(0.9)
    assert report.speedup_goal and report.marginal_goal
    row = report.csv_row()
    assert (row["rounds"], row["speedup"], row["speedup_min"], row["speedup_max"]) == (3, "1.833", "1.667", "2.000")
    assert (row["marginal_s_per_nb"], row["marginal_s_per_nb_max"]) == ("0.800", "0.900")
    table = report.table()
    assert "1.83× (median); rounds: 2.00, 1.83, 1.67× (spread 1.67–2.00×)" in table
    assert "0.80 s (median); rounds: 0.70, 0.90, 0.80 s" in table


def test_both_runs_graded_everyone_alike(bench_run):
    _, _, kept = bench_run
    a, b = _scores(kept / "A-sequential"), _scores(kept / "B-parallel")
    assert sorted(a) == sorted(b) and len(a) == 4, (sorted(a), sorted(b))
    assert all(v is not None for cells in a.values() for v in cells.values()), a
    assert a == b
    assert not (kept / "C-half").exists()   # --no-marginal


def test_reference_full_marks_and_blank_zero(bench_run):
    _, _, kept = bench_run
    scores = _scores(kept / "A-sequential")
    references = [s for s in scores if s.endswith("-reference")]
    blanks = [s for s in scores if s.endswith("-blank")]
    assert references and blanks, sorted(scores)
    for student in references:
        assert sum(scores[student].values()) == 10, (student, scores[student])
    for student in blanks:
        assert sum(scores[student].values()) == 0, (student, scores[student])
