"""A throwaway PostgreSQL cluster for the grading tests: a temporary folder, a private Unix socket, no TCP.

Debian's ``postgresql`` package (``make test`` installs it when run as root) provides the programs;
the cluster is created with ``initdb``, started with ``pg_ctl`` and deleted at the end. As root the
server runs as the ``postgres`` user (it refuses to run as root), which then owns the folder.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextmanager
def cluster(database: str = "cnnzoo"):
    """Yields the SQLAlchemy URL of an empty database on a new cluster, which is stopped and deleted afterwards."""
    bindir = _bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql; `make test` does it "
                           "when run as root)")
    folder = Path(tempfile.mkdtemp(prefix="zoo-pg-"))
    data, socket_dir = folder / "data", folder / "socket"
    socket_dir.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(socket_dir, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
            f"-k {socket_dir} -c listen_addresses='' -c fsync=off -c full_page_writes=off", "start")
        try:
            run(str(bindir / "createdb"), "-h", str(socket_dir), "-U", "postgres", database)
            yield f"postgresql+psycopg2://postgres@/{database}?host={socket_dir}"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
