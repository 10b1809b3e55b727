"""``python -m zoograde.bench`` (the grading half of ``make bench``), on a class of four.

It runs as ``make bench`` runs it, with ``--n 4 --no-marginal`` and everything in a temporary
folder, and the test then reads both gradebooks itself: the sequential nbgrader run (A) and the
parallel ``zoo-grade autograde`` run (B) each graded all four submissions, with the same score in every
cell, the reference solutions full marks (10) and the untouched release 0. It checks that the
table and the CSV row carry every field the module's docstring documents.

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
    run = subprocess.run([sys.executable, "-m", "zoograde.bench", "--n", "4", "--no-marginal", "--csv", str(out_csv),
                          "--workdir", str(tmp), "--keep"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
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
    for key in ("notebooks (N)", "workers", "cores (os.cpu_count())", "A: sequential `nbgrader autograde`",
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
    assert row["cores"] == str(os.cpu_count())
    sequential, parallel = float(row["sequential_s"]), float(row["parallel_s"])
    assert sequential > 0 and parallel > 0
    assert float(row["speedup"]) == pytest.approx(sequential / parallel, rel=0.01)
    assert float(row["sequential_s_per_nb"]) == pytest.approx(sequential / 4, rel=0.01)
    assert row["marginal_n"] == row["marginal_parallel_s"] == row["marginal_s_per_nb"] == row["marginal_goal"] == ""
    assert row["scores_identical"] == "yes" and row["scores_expected"] == "yes"
    assert row["speedup_goal"] in ("yes", "no")


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
