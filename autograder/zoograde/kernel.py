"""The kernel a submission runs in: ``python -m zoograde.kernel -f CONNECTION_FILE``.

Started by :class:`zoograde.execute.SandboxedKernelManager` inside bubblewrap instead of
``ipykernel_launcher`` (a cold start, :mod:`zoograde.sandbox`), or forked from
:mod:`zoograde.forkserver` (itself sandboxed, see :mod:`zoograde.isolate`), which has run :func:`preload` once
and runs :func:`apply_limits` and :func:`run` in each child. Before the first cell it

1. sets hard resource limits: address space for data (``RLIMIT_DATA``: a memory bomb gets a
   ``MemoryError`` in its own cell instead of taking the machine), CPU seconds (a last
   resort behind the grader's own clock), the size of any file written, no core dumps;
2. runs PyTorch with one thread (parallelism comes from grading several notebooks at once);
3. imports the libraries and helpers the tests use, so that their state can be snapshotted;
4. starts IPython's kernel, then installs :mod:`zoograde._guard` (audit hook and snapshot:
   clear messages and honest tests, not a boundary; the sandbox is).

Settings come from the environment the grader builds (``ZOOGRADE_*``), which is also the
only environment the notebook sees: the grader's own variables (a gradebook URL with a
password, tokens) are not passed on.
"""
from __future__ import annotations

import os
import resource
import signal
import sys


def _limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def apply_limits(env=os.environ) -> None:
    mib = 1 << 20
    if env.get("ZOOGRADE_MEMORY_MB"):
        _limit(resource.RLIMIT_DATA, int(float(env["ZOOGRADE_MEMORY_MB"]) * mib))
    if env.get("ZOOGRADE_CPU_SECONDS"):
        _limit(resource.RLIMIT_CPU, int(float(env["ZOOGRADE_CPU_SECONDS"])))
    if env.get("ZOOGRADE_FILE_MB"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with OSError, not a dead kernel
        _limit(resource.RLIMIT_FSIZE, int(float(env["ZOOGRADE_FILE_MB"]) * mib))
    _limit(resource.RLIMIT_CORE, 0)
    if env.get("ZOOGRADE_PROCESSES") and env.get("ZOOGRADE_SANDBOXED"):
        # counted per user namespace, i.e. for this sandbox only (a fork bomb stops here); the grader's
        # uid root is exempt, which is why the grader also puts each kernel in a cgroup where it can
        _limit(resource.RLIMIT_NPROC, int(env["ZOOGRADE_PROCESSES"]))


def preload(threads: int | None = None) -> None:
    """Import what the notebooks and their tests use (the expensive part of starting a kernel)."""
    sys.dont_write_bytecode = True
    import torch

    torch.set_num_threads(threads or int(os.environ.get("ZOOGRADE_THREADS", "1")))
    import numpy  # noqa: F401  (snapshotted)
    import torch.nn.functional  # noqa: F401
    import zoolib  # noqa: F401
    import zoolib.checks  # noqa: F401
    import zoolib.probe  # noqa: F401  (answers the judge)
    import zoolib.profiler  # noqa: F401
    from ipykernel.kernelapp import IPKernelApp  # noqa: F401
    # what IPKernelApp.initialize imports on its own (the shell, its history database, the debugger):
    # 0.1 s of every forked kernel's start, 0.3 s on a cold disk
    import IPython.core.completerlib  # noqa: F401
    import IPython.core.history  # noqa: F401
    import IPython.extensions.storemagic  # noqa: F401
    import ipykernel.debugger  # noqa: F401
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.zmqshell  # noqa: F401
    import sqlite3  # noqa: F401

    from zoograde import _guard  # noqa: F401

    _warm_tracer()


def _warm_tracer() -> None:
    """Trace a tiny network once on shapes, so that each forked kernel starts with the tracer warm
    (the grader does the same in a thread, for its judge: zoograde.execute._warm_judge).

    PyTorch's meta kernels take about 1.4 s to load on first use (lazy imports and registrations);
    the judge traces every block on shapes, so without this every submission paid it again.
    """
    from torch import nn

    from zoolib import dataflow

    tiny = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(), nn.Linear(2, 3))
    dataflow.trace_shapes(tiny, (1, 1, 8, 8))


def run(argv: list[str]) -> None:
    """Start the kernel in this (pre-loaded) process, with the guard installed before the first cell."""
    import torch
    from ipykernel.kernelapp import IPKernelApp

    from zoograde import _guard

    torch.set_num_threads(int(os.environ.get("ZOOGRADE_THREADS", "1")))
    # In the sandbox the grader's pid means nothing (another PID namespace); bwrap (--die-with-parent) or
    # the fork server's relay process ends the kernel when the grader goes.
    app = IPKernelApp.instance(parent_handle=0) if os.environ.get("ZOOGRADE_SANDBOXED") else IPKernelApp.instance()
    app.initialize(argv)
    split = lambda name: [p for p in os.environ.get(name, "").split(os.pathsep) if p]
    if os.environ.get("ZOOGRADE_AUDIT", "1") != "0":  # clear messages only: the OS sandbox is the boundary
        folder = os.environ.get("ZOOGRADE_FOLDER") or os.getcwd()  # the submission's folder; cwd is a copy
        _guard.install(allowed=[os.getcwd(), folder], protected=split("ZOOGRADE_PROTECT"),
                       writable=split("ZOOGRADE_WRITABLE"), alias=(os.getcwd(), folder))
    app.start()


def main(argv: list[str] | None = None) -> None:
    apply_limits()  # before the imports: they count against the memory limit too
    preload()
    run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
