"""``zoo-grade export --lms canvas|moodle --roster FILE``: the grades as the LMS's import CSV.

One column per assignment, holding the assignment's total as nbgrader computes it (manual
scores and extra credit included) less its late penalty. Students are matched to the LMS
through a roster CSV: one row per student, a column with zoo-grade's student id (``--id-column``,
by default ``student_id``) and the LMS's own columns. The simplest roster is the LMS's own
gradebook export, whose header already has the names below.

- **Canvas** (Grades > Import): ``Student, ID, SIS User ID, SIS Login ID, Section``, then one
  column per assignment. A column named ``<assignment> (<canvas id>)`` in the roster (as in
  Canvas's export) is reused, so the grades go to that Canvas assignment; otherwise the column
  is the assignment's name and Canvas offers to create it. The second row is Canvas's
  ``Points Possible``.
- **Moodle** (Grades > Import > CSV file): ``ID number`` and ``Email address`` (map either to
  the user's ``idnumber``/``email`` in the import's "Map from/Map to"), ``First name``,
  ``Last name``, then one column per grade item.

Nothing is dropped silently: a roster student without a submission gets an empty cell (the
LMS leaves it unchanged), a gradebook student missing from the roster is not written (the LMS
could not place them), and both are listed on stderr and in ``<output>-problems.txt``.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .course import CourseError, gradebook
from .export import format_score

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["ID number", "Email address", "First name", "Last name"]
# roster header (lower case, spaces and underscores ignored) -> the LMS column it fills
ALIASES = {
    "student": "Student", "name": "Student", "fullname": "Student",
    "id": "ID", "canvasid": "ID", "canvasuserid": "ID",
    "sisuserid": "SIS User ID", "sisloginid": "SIS Login ID", "login": "SIS Login ID",
    "section": "Section",
    "idnumber": "ID number", "email": "Email address", "emailaddress": "Email address",
    "firstname": "First name", "lastname": "Last name", "surname": "Last name",
}
LMS = ("canvas", "moodle")


def _key(header: str) -> str:
    return re.sub(r"[\s_]+", "", header.strip().lower())


@dataclass
class LmsExport:
    lms: str
    path: Path
    problems_path: Path
    header: list[str]
    rows: int
    missing: list[str] = field(default_factory=list)     # on the roster, some assignment not submitted
    unknown: list[str] = field(default_factory=list)     # in the gradebook, not on the roster

    @property
    def problems(self) -> list[str]:
        return self.missing + self.unknown


def read_roster(path: Path, id_column: str) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of the roster; Canvas's 'Points Possible' row and blank rows are skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CourseError(f"--roster {path}: no such file") from None
    except UnicodeDecodeError:
        raise CourseError(f"--roster {path}: not UTF-8 text (save it as CSV UTF-8)") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    if id_column not in header:
        raise CourseError(f"--roster {path}: no column {id_column!r} holding zoo-grade's student ids "
                          f"(its columns: {', '.join(header) or 'none'}); name it with --id-column")
    rows = []
    for row in reader:
        first = (row.get(header[0]) or "").strip()
        if "points possible" in first.lower() or not any((v or "").strip() for v in row.values()):
            continue
        rows.append({k: (v or "").strip() for k, v in row.items() if k is not None})
    return header, rows


def _assignment_columns(names: list[str], roster_header: list[str]) -> dict[str, str]:
    """assignment -> its column: the roster's ``<assignment> (<id>)`` when Canvas's export named one."""
    out = {}
    for name in names:
        match = [h for h in roster_header if re.fullmatch(re.escape(name) + r"\s*\(\d+\)", h.strip())]
        out[name] = match[0].strip() if match else name
    return out


def export_lms(course: Path, lms: str, roster: str | os.PathLike, output: str | os.PathLike | None = None,
               id_column: str = "student_id", assignments: list[str] | None = None) -> LmsExport:
    from nbgrader.api import MissingEntry

    if lms not in LMS:
        raise CourseError(f"--lms must be one of {', '.join(LMS)}, not {lms!r}")
    roster_header, people = read_roster(Path(roster).expanduser(), id_column)
    fields = {_key(h): h for h in roster_header}
    lms_columns = CANVAS_COLUMNS if lms == "canvas" else MOODLE_COLUMNS
    source_of = {}
    for column in lms_columns:    # the roster's column for each LMS column: its own name, else an alias
        if _key(column) in fields:
            source_of[column] = fields[_key(column)]
        else:
            aliases = [h for k, h in fields.items() if ALIASES.get(k) == column and h != id_column]
            if aliases:
                source_of[column] = aliases[0]
    if lms == "moodle" and not ({"ID number", "Email address"} & set(source_of)):
        raise CourseError(f"--roster {roster}: Moodle matches students by 'ID number' or 'Email address', and "
                          "the roster has neither column")
    if lms == "canvas" and not ({"ID", "SIS User ID", "SIS Login ID"} & set(source_of)):
        raise CourseError(f"--roster {roster}: Canvas matches students by 'ID', 'SIS User ID' or 'SIS Login ID', "
                          "and the roster has none of them")

    path = Path(output).expanduser() if output else course / "exports" / f"{lms}-grades.csv"
    problems_path = path.with_name(f"{path.stem}-problems.txt")
    missing, unknown = [], []
    chosen = assignments
    with gradebook(course) as gb:
        known = [a.name for a in gb.assignments]
        unknown_names = [a for a in chosen or [] if a not in known]
        if unknown_names:
            raise CourseError(f"--assignment {', '.join(unknown_names)}: not in the gradebook, which has: "
                              f"{', '.join(known) or 'none'}")
        assignments = [a for a in known if not chosen or a in chosen]
        max_points = {a.name: float(a.max_score) for a in gb.assignments}
        columns = _assignment_columns(assignments, roster_header)
        totals: dict[str, dict[str, float]] = {}
        for student in gb.students:
            for name in assignments:
                try:
                    sub = gb.find_submission(name, student.id)
                except MissingEntry:
                    continue
                totals.setdefault(student.id, {})[name] = float(sub.score) - float(sub.late_submission_penalty or 0)
        gradebook_ids = sorted(s.id for s in gb.students)
    on_roster = [p[id_column] for p in people]
    dupes = sorted({i for i in on_roster if on_roster.count(i) > 1})
    if dupes:
        raise CourseError(f"--roster {roster}: student id(s) listed more than once: {', '.join(dupes)}")
    header = lms_columns + [columns[a] for a in assignments]
    rows = []
    for person in people:
        sid = person[id_column]
        scores = totals.get(sid, {})
        row = [person.get(source_of[c], "") if c in source_of else "" for c in lms_columns]
        if lms == "canvas" and not row[0]:
            row[0] = sid
        row += [format_score(scores.get(a)) for a in assignments]
        gaps = [a for a in assignments if a not in scores]
        if gaps:
            why = "is not in the gradebook" if sid not in gradebook_ids else "has no submission of " + ", ".join(gaps)
            missing.append(f"missing: {sid} is on the roster but {why}: left empty")
        rows.append(row)
    roster_ids = set(on_roster)
    for sid in gradebook_ids:
        if sid not in roster_ids:
            got = ", ".join(f"{a} {format_score(v)}" for a, v in totals.get(sid, {}).items()) or "no submissions"
            unknown.append(f"unknown: {sid} is in the gradebook but not on the roster ({got}): not written")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        if lms == "canvas":
            writer.writerow(["Points Possible"] + [""] * (len(lms_columns) - 1) +
                            [format_score(max_points[a]) for a in assignments])
        writer.writerows(rows)
    problems_path.write_text("".join(f"{p}\n" for p in missing + unknown) or "no problems\n")
    return LmsExport(lms, path, problems_path, header, len(rows), missing, unknown)
