import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# The lecture texts are not part of the repository (their sentences are not ours to copy).
# CI points ZOO_LECTURES at them; a clone with nothing beside it skips the one test that reads them.
LECTURES_DEFAULT = ROOT.parent / "shared" / "lectures"

# The cores are shared by pytest-xdist's workers: each gets its share of threads. PyTorch threads that
# outnumber the cores wait for each other (zoolib.recipes measured a small training run 10-15x slower).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))


@pytest.fixture(scope="session")
def lectures_dir() -> Path:
    chosen = os.environ.get("ZOO_LECTURES")
    folder = Path(chosen).expanduser() if chosen else LECTURES_DEFAULT
    if folder.is_dir() and any(folder.glob("*.txt")):
        return folder
    if chosen:  # asked for explicitly (as .ci/run does): a missing folder is an error, not a skip
        pytest.fail(f"ZOO_LECTURES={chosen} holds no lecture texts (*.txt)")
    pytest.skip(f"the lecture texts are not here ({folder}); set ZOO_LECTURES to the folder that holds them")


# pytest-xdist's loadfile hands out whole files in collection order, the first two at once. A long file handed
# out last runs alone while the other worker has finished: the slow files go first, and the many short ones
# fill in around them. Among the slow ones, the two that start together are chosen so that the cores stay busy:
# zoo-grade's class (two grading workers: it would use both cores) beside the hostile corpus (its plain-nbgrader
# half grades one notebook at a time and waits out time limits). Plain nbgrader's class, one notebook at a
# time like a chapter's training cell, goes next. Started together, the hostile corpus and plain nbgrader's
# class had left the cores 70-87 % busy for the first three minutes.
# Seconds are one worker's on the 2-core machine (pytest --durations, 2026-12-02); unlisted files go after these.
ORDER = [
    "tests/test_autograder.py",                # 160 s: the class graded by zoo-grade, two notebooks at a time
    "tests/test_hostile.py",                   # 160 s: the corpus graded twice: zoo-grade, then plain nbgrader
    "tests/test_autograder_plain.py",          # 210 s: the class graded by plain nbgrader, one notebook at a time
    "notebooks/07_inception_v4_resnet.ipynb",  # 200 s
    "tests/test_grading_batch.py",             # 135 s
    "notebooks/01_zoo_so_far.ipynb",           # 115 s
    "notebooks/05_batch_normalization.ipynb",  # 80 s
    "tests/test_book_browser.py",              # 33 s alone, without screenshots (64 s with them)
    "notebooks/03_network_in_network.ipynb",   # 65 s
    "notebooks/06_inception_v3.ipynb",         # 60 s
    "tests/test_cases_inprocess.py",           # 57 s
    "notebooks/04_inception_googlenet.ipynb",  # 48 s
    "tests/test_grading_kernel.py",            # 40 s
    "tests/test_profiler.py",                  # 38 s
    "tests/test_grading_bench.py",             # 28 s
    "notebooks/02_curse_of_the_last_layer.ipynb",  # 25 s
]


def pytest_collection_modifyitems(config, items):
    if config.getoption("loadscopereorder", default=True):
        return  # xdist reorders the files itself (by number of tests): nothing to do here
    rank = {name: i for i, name in enumerate(ORDER)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(ORDER)))  # stable: a file keeps its order
