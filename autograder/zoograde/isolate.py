"""Each kernel forked by a sandboxed fork server gets namespaces of its own (Linux only).

The fork server (:mod:`zoograde.forkserver`) runs in bubblewrap like a cold kernel would, so
that its forks start in the sandbox. Forks of one server would still share its folder, its
network namespace and its PID namespace, so each fork, before it runs anything of the
notebook, goes one level deeper:

1. it waits until the grader's attach process has put it in its own cgroup (SIGUSR1);
2. it creates a user namespace (uid 65534 again), a mount namespace, a PID namespace, a
   network namespace (empty: not even a loopback shared with other kernels), IPC and UTS;
3. in the new mount namespace an empty file system covers ``kernels/``, and its own folder
   ``kernels/<id>`` is bound back at its place: it keeps its paths, and no other kernel's
   folder is reachable;
4. it forks the kernel, which is PID 1 of the new PID namespace, mounts a /proc of that
   namespace where the kernel allows it, drops every capability and sets ``no_new_privs``,
   then runs IPython's kernel. The intermediate process relays signals and the exit status.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import struct
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
UID = 65534
GO = signal.SIGUSR1

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def kernel_namespaces(outer: str, wait: float = 30.0) -> None:
    """In the forked child: isolate it (see the module docstring). Returns in the kernel process; the
    intermediate process never returns (it exits as the kernel exits)."""
    if signal.sigtimedwait([GO], wait) is None:  # the attach process never let us go: do not run unconfined
        os._exit(1)
    libc = _c()
    uid, gid = os.geteuid(), os.getegid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS),
           "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{UID} {uid} 1\n")
    _write("/proc/self/gid_map", f"{UID} {gid} 1\n")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    kernels = os.path.dirname(outer)
    own = os.open(outer, os.O_PATH | os.O_DIRECTORY)
    _check(libc.mount(b"tmpfs", kernels.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=64k,mode=0755"),
           "hide the other kernels' folders")
    os.mkdir(outer)
    _check(libc.mount(f"/proc/self/fd/{own}".encode(), outer.encode(), None, MS_BIND | MS_REC, None),
           "bind the kernel's folder")
    os.close(own)
    _check(libc.mount(None, kernels.encode(), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None),
           "make the cover read-only")
    pid = os.fork()
    if pid == 0:
        _become_pid_1()
        return
    _relay(pid)


def _become_pid_1() -> None:
    libc = _c()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # a /proc of this PID namespace (not possible under every kernel's rules; the old one then shows the
    # server's namespace, where this kernel can signal no one and, non-dumpable, read nothing private)
    libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    drop_capabilities()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {GO})


def drop_capabilities() -> None:
    libc = _c()
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()                  # effective, permitted, inheritable: all zero
    _check(libc.syscall(126 if os.uname().machine == "x86_64" else 91, header, data), "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _relay(pid: int) -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda n, _f: _forward(pid, n))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {-code})
        os.kill(os.getpid(), -code)
        time.sleep(1)
    os._exit(code if code >= 0 else 1)


def _forward(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------------
# In the attach process (outside every sandbox)

def release(conn: socket.socket, inner_pid: int, cgroup: str | None, timeout: float = 10.0) -> int | None:
    """The forked kernel ``inner_pid`` (numbered in the server's namespace) as this machine numbers it,
    put in ``cgroup``, then let go (SIGUSR1). None if it cannot be found."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    server, _, _ = struct.unpack("3i", creds)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _children(server):
            if _inner_pid(child) == inner_pid:
                if cgroup:
                    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                        f.write(str(child))
                os.kill(child, GO)
                return child
        time.sleep(0.005)
    return None


def _children(pid: int) -> list[int]:
    found = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return found


def _inner_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return None
