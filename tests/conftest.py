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
