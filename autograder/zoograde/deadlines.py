"""Due dates and the late policy, in one place: ``c.DeadlinePolicy.assignments`` in nbgrader_config.py.

    c.DeadlinePolicy.timezone = "Europe/Berlin"          # for dates written without an offset
    c.DeadlinePolicy.assignments = {
        "04_inception": {
            "due": "2026-03-06 23:59",
            "penalty_per_day": 0.10,     # a tenth of the score per day or part of a day late
            "max_penalty": 0.50,         # never more than half of the score
            "extensions": {"alice": "2026-03-09 23:59", "bob": 2},   # a new due date, or days
        },
    }

nbgrader applies it during ``autograde`` (``zoo-grade autograde`` and plain ``nbgrader
autograde`` alike), through its own hooks:

- :class:`SyncDeadlines`, a preprocessor placed before nbgrader's ``AssignLatePenalties``,
  writes the due date into the gradebook's assignment and the student's extension into the
  gradebook's submission, so that nbgrader computes ``total_seconds_late`` itself from the
  submission's ``timestamp.txt``;
- :class:`DeadlinePolicy`, a subclass of nbgrader's ``LateSubmissionPlugin``, turns those
  seconds into a penalty: ``score * min(max_penalty, penalty_per_day * days)``, where
  ``days`` counts every started day (one second late is one day);
- :class:`ExplainLatePenalty`, a feedback preprocessor, puts a cell at the top of the
  feedback that says when the notebook was submitted, how late, and what the penalty is.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict, Unicode

DAY = 86400.0
KEYS = {"due", "penalty_per_day", "max_penalty", "extensions"}


class PolicyError(ValueError):
    """A late policy in nbgrader_config.py that cannot be applied; the message says which entry."""


@dataclass
class Rule:
    assignment: str
    due: dt.datetime                               # aware, UTC
    per_day: float = 0.0
    cap: float = 1.0
    extensions: dict[str, dt.datetime] = field(default_factory=dict)   # student -> their own due date (UTC)

    def due_for(self, student: str) -> dt.datetime:
        return self.extensions.get(student, self.due)

    def extension(self, student: str) -> dt.timedelta | None:
        """nbgrader's form: the time added to the assignment's due date (None: no extension)."""
        return self.extensions[student] - self.due if student in self.extensions else None

    def days_late(self, seconds_late: float) -> int:
        return math.ceil(seconds_late / DAY - 1e-9) if seconds_late > 0 else 0

    def fraction(self, seconds_late: float) -> float:
        return min(self.cap, self.per_day * self.days_late(seconds_late))

    def penalty(self, score: float, seconds_late: float) -> float:
        return score * self.fraction(seconds_late)


def _when(value, zone: dt.tzinfo, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    else:
        try:
            when = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise PolicyError(f"{where}: {value!r} is not a date and time (write e.g. '2026-03-06 23:59' "
                              "or '2026-03-06T23:59:00+01:00')") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.astimezone(dt.timezone.utc)


def _fraction(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise PolicyError(f"{where} must be a number from 0 to 1 (a share of the score), not {value!r}")
    return float(value)


def parse_policy(assignments: dict, timezone: str = "UTC") -> dict[str, Rule]:
    """``c.DeadlinePolicy.assignments`` as Rules; a PolicyError names the first bad entry."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"c.DeadlinePolicy.timezone: unknown time zone {timezone!r} (e.g. 'Europe/Berlin')") from None
    rules = {}
    for name, entry in (assignments or {}).items():
        where = f"c.DeadlinePolicy.assignments[{name!r}]"
        if not isinstance(entry, dict) or "due" not in entry:
            raise PolicyError(f"{where} must be a dict with at least 'due'")
        unknown = set(entry) - KEYS
        if unknown:
            raise PolicyError(f"{where}: unknown key(s) {sorted(unknown)}; the keys are {sorted(KEYS)}")
        due = _when(entry["due"], zone, f"{where}['due']")
        per_day = _fraction(entry.get("penalty_per_day", 0.0), f"{where}['penalty_per_day']")
        cap = _fraction(entry.get("max_penalty", 1.0), f"{where}['max_penalty']")
        extensions = {}
        for student, ext in (entry.get("extensions") or {}).items():
            at = f"{where}['extensions'][{student!r}]"
            if isinstance(ext, (int, float)) and not isinstance(ext, bool):
                if ext < 0:
                    raise PolicyError(f"{at}: an extension of {ext} days is negative")
                extensions[student] = due + dt.timedelta(days=ext)
            else:
                extensions[student] = _when(ext, zone, at)
                if extensions[student] < due:
                    raise PolicyError(f"{at}: {ext!r} is before the assignment's due date")
        rules[name] = Rule(name, due, per_day, cap, extensions)
    return rules


def _naive_utc(when: dt.datetime) -> dt.datetime:
    """nbgrader's gradebook keeps naive UTC datetimes."""
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None)


class DeadlinePolicy(LateSubmissionPlugin):
    """The course's due dates and late penalties (see the module's docstring)."""

    assignments = Dict(help="assignment -> {'due', 'penalty_per_day', 'max_penalty', 'extensions'}").tag(config=True)
    timezone = Unicode("UTC", help="time zone of the dates written without an offset").tag(config=True)

    def rules(self) -> dict[str, Rule]:
        return parse_policy(self.assignments, self.timezone)

    def rule(self, assignment: str | None) -> Rule | None:
        return self.rules().get(assignment) if assignment else None

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float):
        # AssignLatePenalties creates the plugin with parent=itself, which knows the assignment
        rule = self.rule(getattr(self.parent, "assignment_id", None))
        if rule is None:        # a due date set some other way (nbgrader db assignment add --duedate)
            return super().late_submission_penalty(student_id, score, total_seconds_late)
        penalty = rule.penalty(score, total_seconds_late)
        self.log.warning("%s is %.0f s late (%d day(s)): penalty %.4g of %.4g points", student_id,
                         total_seconds_late, rule.days_late(total_seconds_late), penalty, score)
        return penalty


def sync_submission(gb, rule: Rule, student: str) -> None:
    """Write the rule's due date and the student's extension into nbgrader's gradebook."""
    assignment = gb.find_assignment(rule.assignment)
    if assignment.duedate != _naive_utc(rule.due):
        assignment.duedate = _naive_utc(rule.due)
    submission = gb.find_submission(rule.assignment, student)
    submission.extension = rule.extension(student)
    gb.db.commit()


class SyncDeadlines(NbGraderPreprocessor):
    """Before nbgrader's AssignLatePenalties: the policy's due date and extension into the gradebook."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        rule = DeadlinePolicy(config=self.config).rule(info["assignment"])
        if rule is not None:
            with Gradebook(info["db_url"]) as gb:
                sync_submission(gb, rule, info["student"])
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


def _span(seconds: float) -> str:
    days, rest = divmod(int(round(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days} day{'s' * (days != 1)}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes and not days else []
    return " ".join(parts) or f"{int(seconds)} s"


def explanation(rule: Rule | None, student: str, submitted: dt.datetime, seconds_late: float, score: float,
                penalty: float) -> str:
    """What the feedback says about a late submission (markdown)."""
    stamp = submitted.replace(tzinfo=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"**Late submission.** Submitted {stamp}, {_span(seconds_late)} after the deadline"
    if rule is None:
        return text + f". Late penalty: {penalty:g} points."
    due = rule.due_for(student).strftime("%Y-%m-%d %H:%M UTC")
    text += f" ({due}{', your extended deadline' if student in rule.extensions else ''}). "
    days = rule.days_late(seconds_late)
    text += (f"The course's policy takes {rule.per_day:.0%} of the score per day or part of a day late, "
             f"at most {rule.cap:.0%}: {days} day{'s' * (days != 1)} late, so {rule.fraction(seconds_late):.0%} "
             f"of your {score:g} points, a penalty of **{penalty:g} points**.")
    return text


class ExplainLatePenalty(NbGraderPreprocessor):
    """Feedback: a first cell that states a late submission's penalty and how it was computed."""

    def preprocess(self, nb, resources):
        import nbformat
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        try:
            with Gradebook(info["db_url"]) as gb:
                submission = gb.find_submission(info["assignment"], info["student"])
                notebook = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                seconds, timestamp = submission.total_seconds_late, submission.timestamp
                penalty, score = notebook.late_submission_penalty or 0.0, notebook.score
        except MissingEntry:
            return nb, resources
        if seconds <= 0 or timestamp is None:
            return nb, resources
        try:
            rule = DeadlinePolicy(config=self.config).rule(info["assignment"])
        except PolicyError:
            rule = None
        cell = nbformat.v4.new_markdown_cell(explanation(rule, info["student"], timestamp, seconds, score, penalty))
        cell.metadata["zoograde"] = {"late_penalty": penalty}
        nb.cells.insert(0, cell)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


def reapply(gb, config, assignment: str, student: str) -> None:
    """Recompute a submission's late penalties after its scores changed outside a grading run (a regrade)."""
    plugin = DeadlinePolicy(config=config)
    rule = plugin.rule(assignment)
    submission = gb.find_submission(assignment, student)
    seconds = submission.total_seconds_late
    for notebook in submission.notebooks:
        if seconds <= 0:
            notebook.late_submission_penalty = None
        elif rule is not None:
            notebook.late_submission_penalty = min(max(rule.penalty(notebook.score, seconds), 0.0), notebook.score)
    gb.db.commit()


# ---------------------------------------------------------------------------------------------
# collect: how late each collected submission is, and what the LMS said


def read_times(course, path) -> dict[str, dt.datetime]:
    """student -> submission time, from a CSV with the columns ``student`` and ``submitted_at``.

    Build it from the LMS's own record when its download does not carry the times (Canvas's
    zip names carry only a LATE mark): e.g. the ``submitted_at`` of Canvas's submissions API,
    or Moodle's grading worksheet. Times are ISO 8601 (``2026-03-08T00:59:00Z``); without an
    offset they are in ``c.DeadlinePolicy.timezone``.
    """
    import csv

    from .course import CourseError, load_config

    zone = ZoneInfo(DeadlinePolicy(config=load_config(course)).timezone)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not {"student", "submitted_at"} <= set(reader.fieldnames or []):
                raise CourseError(f"--times {path}: needs the columns 'student' and 'submitted_at' "
                                  f"(it has: {', '.join(reader.fieldnames or []) or 'none'})")
            out = {}
            for n, row in enumerate(reader, 2):
                if not (row["student"] or "").strip():
                    continue
                try:
                    out[row["student"].strip()] = _when(row["submitted_at"], zone, f"--times {path}, line {n}")
                except PolicyError as exc:
                    raise CourseError(str(exc)) from None
            return out
    except FileNotFoundError:
        raise CourseError(f"--times {path}: no such file") from None


def lms_late_flag(path: str) -> bool:
    """Canvas's "download submissions" marks a late file's name: ``smithjane_LATE_12345_67890_nb.ipynb``."""
    name = path.rsplit("/", 1)[-1]
    return "_LATE_" in name or name.startswith("LATE_")


def lateness(course, assignment: str, student: str, rule: Rule | None) -> float | None:
    """Seconds late of a collected submission, by ``rule`` and its timestamp.txt; None without either."""
    from nbgrader.utils import parse_utc

    stamp = course / "submitted" / student / assignment / "timestamp.txt"
    if rule is None or not stamp.is_file():
        return None
    submitted = parse_utc(stamp.read_text().strip()).replace(tzinfo=dt.timezone.utc)
    return max(0.0, (submitted - rule.due_for(student)).total_seconds())


def annotate_collect(course, assignment: str, rows) -> None:
    """Add to each collected row how late it is by the policy, and any disagreement with the LMS's late mark."""
    from .course import load_config

    written = ("collected", "replaced", "replaced-older", "unchanged", "empty", "unreadable")
    if not any(row.status in written for row in rows):
        return
    try:
        rule, problem = DeadlinePolicy(config=load_config(course)).rule(assignment), ""
    except PolicyError as exc:
        rule, problem = None, f"late policy not applied: {exc}"
    for row in rows:
        if row.status not in written or not row.student:
            continue
        seconds = lateness(course, assignment, row.student, rule)
        flagged = lms_late_flag(row.file)
        notes = [problem] if problem else []
        if seconds:
            notes.append(f"late by {_span(seconds)}: {rule.fraction(seconds):.0%} penalty when graded")
        elif seconds is not None and flagged:
            notes.append("the LMS marks it LATE but its time is before the deadline: check timestamp.txt")
        elif seconds is None and flagged:
            notes.append("the LMS marks it LATE (no due date for this assignment in nbgrader_config.py)")
        if notes:
            row.message = "; ".join(m for m in (row.message, *notes) if m)
