"""What the instructor's commands behind ``zoo-grade`` share, and the two thin ones: release and
feedback. The others have a module each: :mod:`zoograde.collect`, :mod:`zoograde.export`,
:mod:`zoograde.report`.

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

import os
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

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


