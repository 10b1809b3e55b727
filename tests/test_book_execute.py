"""book/_ext/execute_chapters.py fills the book's jupyter-cache the way MyST-NB would."""
import subprocess
import sys
from pathlib import Path

import nbformat
from jupyter_cache import get_cache

SCRIPT = Path(__file__).parents[1] / "book" / "_ext" / "execute_chapters.py"


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_executed_chapters_are_found_by_mystnbs_lookup(tmp_path):
    good = _notebook(tmp_path / "good.ipynb", "import os\nprint(6 * 7, os.path.basename(os.getcwd()))")
    bad = _notebook(tmp_path / "bad.ipynb", "raise ValueError('broken on purpose')")
    cache_dir = tmp_path / "cache"
    run = _run(good, bad, "--cache", cache_dir, "--jobs", "2")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED bad.ipynb" in run.stderr and "broken on purpose" in run.stderr
    cache = get_cache(str(cache_dir))
    # MyST-NB's cache mode looks a notebook up exactly like this (myst_nb/core/execute/cache.py)
    record = cache.match_cache_notebook(nbformat.read(good, as_version=4))
    _, merged = cache.merge_match_into_notebook(nbformat.read(good, as_version=4))
    # run in the notebook's own folder, as MyST-NB does without run_in_temp
    assert merged.cells[0].outputs[0]["text"] == f"42 {tmp_path.name}\n"
    assert record.data["execution_seconds"] > 0
    try:
        cache.match_cache_notebook(nbformat.read(bad, as_version=4))
        raise AssertionError("a failed notebook must not be cached")
    except KeyError:
        pass
    # a second run finds the good one cached; editing a code cell makes it stale again
    again = _run(good, "--cache", cache_dir)
    assert again.returncode == 0 and "1 of 1 notebooks already executed" in again.stdout
    _notebook(good, "print(6 * 9)")
    edited = _run(good, "--cache", cache_dir)
    assert "0 of 1 notebooks already executed" in edited.stdout and "executed good.ipynb" in edited.stdout
