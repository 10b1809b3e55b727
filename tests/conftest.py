import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ROOT.parent / "shared" / "lectures"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def lectures_dir() -> Path:
    if not LECTURES.is_dir():
        pytest.fail(f"lecture folder not found at {LECTURES}: the course repo expects shared/ beside it")
    return LECTURES
