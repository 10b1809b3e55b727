"""Execute the chapters into the book's jupyter-cache, several at a time, before `jupyter-book build`.

Jupyter Book 1 executes the notebooks it finds out of date one after the other, in its
Sphinx read phase (MyST-NB's "cache" mode), so a cold build of the seven chapters takes the
sum of their run times. This script does MyST-NB's work ahead of it, the same way
(``myst_nb/core/execute/cache.py``): it reads each chapter, asks the cache whether an
executed copy with the same code exists, and if not executes it with jupyter-cache's
``single_nb_execution`` in the notebook's own folder and stores the result with
``cache_notebook_bundle``. The build then finds every chapter in the cache and only renders.

The notebooks run in worker processes (``--jobs``, default: the number of CPU cores, at most
the number of chapters); only the parent writes to the cache's SQLite database. A chapter
that fails is reported with its traceback and left out of the cache, so the build executes
it again and fails there with Jupyter Book's own message.

    python book/_ext/execute_chapters.py [--cache _build/.jupyter_cache] [--jobs N] [notebooks...]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _execute(path: str, timeout: int) -> tuple[str, object, float, str | None]:
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(notebook, cwd=str(Path(path).parent), timeout=timeout,
                                 allow_errors=False, meta_override=True)
    return path, notebook, result.time, (result.exc_string if result.err is not None else None)


def out_of_date(cache, paths: list[Path]) -> list[Path]:
    """The notebooks whose code has no executed copy in ``cache``."""
    stale = []
    for path in paths:
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            stale.append(path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="default: the chapters, notebooks/*.ipynb")
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache")
    parser.add_argument("--jobs", type=int, default=0, help="parallel kernels (default: CPU cores)")
    args = parser.parse_args(argv)

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    config = yaml.safe_load((ROOT / "_config.yml").read_text()).get("execute", {})
    timeout = int(config.get("timeout", 900))
    paths = [p.resolve() for p in (args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")))]
    cache = get_cache(str(args.cache))
    stale = out_of_date(cache, paths)
    print(f"{len(paths) - len(stale)} of {len(paths)} notebooks already executed in {args.cache}")
    if not stale:
        return 0
    jobs = min(args.jobs or os.cpu_count() or 1, len(stale))
    failed, started = [], time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_execute, str(p), timeout) for p in stale]
        for future in as_completed(futures):
            path, notebook, seconds, error = future.result()
            name = Path(path).name
            if error:
                failed.append(name)
                print(f"FAILED {name} after {seconds:.0f} s:\n{error}", file=sys.stderr)
                continue
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(CacheBundleIn(notebook, record.uri,
                                                      data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"executed {name} in {seconds:.0f} s")
    print(f"{len(stale) - len(failed)} notebooks executed in {time.perf_counter() - started:.0f} s "
          f"with {jobs} kernels at a time")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
