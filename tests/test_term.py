"""A term's deadlines, regrades and LMS exports, graded for real on one course copy.

The late policy sits in the course's nbgrader_config.py (``c.DeadlinePolicy``), and nbgrader
applies it while it autogrades. Four students hand in ``04_inception`` at known times: on
time, a day and two hours late, nine days late (past the cap) and two days late with a
three-day extension. Every expected penalty is derived here from the policy's definition:
``score * min(max_penalty, penalty_per_day * started days late)``.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import warnings
from pathlib import Path

import pytest

from zoograde import cli, synthetic
from zoograde.coursekit import copy_course, write_submission
from zoograde import course as zc

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

ROOT = Path(__file__).resolve().parents[1]
A = "04_inception"
DUE = dt.datetime(2026, 3, 6, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=1)))   # Berlin in winter
PER_DAY, CAP, EXTENSION_DAYS = 0.15, 0.40, 3
POLICY = f'''
c.DeadlinePolicy.timezone = "Europe/Berlin"
c.DeadlinePolicy.assignments = {{"{A}": {{"due": "2026-03-06 23:59", "penalty_per_day": {PER_DAY},
                                          "max_penalty": {CAP}, "extensions": {{"kim": {EXTENSION_DAYS}}}}}}}
'''
HANDED_IN = {  # student -> (file name as the LMS names it, submitted at, answers broken)
    "ann": ("ann_LATE_101_201_04_inception.ipynb", DUE - dt.timedelta(hours=1), ()),   # on time, wrongly marked
    "bo": ("bo_102_202_04_inception.ipynb", DUE + dt.timedelta(days=1, hours=2), ()),
    "cat": ("cat_103_203_04_inception.ipynb", DUE + dt.timedelta(days=9), ("aux_loss",)),
    "kim": ("kim_104_204_04_inception.ipynb", DUE + dt.timedelta(days=2), ()),
}
WRONG = {"aux_loss": "def googlenet_loss(outputs, target):\n    return F.cross_entropy(outputs[0], target)\n",
         "inception_macs": "def inception_macs(h, w, c_in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):\n"
                           "    return h * w * c_in * (ch1x1 + ch3x3red + ch5x5red + pool_proj)\n"}


def expected_penalty(score: float, seconds_late: float) -> float:
    days = math.ceil(seconds_late / 86400) if seconds_late > 0 else 0
    return score * min(CAP, PER_DAY * days)


def notebook(broken=()) -> str:
    answers = synthetic.reference_answers()
    answers.update({cell: WRONG[cell] for cell in broken})
    return json.dumps(synthetic.notebook_with(answers))


def run(course: Path, *args: str) -> int:
    return cli.main(["--course", str(course), *args])


def submission(course: Path, student: str):
    """{grade_id: (auto, manual, extra)}, late penalty, seconds late, score (less the penalty)."""
    with warnings.catch_warnings(), zc.gradebook(course) as gb:
        warnings.simplefilter("ignore")
        sub = gb.find_submission(A, student)
        (nb,) = sub.notebooks
        cells = {g.name: (g.auto_score, g.manual_score, g.extra_credit) for g in nb.grades}
        return cells, nb.late_submission_penalty or 0.0, sub.total_seconds_late, float(sub.score) - (
            nb.late_submission_penalty or 0.0)


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("term")
    course = tmp / "course"
    copy_course(ROOT / "autograder", course)
    with (course / "nbgrader_config.py").open("a") as fh:
        fh.write(POLICY)
    assert run(course, "release", A) == 0
    inbox = tmp / "download"
    inbox.mkdir()
    for student, (name, when, broken) in HANDED_IN.items():
        (inbox / name).write_text(notebook(broken))
        os.utime(inbox / name, (when.timestamp(), when.timestamp()))
    # cat's file time is wrong (a re-download, say); the LMS's own record of it is right
    early = (DUE - dt.timedelta(hours=2)).timestamp()
    os.utime(inbox / HANDED_IN["cat"][0], (early, early))
    times = tmp / "times.csv"
    times.write_text(f"student,submitted_at\ncat,{HANDED_IN['cat'][1].astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}\n")
    assert run(course, "collect", A, str(inbox), "--times", str(times)) == 0
    assert run(course, "autograde", A, "--workers", "1", "--no-progress") == 0
    return course


def seconds_late(student: str) -> float:
    _, when, _ = HANDED_IN[student]
    due = DUE + dt.timedelta(days=EXTENSION_DAYS) if student == "kim" else DUE
    return max(0.0, (when - due).total_seconds())


def test_collect_reports_lateness_and_the_lms_mark(term):
    with (term / "exports" / f"collect-{A}.csv").open() as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert "late by 1 day 2 h: 30% penalty when graded" in rows["bo"]["message"]       # 2 started days * 15 %
    assert "late by 9 days: 40% penalty" in rows["cat"]["message"]                     # capped
    assert "late" not in rows["kim"]["message"]                                        # within the extension
    assert "the LMS marks it LATE but its time is before the deadline" in rows["ann"]["message"]
    stamp = (term / "submitted" / "bo" / A / "timestamp.txt").read_text()
    assert stamp == "2026-03-08 00:59:00.000000 UTC"                                   # nbgrader's format, UTC
    # cat's time came from --times, not from the file
    assert (term / "submitted" / "cat" / A / "timestamp.txt").read_text() == "2026-03-15 22:59:00.000000 UTC"
    bad = term.parent / "bad-times.csv"
    bad.write_text("name,when\ncat,yesterday\n")
    assert run(term, "collect", A, str(term.parent / "download"), "--times", str(bad)) == 2   # nothing collected


def test_late_submissions_get_exactly_their_penalty(term):
    for student in HANDED_IN:
        cells, penalty, late, _ = submission(term, student)
        score = sum(auto for auto, _, _ in cells.values())
        assert late == pytest.approx(seconds_late(student)), student
        assert penalty == pytest.approx(expected_penalty(score, seconds_late(student))), student
    # the numbers themselves: full marks 10 for the reference; cat's wrong loss costs its 2 points
    assert submission(term, "bo")[1] == pytest.approx(10 * 0.30)
    assert submission(term, "cat")[1] == pytest.approx(8 * 0.40)


def test_an_extension_removes_the_penalty(term):
    _, penalty, late, score = submission(term, "kim")
    assert penalty == 0 and late == 0 and score == 10
    without = (HANDED_IN["kim"][1] - DUE).total_seconds()          # two days late by the common deadline
    assert expected_penalty(10, without) == pytest.approx(3.0)      # what the extension saved


def test_feedback_states_the_penalty(term):
    assert run(term, "feedback", A) == 0
    page = (term / "feedback" / "bo" / A / f"{A}.html").read_text()
    assert "Late submission." in page and "1 day 2 h after the deadline" in page
    assert "2 days late, so 30% of your 10 points, a penalty of <strong>3 points</strong>" in page
    assert "Late submission penalty (Score: -3" in page                         # nbgrader's own line
    kim = (term / "feedback" / "kim" / A / f"{A}.html").read_text()
    assert "Late submission" not in kim


def test_regrade_one_cell_keeps_manual_scores_and_logs(term):
    with warnings.catch_warnings(), zc.gradebook(term) as gb:          # what an instructor sets in formgrader
        warnings.simplefilter("ignore")
        gb.find_grade("test_inception_macs", A, A, "bo").manual_score = 1.5
        gb.find_grade("test_stage3", A, A, "bo").extra_credit = 0.5
        gb.db.commit()
    cells, penalty, _, total = submission(term, "bo")
    assert total == pytest.approx((1.5 + 4 + 2.5 + 2) * 0.7)
    # bo's file changes in two answers; only the cell asked for is regraded
    write_submission(term, "bo", A, notebook(("aux_loss", "inception_macs")))
    assert run(term, "autograde", A, "--student", "bo", "--cell", "test_aux_loss", "--no-progress",
               "--workers", "1") == 0
    cells, penalty, _, total = submission(term, "bo")
    assert cells["test_aux_loss"][0] == 0                             # regraded: the new answer is wrong
    assert cells["test_inception_macs"] == (2, 1.5, None)             # not regraded; the manual score stays
    assert cells["test_stage3"][2] == 0.5                             # extra credit stays
    assert penalty == pytest.approx(0.30 * (1.5 + 4 + 2.5))           # recomputed on the new score
    (entry,) = [json.loads(l) for l in (term / "exports" / "regrade-log.jsonl").read_text().splitlines()]
    assert entry["student"] == "bo" and entry["cell"] == "test_aux_loss"
    assert entry["before"]["test_aux_loss"] == 2 and entry["after"]["test_aux_loss"] == 0
    assert entry["before"]["test_inception_macs"] == entry["after"]["test_inception_macs"] == 1.5
    assert entry["total_before"] == pytest.approx(10 * 0.7) and entry["total_after"] == pytest.approx(total)
    assert entry["kept"] == ["test_inception_macs", "test_stage3"]
    dt.datetime.fromisoformat(entry["time"])
    # a whole regrade: every cell runs again, and still the manual score and extra credit survive
    assert run(term, "autograde", A, "--student", "bo", "--force", "--no-progress", "--workers", "1") == 0
    cells, _, _, _ = submission(term, "bo")
    assert cells["test_inception_macs"] == (0, 1.5, None) and cells["test_stage3"][2] == 0.5
    assert len((term / "exports" / "regrade-log.jsonl").read_text().splitlines()) == 2
    # an unknown cell is a usage error, and nothing is graded
    assert run(term, "autograde", A, "--student", "bo", "--cell", "test_nothing") == 2


# ---------------------------------------------------------------------------------------------
# LMS exports. Canvas: "How do I import grades in the Gradebook?" (Canvas Instructor Guide,
# community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807)
# and its gradebook export: the first columns are Student, ID, SIS User ID, SIS Login ID, Section,
# then one column per assignment, "<name> (<assignment id>)" for an existing one; a second row
# "Points Possible". Moodle: "Grade import" (docs.moodle.org/en/Grade_import): CSV with a column
# mapped to the user's "ID number" or "Email address" and one column per grade item.


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def net(term: Path, student: str) -> float:
    return submission(term, student)[3]


def add_ghost(term: Path) -> None:
    """A student in the gradebook who is not on the roster."""
    with warnings.catch_warnings(), zc.gradebook(term) as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_student("ghost")


def test_canvas_csv(term, tmp_path, capsys):
    add_ghost(term)
    roster = write_csv(tmp_path / "canvas-export.csv", [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{A} (5551)", "Current Score"],
        ["Points Possible", "", "", "", "", "10", ""],
        ["Ann, A", "11", "S-1", "ann", "Mon", "", ""], ["Bo, B", "12", "S-2", "bo", "Mon", "", ""],
        ["Cat, C", "13", "S-3", "cat", "Tue", "", ""], ["Kim, K", "14", "S-4", "kim", "Tue", "", ""],
        ["Zed, Z", "15", "S-5", "zed", "Tue", "", ""]])                # on the roster, never submitted
    out = tmp_path / "canvas.csv"
    assert run(term, "export", "--lms", "canvas", "--roster", str(roster), "--id-column", "SIS Login ID",
               "--output", str(out)) == 1
    rows = read_csv(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{A} (5551)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "10"]
    body = {r[3]: r for r in rows[2:]}
    assert body["bo"][:5] == ["Bo, B", "12", "S-2", "bo", "Mon"]
    for student in HANDED_IN:
        assert float(body[student][5]) == pytest.approx(net(term, student))   # the total less the penalty
    assert body["zed"][5] == "" and "ghost" not in body
    err = capsys.readouterr().err
    assert "missing: zed is on the roster but is not in the gradebook: left empty" in err
    assert "unknown: ghost is in the gradebook but not on the roster (no submissions): not written" in err
    problems = (tmp_path / "canvas-problems.txt").read_text()
    assert "zed" in problems and "ghost" in problems


def test_moodle_csv(term, tmp_path, capsys):
    add_ghost(term)
    roster = write_csv(tmp_path / "roster.csv", [
        ["student_id", "idnumber", "email", "first name", "last name"],
        *[[s, f"9{i}", f"{s}@uni.example", s.title(), "Doe"] for i, s in enumerate(HANDED_IN)], ])
    out = tmp_path / "moodle.csv"
    assert run(term, "export", "--lms", "moodle", "--roster", str(roster), "--output", str(out)) == 1  # ghost
    rows = read_csv(out)
    assert rows[0] == ["ID number", "Email address", "First name", "Last name", A]
    assert {r[1]: float(r[4]) for r in rows[1:]} == pytest.approx(
        {f"{s}@uni.example": net(term, s) for s in HANDED_IN})
    bad = write_csv(tmp_path / "names-only.csv", [["student_id", "first name"], ["bo", "Bo"]])
    assert run(term, "export", "--lms", "moodle", "--roster", str(bad)) == 2
    assert "'ID number' or 'Email address'" in capsys.readouterr().err
    assert run(term, "export", "--lms", "moodle", "--roster", str(roster), "--assignment", "01_zoo_so_far") == 2
    assert "not in the gradebook" in capsys.readouterr().err               # released here: only 04_inception
    assert run(term, "export", "--lms", "canvas") == 2                      # no roster
    assert run(term, "export", "--lms", "canvas", "--roster", str(roster), "--id-column", "nope") == 2


# ---------------------------------------------------------------------------------------------
# the policy itself, without grading


def test_policy_penalty_counts_started_days_and_caps():
    from zoograde.deadlines import parse_policy

    (rule,) = parse_policy({A: {"due": "2026-03-06T23:59:00+01:00", "penalty_per_day": 0.1,
                                "max_penalty": 0.35, "extensions": {"al": 2, "bea": "2026-03-10 12:00"}}},
                           "Europe/Berlin").values()
    assert rule.due == dt.datetime(2026, 3, 6, 22, 59, tzinfo=dt.timezone.utc)
    for seconds, fraction in ((0, 0), (1, 0.1), (86400, 0.1), (86401, 0.2), (3 * 86400, 0.3), (4 * 86400, 0.35),
                              (30 * 86400, 0.35)):
        assert rule.penalty(8.0, seconds) == pytest.approx(8.0 * fraction), seconds
    assert rule.due_for("al") == rule.due + dt.timedelta(days=2)
    assert rule.due_for("bea") == dt.datetime(2026, 3, 10, 11, 0, tzinfo=dt.timezone.utc)   # Berlin, UTC+1
    assert rule.extension("al") == dt.timedelta(days=2) and rule.extension("cy") is None


@pytest.mark.parametrize("entry, message", [
    ({"due": "next friday"}, r"\['due'\]: 'next friday' is not a date"),
    ({"due": "2026-03-06", "penalty_per_day": 10}, r"penalty_per_day'\] must be a number from 0 to 1"),
    ({"due": "2026-03-06", "extensions": {"al": "2026-03-01"}}, r"\['al'\]: '2026-03-01' is before"),
    ({"due": "2026-03-06", "late": 1}, r"unknown key\(s\) \['late'\]"),
    ({"penalty_per_day": 0.1}, r"must be a dict with at least 'due'"),
])
def test_policy_errors_name_the_entry(entry, message):
    from zoograde.deadlines import PolicyError, parse_policy

    with pytest.raises(PolicyError, match=message):
        parse_policy({A: entry})


def test_autograde_refuses_a_broken_policy(tmp_path, capsys):
    course = tmp_path / "course"
    copy_course(ROOT / "autograder", course)
    with (course / "nbgrader_config.py").open("a") as fh:
        fh.write(f'c.DeadlinePolicy.assignments = {{"{A}": {{"due": "next friday"}}}}\n')
    assert run(course, "autograde", A, "--no-progress") == 1
    assert "nbgrader_config.py: c.DeadlinePolicy.assignments['04_inception']['due']: 'next friday' is not a date" \
        in capsys.readouterr().err
