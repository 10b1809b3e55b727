"""Pre-loaded grading kernels: fork a warm process instead of starting a cold one.

Of the ~5 s a notebook of this course takes to grade, ~3 s are its kernel starting: Python,
PyTorch, NumPy, IPython and the course's helpers being imported. A grader process therefore
starts one *fork server* that imports all of that once and waits on a Unix socket; each
kernel is a ``fork()`` of it, which takes milliseconds and shares the imported code
copy-on-write. The child then does what :mod:`zoograde.kernel` does for a cold start:
takes the notebook's environment and folder, sets the resource limits, starts IPython's
kernel and installs the guard before the first cell.

jupyter_client needs a process it can watch and kill, so the command it launches is a small
*attach* process (no heavy imports): it asks the server for a kernel, forwards SIGINT and
SIGTERM to it, and exits with the kernel's exit status, or dies by the same signal. If the
attach process is killed, the server kills the kernel. If the server dies or cannot start,
kernels start cold, as before.

    python -m zoograde.forkserver --serve SOCKET               # the server (started by the grader)
    python -m zoograde.forkserver --attach SOCKET -- ARGS...   # one kernel (launched by jupyter_client)
"""
from __future__ import annotations

import atexit
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _receive(conn: socket.socket, buffer: bytearray) -> dict | None:
    while b"\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return json.loads(line)


# ---------------------------------------------------------------------------------------------------
# The server

def serve(path: str) -> None:
    from zoograde import kernel

    # A sandboxed kernel waits for SIGUSR1 (the attach process has put it in its cgroup); blocked here, so that
    # a signal arriving early is kept for the child instead of killing it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    kernel.preload()
    import gc

    gc.collect()
    gc.freeze()  # the children's collections then skip what was imported, instead of copying its pages
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.rename(path + ".tmp", path)  # the socket appears only when the server is ready
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "children")
    children: dict[int, socket.socket] = {}
    try:
        while os.getppid() == parent:  # the grader that started us is gone: stop
            for key, _ in selector.select(timeout=1.0):
                if key.data == "accept":
                    conn, _ = listener.accept()
                    conn.settimeout(10)
                    try:
                        request = _receive(conn, bytearray())
                    except (OSError, ValueError):
                        request = None
                    if request is None:
                        conn.close()
                        continue
                    pid = os.fork()
                    if pid == 0:  # the kernel
                        selector.close()
                        for fd in (listener, conn):
                            fd.close()
                        os.close(wake_r)
                        os.close(wake_w)
                        signal.set_wakeup_fd(-1)
                        for s in (signal.SIGCHLD, signal.SIGTERM):
                            signal.signal(s, signal.SIG_DFL)
                        _become_kernel(request)
                    conn.settimeout(None)
                    _send(conn, {"pid": pid})
                    children[pid] = conn
                    selector.register(conn, selectors.EVENT_READ, pid)
                elif key.data == "children":
                    os.read(wake_r, 4096)
                    _reap(children, selector)
                else:  # the attach process went away (killed): the kernel goes too
                    pid = key.data
                    try:
                        gone = not key.fileobj.recv(1)
                    except OSError:
                        gone = True
                    if gone:
                        selector.unregister(key.fileobj)
                        _kill(pid)
            _reap(children, selector)
    finally:
        for pid in list(children):
            _kill(pid)
        for name in (path, path + ".tmp"):
            try:
                os.unlink(name)
            except OSError:
                pass


def _become_kernel(request: dict) -> None:
    code = 1
    try:
        os.setsid()
        if request.get("sandbox"):
            from zoograde import isolate

            isolate.kernel_namespaces(request["sandbox"])  # returns in the kernel's own namespaces
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        from zoograde import kernel

        kernel.apply_limits()
        kernel.run(request["argv"])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def _reap(children: dict, selector) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        try:
            _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
        except OSError:
            pass
        try:
            selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()


# ---------------------------------------------------------------------------------------------------
# The attach process

def attach(path: str, argv: list[str], cgroup: str | None = None) -> int:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
    sandboxed = os.path.isdir(os.path.join(os.path.dirname(path), KERNELS))
    if sandboxed:
        kernels = os.path.join(os.path.dirname(path), KERNELS)
        request["sandbox"] = os.path.join(kernels, os.path.relpath(os.getcwd(), kernels).split(os.sep)[0])
    _send(conn, request)
    buffer = bytearray()
    reply = _receive(conn, buffer)
    if reply is None or "pid" not in reply:
        return 1
    pid = reply["pid"]
    if sandboxed:  # the server's pid is in its own namespace: find the kernel as this machine numbers it
        from zoograde import isolate

        pid = isolate.release(conn, pid, cgroup)
        if pid is None:
            return 1
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda number, _frame: _forward(pid, number))
    while True:
        try:
            reply = _receive(conn, buffer)
            break
        except InterruptedError:
            continue
    if reply is None:  # the server died
        _kill(pid)
        return 1
    code = reply["exit"]
    if code < 0:  # die the way the kernel died, so that the grader can say why
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)
    return code


def _forward(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------------
# In the grader: one server per process, started on first use

_server: dict = {}


SHARED = "ZOOGRADE_FORKSERVER"  # a server's socket that the grading processes of one machine share
KERNELS = "kernels"  # a sandboxed server's folder of kernel folders (the only folder of the grader it sees)


def socket_path(env: dict, timeout: float = 60.0, sandboxed: bool = False) -> str | None:
    """The socket of the fork server: the machine's shared one (``$ZOOGRADE_FORKSERVER``, started by
    ``zoo-grade autograde`` for its local workers), else this process's own, started with ``env`` if
    needed; None if none can start. A sandboxed server (``sandboxed``) runs in bubblewrap itself and
    serves kernels whose folders it holds (:func:`kernel_folder`)."""
    shared = os.environ.get(SHARED)
    if shared and is_sandboxed(shared) == sandboxed and _ready(shared, None, timeout):
        return shared
    if _server.get("failed") and _server.get("sandboxed") == sandboxed:
        return None
    start(env, sandboxed)
    if _ready(_server["path"], _server["process"], timeout):
        return _server["path"]
    _server["process"].kill()
    _server["failed"] = True
    return None


def is_sandboxed(path: str) -> bool:
    return os.path.isdir(os.path.join(os.path.dirname(path), KERNELS))


def holds(path: str, private: str) -> bool:
    """Whether the sandboxed server of socket ``path`` can see the kernel folder ``private``."""
    kernels = os.path.join(os.path.dirname(path), KERNELS)
    return os.path.dirname(private) == kernels


def kernel_folder(env: dict) -> str | None:
    """A new private folder for one kernel of the sandboxed fork server, ``kernels/<id>``: the kernel hides
    ``kernels/`` under an empty folder and puts back only its own (zoograde.isolate)."""
    path = socket_path(env, sandboxed=True)
    if path is None:
        return None
    return tempfile.mkdtemp(dir=os.path.join(os.path.dirname(path), KERNELS), prefix="kernel-")


def start(env: dict, sandboxed: bool = False) -> str:
    """Start this process's fork server unless it runs (it imports for a few seconds); its socket's path, at once."""
    process = _server.get("process")
    protect = env.get("ZOOGRADE_PROTECT", "")
    if process is not None and process.poll() is None:
        # reused only for the same course: a sandboxed server hides that course's folders, not another's
        if _server.get("sandboxed") == sandboxed and _server.get("protect") == protect:
            return _server["path"]
        stop()
    _server.pop("failed", None)
    folder = tempfile.mkdtemp(prefix="zoograde-forkserver-")
    path = os.path.join(folder, "socket")
    command = [sys.executable, "-m", "zoograde.forkserver", "--serve", path]
    if sandboxed:
        from zoograde import sandbox

        os.mkdir(os.path.join(folder, KERNELS))
        command = sandbox.wrap(command, folder, folder, forbidden=env.get("ZOOGRADE_PROTECT", "").split(os.pathsep))
    quiet = None if os.environ.get("ZOOGRADE_DEBUG") else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=quiet, stderr=quiet,
                               start_new_session=True)
    _server.update(process=process, path=path, folder=folder, sandboxed=sandboxed, protect=protect)
    if not _server.get("atexit"):
        atexit.register(stop)
        _server["atexit"] = True
    return path


def _ready(path: str, process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop() -> None:
    process = _server.pop("process", None)
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    shutil.rmtree(_server.pop("folder", ""), ignore_errors=True)


def main(args: list[str]) -> int:
    if len(args) >= 2 and args[0] == "--serve":
        try:
            serve(args[1])  # returns, or raises SystemExit on SIGTERM, once its kernels are killed and its socket gone
        except SystemExit:
            pass
        # nothing left to save: Python's orderly exit (PyTorch and IPython loaded) only made stop() wait longer
        os._exit(0)
    if len(args) >= 3 and args[0] == "--attach" and args[2] == "--":
        return attach(args[1], args[3:])
    if len(args) >= 5 and args[0] == "--attach" and args[2] == "--cgroup" and args[4] == "--":
        return attach(args[1], args[5:], cgroup=args[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
