"""The operating system's wall around a grading kernel: bubblewrap (``bwrap``) namespaces and limits.

Every kernel that runs a submission is started through :func:`wrap`. Inside, it sees:

* **a uid of its own**: 65534 (``nobody``) in a new user namespace, with no capabilities;
* **no network**: a new network namespace (not even the grader's loopback services). The
  kernel talks to the grader over ZeroMQ's ``ipc`` transport, Unix sockets in its own folder;
* **no other process**: a new PID namespace (it can signal only what it started itself);
* **the system read-only**: ``/usr``, ``/etc`` (without password hashes and SSH keys), the
  Python installation, the virtualenv and the two packages the tests import (``zoolib``,
  ``zoograde``), read-only; a private ``/tmp`` in memory;
* **its own folder**: a private folder holding a *copy* of the submission (its working
  directory), its home and its sockets, read-write. Nothing else of the course is mounted:
  not ``source/``, ``release/``, ``autograded/``, ``feedback/``, other students, the gradebook,
  ``nbgrader_config.py`` or the grader's home.

Limits: the kernel's own rlimits (memory, CPU time, file size, processes: :mod:`zoograde.kernel`),
and, where the grader may create them, a cgroup per kernel that caps its processes (a fork
bomb) and its memory as a whole. What the kernel leaves in its copy is read back by the
grader as data (:func:`copy_back`), never followed or executed.

Without bubblewrap, or where user namespaces are disabled, :func:`check` raises
:class:`SandboxUnavailable` with what to install; graders refuse to run untrusted code then,
unless told ``--no-sandbox`` (trusted code only; the report and the feedback say so).
"""
from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

UID = 65534  # nobody
# Read-only system folders (bound if present; symbolic links such as /bin -> usr/bin are recreated).
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt/conda")
# Files and folders of /etc the kernel does not see.
HIDDEN_ETC = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/ssh", "/etc/sudoers",
              "/etc/sudoers.d", "/etc/ssl/private", "/etc/postgresql", "/etc/postgresql-common", "/etc/.pwd.lock")
TMP_MB = 256          # the private /tmp (memory)
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install "
                "bubblewrap) and allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 "
                "on older Debian; user.max_user_namespaces > 0). To grade trusted code without it, pass "
                "--no-sandbox (zoo-grade) or set ZOOGRADE_SANDBOX=0 (nbgrader)")


class SandboxUnavailable(RuntimeError):
    """The kernel cannot be isolated here; the message says why and what to install."""


def bwrap() -> str | None:
    return shutil.which("bwrap") or (os.path.exists("/usr/bin/bwrap") and "/usr/bin/bwrap") or None


@functools.lru_cache(maxsize=1)
def _probe() -> str | None:
    """None when bwrap can build a sandbox with the namespaces grading needs, else why not."""
    program = bwrap()
    if program is None:
        return "bubblewrap (bwrap) is not installed"
    if not sys.platform.startswith("linux"):
        return "the sandbox needs Linux namespaces"
    try:
        run = subprocess.run([program, *_namespaces(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                              "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not run ({error})"
    if run.returncode != 0:
        return f"bwrap could not create user, network and PID namespaces ({run.stderr.strip()[:300]})"
    return None


def check() -> None:
    """Raise :class:`SandboxUnavailable` unless kernels can be sandboxed on this machine."""
    problem = _probe()
    if problem:
        raise SandboxUnavailable(f"grading untrusted notebooks needs an OS sandbox, but {problem}: {INSTALL_HINT}")


def enabled_by_default() -> bool:
    """``ZOOGRADE_SANDBOX=0`` turns the sandbox off (what ``--no-sandbox`` sets for nbgrader's config)."""
    return os.environ.get("ZOOGRADE_SANDBOX", "1").strip().lower() not in ("0", "no", "false", "off")


def _namespaces() -> list[str]:
    return ["--unshare-user", "--uid", str(UID), "--gid", str(UID), "--unshare-net", "--unshare-pid",
            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "grading", "--die-with-parent",
            "--new-session"]


def _system_mounts() -> list[str]:
    args: list[str] = []
    for path in SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in HIDDEN_ETC:
        if os.path.isdir(path) and not os.path.islink(path):
            args += ["--tmpfs", path]
        elif os.path.lexists(path):
            args += ["--ro-bind", "/dev/null", path]
    return args


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def code_paths(forbidden: list[str]) -> list[str]:
    """Folders the kernel needs read-only: Python, the virtualenv, the packages on sys.path and the two
    packages the tests import. A folder that holds (or lies in) a ``forbidden`` one is left out."""
    import importlib.util

    forbidden = [os.path.realpath(p) for p in forbidden if p]
    # found, not imported: zoolib imports PyTorch, which the grader's main process does without
    packages = [os.path.realpath(os.path.dirname(importlib.util.find_spec(name).origin))
                for name in ("zoolib", "zoograde")]
    wanted = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)),
              *(p for p in sys.path if p), *packages]
    for name in ("ZOO_DATA", "TORCH_HOME"):
        if os.environ.get(name):
            wanted.append(os.environ[name])
    chosen: list[str] = []
    for path in wanted:
        path = os.path.realpath(path)
        if not os.path.isdir(path) or _covered(path, chosen) or _covered(path, list(SYSTEM)):
            continue
        package = path in packages
        if not package and any(_covered(f, [path]) or _covered(path, [f]) for f in forbidden):
            continue  # e.g. the repository root, which holds the course (its source/ and gradebook)
        chosen = [c for c in chosen if not _covered(c, [path])] + [path]
    return chosen


def wrap(argv: list[str], private: str, workdir: str, forbidden: list[str], cgroup: str | None = None) -> list[str]:
    """The command that runs ``argv`` in a sandbox whose only writable folder is ``private``
    (bound at the same path), starting in ``workdir`` (inside ``private``)."""
    program = bwrap()
    if program is None:
        check()
    # /tmp first: the folders bound after it may lie in the grader's /tmp (a course copy, a virtualenv)
    args = [program, *_namespaces(), "--size", str(TMP_MB << 20), "--tmpfs", "/tmp", *_system_mounts()]
    for path in code_paths(forbidden + [private]):
        args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--bind", private, private, "--chdir", workdir, "--", *argv]
    if cgroup:  # join the kernel's cgroup before the sandbox starts, so that everything in it is counted
        args = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, *args]
    return args


# ---------------------------------------------------------------------------------------------------
# Per-kernel cgroups: a cap on processes (fork bomb) and memory for the kernel and all it starts.

def _cgroup_roots() -> tuple[str | None, str | None]:
    """(v1 pids hierarchy or v2 unified folder, kind) where this process may create cgroups."""
    for base, kind in (("/sys/fs/cgroup/pids", "v1"), ("/sys/fs/cgroup", "v2"), ("/sys/fs/cgroup/unified", "v2")):
        if kind == "v1" and not os.path.isfile(os.path.join(base, "cgroup.procs")):
            continue
        if kind == "v2":
            controllers = os.path.join(base, "cgroup.controllers")
            if not os.path.isfile(controllers) or "pids" not in open(controllers).read().split():
                continue
        if os.access(base, os.W_OK):
            return base, kind
    return None, None


def make_cgroup(max_processes: int, memory_mb: int) -> str | None:
    """A new cgroup limiting processes (and memory where the hierarchy allows); None where none can be made."""
    base, kind = _cgroup_roots()
    if base is None:
        return None
    try:
        parent = os.path.join(base, "zoograde")
        os.makedirs(parent, exist_ok=True)
        if kind == "v2":
            try:
                with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
                    f.write("+pids +memory")
            except OSError:
                with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
                    f.write("+pids")
        path = os.path.join(parent, f"kernel-{uuid.uuid4().hex[:12]}")
        os.mkdir(path)
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(max_processes))
        if kind == "v2" and memory_mb and os.path.exists(os.path.join(path, "memory.max")):
            with open(os.path.join(path, "memory.max"), "w") as f:
                f.write(str((memory_mb + TMP_MB) << 20))
        return path
    except OSError:
        return None


def remove_cgroup(path: str | None) -> None:
    """Kill what is left in the cgroup and remove it."""
    if not path or not os.path.isdir(path):
        return
    import signal
    import time

    for _ in range(50):
        try:
            pids = [int(p) for p in open(os.path.join(path, "cgroup.procs")).read().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
    try:
        os.rmdir(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------------
# The working copy: in before the kernel starts, back out (as data) after it stopped.

def copy_in(source: str, target: str) -> None:
    """Copy the regular files of ``source`` (a submission's folder) into ``target``."""
    for folder, dirs, files in os.walk(source):
        rel = os.path.relpath(folder, source)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        os.makedirs(os.path.join(target, rel), exist_ok=True)
        for name in files:
            path = os.path.join(folder, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                shutil.copyfile(path, os.path.join(target, rel, name))


def copy_back(work: str, target: str, max_bytes: int, skip=lambda rel: False) -> list[str]:
    """Copy the regular files the kernel created or changed in ``work`` into ``target``: never a link,
    a device or a socket, never over a link, at most ``max_bytes`` in all. Returns what was left out."""
    left_out: list[str] = []
    total = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    for folder, dirs, files in os.walk(work):
        dirs[:] = sorted(d for d in dirs if stat.S_ISDIR(os.lstat(os.path.join(folder, d)).st_mode))
        for name in sorted(files):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, work)
            info = os.lstat(path)
            if skip(rel):
                continue
            if not stat.S_ISREG(info.st_mode):
                left_out.append(f"{rel} (not a regular file)")
                continue
            dest = os.path.join(target, rel)
            if os.path.lexists(dest) and not stat.S_ISREG(os.lstat(dest).st_mode):
                left_out.append(f"{rel} (in the way of a folder or link)")
                continue
            if os.path.isfile(dest) and _same(path, dest):
                continue
            if total + info.st_size > max_bytes:
                left_out.append(f"{rel} (over the {max_bytes >> 20} MiB kept per notebook)")
                continue
            total += info.st_size
            parent = os.path.dirname(dest)
            if os.path.relpath(parent, target) != "." and any(
                    os.path.islink(p) for p in _parents(parent, target)):
                left_out.append(f"{rel} (in a linked folder)")
                continue
            os.makedirs(parent, exist_ok=True)
            fd = os.open(dest, flags, 0o644)
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out)
    return left_out


def _parents(path: str, stop: str):
    path, stop = Path(path), Path(stop)
    while path != stop and stop in path.parents:
        yield str(path)
        path = path.parent


def _same(a: str, b: str) -> bool:
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as x, open(b, "rb") as y:
        while True:
            block = x.read(1 << 20)
            if block != y.read(1 << 20):
                return False
            if not block:
                return True
