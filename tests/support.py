"""What several test files share: parameter counts as PyTorch reports them, nbgrader run as an
instructor runs it, and the hidden test lines of an assignment. Course copies, submissions and the
gradebook's scores come from ``zoograde.coursekit``, which ``make bench`` uses too."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn
from zoograde.coursekit import tool_env

BIN = Path(sys.executable).parent
COURSE = Path(__file__).resolve().parents[1] / "autograder"


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def nbgrader(course: Path, *args: str, env: dict | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` in ``course``, with this venv's bin first on the PATH (nbgrader runs ``alembic``);
    fails the test with nbgrader's output if it fails."""
    run = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=tool_env({**os.environ, **(env or {})}),
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{(run.stdout + run.stderr)[-4000:]}"
    return run


def randomize_batchnorm(model: nn.Module, scale: float = 0.5) -> None:
    """Batch norm away from the identity, so that a comparison can fail (an eps of 1e-3 against 1e-5, a
    swapped mean and bias): weight and running variance in [1 - scale, 1 + scale], bias and running mean in
    [-scale, scale]. Deep stacks want a small ``scale`` to keep activations of order one."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine and m.track_running_stats:
                m.weight.uniform_(1 - scale, 1 + scale), m.bias.uniform_(-scale, scale)
                m.running_mean.uniform_(-scale, scale), m.running_var.uniform_(1 - scale, 1 + scale)


def hidden_lines(name: str) -> list[str]:
    """The lines (over 25 characters) between BEGIN and END HIDDEN TESTS in the source notebook of ``name``: what
    no release and no feedback may show. Read here independently of ``zoograde.preprocessors``, whose copy of this
    loop is the code under test (it removes these lines from feedback)."""
    import nbformat

    nb = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
    lines = []
    for c in nb.cells:
        inside = False
        for line in c.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 25:
                lines.append(line.strip())
    return lines
