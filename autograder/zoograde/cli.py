"""``zoo-grade``: the instructor's command line for the CNN Zoo nbgrader course.

    zoo-grade release                          # every assignment -> exports/release.zip
    zoo-grade collect 04_inception canvas.zip  # -> submitted/<student>/04_inception/
    zoo-grade autograde 04_inception --workers 8
    zoo-grade autograde 04_inception --student alice --cell test_stage3   # regrade one cell, logged
    zoo-grade feedback 04_inception            # -> feedback/<student>/04_inception/*.html
    zoo-grade export                           # -> exports/grades.csv (+ grades-max.csv)
    zoo-grade export --lms canvas --roster roster.csv   # -> exports/canvas-grades.csv
    zoo-grade report 04_inception              # -> exports/report-04_inception/
    zoo-grade similarity 04_inception          # -> exports/similarity-04_inception/index.html

Exit status: 0 done, 1 something needs the instructor's attention, 2 usage error.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import collect as _collect, course as C, export as _export, report as _report

OK, ATTENTION, USAGE = 0, 1, 2


def _rel(path: Path, course: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(course))
    except ValueError:
        return str(path)


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'number' if kind is float else 'whole number'}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value
    return parse


def _share(text: str) -> float:
    value = _positive(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at most 1 (a share)")
    return value


def _student(text: str) -> str:
    try:
        return C.check_student_id(text)
    except C.CourseError as exc:
        raise argparse.ArgumentTypeError(str(exc))


# ---------------------------------------------------------------------------------------------


def cmd_release(args, course: Path) -> int:
    result = C.release(course, args.assignments)
    if not result.ok:
        for problem in result.problems:
            print(f"problem: {problem}", file=sys.stderr)
        print("release.zip was not written.", file=sys.stderr)
        return ATTENTION
    print(f"released {len(result.released)} assignment(s): {', '.join(result.released)}")
    print(f"LMS zip: {result.zip_path} ({len(result.members)} file(s))")
    return OK


def cmd_collect(args, course: Path) -> int:
    result = _collect.collect(course, args.assignment, args.source, pattern=args.pattern, max_mb=args.max_mb,
                       times=args.times)
    counts = {}
    for row in result.rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    copied = sum(counts.get(s, 0) for s in ("collected", "replaced", "replaced-older", "empty", "unreadable"))
    print(f"{args.assignment}: {copied} submission(s) written, {counts.get('unchanged', 0)} unchanged, "
          f"{len(result.rows)} file(s) looked at")
    print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    attention = result.attention
    if attention:
        print(f"{len(attention)} file(s) need a look:")
        for row in attention:
            who = f" [{row.student}]" if row.student else ""
            print(f"  {row.status:<15} {row.file}{who}: {row.message}")
    print(f"report: {result.report_path}")
    return ATTENTION if attention else OK


def cmd_autograde(args, course: Path) -> int:
    C.check_assignment(course, args.assignment)
    try:
        from . import batch
    except ImportError as exc:
        print(f"the autograde engine (zoograde.batch) cannot be imported: {exc}", file=sys.stderr)
        return ATTENTION
    if args.scheduler is None:  # the workers' parent starts importing now, while this process reads the course
        batch.prepare_workers(course, args.assignment, *([args.workers] if args.workers is not None else []))
    options = dict(students=args.students or None, scheduler=args.scheduler, force=args.force or bool(args.cell),
                   time_limit=args.time_limit, memory_limit_mb=args.memory_limit, progress=not args.no_progress,
                   sandbox=not args.no_sandbox)
    if args.workers is not None:        # otherwise the engine's default
        options["workers"] = args.workers
    from . import regrade

    try:  # an error before the batch: the workers' parent started above must not outlive this command
        if args.cell:
            regrade.check_cell(course, args.assignment, args.cell)   # a usage error (exit 2) if unknown
        try:  # regrade.run keeps instructors' manual scores and logs every regraded submission
            result = regrade.run(course, args.assignment, args.students or None, args.cell,
                                 lambda: batch.autograde(course, args.assignment, **options))
        except (C.CourseError, C.NotReady) as exc:  # e.g. an assignment not released yet, an unknown student
            print(f"zoo-grade autograde: {exc}", file=sys.stderr)
            return ATTENTION
        except batch.SandboxUnavailable as exc:  # untrusted code is not run without the OS sandbox
            print(f"zoo-grade autograde: {exc}", file=sys.stderr)
            return ATTENTION
    finally:
        batch.release_unused_workers()
    print(result.summary())
    for entry in getattr(result, "regrade_log", []):
        print(f"  regraded {entry['student']}" + (f" ({entry['cell']})" if entry["cell"] else "") +
              f": {entry['total_before']:g} -> {entry['total_after']:g}")
    if getattr(result, "regrade_log", None):
        print(f"regrade log: {course / regrade.LOG}")
    unfinished = getattr(result, "interrupted", False) or any(r.status not in ("graded", "skipped")
                                                              for r in result.results)
    return ATTENTION if unfinished else OK


def cmd_feedback(args, course: Path) -> int:
    result = C.feedback(course, args.assignment, args.students or None)
    print(f"{args.assignment}: {len(result.files)} feedback file(s) in "
          f"{_rel(result.folder, course)}/<student>/{args.assignment}/{args.assignment}.html")
    for problem in result.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return ATTENTION if result.problems else OK


def cmd_export(args, course: Path) -> int:
    if args.lms:
        from . import lms

        if not args.roster:
            raise C.CourseError("--lms needs --roster FILE (a CSV of the class, e.g. the LMS's gradebook export)")
        result = lms.export_lms(course, args.lms, args.roster, args.output, id_column=args.id_column,
                                assignments=args.assignments)
        print(f"{args.lms}: {result.rows} student(s) -> {result.path}")
        for problem in result.problems:
            print(problem, file=sys.stderr)
        if result.problems:
            print(f"{len(result.problems)} student(s) need a look: {result.problems_path}", file=sys.stderr)
        return ATTENTION if result.problems else OK
    result = _export.export(course, args.output)
    print(f"{result.students} student(s), {len(result.assignments)} assignment(s) -> {result.path}")
    print(f"max points per column -> {result.max_path}")
    return OK


def cmd_similarity(args, course: Path) -> int:
    from . import similarity

    try:
        import copydetect  # noqa: F401
    except ImportError:
        print("zoo-grade similarity needs copydetect: pip install -e '.[grading]'", file=sys.stderr)
        return ATTENTION
    result = similarity.similarity(course, args.assignment, args.output, threshold=args.threshold, top=args.top)
    print(similarity.summary(result))
    if not result.students:
        print(f"no submissions of {args.assignment} in {course / 'submitted'}: collect them first", file=sys.stderr)
        return ATTENTION
    return ATTENTION if result.flagged or result.problems else OK


def cmd_report(args, course: Path) -> int:
    result = _report.report(course, args.assignment, args.output)
    extra = f" ({result.ungraded} not graded yet)" if result.ungraded else ""
    print(f"{args.assignment}: {result.graded} graded submission(s){extra}\n")
    print(result.table)
    print(f"\n{result.summary_path}" + (f"\n{result.png_path}" if result.figure is not None else ""))
    return OK if result.graded else ATTENTION


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo-grade", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Release, collect, autograde, give feedback on and export the CNN Zoo assignments.",
        epilog="Exit status: 0 done, 1 something needs your attention, 2 usage error.")
    parser.add_argument("--course", metavar="DIR",
                        help="the course folder (holding nbgrader_config.py); default: the working directory "
                             "if it holds one, else the repository's autograder/")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    # One block per command, alike in shape on purpose: each states its own help text and options in full,
    # as `zoo-grade <command> --help` prints them.

    p = sub.add_parser("release", help="generate the student versions and the LMS zip",
                       description="nbgrader generate_assignment --force for each assignment (default: every "
                                   "assignment in source/), then exports/release.zip with <assignment>.ipynb "
                                   "for each (other files of release/<assignment>/ under <assignment>/).")
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT")
    p.set_defaults(run=cmd_release)

    p = sub.add_parser("collect", help="copy submissions from a folder or zip into submitted/",
                       description=_collect.COLLECT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("source", metavar="SOURCE", help="a folder or a .zip of submissions")
    p.add_argument("--pattern", metavar="REGEX", help="regex with a named group 'student', searched in each path")
    p.add_argument("--max-mb", type=_positive(float), default=20, metavar="MB",
                   help="skip files larger than this (default: 20)")
    p.add_argument("--times", metavar="CSV", help="submission times from the LMS (columns student, submitted_at in "
                   "ISO 8601), used instead of the files' own times for timestamp.txt and the late policy")
    p.set_defaults(run=cmd_collect)

    p = sub.add_parser("autograde", help="grade the submissions in parallel",
                       description="Autograde ASSIGNMENT's submissions with zoograde.batch (in parallel, on this "
                                   "machine or a Dask scheduler); submissions already graded and unchanged are "
                                   "skipped unless --force. Exit status 1 if any submission failed or the run "
                                   "was interrupted.")
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--workers", type=_positive(int), metavar="N",
                   help="parallel worker processes on this machine (default: the engine's)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--student", dest="students", action="extend", nargs="+", type=_student, metavar="ID",
                   help="grade only these students")
    p.add_argument("--force", action="store_true", help="regrade submissions already graded")
    p.add_argument("--time-limit", type=_positive(float), metavar="S",
                   help="seconds per notebook (default: nbgrader_config.py's)")
    p.add_argument("--memory-limit", type=_positive(int), metavar="MB",
                   help="memory per notebook in MiB (default: nbgrader_config.py's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--cell", metavar="ID", help="regrade only this graded cell (the notebook runs, the other "
                   "cells keep their scores); implies --force")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run the notebooks without the OS sandbox (bubblewrap): for trusted code only; the summary "
                        "and every student's feedback say so")
    p.set_defaults(run=cmd_autograde)

    p = sub.add_parser("feedback", help="HTML feedback for autograded submissions",
                       description="nbgrader generate_feedback ASSIGNMENT --force: "
                                   "feedback/<student>/<assignment>/<assignment>.html, without hidden tests.")
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--student", dest="students", action="extend", nargs="+", type=_student, metavar="ID",
                   help="only these students")
    p.set_defaults(run=cmd_feedback)

    p = sub.add_parser("export", help="the gradebook as a CSV, one row per student",
                       description="One row per student: student_id, then per assignment one column per graded "
                                   "cell '<assignment>/<grade_id>', '<assignment>/late_penalty' and '<assignment>/total' (less the "
                                   "penalty), then 'total' and "
                                   "'max_total'. Cells are empty where a student has no submission. The points "
                                   "each column is out of go to a second file, FILE's name + '-max' "
                                   "(grades-max.csv): same columns, one row with student_id 'max_points'.")
    p.add_argument("--output", metavar="FILE", help="default: <course>/exports/grades.csv "
                   "(with --lms: <course>/exports/<lms>-grades.csv)")
    p.add_argument("--lms", choices=("canvas", "moodle"), help="write the CSV that this LMS's grade import reads "
                   "(one column per assignment: its total less any late penalty); needs --roster")
    p.add_argument("--roster", metavar="FILE", help="CSV of the class: a column of zoo-grade's student ids and "
                   "the LMS's own columns (Canvas: Student, ID, SIS User ID, SIS Login ID, Section; Moodle: "
                   "ID number, Email address, First name, Last name), e.g. the LMS's gradebook export")
    p.add_argument("--id-column", default="student_id", metavar="NAME",
                   help="the roster's column holding zoo-grade's student ids (default: student_id)")
    p.add_argument("--assignment", dest="assignments", action="extend", nargs="+", metavar="ASSIGNMENT",
                   help="with --lms: only these assignments' columns (default: every assignment in the gradebook)")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("report", help="class summary and score histograms of one assignment",
                       description="summary.md (submissions graded; mean, median, min, max of the total; per "
                                   "cell: max points, mean, share with full marks, share with zero) and "
                                   "histograms.png (one per graded cell and one of the totals).")
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--output", metavar="DIR", help="default: <course>/exports/report-<ASSIGNMENT>/")
    p.set_defaults(run=cmd_report)

    p = sub.add_parser("similarity", help="flag answers that look copied (from each other or from zoolib)",
                       description="Compare the answer cells of every pair of submissions of ASSIGNMENT, and each "
                                   "against zoolib's source, with copydetect (winnowing; names, comments, layout "
                                   "and the release's own code ignored). Writes index.html (ranked pairs, matching "
                                   "lines side by side, the score distribution) and pairs.csv. Changes no grade. "
                                   "Exit status 1 if a pair reaches --threshold or some input needs a look.")
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("--threshold", type=_share, default=0.6, metavar="X",
                   help="flag pairs at or above this score (0-1, default 0.6)")
    p.add_argument("--top", type=_positive(int), default=40, metavar="N",
                   help="pairs shown side by side in the report (default 40)")
    p.add_argument("--output", metavar="DIR", help="default: <course>/exports/similarity-<ASSIGNMENT>/")
    p.set_defaults(run=cmd_similarity)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:       # --help (0) or a usage error (2): return it, so main() can be called
        return int(exc.code or 0)
    try:
        course = C.find_course(args.course)
        return args.run(args, course)
    except BrokenPipeError:         # `zoo-grade ... | head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return OK
    except C.CourseError as exc:
        print(f"zoo-grade {args.command}: {exc}", file=sys.stderr)
        return USAGE
    except C.NotReady as exc:
        print(f"zoo-grade {args.command}: {exc}", file=sys.stderr)
        return ATTENTION


if __name__ == "__main__":
    sys.exit(main())
