"""``zoo-grade collect``: an LMS's download of submissions into nbgrader's ``submitted/`` folder.

What it did with every file it was given goes to ``<course>/exports/collect-<assignment>.csv``.
Nothing the students handed in is ever deleted: a replaced submission moves to
``submitted/<student>/<assignment>/.previous/``.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from .course import STUDENT_ID, TIMESTAMP_FORMAT, JUNK, CourseError, check_assignment


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


