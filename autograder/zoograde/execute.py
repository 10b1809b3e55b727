"""Running a submission: nbgrader's ``Execute`` with limits, crash recovery and tamper checks.

Plugged into ``nbgrader autograde`` by ``nbgrader_config.py`` (``Autograde.autograde_preprocessors``),
so the same defences hold with or without ``zoo-grade``. What it adds to nbgrader:

* **Isolation.** Every notebook runs in :mod:`zoograde.kernel` inside the operating
  system's sandbox (:mod:`zoograde.sandbox`: bubblewrap; its own uid, no network, no other
  process, and a copy of its folder as the only thing of the course it sees), with a memory
  limit and one PyTorch thread. Without bubblewrap it refuses to run (``sandbox=False`` for
  trusted code, noted in the feedback). Kernels are forked from a process that
  has imported PyTorch and the helpers once (:mod:`zoograde.forkserver`), which halves the
  time a notebook of this course takes to grade. The notebook as a whole has a time
  limit (``notebook_timeout``) besides nbgrader's per-cell one; a cell that would pass it
  is stopped, and the cells after it are not run.
* **Only the guilty cell fails.** A cell that hangs, or whose process dies (``os._exit``,
  a crash in native code, the memory limit), gets an error output that says what
  happened. The kernel is then restarted, the cells before it are re-run silently, and
  grading goes on with the next cell. nbgrader alone would lose the whole notebook
  (jupyter/nbgrader#427) or wait forever.
* **Bounded output.** A cell's output is cut at ``max_output_bytes`` while it streams in,
  so a notebook that prints gigabytes cannot exhaust the grader's memory.
* **Tamper checks.** Around each test cell the kernel's snapshot (:mod:`zoograde._guard`)
  restores and reports anything student code changed in the checking helpers, PyTorch or
  IPython's machinery; a change made *while* a test ran voids that test.
* **A report.** What happened is listed in a "Grading notes" cell at the top of the
  autograded notebook, which is what the student's feedback shows, and in a JSON file under
  the course's ``.zoograde/notes/``, out of every kernel's reach, that ``zoo-grade`` reads.
"""
from __future__ import annotations

import ast
import asyncio
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import typing as t

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.v4 import new_markdown_cell, new_output
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Float, Integer, List, Type, Unicode

from zoograde import sandbox as _sandbox

NOTES_KEY = "zoograde"
# The grader's notes on one notebook, where no kernel can write: {root}/.zoograde/notes/<assignment>/<student>/.
NOTES_FILE = "{notebook}.json"
NOTES_DIR = os.path.join(".zoograde", "notes")
# Variables a grading kernel inherits from the grader; everything else (tokens, passwords) stays out.
KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "PYTHONPATH", "ZOO_MODE", "ZOO_OFFLINE",
            "ZOO_DATA", "HF_HUB_OFFLINE", "TORCH_HOME", "JUPYTER_PATH", "JUPYTER_RUNTIME_DIR")


# Credentials in the grader's home folder that a notebook may not read (add others with GuardedExecute.protect).
SECRET_HOME_FILES = (".ssh", ".pgpass", ".netrc", ".git-credentials", ".aws", ".gnupg", ".docker", ".kube",
                     ".config", ".jupyter", ".local/share/jupyter", ".ipython", ".bash_history", ".python_history")


class QuickStartClient(AsyncKernelClient):
    """jupyter_client's client, less the fixed 0.2 s its ``wait_for_ready`` spends on every kernel start.

    jupyter_client asks for ``kernel_info`` until a reply comes and an IOPub message shows that
    channel connected, then drains IOPub until it has been quiet for 0.2 s. Here the kernel is
    ready as soon as its IOPub "idle" for our own ``kernel_info`` request has arrived: everything
    it published for that request came before it, and nbclient ignores IOPub messages that belong
    to no request of its own. A notebook of assignment 3 took 0.22 s less to start (0.28 s
    against 0.50 s, the median of 8, one worker).
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            request = self.kernel_info()
            reply = await self._next(self.shell_channel, request, "kernel_info_reply", 1.0)
            if reply is not None and await self._next(self.iopub_channel, request, "status", 0.5, "idle"):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    @staticmethod
    async def _next(channel, request: str, msg_type: str, wait: float, state: str | None = None) -> dict | None:
        """The message of ``msg_type`` answering ``request`` on ``channel`` within ``wait`` s (others skipped)."""
        until = time.monotonic() + wait
        while (left := until - time.monotonic()) > 0:
            try:
                msg = await channel.get_msg(timeout=left)
            except Exception:  # noqa: BLE001  (queue.Empty)
                return None
            if msg["parent_header"].get("msg_id") == request and msg["msg_type"] == msg_type and \
                    (state is None or msg["content"].get("execution_state") == state):
                return msg
        return None


class SandboxedKernelManager(AsyncKernelManager):
    """Starts :mod:`zoograde.kernel` with the environment :class:`GuardedExecute` built."""

    client_factory = Type(QuickStartClient, klass=AsyncKernelClient)

    zoograde_env = Dict(help="the complete environment of the kernel process")
    prewarm = Bool(True, help="fork kernels from a pre-loaded server (zoograde.forkserver)")
    zoograde_sandbox = Dict(help="private, workdir, forbidden and max_processes of the kernel's sandbox; "
                                 "empty: no sandbox")
    zoograde_cgroup = Unicode("", help="the running kernel's cgroup (removed when it stops)")

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if "ipykernel_launcher" in cmd:  # the python3 kernelspec: python -m ipykernel_launcher -f {connection_file}
            rest = cmd[cmd.index("ipykernel_launcher") + 1:]
        else:  # any other spec: keep its arguments, not its program
            rest = ["-f", self.connection_file, *(extra_arguments or [])]
        box = self.zoograde_sandbox
        if self.prewarm and self.zoograde_env:
            from zoograde import forkserver

            server_env = {**self.zoograde_env, "HOME": tempfile.gettempdir(), "TMPDIR": tempfile.gettempdir()}
            path = forkserver.socket_path(server_env, sandboxed=bool(box))
            if path is not None and (not box or forkserver.holds(path, box["private"])):
                attach = [sys.executable, "-m", "zoograde.forkserver", "--attach", path]
                if box:
                    self.zoograde_cgroup = _sandbox.make_cgroup(box["max_processes"], 0) or ""
                    attach += ["--cgroup", self.zoograde_cgroup] if self.zoograde_cgroup else []
                return [*attach, "--", *rest]
        argv = [sys.executable, "-m", "zoograde.kernel", *rest]
        if not box:
            return argv
        self.zoograde_cgroup = _sandbox.make_cgroup(box["max_processes"], 0) or ""
        return _sandbox.wrap(argv, box["private"], box["workdir"], box["forbidden"], self.zoograde_cgroup or None)

    async def _async_wait(self, pollinterval: float = 0.01) -> None:
        # jupyter_client polls a killed kernel every 0.1 s, which made every stop cost 0.11 s
        await super()._async_wait(pollinterval)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: t.Any) -> None:
        if self.zoograde_env:
            kw["env"] = dict(self.zoograde_env)
            kw["stdout"] = kw["stderr"] = subprocess.DEVNULL  # the kernel's own chatter; errors reach the cells
        return await super()._async_launch_kernel(kernel_cmd, **kw)


@functools.cache
def _warm_judge() -> None:
    """Make the judge's first shape trace in this process cheap: it imports PyTorch's compiler
    (``torch._dynamo``, about 1.7 s here; meta kernels are wrapped in its ``disable``). Started once
    per process, in a thread, while the first kernel (and the fork server) starts and this process waits.
    A worker forked from zoograde._preload has it already."""
    if "torch._dynamo" in sys.modules:
        return

    def warm():
        try:
            from zoograde.kernel import _warm_tracer

            _warm_tracer()
        except Exception:  # noqa: BLE001  (the judge then pays it on its first trace, as before)
            pass

    threading.Thread(target=warm, name="zoograde-warm-judge", daemon=True).start()


class _KernelGone(Exception):
    """The kernel was lost while a cell ran: ``ename`` and ``evalue`` become that cell's error."""

    def __init__(self, ename: str, evalue: str):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue = ename, evalue


class GuardedExecute(Execute):
    """nbgrader's ``Execute`` with notebook limits, crash recovery, output caps and tamper checks."""

    notebook_timeout = Float(600.0, help="seconds for the whole notebook; cells after it are not run").tag(config=True)
    memory_limit_mb = Integer(3072, help="data memory of the kernel process, in MiB (0: no limit)").tag(config=True)
    file_limit_mb = Integer(64, help="largest file the notebook may write, in MiB").tag(config=True)
    max_output_bytes = Integer(100_000, help="output kept per cell; the rest is dropped as it arrives").tag(config=True)
    threads = Integer(1, help="PyTorch threads per notebook").tag(config=True)
    protect = List(Unicode(), help="folders the notebook may not read (besides the course root)").tag(config=True)
    course_root = Unicode("", help="the course folder (default: CourseDirectory.root)").tag(config=True)
    guard = Bool(True, help="check and restore the kernel's helpers around every test cell").tag(config=True)
    audit = Bool(True, help="the in-process audit hook (zoograde._guard): clear messages for what the sandbox "
                            "stops anyway; not a boundary (off: ZOOGRADE_AUDIT=0, to test the sandbox alone)"
                 ).tag(config=True)
    guard_timeout = Float(60.0, help="seconds for a tamper check").tag(config=True)
    prewarm = Bool(True, help="fork each kernel from a process that has imported PyTorch and the helpers once "
                              "(zoograde.forkserver) instead of starting a new interpreter").tag(config=True)
    sandbox = Bool(_sandbox.enabled_by_default(), help="run every kernel in an OS sandbox (bubblewrap): its own uid, "
                   "no network, no other process, only its own folder. Off: trusted code only "
                   "(ZOOGRADE_SANDBOX=0, zoo-grade --no-sandbox)").tag(config=True)
    max_processes = Integer(64, help="processes and threads the notebook may have at once").tag(config=True)
    copy_back_mb = Integer(64, help="files the notebook wrote that are kept in autograded/, in MiB").tag(config=True)
    judge = Bool(True, help="run test cells in the grader's process against the kernel's objects "
                            "(zoograde.judge); off: in the kernel, as nbgrader does").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    # -- the notebook ------------------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        from nbclient import NotebookClient

        NotebookClient.__init__(self, nb, km)
        self.interrupt_on_timeout = False  # a timed-out kernel is replaced, not interrupted (it may ignore SIGINT)
        self.shutdown_kernel = "immediate"
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._notes: list[str] = list(dict.fromkeys(nb.metadata.get(NOTES_KEY, {}).get("notes", [])))
        self._noted: set[str] = set(self._notes)
        self._out_bytes: dict[int, int] = {}
        self._cut: set[int] = set()
        if self.sandbox:
            _sandbox.check()  # refuse to run untrusted code without the OS sandbox (it says what to install)
        else:
            self._note("this notebook was graded WITHOUT the OS sandbox (--no-sandbox): for trusted code only")
        self._folder = (resources or {}).get("metadata", {}).get("path") or os.getcwd()
        if self.judge:
            _warm_judge()
        self._tmp = self._private_folder()
        self._work = os.path.join(self._tmp, "work")
        for name in ("work", "home", "run"):
            os.makedirs(os.path.join(self._tmp, name), exist_ok=True)
        _sandbox.copy_in(self._folder, self._work)
        self._base_timeout = self.timeout
        started = time.monotonic()
        self._deadline = started + self.notebook_timeout if self.notebook_timeout > 0 else float("inf")
        try:
            run_sync(self._run_notebook)()
            self._copy_back()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self.set_widgets_metadata()
        self._write_report(time.monotonic() - started)
        return self.nb, self.resources

    def _private_folder(self) -> str:
        """The kernel's own folder (working copy, home, sockets). A sandboxed fork server sees only the
        folders made inside its own, nested one level deeper (see zoograde.forkserver)."""
        if self.sandbox and self.prewarm:
            from zoograde import forkserver

            outer = forkserver.kernel_folder(self._kernel_env(tempfile.gettempdir()))
            if outer is not None:
                return outer
        return tempfile.mkdtemp(prefix="zoograde-kernel-")

    def _copy_back(self) -> None:
        """What the notebook wrote in its working copy, as data: regular files only, never a notebook or a note."""
        def skip(rel: str) -> bool:
            return rel.endswith(".ipynb") or os.path.basename(rel).startswith(".zoograde") or \
                rel.split(os.sep)[0] in (".ipynb_checkpoints", "__pycache__")

        left_out = _sandbox.copy_back(self._work, self._folder, self.copy_back_mb << 20, skip)
        if left_out:
            self._note(f"files your notebook wrote that were not kept: {', '.join(left_out[:5])}"
                       + (f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""))

    async def _run_notebook(self) -> None:
        ran: list[int] = []            # cells to replay after a restart
        # imported here, not with this module: it imports PyTorch, which a process that only reads the
        # course's configuration (zoo-grade's main process, nbgrader's other commands) does without
        from zoograde.judge import Judge

        self._judge = Judge(self, self.nb.cells, os.path.join(self._tmp, "run")) if self.judge else None
        alive = await self._start()
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            label = _label(cell, index)
            remaining = self._deadline - time.monotonic()
            if not alive:
                self._fail(cell, "KernelUnavailable", "not run: the grading kernel could not be started")
                continue
            if remaining <= 0:
                self._fail(cell, "NotebookTimeLimit",
                           f"not run: the notebook used up its time limit of {self.notebook_timeout:.0f} s")
                self._note(f"{label} was not run: the notebook had used up its {self.notebook_timeout:.0f} s")
                continue
            test = utils.is_grade(cell) and not utils.is_solution(cell)
            if test and self._judge is not None:
                gone = await self._judge.run(cell, time.monotonic() + min(self._base_timeout or float("inf"),
                                                                         remaining))
                if gone is not None:
                    ename, evalue = (gone.ename, gone.evalue) if isinstance(gone, _KernelGone) else (
                        "KernelDied", str(gone))
                    if ename == "CellTimeout":
                        evalue = (f"this test was stopped after {min(self._base_timeout or remaining, remaining):.0f} "
                                  f"s, the limit for one cell: your code did not answer (an infinite loop?)")
                    self._fail(cell, ename, evalue)
                    self._note(f"{label}: {evalue}")
                    alive = await self._restart(ran)
                continue
            try:
                if test and self.guard:
                    await self._check_kernel("pre", cell, label)
                await self._execute(cell, index, remaining)
                if self.guard and test:
                    await self._check_kernel("post", cell, label)
                elif self.guard and utils.is_locked(cell):
                    await self._check_kernel("trust", cell, label)
            except _KernelGone as gone:
                self._fail(cell, gone.ename, gone.evalue)
                self._note(f"{label}: {gone.evalue}")
                alive = await self._restart(ran)
                continue
            if self._explain_memory_errors(cell, label):
                # what the cell allocated is still held by the kernel: start afresh so later cells get their memory
                alive = await self._restart(ran)
                continue
            ran.append(index)
            if self._judge is not None and utils.is_locked(cell) and not utils.is_grade(cell) \
                    and not utils.is_solution(cell):
                failed = self._judge.setup(cell)
                if failed:
                    self._note(f"the grader could not run {label} itself ({failed}); tests that need it fail")
        await self._stop()

    async def _execute(self, cell, index: int, remaining: float) -> None:
        per_cell = self._base_timeout or float("inf")
        self.timeout = max(1, int(min(per_cell, remaining) + 0.999))
        try:
            await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1)
        except CellTimeoutError:
            if remaining < per_cell:
                raise _KernelGone("NotebookTimeLimit", f"this cell was stopped when the notebook reached its time "
                                  f"limit of {self.notebook_timeout:.0f} s") from None
            raise _KernelGone("CellTimeout", f"this cell was stopped after {self.timeout} s, the limit for one "
                              f"cell (an infinite loop?)") from None
        except DeadKernelError:
            raise _KernelGone("KernelDied", await self._why_dead()) from None
        finally:
            self.timeout = self._base_timeout

    # -- kernel lifecycle --------------------------------------------------------------------------
    def _course_root(self) -> str:
        return self.course_root or self.config.get("CourseDirectory", {}).get("root", "") or os.getcwd()

    def _kernel_env(self, tmp: str) -> dict:
        """The whole environment of a kernel whose private folder (home, temporary files) is ``tmp``."""
        env = {k: v for k, v in os.environ.items() if k in KEEP_ENV}
        root = self._course_root()
        runtime = os.environ.get("JUPYTER_RUNTIME_DIR") or _runtime_dir()
        protect = [root, runtime, *_secrets_at_home(), *self.protect]
        home = os.path.join(tmp, "home") if os.path.isdir(os.path.join(tmp, "home")) else tmp
        env.update({
            "HOME": home, "TMPDIR": home, "MPLCONFIGDIR": home, "XDG_CACHE_HOME": home,
            "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": str(self.threads),
            "OPENBLAS_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
            "ZOOGRADE_THREADS": str(self.threads), "ZOOGRADE_PROTECT": os.pathsep.join(protect),
            "ZOOGRADE_WRITABLE": tmp, "ZOOGRADE_FILE_MB": str(self.file_limit_mb),
            "ZOOGRADE_CPU_SECONDS": str(int(self.notebook_timeout * 2 + 60)) if self.notebook_timeout > 0 else "",
            "ZOOGRADE_MEMORY_MB": str(self.memory_limit_mb) if self.memory_limit_mb > 0 else "",
            "ZOOGRADE_PROCESSES": str(self.max_processes) if self.max_processes > 0 else "",
            "ZOOGRADE_AUDIT": "1" if self.audit else "0",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)),
        })
        return env

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if isinstance(km, SandboxedKernelManager):
            km.zoograde_env = self._kernel_env(self._tmp)
            km.zoograde_env["ZOOGRADE_FOLDER"] = self._folder
            km.prewarm = self.prewarm
            if self.sandbox:
                km.zoograde_env["ZOOGRADE_SANDBOXED"] = "1"
            run = os.path.join(self._tmp, "run")
            if self.sandbox:  # no network in the sandbox: ZeroMQ over Unix sockets in the kernel's own folder
                km.transport = "ipc"
                km.ip = os.path.join(run, "kernel")
                km.zoograde_sandbox = {"private": self._tmp, "workdir": self._work, "max_processes": self.max_processes,
                                       "forbidden": [self._course_root(), self._folder, *_secrets_at_home(), *self.protect]}
            km.connection_file = os.path.join(run, f"kernel-{secrets.token_hex(4)}.json")
        return km

    async def _start(self) -> bool:
        try:
            if self.km is None:
                self.km = self.create_kernel_manager()
            await self.async_start_new_kernel(cwd=self._work)
            await self.async_start_new_kernel_client()
            await self.async_wait_for_reply(self.kc.kernel_info())
            self.nb.metadata["language_info"] = {"name": "python"}
            if self.guard:  # one ordinary request first, so that the kernel's own per-request state is in place
                await self._run_silently("pass", timeout=self.guard_timeout, silent=False)
                await self._guard_call("baseline", timeout=self.guard_timeout)
            return True
        except Exception as error:  # noqa: BLE001  (a kernel that cannot start fails the cells, not the batch)
            self._note(f"the grading kernel could not start: {type(error).__name__}: {error}")
            return False

    async def _stop(self) -> None:
        km = self.km  # nbclient forgets its kernel manager while cleaning up
        try:
            await self._async_cleanup_kernel()
        except Exception:  # noqa: BLE001
            pass
        finally:
            if isinstance(km, SandboxedKernelManager) and km.zoograde_cgroup:
                _sandbox.remove_cgroup(km.zoograde_cgroup)  # whatever the notebook left running goes too
                km.zoograde_cgroup = ""

    async def _restart(self, replay: list[int]) -> bool:
        if getattr(self, "_judge", None) is not None:
            self._judge.forget_kernel()
        await self._stop()
        self.km = None
        self.kc = None
        if not await self._start():
            return False
        for index in replay:
            cell = self.nb.cells[index]
            if time.monotonic() >= self._deadline:
                return True  # the next cell reports the time limit
            try:
                content = await self._run_silently(cell.source, timeout=self._deadline - time.monotonic())
            except _KernelGone:
                self._note(f"re-running {_label(cell, index)} after a restart failed; the cells after it may fail")
                return await self._start_fresh()
            if content is None:
                break
        if self.guard:
            try:
                await self._guard_call("trust", timeout=self.guard_timeout)
            except _KernelGone:
                return False
        return True

    async def _start_fresh(self) -> bool:
        await self._stop()
        self.km = None
        self.kc = None
        return await self._start()

    async def _why_dead(self) -> str:
        code = None
        try:
            provisioner = self.km.provisioner if self.km is not None else None
            if provisioner is not None:
                code = await provisioner.poll()
                if code is None:
                    await asyncio.sleep(0.2)
                    code = await provisioner.poll()
        except Exception:  # noqa: BLE001
            pass
        limit = f"{self.memory_limit_mb:,} MiB" if self.memory_limit_mb else "none"
        if code is None:
            how = "the Python process running your notebook stopped responding"
        elif code < 0:
            name = {9: "SIGKILL (often: out of memory)", 11: "SIGSEGV (a crash in native code)",
                    24: "SIGXCPU (the CPU time limit)", 6: "SIGABRT"}.get(-code, f"signal {-code}")
            how = f"the Python process running your notebook was killed by {name}"
        else:
            how = f"the Python process running your notebook exited with status {code} (os._exit or sys.exit?)"
        return (f"{how} while this cell ran (memory limit: {limit}). The cells after it ran in a fresh process, "
                f"after the cells before it were re-run")

    # -- silent execution and the tamper check ------------------------------------------------------
    async def _run_silently(self, code: str, timeout: float, expressions: dict | None = None,
                            silent: bool = True) -> dict | None:
        msg_id = self.kc.execute(code, silent=silent, store_history=False, user_expressions=expressions or {},
                                 allow_stdin=False, stop_on_error=False)
        deadline = time.monotonic() + max(timeout, 1)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _KernelGone("CellTimeout", "the kernel stopped responding")
            try:
                msg = await self.kc.shell_channel.get_msg(timeout=min(remaining, 1.0))
            except Exception:  # queue.Empty
                if not await self.kc.is_alive():
                    raise _KernelGone("KernelDied", await self._why_dead()) from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]

    async def _guard_call(self, phase: str, timeout: float) -> dict:
        nonce = secrets.token_hex(8)
        # A user expression is eval'ed as it is: input transformers that rewrite cells never see it.
        content = await self._run_silently("", timeout, expressions={
            "r": f"__import__('zoograde._guard', fromlist=['check']).check({phase!r}, {nonce!r})"})
        try:
            text = content["user_expressions"]["r"]["data"]["text/plain"]
            report = json.loads(ast.literal_eval(text))
        except Exception:  # noqa: BLE001
            report = {}
        if report.get("nonce") != nonce:
            return {"changes": ["the grader's check could not run (IPython's execution was hijacked)"], "threads": [],
                    "hijacked": True}
        return report

    async def _check_kernel(self, phase: str, cell, label: str) -> None:
        report = await self._guard_call(phase, timeout=self.guard_timeout)
        changes = report.get("changes", [])
        threads = report.get("threads", [])
        if phase == "pre":
            if changes:
                self._note(f"before {label}: your code had changed what the tests use ({_brief(changes)}); "
                           f"it was put back and the test ran with the originals")
            if threads:
                self._note(f"before {label}: your code left {len(threads)} thread(s) running ({', '.join(threads[:3])})")
            if report.get("hijacked"):
                raise _KernelGone("TamperingDetected", "the grader could not check the kernel before this test; "
                                  "the test was not run")
        elif phase == "post":
            if changes or threads or report.get("hijacked"):
                what = _brief(changes) if changes else f"{len(threads)} thread(s) of yours were still running"
                self._void(cell, f"while this test ran, your code changed what the tests use ({what}). "
                                 f"A test whose checks were altered cannot pass")
                self._note(f"{label} scored zero: your code changed the tests' helpers while it ran ({what})")
        elif changes:  # an instructor cell
            self._note(f"after {_label(cell, -1)}: {_brief(changes)}; restored")

    # -- outputs ------------------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        size = _size(msg.get("content", {}))
        used = self._out_bytes.get(cell_index, 0)
        if used + size > self.max_output_bytes and msg["msg_type"] != "error":
            if cell_index not in self._cut:
                self._cut.add(cell_index)
                outs.append(new_output("stream", name="stderr", text=(
                    f"\n[output cut: this cell printed more than {self.max_output_bytes:,} bytes; "
                    f"the rest was dropped]\n")))
            return None
        self._out_bytes[cell_index] = used + size
        return super().output(outs, msg, display_id, cell_index)

    def _fail(self, cell, ename: str, evalue: str) -> None:
        cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"]
        cell.outputs.append(new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))

    def _void(self, cell, why: str) -> None:
        cell.outputs.append(new_output("error", ename="TamperingDetected", evalue=why,
                                       traceback=[f"TamperingDetected: {why}"]))

    def _explain_memory_errors(self, cell, label: str) -> bool:
        """Say what a memory error means; True when the cell ran out of memory."""
        out_of_memory = False
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            memory = output.get("ename") == "MemoryError" or "can't allocate memory" in output.get("evalue", "")
            if memory and self.memory_limit_mb:
                output["evalue"] = (f"{output.get('evalue', '')} (the grader gives a notebook "
                                    f"{self.memory_limit_mb:,} MiB of memory)").strip()
                self._note(f"{label} ran out of memory (limit {self.memory_limit_mb:,} MiB); the cells after it ran "
                           f"in a fresh process, after the cells before it were re-run")
                out_of_memory = True
            if output.get("ename") == "GradingPolicyError":
                self._note(f"{label}: {output.get('evalue')}")
        return out_of_memory

    def _note(self, text: str) -> None:
        if text not in self._noted:  # a set: a notebook of 300,000 cells must not make this quadratic
            self._noted.add(text)
            self._notes.append(text)

    def _write_report(self, seconds: float) -> None:
        self.nb.metadata.pop(NOTES_KEY, None)
        if self._notes:
            lines = ["## Grading notes", "", "The autograder noted the following about your submission:", ""]
            lines += [f"- {_markdown(n)}" for n in self._notes]
            self.nb.cells.insert(0, new_markdown_cell("\n".join(lines), metadata={"zoograde_notes": True}))
        target = self.notes_path()
        if target:
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                judged = getattr(self, "_judge", None)
                with open(target + ".tmp", "w") as f:
                    json.dump({"notes": self._notes, "seconds": round(seconds, 2), "sandbox": self.sandbox,
                               "judge": None if judged is None else {"seconds": round(judged.seconds, 3),
                                                                     "requests": judged.requests}}, f, indent=1)
                os.replace(target + ".tmp", target)
            except OSError:
                pass

    def notes_path(self) -> str | None:
        """Where the grader's notes on this notebook go: under the course root, never in the kernel's folder."""
        info = (self.resources or {}).get("nbgrader", {})
        notebook = info.get("notebook") or "notebook"
        if info.get("assignment") and info.get("student"):
            return notes_file(self._course_root(), info["assignment"], info["student"], notebook)
        return None


def notes_file(root: str, assignment: str, student: str, notebook: str) -> str:
    return os.path.join(root, NOTES_DIR, assignment, student, NOTES_FILE.format(notebook=notebook))


def _label(cell, index: int) -> str:
    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"cell '{gid}'" if gid else (f"cell {index + 1}" if index >= 0 else "a setup cell")


def _brief(changes: list[str]) -> str:
    return "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")


def _markdown(text: str) -> str:
    return text.replace("_", r"\_").replace("*", r"\*").replace("<", "&lt;")


def _size(content: dict) -> int:
    if "text" in content:
        return len(content["text"])
    total = 0
    for value in (content.get("data") or {}).values():
        total += len(value) if isinstance(value, str) else len(json.dumps(value))
    return total + len(content.get("evalue", "")) + sum(len(x) for x in content.get("traceback", []))


def _secrets_at_home() -> list[str]:
    home = os.path.expanduser("~")
    return [os.path.join(home, name) for name in SECRET_HOME_FILES]


def _runtime_dir() -> str:
    from jupyter_core.paths import jupyter_runtime_dir

    return jupyter_runtime_dir()
