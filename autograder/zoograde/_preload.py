"""What local grading workers share: imported once by the process they are forked from (batch.LocalPool).

A grading worker needs nbgrader (its converters, preprocessors and gradebook: about 1.1 s to
import here), the judge with PyTorch (2.2 s) and PyTorch's meta kernels for the judge's shape
traces (1.7 s more on first use). Imported here once, they cost each forked worker nothing.
Nothing here runs a computation: no thread pool exists yet when the workers are forked.

The parent leaves with ``os._exit`` when the batch's process ends (it then sees its pipe close): it has
nothing to save or flush, and Python's orderly exit with all of the above loaded took 1.6 s, during which
it still held the caller's standard output and error. Whoever waited for them (``subprocess.run`` with
``capture_output``, a shell pipe, ``make bench``) waited those 1.6 s too. The workers forked from it never
run it: multiprocessing ends them with ``os._exit`` already.
"""
import atexit
import os

import ipykernel.kernelspec  # noqa: F401
import IPython.core.interactiveshell  # noqa: F401
import nbgrader.api  # noqa: F401
import nbgrader.converters  # noqa: F401
import sqlalchemy.dialects.sqlite  # noqa: F401
import sqlite3  # noqa: F401

import zoograde.batch  # noqa: F401
import zoograde.deadlines  # noqa: F401  (what the course's nbgrader_config.py names)
import zoograde.execute  # noqa: F401
import zoograde.forkserver  # noqa: F401
import zoograde.judge  # noqa: F401
import zoograde.preprocessors  # noqa: F401
import zoograde.provenance  # noqa: F401
import zoograde.sanitize  # noqa: F401
import zoograde.sources  # noqa: F401
import zoolib.checks  # noqa: F401
from zoograde.kernel import _warm_tracer

_warm_tracer()
atexit.register(os._exit, 0)  # registered last, so it runs first
