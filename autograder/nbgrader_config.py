"""nbgrader configuration of the CNN Zoo course.

Run the standard commands from this folder (``cd autograder``):

    nbgrader generate_assignment 04_inception     # source/ -> release/ (no solutions, no hidden tests)
    nbgrader autograde 04_inception               # submitted/<student>/04_inception/ -> autograded/
    nbgrader generate_feedback 04_inception       # -> feedback/<student>/04_inception/*.html
    nbgrader export                               # grades.csv

The gradebook is SQLite in this folder unless ZOO_GRADEBOOK_URL names another SQLAlchemy
URL (e.g. postgresql://user@host/cnnzoo for a shared gradebook).
"""
import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import GetGrades

from zoograde.preprocessors import HideHiddenTests, ShortTracebacks

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = here
c.CourseDirectory.course_id = "cnn-zoo"
c.CourseDirectory.db_url = os.environ.get("ZOO_GRADEBOOK_URL", f"sqlite:///{os.path.join(here, 'gradebook.db')}")

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Student code runs with a time limit per cell; a cell that raises gets zero for its tests only.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# Feedback: no hidden test source, and errors reduced to the diagnostic message.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, ShortTracebacks, CSSHTMLHeaderPreprocessor]
