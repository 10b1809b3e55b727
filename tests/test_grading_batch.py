"""`zoo-grade autograde` at class scale: parallel, idempotent, interruptible, and on a Dask cluster.

On a temporary course with honest submissions of assignment 3 (the reference solution, the
blank release and a wrong one), through the installed ``zoo-grade`` command:

- two workers grade the batch with a progress bar, and every score is right;
- running the command again grades nothing, and changes nothing;
- a changed submission, and only it, is graded again;
- Ctrl-C halfway through keeps every grade already written, and the next run grades exactly
  the rest;
- the same command runs on a Dask cluster started with Dask's own ``dask scheduler`` and
  ``dask worker`` programs, as it would across machines.

The first three run twice: with the default SQLite gradebook, and with a real PostgreSQL
(a throwaway cluster on a private Unix socket, ``tests/postgres.py``) named by ``ZOO_GRADEBOOK_URL``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import postgres
from test_hostile import ASSIGNMENT, build_submission, released_course
from zoograde.coursekit import gradebook_scores, tool_env

BIN = Path(sys.executable).parent
WRONG = {"name": "wrong", "edits": [{"cell": "nin_network", "old": "NiNBlock(96, 256, 5, 1, 2)",
                                      "new": "NiNBlock(96, 256, 5, 1, 1)"}]}
FULL, WRONG_POINTS = 10.0, 6.0


def make_course(tmp: Path, references: int, url: str | None = None) -> Path:
    course = released_course(tmp, env={"ZOO_GRADEBOOK_URL": url} if url else None)
    for i in range(references):
        build_submission(course, {"name": f"ref{i:02d}"})
    build_submission(course, {"name": "blank", "notebook": "release"})
    build_submission(course, WRONG)
    return course


def expected(student: str) -> float:
    return {"blank": 0.0, "wrong": WRONG_POINTS}.get(student, FULL)


def zoo_grade(course: Path, *args: str, url: str | None = None, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**tool_env(), **kw.get("env", {})}
    if url:
        env["ZOO_GRADEBOOK_URL"] = url
    command = [str(BIN / "zoo-grade"), "--course", str(course), *args]
    if kw.get("background"):
        # Ctrl-C must reach it as it does from a terminal: a runner started in the background
        # (nohup, `cmd &` without job control) passes SIGINT on as ignored, and Python keeps it so
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def total(course: Path, student: str, url: str | None = None) -> float:
    return sum(gradebook_scores(course, ASSIGNMENT, url)[student].values())


def students(course: Path) -> list[str]:
    return sorted(p.name for p in (course / "submitted").iterdir())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gradebook(request):
    """None for the course's own SQLite file, else the URL of a database on a throwaway PostgreSQL cluster."""
    if request.param == "sqlite":
        yield None
    else:
        with postgres.cluster() as url:
            yield url


@pytest.fixture(scope="module")
def course(tmp_path_factory, gradebook):
    course = make_course(tmp_path_factory.mktemp("batch"), references=4, url=gradebook)
    run = zoo_grade(course, "autograde", ASSIGNMENT, "--workers", "2", url=gradebook)
    assert run.returncode == 0, run.stdout + run.stderr
    return course, run, gradebook


def test_two_workers_grade_the_batch_with_a_progress_bar(course):
    course, run, url = course
    assert f"{ASSIGNMENT}: 6 graded, 0 already graded (skipped), 0 failed" in run.stdout
    assert "with 2 worker(s)" in run.stdout
    assert f"autograde {ASSIGNMENT}" in run.stderr and "6/6" in run.stderr  # tqdm's bar
    for student in students(course):
        assert total(course, student, url) == expected(student), student
    assert (course / "gradebook.db").exists() == (url is None)  # PostgreSQL's gradebook is the only one


def _holding(pipe: str) -> list[str]:
    """Command lines of the other processes that hold ``pipe`` (``pipe:[inode]``) open."""
    holders = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            held = any(os.readlink(f"/proc/{pid}/fd/{fd}") == pipe for fd in os.listdir(f"/proc/{pid}/fd"))
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if held:
            holders.append(command.strip()[:200] or f"pid {pid}, exiting")
    return holders


def _left_holding_output(process: subprocess.Popen) -> tuple[str, list[str]]:
    """Wait for ``process``; its stdout, and the processes it left behind that still hold that pipe open a
    second after it ended (whoever reads its output to the end waits for them). Helpers that close their copy
    as they see the command gone (multiprocessing's resource tracker) are gone by then."""
    process.wait(timeout=900)
    pipe = f"pipe:[{os.fstat(process.stdout.fileno()).st_ino}]"
    deadline = time.monotonic() + 1.0
    while (holders := _holding(pipe)) and time.monotonic() < deadline:
        time.sleep(0.1)
    out = "" if holders else process.stdout.read()
    process.stdout.close()
    process.stderr.close()
    return out, holders


def test_running_again_grades_nothing_and_changes_nothing(course):
    course, _, url = course
    before = {s: (total(course, s, url),
                  (course / "autograded" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").stat().st_mtime)
              for s in students(course)}
    process = zoo_grade(course, "autograde", ASSIGNMENT, "--workers", "2", url=url, background=True)
    out, holders = _left_holding_output(process)
    # The workers' parent starts importing (about 5 s) before the command knows that nothing is left to
    # grade; it must not outlive the command, holding its output open
    assert not holders, f"zoo-grade left processes behind that hold its output open: {holders}"
    assert process.returncode == 0, out
    assert f"{ASSIGNMENT}: 0 graded, 6 already graded (skipped), 0 failed" in out
    after = {s: (total(course, s, url),
                 (course / "autograded" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").stat().st_mtime)
             for s in students(course)}
    assert after == before


def test_a_changed_submission_and_only_it_is_graded_again(course):
    course, _, url = course
    build_submission(course, {**WRONG, "name": "ref00"})  # ref00 hands in a wrong version
    run = zoo_grade(course, "autograde", ASSIGNMENT, "--workers", "2", "--no-progress", url=url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{ASSIGNMENT}: 1 graded, 5 already graded (skipped), 0 failed" in run.stdout
    assert total(course, "ref00", url) == WRONG_POINTS
    build_submission(course, {"name": "ref00"})
    zoo_grade(course, "autograde", ASSIGNMENT, "--student", "ref00", "--no-progress", url=url)  # one worker
    assert total(course, "ref00", url) == FULL


# Submissions that never finish on their own: the blank release plus a cell that sleeps until the
# cell time limit stops it. They sort after the references, so the workers (which take tasks in the
# order given, tests/test_local_pool.py) grade the references first and the batch is still busy, by
# construction, when the test interrupts it.
SLEEPER = {"notebook": "release", "extra_cells": [{"source": "import time\nwhile True:\n    time.sleep(1)"}]}
REFERENCES_BEFORE_SLEEPERS = 3


def test_an_interrupted_batch_keeps_its_grades_and_the_next_run_grades_the_rest(tmp_path):
    course = released_course(tmp_path)
    refs = [f"ref{i:02d}" for i in range(REFERENCES_BEFORE_SLEEPERS)]
    sleepers = [f"zz_sleeper{i}" for i in range(3)]
    for name in refs:
        build_submission(course, {"name": name})
    for name in sleepers:
        build_submission(course, {**SLEEPER, "name": name})
    markers = course / ".zoograde" / ASSIGNMENT
    # The first run lets a cell and a notebook run for an hour: the sleepers cannot finish while the test watches.
    process = zoo_grade(course, "autograde", ASSIGNMENT, "--workers", "2", "--time-limit", "3600", background=True,
                        env={"ZOOGRADE_CELL_TIME_LIMIT": "3600"})
    try:
        # generous bounds: they only turn a hang into a failure, on a machine as loaded as it may be
        deadline = time.monotonic() + 1200
        while len(list(markers.glob("*.json"))) < len(refs):
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"the batch ended although its sleepers cannot finish:\n{out}\n{err}")
            assert time.monotonic() < deadline, "the references were not graded within 20 minutes"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)  # Ctrl-C while both workers are busy with sleepers
        out, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, out + err
    assert "interrupted: the grades above are saved" in out
    done = sorted(p.stem for p in markers.glob("*.json"))
    assert done == refs, done
    for student in done:  # every marker stands for a grade in the gradebook
        assert total(course, student) == FULL, student
    # The second run stops each sleeper's endless cell after 3 s (a cell over the limit only scores 0, as
    # the blank answers do anyway, so a loaded machine cannot change the outcome).
    run = zoo_grade(course, "autograde", ASSIGNMENT, "--workers", "2", "--no-progress",
                    env={"ZOOGRADE_CELL_TIME_LIMIT": "3"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(sleepers)} graded, {len(refs)} already graded (skipped), 0 failed" in run.stdout
    for student in sleepers:
        assert total(course, student) == 0.0, student
    for student in refs:
        assert total(course, student) == FULL, student


def _scheduler_address(info: Path, scheduler: subprocess.Popen, seconds: float = 120) -> str:
    """The scheduler's address, once its file is whole: it may exist before it is fully written."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return json.loads(info.read_text())["address"]
        except (OSError, ValueError, KeyError):
            assert scheduler.poll() is None, f"dask scheduler exited with {scheduler.returncode}"
            assert time.monotonic() < deadline, f"{info} held no scheduler address after {seconds:.0f} s"
            time.sleep(0.2)


def test_the_same_command_runs_on_a_dask_cluster(tmp_path):
    """`dask scheduler` and `dask worker` as separate programs, as on several machines."""
    course = make_course(tmp_path, references=1)
    env = tool_env()
    info = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([str(BIN / "dask"), "scheduler", "--scheduler-file", str(info), "--host",
                                  "127.0.0.1", "--port", "0", "--no-dashboard"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        address = _scheduler_address(info, scheduler)
        worker = subprocess.Popen([str(BIN / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                   "--memory-limit", "0", "--no-dashboard"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        run = zoo_grade(course, "autograde", ASSIGNMENT, "--scheduler", address, "--no-progress")
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"{ASSIGNMENT}: 3 graded, 0 already graded (skipped), 0 failed" in run.stdout
        assert "with 2 worker(s)" in run.stdout
        for student in students(course):
            assert total(course, student) == expected(student), student
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
