"""The instructor's commands behind ``zoo-grade``: release, collect, feedback, export, report.

Everything works on a course folder, the folder that holds ``nbgrader_config.py`` (by default
``autograder/``). nbgrader runs in-process through :class:`nbgrader.apps.NbGraderAPI`, configured
by the course's own ``nbgrader_config.py``. What the commands write for the instructor goes to
``<course>/exports/``:

- ``release.zip``: one student notebook per assignment, for the LMS;
- ``collect-<assignment>.csv``: what ``collect`` did with every file it was given;
- ``grades.csv`` and ``grades-max.csv``: the gradebook, one row per student, and the points
  each column is out of;
- ``report-<assignment>/``: ``summary.md`` and ``histograms.png``.

Nothing the students handed in is ever deleted: a replaced submission moves to
``submitted/<student>/<assignment>/.previous/``.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import re
import shutil
import statistics
import stat
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

CONFIG_FILE = "nbgrader_config.py"
STUDENT_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")   # [A-Za-z0-9._-]+, but never '.', '..' or hidden
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"                  # what nbgrader's exchange writes; parse_utc reads it
LEAK_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "### BEGIN SOLUTION", "### END SOLUTION")
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini", ".ipynb_checkpoints")


class CourseError(Exception):
    """Bad input from the instructor: a missing course, an unknown assignment, an unusable SOURCE."""


class NotReady(Exception):
    """A command that needs an earlier step (a gradebook, a released assignment) that has not happened."""


# ---------------------------------------------------------------------------------------------
# the course folder and nbgrader


def find_course(explicit: str | os.PathLike | None = None) -> Path:
    """The course folder: ``explicit``, else the working directory if it holds nbgrader_config.py,
    else the ``autograder/`` folder this package lives in."""
    if explicit is not None:
        course = Path(explicit).expanduser().resolve()
        if not (course / CONFIG_FILE).is_file():
            raise CourseError(f"{course} is not a course folder: it has no {CONFIG_FILE}")
        return course
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise CourseError(f"no {CONFIG_FILE} in the working directory or in {Path(__file__).resolve().parents[1]}: "
                      "pass --course DIR")


def _tools_on_path() -> None:
    """nbgrader runs ``alembic`` (from the environment's bin folder) when it creates a gradebook."""
    if shutil.which("alembic") is None:
        os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


def load_config(course: Path):
    """The traitlets Config of the course's nbgrader_config.py (which calls ``get_config()``)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()
    config.CourseDirectory.root = str(course)   # the file says so too; this holds for a copied course
    return config


def nbgrader_api(course: Path):
    from nbgrader.apps import NbGraderAPI

    _tools_on_path()
    return NbGraderAPI(config=load_config(course))


def gradebook(course: Path, must_exist: bool = True):
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    _tools_on_path()
    coursedir = CourseDirectory(config=load_config(course))
    url = coursedir.db_url
    if must_exist:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
                and not Path(parsed.database).exists():
            raise NotReady(f"no gradebook yet ({parsed.database}): release and autograde first")
    return Gradebook(url, coursedir.course_id)


def assignment_names(course: Path) -> list[str]:
    """Every assignment in ``source/`` (a folder holding at least one notebook)."""
    source = course / "source"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) if source.is_dir() else []


def check_assignment(course: Path, name: str) -> str:
    known = assignment_names(course)
    if name not in known:
        raise CourseError(f"unknown assignment {name!r}; the course has: {', '.join(known) or 'none'}")
    return name


def check_student_id(student: str) -> str:
    if not STUDENT_ID.fullmatch(student):
        raise CourseError(f"{student!r} is not a valid student id (letters, digits, '.', '_', '-'; "
                          "not starting with '.')")
    return student


def _log_tail(result: dict, lines: int = 15) -> str:
    text = (result.get("error") or "") + "\n" + (result.get("log") or "")
    return "\n".join(l for l in text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# release


@dataclass
class ReleaseResult:
    zip_path: Path | None
    released: list[str]
    members: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def release(course: Path, names: list[str] | None = None) -> ReleaseResult:
    """``nbgrader generate_assignment --force`` for each assignment, then ``exports/release.zip``.

    The zip holds ``<assignment>.ipynb`` for every assignment, flat, and any other file of
    ``release/<assignment>/`` under ``<assignment>/``. It is not written if a generate step
    fails or a released notebook still carries a solution or hidden-test marker.
    """
    names = [check_assignment(course, n) for n in (names or assignment_names(course))]
    if not names:
        raise CourseError(f"no assignments in {course / 'source'}")
    api = nbgrader_api(course)
    result = ReleaseResult(None, names)
    members: list[tuple[str, Path]] = []
    for name in names:
        outcome = api.generate_assignment(name, force=True, create=True)
        if not outcome["success"]:
            result.problems.append(f"{name}: nbgrader generate_assignment failed:\n{_log_tail(outcome)}")
            continue
        folder = course / "release" / name
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder)
            if any(part in JUNK or part == "__pycache__" for part in rel.parts):
                continue
            if path.suffix == ".ipynb":
                text = path.read_text(encoding="utf-8")
                leaks = [m for m in LEAK_MARKERS if m in text]
                if leaks:
                    result.problems.append(f"{name}: {rel} still contains {', '.join(leaks)}")
            arcname = f"{name}.ipynb" if rel.as_posix() == f"{name}.ipynb" else f"{name}/{rel.as_posix()}"
            members.append((arcname, path))
        if f"{name}.ipynb" not in [a for a, _ in members]:
            result.problems.append(f"{name}: generate_assignment wrote no release/{name}/{name}.ipynb")
    if result.problems:
        return result
    exports = course / "exports"
    exports.mkdir(exist_ok=True)
    target = exports / "release.zip"
    tmp = target.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, path in members:
            zf.write(path, arcname)
    os.replace(tmp, target)
    result.zip_path, result.members = target, [a for a, _ in members]
    return result


# ---------------------------------------------------------------------------------------------
# collect

COLLECT_HELP = """\
SOURCE is a folder or a .zip (e.g. an LMS's "download all submissions"). Accepted layouts:

  one file per student        <student_id>.ipynb
                              <student_id>_<anything>.ipynb   (LMS names; Canvas:
                              smithjane_12345_67890_04_inception.ipynb -> smithjane)
  one folder per student      <student_id>/<anything>.ipynb   (exactly one notebook)

By default the student id is the folder name (second layout) or the file name up to its first
'_' (first layout). --pattern REGEX overrides this: it is searched in the path relative to SOURCE
(e.g. 'smithjane_12345_67890_04_inception.ipynb' or 'Jane Smith_12345_assignsubmission_file_/
nb.ipynb') and its named group 'student' is the id, e.g. --pattern '_(?P<student>\\d+)_'.
Student ids must match [A-Za-z0-9._-]+ and may not start with '.'.

Each notebook becomes submitted/<student>/ASSIGNMENT/ASSIGNMENT.ipynb with a timestamp.txt (the
zip entry's time, read as local time, or the file's modification time; --times CSV gives the
LMS's own times instead), which nbgrader uses for late penalties. Canvas marks a late file's
name (name_LATE_id_...): the report says when that mark and the due date in nbgrader_config.py
disagree. A student's earlier submission is replaced only if the new file differs, and is
kept as submitted/<student>/ASSIGNMENT/.previous/<timestamp>.ipynb (reported if the new file
is not newer). Two notebooks for one student: the newest is collected, the other reported.

Reported, never copied: names without a valid student id, non-notebook files, files over
--max-mb, zip entries with absolute paths or '..', nested zips, entries that cannot be read.
Copied anyway, but reported: empty files and files that are not notebook JSON (the autograder
grades them as empty submissions). OS clutter (__MACOSX/, .DS_Store, hidden files) is ignored.
The report goes to <course>/exports/collect-ASSIGNMENT.csv (file, student, status, message);
the exit status is 1 if any file needs a look, or if the zip is corrupt."""

# statuses: the first four need nothing from the instructor
OK_STATUSES = ("collected", "replaced", "unchanged", "ignored")
ATTENTION_STATUSES = ("replaced-older", "empty", "unreadable", "superseded", "bad-name", "not-a-notebook", "too-large",
                      "unsafe-path", "nested-zip", "corrupt", "corrupt-zip", "no-notebooks")


@dataclass
class CollectRow:
    file: str
    student: str
    status: str
    message: str = ""

    @property
    def attention(self) -> bool:
        return self.status not in OK_STATUSES


@dataclass
class CollectResult:
    assignment: str
    rows: list[CollectRow]
    report_path: Path

    @property
    def attention(self) -> list[CollectRow]:
        return [r for r in self.rows if r.attention]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)


@dataclass
class _Entry:
    path: str                      # relative to SOURCE, '/'-separated
    size: int
    time: dt.datetime              # aware, UTC
    read: Callable[[int], bytes]   # read(limit): at most limit bytes


def _unsafe(name: str) -> bool:
    parts = re.split(r"[\\/]+", name)
    return (name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None
            or any(p == ".." for p in parts))


def _zip_entries(path: Path, rows: list[CollectRow]) -> Iterator[_Entry]:
    fallback = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            if _unsafe(info.filename):
                rows.append(CollectRow(info.filename, "", "unsafe-path",
                                       "absolute path or '..' in a zip entry: skipped, nothing written"))
                continue
            try:
                time = dt.datetime(*info.date_time).astimezone(dt.timezone.utc)   # zip times are local times
            except ValueError:
                time = fallback

            def read(limit: int, info=info) -> bytes:
                with zf.open(info) as fh:
                    return fh.read(limit)
            yield _Entry(info.filename.replace("\\", "/"), info.file_size, time, read)


def _folder_entries(root: Path, rows: list[CollectRow]) -> Iterator[_Entry]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode):
                rows.append(CollectRow(rel, "", "unsafe-path", "not a regular file (a link?): skipped"))
                continue

            def read(limit: int, path=path) -> bytes:
                with path.open("rb") as fh:
                    return fh.read(limit)
            yield _Entry(rel, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc), read)


def _student_of(rel: str, pattern: re.Pattern | None) -> tuple[str | None, str]:
    """(student id, '') or (None, why not)."""
    parts = PurePosixPath(rel).parts
    if pattern is not None:
        m = pattern.search(rel)
        if not m or not m.group("student"):
            return None, f"--pattern {pattern.pattern!r} does not match"
        student = m.group("student")
    elif len(parts) == 1:
        student = PurePosixPath(rel).stem.split("_")[0]
    elif len(parts) == 2:
        student = parts[0]
    else:
        return None, "nested deeper than <student>/<notebook>.ipynb (use --pattern)"
    if not STUDENT_ID.fullmatch(student):
        return None, f"{student!r} is not a valid student id (letters, digits, '.', '_', '-')"
    return student, ""


def _is_notebook(data: bytes) -> bool:
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(nb, dict) and isinstance(nb.get("cells"), list) and isinstance(nb.get("nbformat"), int)


def _stamp_for_name(time: dt.datetime) -> str:
    return time.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%fZ")


def _existing_time(folder: Path, notebook: Path) -> dt.datetime:
    stamp = folder / "timestamp.txt"
    if stamp.is_file():
        try:
            from nbgrader.utils import parse_utc

            return parse_utc(stamp.read_text().strip()).replace(tzinfo=dt.timezone.utc)
        except (ValueError, OverflowError, TypeError):
            pass
    return dt.datetime.fromtimestamp(notebook.stat().st_mtime, dt.timezone.utc)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _store(course: Path, assignment: str, student: str, data: bytes, time: dt.datetime) -> tuple[str, str]:
    """Write one submission; (status, message)."""
    folder = course / "submitted" / student / assignment
    target = folder / f"{assignment}.ipynb"
    message = ""
    if target.exists():
        if target.read_bytes() == data:
            return "unchanged", "identical to the submission already collected"
        old_time = _existing_time(folder, target)
        previous = folder / ".previous"
        previous.mkdir(exist_ok=True)
        keep = previous / f"{_stamp_for_name(old_time)}.ipynb"
        n = 1
        while keep.exists() and keep.read_bytes() != target.read_bytes():
            keep, n = previous / f"{_stamp_for_name(old_time)}-{n}.ipynb", n + 1
        os.replace(target, keep)
        message = f"earlier submission kept as {keep.relative_to(course).as_posix()}"
        status = "replaced"
        if time <= old_time:
            status = "replaced-older"
            message += (f"; this file ({time:%Y-%m-%d %H:%M} UTC) is not newer than the one it replaced "
                        f"({old_time:%Y-%m-%d %H:%M} UTC): check that it is the right one (zoo-grade autograde "
                        "regrades it; plain nbgrader autograde only with --force)")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        status = "collected"
    _write_atomic(target, data)
    (folder / "timestamp.txt").write_text(time.astimezone(dt.timezone.utc).strftime(TIMESTAMP_FORMAT))
    return status, message


def collect(course: Path, assignment: str, source: str | os.PathLike, pattern: str | None = None,
            max_mb: float = 20, times: str | os.PathLike | None = None) -> CollectResult:
    """Copy students' notebooks from a folder or zip into ``submitted/``; see :data:`COLLECT_HELP`.

    ``times``: a CSV of submission times from the LMS (zoograde.deadlines.read_times), which
    take the place of the files' own times."""
    check_assignment(course, assignment)
    if times is not None:
        from .deadlines import read_times

        submitted_at = read_times(course, Path(times).expanduser())
    else:
        submitted_at = {}
    source = Path(source).expanduser()
    regex = compile_pattern(pattern) if pattern is not None else None
    if max_mb <= 0:
        raise CourseError("--max-mb must be positive")
    if not source.exists():
        raise CourseError(f"SOURCE {source} does not exist")
    is_zip = source.is_file() and (source.suffix.lower() == ".zip" or zipfile.is_zipfile(source))
    if not source.is_dir() and not is_zip:
        raise CourseError(f"SOURCE {source} is neither a folder nor a .zip")
    limit = int(max_mb * 1024 * 1024)
    rows: list[CollectRow] = []
    candidates: dict[str, list[tuple[_Entry, bytes, str, str]]] = {}
    entries = _zip_entries(source, rows) if is_zip else _folder_entries(source, rows)
    try:
        for entry in entries:
            name = PurePosixPath(entry.path).name
            parts = PurePosixPath(entry.path).parts
            if any(p in JUNK or p.startswith(".") for p in parts):
                rows.append(CollectRow(entry.path, "", "ignored", "operating-system clutter or hidden file"))
                continue
            if name.lower().endswith(".zip"):
                rows.append(CollectRow(entry.path, "", "nested-zip", "a zip inside SOURCE: unpack it and collect "
                                                                     "it separately"))
                continue
            if not name.lower().endswith(".ipynb"):
                student, _ = _student_of(entry.path, regex)
                rows.append(CollectRow(entry.path, student or "", "not-a-notebook", "not an .ipynb file: skipped"))
                continue
            student, why = _student_of(entry.path, regex)
            if student is None:
                rows.append(CollectRow(entry.path, "", "bad-name", f"{why}: skipped"))
                continue
            if entry.size > limit:
                rows.append(CollectRow(entry.path, student, "too-large",
                                       f"{entry.size / 2**20:.1f} MB is over --max-mb {max_mb:g}: nothing copied"))
                continue
            try:
                data = entry.read(limit + 1)
            except Exception as exc:   # noqa: BLE001 - BadZipFile, zlib.error, OSError...: never crash on one entry
                rows.append(CollectRow(entry.path, student, "corrupt", f"cannot be read ({exc}): nothing copied"))
                continue
            if len(data) > limit:
                rows.append(CollectRow(entry.path, student, "too-large",
                                       f"over --max-mb {max_mb:g}: nothing copied"))
                continue
            if not data.strip():
                kind, msg = "empty", "empty file: copied, it will be graded as an empty submission"
            elif not _is_notebook(data):
                kind, msg = "unreadable", "not valid notebook JSON: copied, it will be graded as an empty submission"
            else:
                kind, msg = "ok", ""
            candidates.setdefault(student, []).append((entry, data, kind, msg))
    except zipfile.BadZipFile as exc:
        rows.append(CollectRow(source.name, "", "corrupt-zip", f"not a readable zip ({exc}): nothing collected"))
        return _finish(course, assignment, rows)

    for student, items in sorted(candidates.items()):
        items.sort(key=lambda item: (item[0].time, item[0].path))
        *older, (entry, data, kind, msg) = items
        for other, *_ in older:
            rows.append(CollectRow(other.path, student, "superseded",
                                   f"{student} has a newer notebook, {entry.path}: this one was not collected"))
        status, store_msg = _store(course, assignment, student, data, submitted_at.get(student, entry.time))
        if status == "unchanged":
            msg = f"{store_msg} ({msg.split(':')[0]})" if kind != "ok" else store_msg
        else:
            if kind != "ok":
                status = kind
            msg = "; ".join(m for m in (msg, store_msg) if m)
        rows.append(CollectRow(entry.path, student, status, msg))
    if not candidates and not any(r.status == "corrupt-zip" for r in rows):
        rows.append(CollectRow(str(source), "", "no-notebooks", "no student notebook found in SOURCE"))
    return _finish(course, assignment, rows)


def _finish(course: Path, assignment: str, rows: list[CollectRow]) -> CollectResult:
    from .deadlines import annotate_collect

    annotate_collect(course, assignment, rows)   # how late, by the course's policy; the LMS's own late mark
    exports = course / "exports"
    exports.mkdir(exist_ok=True)
    report = exports / f"collect-{assignment}.csv"
    with report.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "student", "status", "message"])
        for row in rows:
            writer.writerow([row.file, row.student, row.status, row.message])
    return CollectResult(assignment, rows, report)


def compile_pattern(pattern: str) -> re.Pattern:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise CourseError(f"--pattern {pattern!r} is not a regular expression: {exc}") from None
    if "student" not in regex.groupindex:
        raise CourseError(f"--pattern {pattern!r} needs a named group 'student', e.g. '^(?P<student>[^_]+)_'")
    return regex


# ---------------------------------------------------------------------------------------------
# feedback


@dataclass
class FeedbackResult:
    files: list[Path]
    folder: Path
    problems: list[str]


def feedback(course: Path, assignment: str, students: list[str] | None = None) -> FeedbackResult:
    """``nbgrader generate_feedback ASSIGNMENT --force`` (for some students, or all autograded ones)."""
    check_assignment(course, assignment)
    for s in students or []:
        check_student_id(s)
    autograded = course / "autograded"
    graded = sorted(p.parent.name for p in autograded.glob(f"*/{assignment}") if p.is_dir())
    problems = []
    if students:
        missing = [s for s in students if s not in graded]
        problems += [f"{s}: no autograded submission of {assignment}" for s in missing]
        targets = [s for s in students if s in graded]
    else:
        targets = graded
        if not graded:
            problems.append(f"no autograded submissions of {assignment}: run `zoo-grade autograde {assignment}` first")
    api = nbgrader_api(course) if targets else None
    if students:
        for s in targets:
            outcome = api.generate_feedback(assignment, student_id=s, force=True)
            if not outcome["success"]:
                problems.append(f"{s}: nbgrader generate_feedback failed:\n{_log_tail(outcome)}")
    elif targets:
        outcome = api.generate_feedback(assignment, force=True)
        if not outcome["success"]:
            problems.append(f"nbgrader generate_feedback failed:\n{_log_tail(outcome)}")
    files = [p for s in targets for p in sorted((course / "feedback" / s / assignment).glob("*.html"))]
    return FeedbackResult(files, course / "feedback", problems)


# ---------------------------------------------------------------------------------------------
# export


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    x = float(x)
    return str(int(x)) if x.is_integer() else format(x, ".10g")


def _cell_order(course: Path, assignment: str, notebook: str) -> list[str]:
    """grade_ids in the order of the source notebook (the gradebook does not keep an order)."""
    path = course / "source" / assignment / f"{notebook}.ipynb"
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.get("cells", [])]


@dataclass
class Column:
    assignment: str
    notebook: str
    cell: str
    max_score: float
    name: str


def _columns(course: Path, assignment) -> list[Column]:
    cols = []
    several = len(assignment.notebooks) > 1
    for nb in assignment.notebooks:
        order = _cell_order(course, assignment.name, nb.name)
        cells = sorted(nb.grade_cells + nb.task_cells,
                       key=lambda c: (order.index(c.name) if c.name in order else len(order), c.name))
        for c in cells:
            name = f"{assignment.name}/{nb.name}/{c.name}" if several else f"{assignment.name}/{c.name}"
            cols.append(Column(assignment.name, nb.name, c.name, float(c.max_score), name))
    return cols


def _scores(submission) -> dict[tuple[str, str], float]:
    """(notebook, cell) -> score of one SubmittedAssignment (manual score if set, else auto score)."""
    return {(nb.name, g.name): float(g.score) for nb in submission.notebooks for g in nb.grades}


@dataclass
class ExportResult:
    path: Path
    max_path: Path
    students: int
    assignments: list[str]
    header: list[str]


def export(course: Path, output: str | os.PathLike | None = None) -> ExportResult:
    """The gradebook as one CSV row per student, and the max points in ``<output stem>-max.csv``.

    Columns: ``student_id``; per assignment (in the gradebook's order: due date, then name)
    one column per graded cell ``<assignment>/<grade_id>`` (in notebook order),
    ``<assignment>/late_penalty`` (points taken off by the late policy) and
    ``<assignment>/total`` (the cells less the penalty); then ``total`` and ``max_total``. A student without a submission
    for an assignment has empty cells there; ``total`` counts only what was submitted.
    The companion file has the same columns and one row, ``student_id`` = ``max_points``.
    """
    from nbgrader.api import MissingEntry

    path = Path(output).expanduser() if output else course / "exports" / "grades.csv"
    max_path = path.with_name(f"{path.stem}-max{path.suffix or '.csv'}")
    with gradebook(course) as gb:
        assignments = gb.assignments
        plan = [(a.name, _columns(course, a)) for a in assignments]
        header = ["student_id"]
        for name, cols in plan:
            header += [c.name for c in cols] + [f"{name}/late_penalty", f"{name}/total"]
        header += ["total", "max_total"]
        max_total = sum(c.max_score for _, cols in plan for c in cols)
        rows = []
        for student in sorted(gb.students, key=lambda s: s.id):
            row, total = [student.id], 0.0
            for name, cols in plan:
                try:
                    submission = gb.find_submission(name, student.id)
                except MissingEntry:
                    row += [""] * (len(cols) + 2)
                    continue
                scores = _scores(submission)
                values = [scores.get((c.notebook, c.cell)) for c in cols]
                penalty = float(submission.late_submission_penalty or 0)   # zoograde.deadlines' policy
                subtotal = sum(v for v in values if v is not None) - penalty
                row += [_fmt(v) for v in values] + [_fmt(penalty), _fmt(subtotal)]
                total += subtotal
            rows.append(row + [_fmt(total), _fmt(max_total)])
        max_row = ["max_points"]
        for name, cols in plan:
            max_row += [_fmt(c.max_score) for c in cols] + ["", _fmt(sum(c.max_score for c in cols))]
        max_row += [_fmt(max_total), _fmt(max_total)]
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, body in ((path, rows), (max_path, [max_row])):
        with target.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(body)
    return ExportResult(path, max_path, len(rows), [name for name, _ in plan], header)


# ---------------------------------------------------------------------------------------------
# report


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
        cols = _columns(course, a)
        per_cell: dict[tuple[str, str], list[float]] = {(c.notebook, c.cell): [] for c in cols}
        totals, graded, ungraded = [], 0, 0
        for sub in a.submissions:
            grades = [g for nb in sub.notebooks for g in nb.grades]
            if not any(g.auto_score is not None or g.manual_score is not None for g in grades):
                ungraded += 1
                continue
            graded += 1
            scores = _scores(sub)
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
