"""nbgrader configuration of the CNN Zoo course.

Run the standard commands from this folder (``cd autograder``):

    nbgrader generate_assignment 04_inception     # source/ -> release/ (no solutions, no hidden tests)
    nbgrader autograde 04_inception               # submitted/<student>/04_inception/ -> autograded/
    nbgrader generate_feedback 04_inception       # -> feedback/<student>/04_inception/*.html
    nbgrader export                               # grades.csv

The gradebook is SQLite in this folder unless ZOO_GRADEBOOK_URL names another SQLAlchemy
URL (e.g. postgresql+psycopg2://user@host/cnnzoo for a shared gradebook).
"""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds, GetGrades,
                                    IgnorePattern, LimitOutput, OverwriteCells, OverwriteKernelspec, SaveAutoGrades)

from zoograde.deadlines import DeadlinePolicy, ExplainLatePenalty, SyncDeadlines
from zoograde.execute import GuardedExecute
from zoograde.preprocessors import HideHiddenTests, ScrubLeaks, ShortTracebacks
from zoograde.provenance import JudgeReuse
from zoograde.sanitize import RepairMetadata, RestoreCells

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = here
c.CourseDirectory.course_id = "cnn-zoo"
# SQLite waits up to 60 s for a lock, so that parallel graders queue instead of failing.
c.CourseDirectory.db_url = os.environ.get("ZOO_GRADEBOOK_URL",
                                          f"sqlite:///{os.path.join(here, 'gradebook.db')}?timeout=60")

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding, with the defences of zoograde in nbgrader's own pipeline (so `nbgrader autograde` has them too):
# an unreadable file is graded as an empty notebook with a note; grading metadata that is not the assignment's is
# dropped; deleted cells are put back and edited tests replaced (OverwriteCells); then every notebook runs in a
# kernel isolated by the operating system (zoograde.sandbox) with a time and a memory limit, and a hang or crash
# fails only its own cell. JudgeReuse then decides, from the submitted source and in this process, whether an
# answer reuses the reference code.
c.Autograde.exporter_class = "zoograde.sanitize.TolerantExporter"
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, RepairMetadata, RestoreCells,
                                      OverwriteCells, CheckCellMetadata]
c.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, JudgeReuse,
                                       SaveAutoGrades, SyncDeadlines, AssignLatePenalties, CheckCellMetadata]

# Due dates and the late policy, the one place they are set (zoograde.deadlines; the instructor guide
# explains it). SyncDeadlines copies them into the gradebook, so nbgrader's own AssignLatePenalties computes
# how late each submission is (from submitted/<student>/<assignment>/timestamp.txt) and asks DeadlinePolicy,
# its LateSubmissionPlugin, for the penalty: score * min(max_penalty, penalty_per_day * days late, each
# started day counted).
c.AssignLatePenalties.plugin_class = DeadlinePolicy
c.DeadlinePolicy.timezone = "UTC"          # of the dates below written without an offset
c.DeadlinePolicy.assignments = {
    # "04_inception": {"due": "2026-03-06 23:59", "penalty_per_day": 0.10, "max_penalty": 0.50,
    #                  "extensions": {"alice": "2026-03-09 23:59", "bob": 2}},   # a new due date, or days
}

# Limits (zoo-grade's --time-limit and --memory-limit override the first two).
c.GuardedExecute.notebook_timeout = float(os.environ.get("ZOOGRADE_TIME_LIMIT", 600))  # seconds per notebook
c.GuardedExecute.memory_limit_mb = int(os.environ.get("ZOOGRADE_MEMORY_LIMIT", 3072))  # MiB per notebook
c.Execute.timeout = int(os.environ.get("ZOOGRADE_CELL_TIME_LIMIT", 120))  # seconds per cell
# The OS sandbox (bubblewrap) around every kernel; grading refuses to start without it. ZOOGRADE_SANDBOX=0 (what
# `zoo-grade autograde --no-sandbox` means) is for trusted code only, and every feedback then says so.
c.GuardedExecute.sandbox = os.environ.get("ZOOGRADE_SANDBOX", "1") != "0"
# The in-process audit hook only explains refusals; ZOOGRADE_AUDIT=0 turns it off (the tests then show that the
# sandbox alone holds).
c.GuardedExecute.audit = os.environ.get("ZOOGRADE_AUDIT", "1") != "0"
c.LimitOutput.max_lines = 200

# Feedback: no hidden test source, no leaked test text in outputs, errors reduced to the diagnostic message.
c.GenerateFeedback.preprocessors = [GetGrades, ExplainLatePenalty, HideHiddenTests, ScrubLeaks, ShortTracebacks,
                                    CSSHTMLHeaderPreprocessor]
