"""zoograde.batch.LocalPool: the local grading workers, without grading (fast; the grading runs are in
test_grading_batch.py, test_hostile.py and test_autograder.py).

- every worker starts with nbgrader, PyTorch and the judge imported, by its parent, not by itself;
- a worker that dies under a task fails that task only, with its exit status, and a new worker takes
  the next one;
- tasks go out in the order given (the interrupted-batch test relies on it);
- a caller that stops reading (Ctrl-C) leaves no worker running.
"""
from __future__ import annotations

import os
import sys
import time

import pytest

from zoograde.batch import LocalPool, SubmissionResult

HEAVY = ("torch", "nbgrader.converters", "zoograde.judge", "torch._dynamo")


def _report(name: str, exit_code: int | None = None, sleep: float = 0.0) -> SubmissionResult:
    """A task run in a worker: its pid, what the worker had imported before the task imported anything,
    and when it began (as ``seconds``)."""
    loaded = [m for m in HEAVY if m in sys.modules]
    began = time.monotonic()
    if exit_code is not None:
        os._exit(exit_code)
    time.sleep(sleep)
    return SubmissionResult(name, "graded", notes=[str(os.getpid()), *loaded], seconds=began)


def test_workers_start_with_the_grader_imported_and_a_dead_worker_fails_only_its_task():
    calls = [("a", ("a",)), ("b", ("b",)), ("dies", ("dies", 7)), ("c", ("c",)), ("d", ("d",))]
    with LocalPool(2) as pool:
        results = {r.student: r for r in pool.results(calls, task=_report)}
    assert set(results) == {"a", "b", "dies", "c", "d"}
    died = results.pop("dies")
    assert died.status == "failed" and "exit status 7" in died.error, died
    for name, result in results.items():
        assert result.status == "graded", result
        assert result.notes[1:] == list(HEAVY), f"{name}: the worker had imported only {result.notes[1:]}"
    pids = {r.notes[0] for r in results.values()}
    assert str(os.getpid()) not in pids
    assert len(pids) >= 2  # the two workers, and the one forked after the death if it took a task


def _environment(name: str, variable: str) -> SubmissionResult:
    return SubmissionResult(name, "graded", notes=[os.environ.get(variable, "<unset>")])


def test_a_task_sees_the_callers_environment_of_now(monkeypatch):
    """The workers' parent is started once per process and keeps the environment of that moment. The
    course's config reads its limits and gradebook URL from the environment, so a batch run after another
    one with ZOOGRADE_MEMORY_LIMIT=1536 set graded with 1,536 MiB (CI, 2026-12-01)."""
    monkeypatch.setenv("ZOOGRADE_MEMORY_LIMIT", "1536")
    LocalPool.prepare()  # the parent, if this process has none yet, starts with 1536
    with LocalPool(1) as pool:
        before = next(pool.results([("a", ("a", "ZOOGRADE_MEMORY_LIMIT"))], task=_environment))
        monkeypatch.setenv("ZOOGRADE_MEMORY_LIMIT", "3072")
        monkeypatch.setenv("ZOO_GRADEBOOK_URL", "postgresql:///other")
        after = list(pool.results([("b", ("b", "ZOOGRADE_MEMORY_LIMIT")), ("c", ("c", "ZOO_GRADEBOOK_URL"))],
                                  task=_environment))
        monkeypatch.delenv("ZOO_GRADEBOOK_URL")
        unset = next(pool.results([("d", ("d", "ZOO_GRADEBOOK_URL"))], task=_environment))
    assert before.notes == ["1536"]
    assert [r.notes for r in after] == [["3072"], ["postgresql:///other"]]  # the same worker, a new value
    assert unset.notes == ["<unset>"]


def test_tasks_start_in_the_order_given():
    calls = [(f"t{i}", (f"t{i}", None, 0.5)) for i in range(6)]
    with LocalPool(2) as pool:
        results = list(pool.results(calls, task=_report))
    # each task records when it began; with 2 workers and tasks of 0.5 s, task i begins in round i // 2
    began = {r.student: r.seconds for r in results}
    order = sorted(began, key=began.get)
    assert [int(name[1:]) // 2 for name in order] == [0, 0, 1, 1, 2, 2], order


def test_a_caller_that_stops_reading_leaves_no_worker_running():
    """What Ctrl-C does to a batch: the generator is closed while a worker is busy for a minute."""
    pool = LocalPool(2)
    results = pool.results([("quick", ("quick",)), ("slow", ("slow", None, 60.0)), ("later", ("later",))],
                           task=_report)
    assert next(results).student == "quick"
    processes = [slot[0] for slot in pool._slots if slot is not None]
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    started = time.monotonic()
    results.close()  # the busy worker is killed at once; the idle one is told to stop
    pool.close()
    for process in processes:
        process.join(10)
        assert not process.is_alive()
    assert time.monotonic() - started < 30, "the busy worker was waited for instead of stopped"


def test_the_workers_parent_leaves_with_the_batch():
    """The workers' parent holds the batch's standard output and error (it was forked from it), so whoever
    reads them to their end (``subprocess.run(capture_output=True)``, a shell pipe, ``make bench``) waits
    until it has gone too. Its orderly exit, with PyTorch and nbgrader loaded, took 1.6 s after the batch's
    process had ended (measured on this 2-core machine); leaving with ``os._exit`` takes milliseconds."""
    import subprocess

    program = ("import os\nfrom zoograde.batch import LocalPool\n"
               "with LocalPool(1) as pool:\n    print(list(pool.results([('a', ())], task=os.getpid)))\n")
    process = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.wait(timeout=120)
    ended = time.monotonic()
    out, err = process.communicate(timeout=60)  # returns when every holder of the pipes has closed them
    closed = time.monotonic() - ended
    assert process.returncode == 0, err.decode()[-2000:]
    assert out.decode().startswith("[") and out.decode().strip() != "[]"
    assert closed < 0.8, f"the pipes closed {closed:.2f} s after the batch's process ended"
