"""``zoo-grade``, the instructor's command line (zoograde.cli and its command modules).

On temporary copies of ``autograder/``, without running a kernel: grades are put into the
gradebook directly, and the autograde engine is replaced by a fake (its wiring is what is tested).
"""
from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import time
import types
import warnings
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "autograder"
ASSIGNMENTS = sorted(p.name for p in (COURSE / "source").iterdir() if (p / f"{p.name}.ipynb").is_file())
A = "04_inception"

from zoograde import cli, coursekit  # noqa: E402
from zoograde import course as zc  # noqa: E402
from zoograde import report as zreport  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's add_submission


def copy_course(dest: Path) -> Path:
    return coursekit.copy_course(COURSE, dest)


def run(course: Path, *args: str) -> int:
    return cli.main(["--course", str(course), *args])


def test_cells(name: str) -> list[tuple[str, float]]:
    """(grade_id, points) of the graded cells of the source notebook, in order."""
    nb = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
    return [(c.metadata.nbgrader["grade_id"], float(c.metadata.nbgrader["points"])) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")]


test_cells.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("released") / "course")
    assert run(course, "release") == 0
    return course


# ---------------------------------------------------------------------------------------------
# release


def test_release_zip_has_one_student_notebook_per_assignment(released, capsys):
    path = released / "exports" / "release.zip"
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == [f"{a}.ipynb" for a in ASSIGNMENTS]
        for a in ASSIGNMENTS:
            text = zf.read(f"{a}.ipynb").decode()
            source = (COURSE / "source" / a / f"{a}.ipynb").read_text()
            assert "BEGIN HIDDEN TESTS" in source and "### BEGIN SOLUTION" in source   # so the next line can fail
            assert "BEGIN HIDDEN TESTS" not in text and "### BEGIN SOLUTION" not in text, a
            assert "raise NotImplementedError()" in text
            assert text.encode() == (released / "release" / a / f"{a}.ipynb").read_bytes()
            nb = nbformat.reads(text, as_version=4)   # a notebook, with every graded cell still there
            assert [c.metadata.nbgrader["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")] \
                == [g for g, _ in test_cells(a)]


def test_release_one_assignment_with_extra_files(tmp_path, capsys):
    course = copy_course(tmp_path / "course")
    (course / "source" / A / "data").mkdir()
    (course / "source" / A / "data" / "classes.txt").write_text("cat\ndog\n")
    assert run(course, "release", A) == 0
    out = capsys.readouterr().out
    assert str(course / "exports" / "release.zip") in out
    with zipfile.ZipFile(course / "exports" / "release.zip") as zf:
        assert sorted(zf.namelist()) == [f"{A}.ipynb", f"{A}/data/classes.txt"]
        assert zf.read(f"{A}/data/classes.txt") == b"cat\ndog\n"


def test_release_refuses_a_leaking_notebook(tmp_path, monkeypatch, capsys):
    course = copy_course(tmp_path / "course")

    class LeakyAPI:   # a generate step that (wrongly) keeps a solution
        def generate_assignment(self, name, force, create):
            out = course / "release" / name
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.ipynb").write_text((course / "source" / name / f"{name}.ipynb").read_text())
            return {"success": True, "log": ""}

    monkeypatch.setattr(zc, "nbgrader_api", lambda c: LeakyAPI())
    assert run(course, "release", A) == 1
    err = capsys.readouterr().err
    assert "BEGIN SOLUTION" in err and "not written" in err
    assert not (course / "exports" / "release.zip").exists()


def test_usage_errors_exit_2(tmp_path, capsys):
    course = copy_course(tmp_path / "course")
    assert run(course, "release", "99_nothing") == 2
    assert "unknown assignment '99_nothing'" in capsys.readouterr().err
    assert cli.main(["--course", str(tmp_path), "export"]) == 2          # no nbgrader_config.py there
    assert "no nbgrader_config.py" in capsys.readouterr().err
    assert cli.main(["frobnicate"]) == 2
    assert run(course, "collect", A) == 2                                 # SOURCE missing
    assert run(course, "collect", A, str(tmp_path / "nowhere")) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("hi")
    assert run(course, "collect", A, str(tmp_path / "notes.txt")) == 2
    assert "neither a folder nor a .zip" in capsys.readouterr().err
    assert run(course, "collect", A, str(tmp_path), "--pattern", "(?P<id>x)") == 2
    assert "named group 'student'" in capsys.readouterr().err
    assert run(course, "collect", A, str(tmp_path), "--pattern", "(") == 2
    assert run(course, "collect", A, str(tmp_path), "--max-mb", "0") == 2
    assert run(course, "autograde", A, "--workers", "0") == 2
    assert run(course, "autograde", A, "--student", "../etc") == 2
    assert run(course, "feedback", A, "--student", ".hidden") == 2
    assert not (course / "submitted").exists()


def test_default_course(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert zc.find_course() == COURSE                          # the repository's autograder/
    copy = copy_course(tmp_path / "course")
    monkeypatch.chdir(copy)
    assert zc.find_course() == copy                            # the working directory, when it is a course


def test_console_script_help():
    script = Path(sys.executable).parent / "zoo-grade"
    assert script.exists(), "run `.venv/bin/pip install -e . --no-deps` to install the zoo-grade script"
    run_ = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert run_.returncode == 0, run_.stderr
    for command in ("release", "collect", "autograde", "feedback", "export", "report"):
        assert command in run_.stdout
    run_ = subprocess.run([str(script), "collect", "--help"], capture_output=True, text=True, timeout=60)
    assert run_.returncode == 0 and "<student_id>/<anything>.ipynb" in run_.stdout and "--max-mb" in run_.stdout


# ---------------------------------------------------------------------------------------------
# collect


def notebook_bytes(marker: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(f"answer = {marker!r}", id="answer"))   # same bytes every call
    return nbformat.writes(nb).encode()


def collect_csv(course: Path, name: str = A) -> dict[str, tuple[str, str]]:
    with (course / "exports" / f"collect-{name}.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len({r["file"] for r in rows}) == len(rows)
    return {r["file"]: (r["student"], r["status"]) for r in rows}


def submitted(course: Path, student: str) -> Path:
    return coursekit.submission_path(course, student, A)


@pytest.fixture
def berlin_time(monkeypatch):
    """Zip entry times are local times: make 'local' a known zone."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_collect_lms_zip_reports_every_malformed_file(tmp_path, berlin_time, capsys):
    course = copy_course(tmp_path / "course")
    zpath = tmp_path / "canvas.zip"
    big = b'{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}, "pad": "' + b"x" * 3000 + b'"}'
    with zipfile.ZipFile(zpath, "w") as zf:
        def add(name, data, when=(2024, 3, 1, 12, 30, 0)):
            zf.writestr(zipfile.ZipInfo(name, date_time=when), data)
        add("smithjane_12345_67890_04_inception.ipynb", notebook_bytes("jane"))
        add("alice.ipynb", notebook_bytes("alice old"), (2024, 3, 1, 9, 0, 0))
        add("alice_99_04_inception-1.ipynb", notebook_bytes("alice new"), (2024, 3, 2, 9, 0, 0))
        add("bob_1_2_04_inception.ipynb", b"{this is not json")
        add("carol_1_2_04_inception.ipynb", b"")
        add("dave_1_2_04_inception.ipynb", big)
        add("erin_1_2_notes.txt", b"my notes")
        add("frank_1_2_more.zip", b"PK\x03\x04 not really")
        add("../evil.ipynb", notebook_bytes("slip"))
        add("/abs/evil2.ipynb", notebook_bytes("slip"))
        add("bad name!_1.ipynb", notebook_bytes("who"))
        add("a/b/c.ipynb", notebook_bytes("deep"))
        add("__MACOSX/._alice.ipynb", b"\x00\x05")
    before = {p for p in tmp_path.rglob("*")}
    assert run(course, "collect", A, str(zpath), "--max-mb", "0.002") == 1     # 2 KB: dave's 3 KB is too large
    out = capsys.readouterr().out
    # one row per file of the zip above: a table, its rows alike in shape on purpose
    assert collect_csv(course) == {
        "smithjane_12345_67890_04_inception.ipynb": ("smithjane", "collected"),
        "alice_99_04_inception-1.ipynb": ("alice", "collected"),
        "alice.ipynb": ("alice", "superseded"),
        "bob_1_2_04_inception.ipynb": ("bob", "unreadable"),
        "carol_1_2_04_inception.ipynb": ("carol", "empty"),
        "dave_1_2_04_inception.ipynb": ("dave", "too-large"),
        "erin_1_2_notes.txt": ("erin", "not-a-notebook"),
        "frank_1_2_more.zip": ("", "nested-zip"),
        "../evil.ipynb": ("", "unsafe-path"),
        "/abs/evil2.ipynb": ("", "unsafe-path"),
        "bad name!_1.ipynb": ("", "bad-name"),
        "a/b/c.ipynb": ("", "bad-name"),
        "__MACOSX/._alice.ipynb": ("", "ignored"),
    }
    assert "../evil.ipynb" in out and "superseded" in out
    # what was written, and only that
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["alice", "bob", "carol", "smithjane"]
    assert submitted(course, "smithjane").read_bytes() == notebook_bytes("jane")
    assert submitted(course, "alice").read_bytes() == notebook_bytes("alice new")
    assert submitted(course, "bob").read_bytes() == b"{this is not json"      # copied anyway: graded as empty
    assert submitted(course, "carol").read_bytes() == b""
    new = {p for p in tmp_path.rglob("*")} - before
    assert all(course in p.parents for p in new), [p for p in new if course not in p.parents]
    assert not [p for p in tmp_path.rglob("evil*")] and not Path("/abs/evil2.ipynb").exists()
    # the zip entry's local (Berlin, UTC+1 in March) time, as nbgrader reads it
    from nbgrader.utils import parse_utc

    stamp = (course / "submitted" / "alice" / A / "timestamp.txt").read_text()
    assert stamp == "2024-03-02 08:00:00.000000 UTC"
    assert parse_utc(stamp) == dt.datetime(2024, 3, 2, 8, 0)


def test_collect_folder_per_student_and_replacements(tmp_path, capsys):
    course = copy_course(tmp_path / "course")
    src = tmp_path / "downloads"
    for student, files in {"alice": {"mine.ipynb": "a1"}, "bob": {"v1.ipynb": "b1", "v2.ipynb": "b2"},
                           "carol": {"answer.ipynb": "c1", "notes.md": None}}.items():
        (src / student).mkdir(parents=True)
        for name, marker in files.items():
            (src / student / name).write_bytes(notebook_bytes(marker) if marker else b"# notes")
    (src / ".DS_Store").write_bytes(b"junk")
    os.utime(src / "bob" / "v1.ipynb", (1_700_000_000, 1_700_000_000))
    os.utime(src / "bob" / "v2.ipynb", (1_700_000_500, 1_700_000_500))    # the newer one
    assert run(course, "collect", A, str(src)) == 1                       # bob's older one and carol's notes
    assert collect_csv(course) == {
        "alice/mine.ipynb": ("alice", "collected"), "bob/v2.ipynb": ("bob", "collected"),
        "bob/v1.ipynb": ("bob", "superseded"), "carol/answer.ipynb": ("carol", "collected"),
        "carol/notes.md": ("carol", "not-a-notebook"), ".DS_Store": ("", "ignored")}
    assert submitted(course, "bob").read_bytes() == notebook_bytes("b2")
    assert (course / "submitted" / "bob" / A / "timestamp.txt").read_text() == "2023-11-14 22:21:40.000000 UTC"

    # a second download: alice resubmitted, the others did not change
    (src / "bob" / "v1.ipynb").unlink()
    (src / "carol" / "notes.md").unlink()
    (src / "alice" / "mine.ipynb").write_bytes(notebook_bytes("a2"))
    capsys.readouterr()
    assert run(course, "collect", A, str(src)) == 0
    assert collect_csv(course) == {"alice/mine.ipynb": ("alice", "replaced"), "bob/v2.ipynb": ("bob", "unchanged"),
                                   "carol/answer.ipynb": ("carol", "unchanged"), ".DS_Store": ("", "ignored")}
    assert submitted(course, "alice").read_bytes() == notebook_bytes("a2")
    kept = list((course / "submitted" / "alice" / A / ".previous").iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == notebook_bytes("a1")     # nothing lost
    assert not (course / "submitted" / "bob" / A / ".previous").exists()
    # the same files again: nothing changes, nothing more kept
    assert run(course, "collect", A, str(src)) == 0
    assert collect_csv(course)["alice/mine.ipynb"] == ("alice", "unchanged")
    assert len(list((course / "submitted" / "alice" / A / ".previous").iterdir())) == 1
    # an older file replacing a newer one is replaced (nothing lost) but reported
    (src / "alice" / "mine.ipynb").write_bytes(notebook_bytes("a0"))
    os.utime(src / "alice" / "mine.ipynb", (1_600_000_000, 1_600_000_000))
    assert run(course, "collect", A, str(src)) == 1
    assert collect_csv(course)["alice/mine.ipynb"] == ("alice", "replaced-older")
    assert sorted(p.read_bytes() for p in (course / "submitted" / "alice" / A / ".previous").iterdir()) \
        == sorted([notebook_bytes("a1"), notebook_bytes("a2")])


def test_collect_pattern_for_moodle_folders(tmp_path):
    course = copy_course(tmp_path / "course")
    zpath = tmp_path / "moodle.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("Jane Smith_4711_assignsubmission_file_/04_inception.ipynb", notebook_bytes("jane"))
        zf.writestr("Max Mustermann_0815_assignsubmission_file_/x.ipynb", notebook_bytes("max"))
        zf.writestr("Nobody_assignsubmission_file_/x.ipynb", notebook_bytes("?"))
    assert run(course, "collect", A, str(zpath)) == 1      # default rule: the folder name is the id
    assert collect_csv(course) == {
        "Jane Smith_4711_assignsubmission_file_/04_inception.ipynb": ("", "bad-name"),     # a space
        "Max Mustermann_0815_assignsubmission_file_/x.ipynb": ("", "bad-name"),
        "Nobody_assignsubmission_file_/x.ipynb": ("Nobody_assignsubmission_file_", "collected")}
    course = copy_course(tmp_path / "course2")
    assert run(course, "collect", A, str(zpath), "--pattern", r"_(?P<student>\d+)_assignsubmission") == 1
    assert collect_csv(course) == {
        "Jane Smith_4711_assignsubmission_file_/04_inception.ipynb": ("4711", "collected"),
        "Max Mustermann_0815_assignsubmission_file_/x.ipynb": ("0815", "collected"),
        "Nobody_assignsubmission_file_/x.ipynb": ("", "bad-name")}
    assert submitted(course, "0815").read_bytes() == notebook_bytes("max")


def test_collect_corrupt_zips(tmp_path, capsys):
    course = copy_course(tmp_path / "course")
    garbage = tmp_path / "download.zip"
    garbage.write_bytes(b"this is not a zip file at all" * 10)
    assert run(course, "collect", A, str(garbage)) == 1
    assert collect_csv(course) == {"download.zip": ("", "corrupt-zip")}
    assert not (course / "submitted").exists()
    # a readable directory but a damaged entry: that entry is reported, the others collected
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(damaged, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("alice.ipynb", notebook_bytes("alice"))
        zf.writestr("bob.ipynb", notebook_bytes("bob-" + "b" * 50))
    data = bytearray(damaged.read_bytes())
    at = data.index(b"bob-bbbb")
    data[at:at + 4] = b"XXXX"                                  # CRC no longer matches
    damaged.write_bytes(bytes(data))
    assert run(course, "collect", A, str(damaged)) == 1
    assert collect_csv(course) == {"alice.ipynb": ("alice", "collected"), "bob.ipynb": ("bob", "corrupt")}
    assert not (course / "submitted" / "bob").exists()


def test_collect_accepts_every_notebook_nbgrader_would(tmp_path):
    """The collected file is the student's bytes; nbgrader finds it under the name it expects."""
    course = copy_course(tmp_path / "course")
    src = tmp_path / "flat"
    src.mkdir()
    release = nbformat.read(COURSE / "source" / A / f"{A}.ipynb", as_version=4)
    nbformat.write(release, src / "zoe.ipynb")
    assert run(course, "collect", A, str(src)) == 0
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=zc.load_config(course))
    found = Path(coursedir.format_path(coursedir.submitted_directory, "zoe", A)) / f"{A}.ipynb"
    assert found.read_bytes() == (src / "zoe.ipynb").read_bytes()
    assert coursedir.get_existing_timestamp(str(found.parent)) is not None


# ---------------------------------------------------------------------------------------------
# autograde (the engine is zoograde.batch; only the wiring is tested here)


@pytest.fixture
def fake_batch(monkeypatch):
    import zoograde
    from zoograde.batch import SubmissionResult  # the real result type, before the module is faked

    calls = []

    class Result:
        def __init__(self, results):
            self.results = results

        def summary(self):
            return f"FAKE SUMMARY: {len(self.results)} submission(s)"

    module = types.ModuleType("zoograde.batch")
    module.statuses = ["graded", "skipped"]

    def autograde(course, assignment, **kwargs):
        calls.append((course, assignment, kwargs))
        return Result([SubmissionResult(f"s{i}", s, 1.0, 2.0, 0.1, error=None if s != "failed" else "boom")
                       for i, s in enumerate(module.statuses)])

    module.autograde = autograde
    module.prepare_workers = lambda *args, **kwargs: None  # starts the real workers' parent: nothing to fake
    module.release_unused_workers = lambda: None
    monkeypatch.setitem(sys.modules, "zoograde.batch", module)
    monkeypatch.setattr(zoograde, "batch", module, raising=False)
    module.calls = calls
    return module


def test_autograde_passes_its_options_to_the_engine(tmp_path, fake_batch, capsys):
    course = copy_course(tmp_path / "course")
    assert run(course, "autograde", A) == 0
    assert "FAKE SUMMARY: 2 submission(s)" in capsys.readouterr().out
    assert fake_batch.calls[-1] == (course.resolve(), A, dict(   # workers: the engine's default
        students=None, scheduler=None, force=False, time_limit=None, memory_limit_mb=None, progress=True,
        sandbox=True))
    assert run(course, "autograde", A, "--workers", "8", "--scheduler", "tcp://10.0.0.5:8786", "--student", "alice",
               "bob", "--student", "carol", "--force", "--time-limit", "90.5", "--memory-limit", "2048",
               "--no-progress", "--no-sandbox") == 0
    assert fake_batch.calls[-1][2] == dict(
        students=["alice", "bob", "carol"], workers=8, scheduler="tcp://10.0.0.5:8786", force=True, time_limit=90.5,
        memory_limit_mb=2048, progress=False, sandbox=False)
    fake_batch.statuses = ["graded", "failed"]
    assert run(course, "autograde", A) == 1                    # a failed submission needs a look
    fake_batch.statuses = ["skipped", "pending"]
    assert run(course, "autograde", A) == 1                    # interrupted: some left to grade
    assert run(course, "autograde", "99_nothing") == 2
    assert len(fake_batch.calls) == 4

    def not_released(course, assignment, **kwargs):
        from zoograde.course import NotReady

        raise NotReady(f"{assignment} is not in the gradebook: release it first")
    fake_batch.autograde = not_released
    capsys.readouterr()
    assert run(course, "autograde", A) == 1
    assert "04_inception is not in the gradebook: release it first" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# gradebook: export, report, feedback

SCORES = {  # student -> assignment -> {grade_id: score}; what the gradebook holds
    "alice": {A: {"test_inception_block": 4, "test_inception_macs": 2, "test_stage3": 2, "test_aux_loss": 2},
              "01_zoo_so_far": {"test_conv_output_size": 2, "test_conv_params": 0.5, "test_alexnet_layer_params": 2,
                                "test_vgg_block": 0}},
    "bob": {A: {"test_inception_block": 0, "test_inception_macs": 2, "test_stage3": 1.5, "test_aux_loss": 0}},
    "dan": {A: {"test_inception_block": 4, "test_inception_macs": 0, "test_stage3": 0, "test_aux_loss": 2}},
    "carol": {},    # in the gradebook, no submission
}
MANUAL = ("bob", A, "test_aux_loss", 1.0)   # a grader's override of an autograded 0


@pytest.fixture(scope="module")
def gradebook(released, tmp_path_factory):
    course = tmp_path_factory.mktemp("graded") / "course"
    shutil.copytree(released, course)
    with warnings.catch_warnings(), zc.gradebook(course) as gb:
        warnings.simplefilter("ignore")
        for student, subs in SCORES.items():
            gb.add_student(student)
            for name, scores in subs.items():
                gb.add_submission(name, student)
                nb = gb.find_submission_notebook(name, name, student)
                assert {g.name for g in nb.grades} == set(scores)      # every graded cell is given a score
                for g in nb.grades:
                    g.auto_score, g.needs_manual_grade = scores[g.name], False
                gb.db.commit()
        student, name, cell, score = MANUAL
        gb.find_grade(cell, name, name, student).manual_score = score
        gb.db.commit()
    return course


def effective(student: str, name: str) -> dict[str, float]:
    scores = {k: float(v) for k, v in SCORES[student].get(name, {}).items()}
    if (student, name) == MANUAL[:2]:
        scores[MANUAL[2]] = MANUAL[3]
    return scores


def test_export_one_row_per_student_with_every_cell(gradebook, tmp_path, capsys):
    out = tmp_path / "out" / "grades.csv"
    assert run(gradebook, "export", "--output", str(out)) == 0
    with out.open() as fh:
        reader = csv.reader(fh)
        header, rows = next(reader), list(reader)
    expected_header = ["student_id"]
    for name in ASSIGNMENTS:   # the gradebook's order: no due dates, so by name
        expected_header += [f"{name}/{g}" for g, _ in test_cells(name)] + [f"{name}/late_penalty", f"{name}/total"]
    assert header == expected_header + ["total", "max_total"]
    assert [r[0] for r in rows] == sorted(SCORES)
    max_total = sum(p for name in ASSIGNMENTS for _, p in test_cells(name))
    for row in rows:
        values = dict(zip(header, row))
        student, grand = row[0], 0.0
        for name in ASSIGNMENTS:
            scores = effective(student, name)
            for g, _ in test_cells(name):
                assert values[f"{name}/{g}"] == ("" if not scores else f"{scores[g]:g}"), (student, name, g)
            if scores:   # no due dates in this gradebook: no penalty
                assert values[f"{name}/late_penalty"] == "0"
                assert float(values[f"{name}/total"]) == sum(scores.values())
                grand += sum(scores.values())
            else:
                assert values[f"{name}/total"] == ""
        assert float(values["total"]) == grand
        assert float(values["max_total"]) == max_total
    by_id = {r[0]: dict(zip(header, r)) for r in rows}
    assert by_id["carol"]["total"] == "0"
    assert by_id["bob"][f"{A}/test_aux_loss"] == "1" and by_id["bob"][f"{A}/total"] == "4.5"
    assert by_id["alice"]["total"] == str(10 + 4.5)
    # the points each column is out of
    with (tmp_path / "out" / "grades-max.csv").open() as fh:
        reader = csv.reader(fh)
        assert next(reader) == header
        (max_row,) = list(reader)
    maxima = dict(zip(header, max_row))
    assert maxima["student_id"] == "max_points" and float(maxima["total"]) == max_total
    for name in ASSIGNMENTS:
        assert float(maxima[f"{name}/total"]) == sum(p for _, p in test_cells(name))
        for g, p in test_cells(name):
            assert float(maxima[f"{name}/{g}"]) == p
    assert str(out) in capsys.readouterr().out


def test_export_default_location(gradebook):
    assert run(gradebook, "export") == 0
    assert (gradebook / "exports" / "grades.csv").is_file() and (gradebook / "exports" / "grades-max.csv").is_file()


def test_report_summary_and_histograms(gradebook, tmp_path, capsys):
    from matplotlib.image import imread

    result = zreport.report(gradebook, A, tmp_path / "report")
    students = [s for s in SCORES if A in SCORES[s]]
    totals = [sum(effective(s, A).values()) for s in students]             # 10, 4.5, 6
    assert result.graded == len(students) == 3
    assert [c.name for c in result.cells] == [g for g, _ in test_cells(A)]
    for cell, (g, points) in zip(result.cells, test_cells(A)):
        scores = [effective(s, A)[g] for s in students]
        assert cell.max_score == points and sorted(cell.scores) == sorted(scores)
        assert cell.mean == pytest.approx(statistics.fmean(scores))
        assert cell.full == sum(x == points for x in scores) / 3 and cell.zero == sum(x == 0 for x in scores) / 3
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "submissions graded: 3" in summary
    assert sorted(totals) == [4.5, 6, 10]
    assert "total (out of 10): mean 6.83, median 6, min 4.5, max 10" in summary, summary
    # test_inception_block: 4, 0, 4 of 4 -> 67% full marks, 33% zero
    assert "| `test_inception_block` | 4 | 2.67 | 67% | 33% |" in summary
    assert "| `test_aux_loss` | 2 | 1.67 | 67% | 0% |" in summary   # bob's manual 1 is neither full nor zero
    # one histogram per graded cell and one of the totals; each counts every graded submission
    axes = result.figure.axes
    assert len(axes) == len(test_cells(A)) + 1
    assert [ax.get_title().split(" (")[0] for ax in axes] == [g for g, _ in test_cells(A)] + ["total"]
    for ax, (g, points) in zip(axes, test_cells(A)):
        bars = {round(p.get_x() + p.get_width() / 2, 6): p.get_height() for p in ax.patches}
        assert set(bars) >= set(range(int(points) + 1))               # a bar for every possible score
        assert sum(bars.values()) == 3
        for value in {effective(s, A)[g] for s in students}:
            assert bars[value] == sum(effective(s, A)[g] == value for s in students)
    image = imread(tmp_path / "report" / "histograms.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    # the command prints the table
    assert run(gradebook, "report", A, "--output", str(tmp_path / "r2")) == 0
    out = capsys.readouterr().out
    assert "| `test_inception_block` | 4 | 2.67 | 67% | 33% |" in out and "3 graded submission(s)" in out
    assert (tmp_path / "r2" / "histograms.png").is_file()


def test_report_without_submissions_or_gradebook(gradebook, tmp_path, capsys):
    assert run(gradebook, "report", "06_inception_v3", "--output", str(tmp_path / "r")) == 1   # nothing graded
    assert "submissions graded: 0" in (tmp_path / "r" / "summary.md").read_text()
    assert not (tmp_path / "r" / "histograms.png").exists()
    assert run(gradebook, "report", "99_nothing") == 2
    fresh = copy_course(tmp_path / "fresh")
    assert run(fresh, "report", A) == 1 and run(fresh, "export") == 1
    assert "no gradebook yet" in capsys.readouterr().err
    assert not (fresh / "gradebook.db").exists()


def test_feedback_for_autograded_submissions(gradebook, capsys):
    # an autograded notebook as nbgrader leaves it (hidden tests restored): the source version will do
    for student in ("alice", "bob"):
        folder = gradebook / "autograded" / student / A
        folder.mkdir(parents=True)
        shutil.copy(COURSE / "source" / A / f"{A}.ipynb", folder / f"{A}.ipynb")
    assert run(gradebook, "feedback", A, "--student", "alice") == 0
    assert "1 feedback file(s)" in capsys.readouterr().out
    assert not (gradebook / "feedback" / "bob").exists()
    assert run(gradebook, "feedback", A) == 0
    assert "2 feedback file(s) in feedback/<student>/04_inception/04_inception.html" in capsys.readouterr().out
    html = (gradebook / "feedback" / "bob" / A / f"{A}.html").read_text()
    assert "BEGIN HIDDEN TESTS" not in html and "test_inception_block" in html
    assert run(gradebook, "feedback", A, "--student", "carol") == 1                 # carol was never graded
    assert "carol: no autograded submission" in capsys.readouterr().err
    assert run(gradebook, "feedback", "01_zoo_so_far") == 1                          # nothing autograded yet
