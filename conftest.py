"""Test-wide environment, set before any notebook kernel starts (kernels inherit it).

Tests never touch the network, and the chapters run in fast mode unless the caller chose
otherwise (``make test-gpu`` sets ZOO_MODE=full).
"""
import os

os.environ["ZOO_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("ZOO_MODE", "fast")

# nbval waits only 5 s for each of a cell's output messages once the cell has run
# (IPyNbCell.output_timeout is set to 5 in its __init__, with no option to change it). On a busy
# two-core machine the kernel can take longer than that to deliver a long training cell's output,
# and nbval then fails the cell with "Timeout of 5 seconds exceeded waiting for output" although
# the cell ran. The cell's own time limit stays --nbval-cell-timeout; this only stops a slow
# machine from failing a chapter that did its work.
NBVAL_OUTPUT_TIMEOUT = 120


def pytest_collection_modifyitems(config, items):
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = max(item.output_timeout, NBVAL_OUTPUT_TIMEOUT)
