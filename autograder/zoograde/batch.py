"""Autograding a class in parallel: ``zoo-grade autograde ASSIGNMENT --workers N``.

Each submission is one task: nbgrader's own ``Autograde`` converter, run for one student
inside a worker process, with the course's ``nbgrader_config.py`` (so every defence of
:mod:`zoograde.execute` and :mod:`zoograde.sanitize` applies). The tasks run on Dask:

* ``workers=N`` starts a local cluster of N single-threaded worker processes;
* ``scheduler="tcp://host:8786"`` sends the same tasks to an existing Dask cluster. Its
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

import hashlib
import io
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from zoograde.course import CourseError, NotReady
from zoograde.sandbox import SandboxUnavailable  # noqa: F401  (raised by autograde; the CLI reports it)

STATE_DIR = ".zoograde"
# Dask's workers sample their own stacks every 10 ms and check the event loop every 20 ms: about a tenth
# of two cores while grading (measured: 20 notebooks took 48.6 s with them, 43.5 s without).
QUIET_DASK = {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False", "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s"}


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
            lines.append(f"  {per:.1f} s of work per notebook on average; "
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

    ``scheduler`` is a Dask scheduler's address, or a ``distributed.Client`` to reuse (for
    several assignments in a row); without one, ``workers`` local processes are started.
    ``sandbox=False`` runs the notebooks without the OS sandbox (trusted code only); with it,
    a machine that cannot sandbox raises :class:`SandboxUnavailable` before anything runs.
    ``audit=False`` leaves out the in-process audit hook (used to test that the sandbox holds alone).
    """
    course = Path(course).resolve()
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


def _run(course: Path, assignment: str, tasks: list, overrides: dict, workers: int, scheduler: str | None,
         batch: BatchResult):
    """Yield results as they complete."""
    if not tasks:
        return
    if scheduler is None and workers <= 1:
        for student, digest in tasks:
            yield grade_one(str(course), assignment, student, overrides, digest)
        return
    from distributed import Client, LocalCluster, as_completed

    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    os.environ.update(QUIET_DASK)  # read by the worker processes as they start
    cluster = None
    own_client = not hasattr(scheduler, "submit")
    from zoograde import forkserver

    # the shared server is this batch's: programs started later from this process must not inherit it
    previous_server = os.environ.get(forkserver.SHARED)
    if scheduler is None:  # local workers share one fork server, started while the cluster starts
        _share_fork_server(course, overrides)
    if not own_client:
        client = scheduler
        batch.workers = len(client.scheduler_info().get("workers", {})) or workers
    elif scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        client = Client(scheduler)
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
        if cluster is not None:
            cluster.close()
        if previous_server is None:
            os.environ.pop(forkserver.SHARED, None)
        else:
            os.environ[forkserver.SHARED] = previous_server
