"""Autograding a class in parallel: ``zoo-grade autograde ASSIGNMENT --workers N``.

Each submission is one task: nbgrader's own ``Autograde`` converter, run for one student
inside a worker process, with the course's ``nbgrader_config.py`` (so every defence of
:mod:`zoograde.execute` and :mod:`zoograde.sanitize` applies). The tasks run:

* with ``workers=N``, on N worker processes of this machine (:class:`LocalPool`), forked from one
  process that has imported nbgrader, PyTorch and the judge once, so that they start at once;
* with ``scheduler="tcp://host:8786"``, on an existing Dask cluster. Its
  workers need this repository installed and the course folder at the same path (a
  shared file system), and the gradebook must be a database server they can all reach
  (``ZOO_GRADEBOOK_URL=postgresql+psycopg2://...``); see the instructor guide.

Nothing is lost when a batch stops halfway. nbgrader writes a student's grades to the
gradebook as soon as that student's notebook is graded, and this module then writes a
marker ``.zoograde/<assignment>/<student>.json`` with a digest of the submission. Running
the same command again skips every submission whose marker matches its current files
and whose grades are in the gradebook, so it grades exactly what is missing or changed.
``force=True`` regrades everything.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from zoograde.course import CourseError, NotReady
from zoograde.sandbox import SandboxUnavailable  # noqa: F401  (raised by autograde; the CLI reports it)

STATE_DIR = ".zoograde"


@dataclass
class SubmissionResult:
    """What grading one submission gave, whichever way it ended: plain data, sent back from the worker."""
    student: str
    status: str = "failed"          # graded, skipped (graded before, unchanged), failed, pending (interrupted)
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class BatchResult:
    assignment: str
    results: list[SubmissionResult] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    interrupted: bool = False
    sandbox: bool = True

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def summary(self) -> str:
        graded = [r for r in self.results if r.status == "graded"]
        lines = [f"{self.assignment}: {len(graded)} graded, {self.count('skipped')} already graded (skipped), "
                 f"{self.count('failed')} failed, in {self.seconds:.1f} s with {self.workers} worker(s)"]
        if graded:
            per = sum(r.seconds for r in graded) / len(graded)
            lines.append(f"  {per:.2f} s of work per notebook on average; "
                         f"{self.seconds / len(graded):.2f} s of wall time per graded notebook")
        for r in sorted(self.results, key=lambda r: r.student):
            if r.status == "failed":
                lines.append(f"  FAILED {r.student}: {r.error}")
            elif r.status == "graded" and r.notes:
                lines.append(f"  {r.student} ({r.score:g}/{r.max_score:g}): " + " | ".join(r.notes)[:400])
        if not self.sandbox:
            lines.append("WARNING: graded WITHOUT the OS sandbox (--no-sandbox): the notebooks ran with the grader's "
                         "access to this machine; use this for trusted code only")
        if self.interrupted:
            lines.append(f"interrupted: the grades above are saved; run the same command again to grade the "
                         f"{self.count('pending')} submission(s) left")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# The course

def load_config(course: Path, overrides: dict | None = None):
    """The course's nbgrader_config.py as a traitlets Config, with ``{"Class": {"trait": value}}`` overrides."""
    from zoograde.course import load_config as course_config

    config = course_config(course)
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            config[section][key] = value
    return config


def submission_digest(folder: Path) -> str:
    """Digest of every file a student handed in for one assignment (names and contents)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".previous" not in p.parts):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def marker_path(course: Path, assignment: str, student: str) -> Path:
    return course / STATE_DIR / assignment / f"{student}.json"


def _gradebook_url(config) -> str:
    return config.CourseDirectory.db_url


def graded_in_gradebook(db_url: str, assignment: str) -> set[str]:
    """Students whose submission of ``assignment`` has an autograde score for every test cell."""
    from nbgrader.api import Gradebook, MissingEntry

    done = set()
    with Gradebook(db_url) as gb:
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return done
        for submission in submissions:
            grades = [g for nb in submission.notebooks for g in nb.grades if g.cell_type == "code"]
            if grades and all(g.auto_score is not None for g in grades):
                done.add(submission.student_id)
    return done


# ---------------------------------------------------------------------------------------------------
# One submission (runs in a worker process)

def grade_one(course: str, assignment: str, student: str, overrides: dict, digest: str) -> SubmissionResult:
    """Autograde one student's submission with nbgrader; never raises (a failure is a result)."""
    started = time.monotonic()
    result = SubmissionResult(student)
    log_text = io.StringIO()
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy session chatter from nbgrader.api
    try:
        from nbgrader.api import Gradebook
        from nbgrader.converters import Autograde
        from nbgrader.coursedir import CourseDirectory
        from zoograde import reuse

        reuse.install()  # one database engine and one schema check per worker, not per notebook
        course_path = Path(course)
        config = load_config(course_path, overrides)
        logger = logging.getLogger(f"zoograde.{assignment}.{student}")
        handler = logging.StreamHandler(log_text)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.handlers[:] = [handler]
        logger.setLevel(logging.WARNING)
        logger.propagate = False
        coursedir = CourseDirectory(config=config, log=logger)
        coursedir.root = str(course_path)
        coursedir.assignment_id = assignment
        coursedir.student_id = student
        converter = Autograde(coursedir=coursedir, config=config, log=logger)
        converter.force = True
        converter.create_student = True
        converter.start()
        with Gradebook(coursedir.db_url) as gb:
            submission = gb.find_submission(assignment, student)
            result.score, result.max_score = float(submission.score), float(submission.max_score)
        # the grader's notes, from where no kernel can write (a .zoograde-*.json in the student's folder is ignored)
        from zoograde.execute import NOTES_DIR

        for notes in sorted((course_path / NOTES_DIR / assignment / student).glob("*.json")):
            try:
                result.notes += [str(n) for n in json.loads(notes.read_text()).get("notes", [])]
            except (OSError, ValueError, AttributeError) as error:
                result.notes.append(f"the grader's notes could not be read ({type(error).__name__})")
        result.status = "graded"
        marker = marker_path(course_path, assignment, student)
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"digest": digest, "score": result.score, "max_score": result.max_score,
                                   "notes": result.notes, "graded_at": time.time()}, indent=1))
        os.replace(tmp, marker)  # atomic: a marker exists only for grades already in the gradebook
    except BaseException as error:  # noqa: BLE001  (one student's failure must not stop the class)
        if isinstance(error, KeyboardInterrupt):
            raise
        lines = [l for l in log_text.getvalue().splitlines() if "ERROR" in l or "Error" in l]
        result.error = f"{type(error).__name__}: {error}" + (f" ({lines[-1].strip()[:300]})" if lines else "")
    result.seconds = round(time.monotonic() - started, 2)
    return result


# ---------------------------------------------------------------------------------------------------
# The batch

def plan(course: Path, assignment: str, students: list[str] | None, force: bool, config) -> tuple[list, list]:
    """(tasks to run as (student, digest), results of submissions skipped as already graded)."""
    folder = course / "submitted"
    found = sorted(p.parent.name for p in folder.glob(f"*/{assignment}") if p.is_dir()) if folder.is_dir() else []
    if students:
        unknown = sorted(set(students) - set(found))
        if unknown:
            raise CourseError(f"no submission of {assignment} for: {', '.join(unknown)} (looked in {folder})")
        found = [s for s in found if s in set(students)]
    in_gradebook = set() if force else graded_in_gradebook(_gradebook_url(config), assignment)
    tasks, skipped = [], []
    for student in found:
        digest = submission_digest(folder / student / assignment)
        marker = marker_path(course, assignment, student)
        if not force and student in in_gradebook and marker.exists():
            try:
                saved = json.loads(marker.read_text())
            except (OSError, ValueError):
                saved = {}
            if saved.get("digest") == digest:
                skipped.append(SubmissionResult(student, "skipped", saved.get("score", 0.0), saved.get("max_score", 0.0),
                                                notes=saved.get("notes", [])))
                continue
        tasks.append((student, digest))
    return tasks, skipped


def autograde(course, assignment: str, students: list[str] | None = None, workers: int = 2,
              scheduler=None, force: bool = False, time_limit: float | None = None,
              memory_limit_mb: int | None = None, progress: bool = True, sandbox: bool = True,
              audit: bool = True) -> BatchResult:
    """Grade every submission of ``assignment`` that is not graded yet; see the module's docstring.

    ``scheduler`` is a Dask scheduler's address, a ``distributed.Client``, or a :class:`LocalPool` to
    reuse for several assignments in a row; without one, ``workers`` local processes are started.
    ``sandbox=False`` runs the notebooks without the OS sandbox (trusted code only); with it,
    a machine that cannot sandbox raises :class:`SandboxUnavailable` before anything runs.
    ``audit=False`` leaves out the in-process audit hook (used to test that the sandbox holds alone).
    """
    course = Path(course).resolve()
    prepare_workers(course, assignment, workers, scheduler)
    try:
        return _autograde(course, assignment, students, workers, scheduler, force, time_limit, memory_limit_mb,
                          progress, sandbox, audit)
    finally:
        release_unused_workers()  # the workers' parent, if nothing came of it


def _autograde(course: Path, assignment: str, students, workers: int, scheduler, force: bool, time_limit,
               memory_limit_mb, progress: bool, sandbox: bool, audit: bool) -> BatchResult:
    overrides: dict = {"GuardedExecute": {"sandbox": bool(sandbox)}}
    if not audit:
        overrides["GuardedExecute"]["audit"] = False
    if sandbox:
        from zoograde import sandbox as os_sandbox

        os_sandbox.check()
    if time_limit is not None:
        overrides.setdefault("GuardedExecute", {})["notebook_timeout"] = float(time_limit)
    if memory_limit_mb is not None:
        overrides.setdefault("GuardedExecute", {})["memory_limit_mb"] = int(memory_limit_mb)
    config = load_config(course, overrides)
    _check_released(config, assignment)
    tasks, skipped = plan(course, assignment, students, force, config)
    batch = BatchResult(assignment, results=list(skipped), workers=1 if scheduler is None and workers <= 1 else workers,
                        sandbox=bool(sandbox))
    started = time.monotonic()
    bar = _progress(len(tasks) + len(skipped), len(skipped), assignment, progress)
    pending = {student for student, _ in tasks}
    try:
        for result in _run(course, assignment, tasks, overrides, workers, scheduler, batch):
            pending.discard(result.student)
            batch.results.append(result)
            if bar is not None:
                bar.set_postfix_str(f"{result.student}: {result.status}", refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        batch.interrupted = True
        batch.results += [SubmissionResult(s, "pending") for s in sorted(pending)]
    finally:
        if bar is not None:
            bar.close()
        batch.seconds = round(time.monotonic() - started, 2)
    return batch


def prepare_workers(course: Path, assignment: str, workers: int = 2, scheduler=None) -> None:
    """Start the local workers' parent, if this batch will have local workers and something to grade: it
    imports for about 5 s on one core while the caller reads the course and the gradebook."""
    if scheduler is None and workers > 1 and any((Path(course) / "submitted").glob(f"*/{assignment}")):
        LocalPool.prepare()


def release_unused_workers() -> None:
    """Stop the workers' parent that :func:`prepare_workers` started if no worker came of it (see
    :meth:`LocalPool.release_unused`); :func:`autograde` does this itself when it ends."""
    LocalPool.release_unused()


def _check_released(config, assignment: str) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(_gradebook_url(config)) as gb:
            gb.find_assignment(assignment)
    except MissingEntry:
        raise NotReady(f"{assignment} is not in the gradebook: release it first "
                         f"(zoo-grade release {assignment}, or nbgrader generate_assignment {assignment})") from None


def _progress(total: int, done: int, assignment: str, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=f"autograde {assignment}", unit="nb", file=sys.stderr,
                dynamic_ncols=True)


def _share_fork_server(course: Path, overrides: dict) -> None:
    """Start the kernels' fork server here, once for all local workers (each would start its own)."""
    from zoograde import forkserver
    from zoograde.execute import GuardedExecute

    config = load_config(course, overrides)
    executor = GuardedExecute(config=config)
    if not executor.prewarm:
        return
    import tempfile

    # workers wait until it is ready; a server still running from an earlier batch of this process is reused
    os.environ[forkserver.SHARED] = forkserver.start(executor._kernel_env(tempfile.gettempdir()),
                                                     sandboxed=executor.sandbox)


def _run(course: Path, assignment: str, tasks: list, overrides: dict, workers: int, scheduler,
         batch: BatchResult):
    """Yield results as they complete."""
    if not tasks:
        return
    if scheduler is None and workers <= 1:
        for student, digest in tasks:
            yield grade_one(str(course), assignment, student, overrides, digest)
        return
    from zoograde import forkserver

    # nbgrader's workers run `alembic` (the gradebook's migrations) from the PATH: this interpreter's
    here = os.path.dirname(sys.executable)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != here:
        os.environ["PATH"] = os.pathsep.join([here, os.environ.get("PATH", "")])
    # the shared server is this batch's: programs started later from this process must not inherit it
    previous_server = os.environ.get(forkserver.SHARED)
    try:
        if scheduler is None or isinstance(scheduler, LocalPool):
            with contextlib.ExitStack() as stack:
                pool = scheduler if scheduler is not None else stack.enter_context(LocalPool(workers))
                batch.workers = pool.workers
                # local workers share one kernel fork server, started here while the workers' parent
                # (started by prepare_workers) imports; its socket reaches them in the environment each task
                # carries (LocalPool.results)
                _share_fork_server(course, overrides)
                yield from pool.results([(student, (str(course), assignment, student, overrides, digest))
                                         for student, digest in tasks])
        else:
            yield from _run_on_dask(course, assignment, tasks, overrides, workers, scheduler, batch)
    finally:
        if previous_server is None:
            os.environ.pop(forkserver.SHARED, None)
        else:
            os.environ[forkserver.SHARED] = previous_server


def _run_on_dask(course: Path, assignment: str, tasks: list, overrides: dict, workers: int, scheduler,
                 batch: BatchResult):
    """The same tasks on a Dask cluster: a scheduler's address, or a ``distributed.Client``."""
    from distributed import Client, as_completed

    own_client = not hasattr(scheduler, "submit")
    client = Client(scheduler) if own_client else scheduler
    batch.workers = len(client.scheduler_info().get("workers", {})) or workers
    try:
        futures = [client.submit(grade_one, str(course), assignment, student, overrides, digest, pure=False,
                                 key=f"zoograde-{assignment}-{student}-{digest[:12]}")
                   for student, digest in tasks]
        by_student = {f.key: s for f, (s, _) in zip(futures, tasks)}
        try:
            for future in as_completed(futures):
                if future.status == "finished":
                    yield future.result()
                else:  # a worker died under the task: report it, the rest goes on
                    yield SubmissionResult(by_student[future.key],
                                           error=f"the grading worker failed: {future.exception()!r}")
        except (KeyboardInterrupt, GeneratorExit):
            client.cancel(futures)
            raise
    finally:
        if own_client:
            client.close()


# ---------------------------------------------------------------------------------------------------
# Local workers

# What the workers' parent imports before it forks them: nbgrader with its converters and gradebook,
# zoograde.execute, the judge with PyTorch, and the judge's tracer warmed once (zoograde._preload).
PRELOAD = ["zoograde._preload"]


class LocalPool:
    """``workers`` grading processes on this machine, reusable for several batches.

    They are forked by multiprocessing's fork server, which imports :data:`PRELOAD` once: each
    worker starts with nbgrader, PyTorch and the judge already imported, instead of importing
    them itself (about 5 s of CPU per process) as a freshly started interpreter would. Tasks go
    out in the order given, one per idle worker. A worker that dies under a task (never a
    student's code: that runs in a sandboxed kernel) fails that task only, and a new one is forked
    in its place. Results travel between the grader's own processes, never from a kernel. A task
    runs with the caller's environment as it was when the task was sent (the course's limits and
    gradebook URL come from it), not with that of whoever first started the workers' parent.

    As with any multiprocessing pool that does not fork the caller, a script that grades with it
    must keep its own work under ``if __name__ == "__main__":``: each worker imports the script.
    """

    def __init__(self, workers: int = 2):
        self.workers = max(1, int(workers))
        self._context = self._forkserver_context()
        self._slots: list = [None] * self.workers

    @staticmethod
    def _forkserver_context():
        import multiprocessing

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)  # read when the fork server starts, once per process
        return context

    # the workers' parent that prepare() started and that no worker has come from yet (release_unused)
    _unused_parent: int | None = None

    @classmethod
    def prepare(cls) -> None:
        """Start the workers' parent now, without waiting: it imports while the caller goes on."""
        from multiprocessing import forkserver as mp_forkserver

        cls._forkserver_context()
        before = getattr(mp_forkserver._forkserver, "_forkserver_pid", None)
        mp_forkserver.ensure_running()
        after = getattr(mp_forkserver._forkserver, "_forkserver_pid", None)
        if after is not None and after != before:
            LocalPool._unused_parent = after

    @classmethod
    def release_unused(cls) -> None:
        """Stop the workers' parent if prepare() started it and no worker came of it (nothing to grade, or an
        error first). Left alone, it goes on importing for seconds after this process has ended, with this
        process's stdout and stderr open: whoever reads them to the end (a pipe, a CI log) waits for it."""
        from multiprocessing import forkserver as mp_forkserver

        pid, LocalPool._unused_parent = LocalPool._unused_parent, None
        server = mp_forkserver._forkserver
        if pid is None or getattr(server, "_forkserver_pid", None) != pid:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        stop = getattr(server, "_stop", None)  # closes its pipe, reaps it, removes its socket (Python 3.8-3.13)
        if stop is not None:
            with contextlib.suppress(OSError):
                stop()

    def __enter__(self) -> "LocalPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close(kill=exc[0] is not None)

    def _start(self, index: int):
        LocalPool._unused_parent = None  # a worker comes of it now: it stays up for the next ones
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_pool_worker, args=(child,), name=f"zoograde-worker-{index}",
                                        daemon=True)
        process.start()
        child.close()
        self._slots[index] = (process, parent)
        return self._slots[index]

    def results(self, calls: list, task=None):
        """Run ``(student, arguments)`` calls of ``task`` (an importable function; default: grading one
        submission); yield each SubmissionResult as it completes."""
        task = task or grade_one
        from collections import deque
        from multiprocessing.connection import wait

        queue, busy = deque(calls), {}
        try:
            while queue or busy:
                for index in range(self.workers):
                    if index not in busy and queue:
                        process, conn = self._slots[index] or self._start(index)
                        student, arguments = queue.popleft()
                        # the caller's environment now: the workers' parent is started once per process, with
                        # the environment of that moment, and the course's config reads limits and the gradebook
                        # URL from it (ZOOGRADE_MEMORY_LIMIT, ZOO_GRADEBOOK_URL)
                        call = (task, arguments, dict(os.environ))
                        try:
                            conn.send(call)
                        except OSError:  # it died while idle: a new one takes the task
                            process, conn = self._start(index)
                            conn.send(call)
                        busy[index] = student
                waiting = {}
                for index in busy:
                    process, conn = self._slots[index]
                    waiting[conn] = waiting[process.sentinel] = index
                for ready in wait(list(waiting)):
                    index = waiting[ready]
                    if index not in busy:
                        continue
                    process, conn = self._slots[index]
                    try:
                        result = conn.recv() if conn.poll() else None
                    except (EOFError, OSError):
                        result = None
                    if result is None:  # the worker is gone: this task fails, the rest goes on
                        if process.is_alive() and ready is conn:
                            continue
                        process.join(1)
                        result = SubmissionResult(busy[index], error=f"the grading worker died "
                                                  f"(exit status {process.exitcode}) while grading this submission")
                        conn.close()
                        self._slots[index] = None
                    del busy[index]
                    yield result
        except BaseException:  # Ctrl-C, or the caller stopped reading: the tasks under way are abandoned
            for index in busy:
                self._kill(index)
            raise

    def _kill(self, index: int) -> None:
        slot, self._slots[index] = self._slots[index], None
        if slot is not None:
            process, conn = slot
            process.kill()
            process.join(5)
            conn.close()

    def close(self, kill: bool = False) -> None:
        for index, slot in enumerate(self._slots):
            if slot is None:
                continue
            process, conn = slot
            if not kill:
                try:
                    conn.send(None)
                    process.join(30)
                except OSError:
                    pass
            if process.is_alive():
                self._kill(index)
            else:
                conn.close()
                self._slots[index] = None


def _pool_worker(conn) -> None:
    """One local worker: grade what the pool sends until it sends None."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle: it stops the workers
    while True:
        try:
            call = conn.recv()
        except (EOFError, OSError):
            return
        if call is None:
            return
        task, arguments, environ = call
        os.environ.clear()
        os.environ.update(environ)
        conn.send(task(*arguments))
