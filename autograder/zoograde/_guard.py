"""The grading kernel's side of the defences (imported by :mod:`zoograde.kernel`, never by students).

Two mechanisms, both installed before any student code runs:

* an audit hook (PEP 578) that explains why the notebook may not leave its folder: no reading of the
  course (hidden tests, gradebook, other students), no writing outside the submission
  folder and a private temporary folder, no new processes, no signals to other processes,
  no network, no ctypes and no walking of the garbage collector (which would find this
  module's snapshot);
* a snapshot of everything a test's verdict depends on: the helper modules (``zoolib``,
  ``zoolib.checks``), ``torch``, ``torch.nn`` and its layer classes, ``numpy``, ``builtins``,
  the interpreter hooks (``sys.excepthook``, tracing, ``gc.callbacks``, signal handlers) and
  IPython's execution machinery (input and AST transformers, custom exception handlers,
  event callbacks, patched shell methods).

The grader calls :func:`check` around every test cell. Before the cell, whatever student
code changed is put back and reported: the test then judges the student's own code with
the real helpers. After the cell, a change made while the test ran means the test's verdict
cannot be trusted, and the grader scores the cell zero.

Neither mechanism is a security boundary: code that runs in the process can undo both. The
boundary is the operating system's (:mod:`zoograde.sandbox`): what the audit hook refuses,
the sandbox would stop anyway; the hook is there to give the student a clear message
("reading ... is not allowed while grading") instead of a bare "file not found". The
snapshot keeps a test's verdict honest against monkeypatching, which is not a matter of
isolation at all.
"""
from __future__ import annotations

import builtins
import gc
import json
import os
import signal
import sys
import threading

_MISSING = object()

# Event -> kind of check. Events not listed pass untouched (the hook must be cheap: it runs on every import).
_FILE_READ = {"open", "os.listdir", "os.scandir", "sqlite3.connect", "glob.glob", "os.chdir"}
_FILE_WRITE = {"os.remove", "os.rename", "os.replace", "os.rmdir", "os.mkdir", "os.symlink", "os.link",
               "os.chmod", "os.chown", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile",
               "shutil.copytree", "shutil.move", "os.removexattr", "os.setxattr"}
_PROCESS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
            "pty.spawn", "os.startfile"}
_SIGNAL = {"os.kill", "os.killpg", "signal.pthread_kill"}
_NETWORK = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"}
_FORBIDDEN = {
    "ctypes.dlopen": "loading native code with ctypes",
    "ctypes.dlsym": "looking up native functions with ctypes",
    "ctypes.call_function": "calling native functions with ctypes",
    "gc.get_objects": "walking the garbage collector's objects",
    "gc.get_referrers": "walking the garbage collector's objects",
    "gc.get_referents": "walking the garbage collector's objects",
    "resource.setrlimit": "changing the grader's resource limits",
    "resource.prlimit": "changing the grader's resource limits",
    "sys.addaudithook": "adding audit hooks",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class GradingPolicyError(PermissionError):
    """Raised inside a student's notebook for an action the grader does not allow."""


def _policy(allowed: list[str], protected: list[str], writable: list[str], alias: tuple[str, str] | None = None):
    """The audit hook. Everything it uses is bound now, so rebinding ``os.path`` later changes nothing.
    ``alias`` = (working copy, submission folder): relative paths are judged, and named in messages, as
    if the notebook ran in its submission's folder (it runs in a copy of it)."""
    realpath, join, getpid, fspath = os.path.realpath, os.path.join, os.getpid, os.fspath
    if alias:
        copy, folder = os.path.realpath(alias[0]), alias[1]
        getcwd = lambda: folder if os.getcwd() == copy else os.getcwd()  # noqa: E731
    else:
        getcwd = os.getcwd
    own_proc = f"/proc/{getpid()}"
    allowed = tuple(realpath(p) for p in allowed)
    protected = tuple(realpath(p) for p in protected)
    writable = tuple(realpath(p) for p in writable) + allowed + ("/dev/null",)
    read, write, process, sig, net, forbidden = _FILE_READ, _FILE_WRITE, _PROCESS, _SIGNAL, _NETWORK, _FORBIDDEN
    error = GradingPolicyError

    def inside(path: str, roots: tuple) -> bool:
        return any(path == r or path.startswith(r + "/") for r in roots)

    def resolve(path):
        if isinstance(path, int) or path is None:
            return None
        try:
            path = fspath(path)
        except TypeError:
            return None
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        return realpath(join(getcwd(), path))

    def may_read(path) -> None:
        full = resolve(path)
        if full is None:
            return
        if full.startswith("/proc/") and not (full == own_proc or full.startswith(own_proc + "/")
                                              or full.startswith("/proc/self") or full.startswith(("/proc/cpuinfo",
                                                                                                   "/proc/meminfo"))):
            if full.split("/")[2].isdigit():
                raise error(f"reading {path} is not allowed while grading: other processes are off limits")
        if inside(full, protected) and not inside(full, allowed):
            raise error(f"reading {path} is not allowed while grading: the notebook may only use its own folder")

    def may_write(path) -> None:
        full = resolve(path)
        if full is not None and not inside(full, writable):
            raise error(f"writing {path} is not allowed while grading: the notebook may only write inside "
                        f"its own folder")

    def hook(event: str, args: tuple) -> None:
        if event in read:
            if event == "open":
                path, mode, flags = args
                if (mode and any(c in mode for c in "wax+")) or (flags and flags & _WRITE_FLAGS):
                    may_write(path)
                else:
                    may_read(path)
            elif args:
                may_read(args[0])
        elif event in write:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)):
                    may_write(path)
        elif event in process:
            raise error(f"starting another process ({event}) is not allowed while grading")
        elif event in sig:
            if event == "os.kill" and args and args[0] == getpid():
                return
            raise error(f"sending signals to other processes ({event}) is not allowed while grading")
        elif event in net:
            if event == "socket.connect" and len(args) > 1 and isinstance(args[1], str) and \
                    not args[1].startswith("\0") and inside(resolve(args[1]) or "", writable):
                return  # a Unix socket in the kernel's own folder: the judge's (zoolib.probe.session)
            raise error(f"network access ({event}) is not allowed while grading")
        elif event in forbidden:
            if event == "sys.addaudithook":
                raise RuntimeError(forbidden[event])  # RuntimeError: the new hook is silently refused
            raise error(f"{forbidden[event]} is not allowed while grading")

    return hook


# ---------------------------------------------------------------------------------------------
# The snapshot: what a test's verdict depends on.

_PROTECTED_MODULES = ("builtins", "math", "numpy", "torch", "torch.nn", "torch.nn.functional", "torch.nn.init",
                      "torch.nn.modules.module", "torch.testing", "torch.autograd", "warnings")
_SHELL_METHODS = ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "run_cell_magic", "transform_cell",
                  "transform_ast", "showtraceback", "_showtraceback", "showsyntaxerror", "should_run_async",
                  "user_expressions", "ex", "ev", "safe_execfile", "_run_cell")
_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGALRM", "SIGXCPU",
                                                                  "SIGUSR1", "SIGUSR2")) if s is not None)


class _Snapshot:
    def __init__(self):
        import torch
        from torch import nn

        self.modules = {}
        for name in sorted(set(_PROTECTED_MODULES) | {m for m in sys.modules if m == "zoolib" or m.startswith("zoolib.")}):
            module = sys.modules.get(name)
            if module is not None:
                self.modules[name] = (module, dict(vars(module)))
        classes = {torch.Tensor, torch._C.TensorBase, nn.Module, nn.Parameter}
        classes |= {c for c in vars(nn).values() if isinstance(c, type) and issubclass(c, nn.Module)}
        shell = self.shell = _shell()
        if shell is not None:
            classes |= set(type(shell).__mro__[:-1])
            kernel = getattr(shell, "kernel", None)
            if kernel is not None:
                classes |= set(type(kernel).__mro__[:-1])
        self.classes = {c: dict(vars(c)) for c in classes}
        self.hooks = self._hooks()
        self.shell_state = self._shell_state()
        self.names: dict[str, object] = {}   # user-namespace names bound to modules by instructor cells
        self.threads = {t.ident for t in threading.enumerate()}
        self.threads.add(None)

    @staticmethod
    def _hooks() -> dict:
        return {label: read() for label, (read, _) in _HOOKS.items()}

    def _shell_state(self) -> dict:
        return {label: read(self.shell) for label, (read, _) in _shell_slots(self.shell).items()}

    # -- comparison and repair ---------------------------------------------------------------
    def repair(self) -> list[str]:
        changes: list[str] = []
        for name, (module, saved) in self.modules.items():
            if sys.modules.get(name) is not module:
                changes.append(f"sys.modules[{name!r}] was replaced")
                sys.modules[name] = module
            current = vars(module)
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value and not _volatile(name, key):
                    if _library_wrapper(current.get(key), value):
                        saved[key] = current[key]  # e.g. importing torch._dynamo wraps torch.manual_seed
                        continue
                    changes.append(f"{name}.{key} was {'deleted' if key not in current else 'replaced'}")
                    current[key] = value
        for cls, saved in self.classes.items():
            current = dict(vars(cls))
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value and not key.startswith("__abstract"):
                    changes.append(f"{_qualname(cls)}.{key} was {'deleted' if key not in current else 'replaced'}")
                    _setattr(cls, key, value)
            for key in current.keys() - saved.keys():
                if not key.startswith("_abc_"):
                    changes.append(f"{_qualname(cls)}.{key} was added")
                    _delattr(cls, key)
        now = self._hooks()
        for key, value in self.hooks.items():
            if _differs(now[key], value):
                changes.append(f"{key} was changed")
                _HOOKS[key][1](value)
        if self.shell is not None:
            now, slots = self._shell_state(), _shell_slots(self.shell)
            for key, value in self.shell_state.items():
                if _differs(now[key], value):
                    changes.append(f"IPython's {key} {'were' if key.endswith('s') else 'was'} changed")
                    slots[key][1](self.shell, value)
            ns = self.shell.user_ns
            for key, value in self.names.items():
                if ns.get(key, _MISSING) is not value:
                    changes.append(f"the name {key!r} no longer referred to the module {value.__name__}")
                    ns[key] = value
        return changes

    def trust(self) -> None:
        """After an instructor cell: module names it bound in the user namespace are protected from now on."""
        if self.shell is None:
            return
        for key, value in list(self.shell.user_ns.items()):
            if type(value).__name__ == "module" and not key.startswith("_"):
                self.names[key] = value

    def foreign_threads(self) -> list[str]:
        """Threads running code written in the notebook (the libraries' own helper threads are not counted)."""
        found = []
        for thread in threading.enumerate():
            if thread.ident in self.threads or not thread.is_alive():
                continue
            run = getattr(thread, "_target", None) or type(thread).run
            filename = getattr(getattr(run, "__code__", None), "co_filename", "")
            if filename.startswith("<") or "ipykernel_" in filename:
                found.append(thread.name)
        return found


def _volatile(module: str, key: str) -> bool:
    """Module attributes that change by themselves while code runs."""
    return (module == "builtins" and key in {"_", "__IPYTHON__", "display", "get_ipython", "input"}) or key in {
        "__warningregistry__", "_filters_version", "filters", "_onceregistry", "defaultaction"}


def _library_wrapper(new, old) -> bool:
    """A library's own wrapper of the original (functools.wraps in torch's source), not a student's function."""
    if getattr(new, "__wrapped__", None) is not old:
        return False
    import torch

    filename = getattr(getattr(new, "__code__", None), "co_filename", "")
    return filename.startswith(os.path.dirname(torch.__file__) + os.sep)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _differs(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) != len(b) or any(x is not y for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() != b.keys() or any(_differs(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) != len(b) or any(_differs(x, y) for x, y in zip(a, b))
    return a is not b and a != b


def _setattr(cls, key, value):
    try:
        type.__setattr__(cls, key, value)
    except TypeError:
        pass


def _delattr(cls, key):
    try:
        type.__delattr__(cls, key)
    except (TypeError, AttributeError):
        pass


def _list_slot(get_list):
    """(read, write) for a list that must keep its identity: restored in place."""
    return lambda *shell: list(get_list(*shell)), lambda *args: get_list(*args[:-1]).__setitem__(slice(None), args[-1])


def _sys_slot(name):
    return lambda: getattr(sys, name), lambda value: setattr(sys, name, value)


# Every process-wide hook a cell could swap: label (as the grader's message names it) -> (read, write).
_HOOKS = {
    **{f"sys.{name}": _sys_slot(name) for name in ("excepthook", "displayhook", "breakpointhook", "stdout", "stderr")},
    "sys.gettrace()": (sys.gettrace, sys.settrace),
    "sys.getprofile()": (sys.getprofile, sys.setprofile),
    "threading trace": (lambda: getattr(threading, "_trace_hook", None), threading.settrace),
    "threading profile": (lambda: getattr(threading, "_profile_hook", None), threading.setprofile),
    "gc.callbacks": _list_slot(lambda: gc.callbacks),
    "sys.meta_path": _list_slot(lambda: sys.meta_path),
    "sys.path_hooks": _list_slot(lambda: sys.path_hooks),
    **{f"the {signal.Signals(number).name} handler": (lambda n=number: signal.getsignal(n),
                                                     lambda value, n=number: signal.signal(n, value))
       for number in _SIGNALS},
}


def _set_pair(shell, value, first: str, second: str) -> None:
    setattr(shell, first, value[0])
    setattr(shell, second, value[1])


def _set_compiler(shell, value) -> None:
    shell.compile = value[0]
    shell.compile.flags = value[1]


def _set_callbacks(shell, value) -> None:
    for event, callbacks in value.items():
        shell.events.callbacks[event][:] = callbacks


def _method_slot(name):
    def write(shell, value):
        if value is _MISSING:
            vars(shell).pop(name, None)
        else:
            vars(shell)[name] = value
    return lambda shell: vars(shell).get(name, _MISSING), write


def _shell_slots(shell) -> dict:
    """The IPython state a cell could swap: label -> (read(shell), write(shell, value)); none without a shell."""
    if shell is None:
        return {}
    return {
        "input transformers": _list_slot(lambda sh: sh.input_transformers_cleanup),
        "input transformers (post)": _list_slot(lambda sh: sh.input_transformers_post),
        "AST transformers": _list_slot(lambda sh: sh.ast_transformers),
        "custom exception handlers": (lambda sh: (sh.custom_exceptions, sh.CustomTB),
                                      lambda sh, v: _set_pair(sh, v, "custom_exceptions", "CustomTB")),
        "the shell's compiler": (lambda sh: (sh.compile, sh.compile.flags), _set_compiler),
        "event callbacks": (lambda sh: {k: list(v) for k, v in sh.events.callbacks.items()}, _set_callbacks),
        **{f"shell.{name}": _method_slot(name) for name in _SHELL_METHODS},
    }


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _forget_cell_sources(shell) -> None:
    """Later cells cannot read a finished test cell's source from the history or the line cache."""
    import linecache

    ns = shell.user_ns
    for name in ("In", "_ih"):
        history = ns.get(name)
        if isinstance(history, list) and history:
            history[-1] = ""
    for name in ("_i", "_ii", "_iii", f"_i{shell.execution_count - 1}", f"_i{shell.execution_count}"):
        if isinstance(ns.get(name), str):
            ns[name] = ""
    for filename in [f for f in linecache.cache if f.startswith("<ipython-input-") or "/ipykernel_" in f]:
        linecache.cache.pop(filename, None)


_state: dict = {}
last = ""


def install(allowed: list[str], protected: list[str], writable: list[str],
            alias: tuple[str, str] | None = None) -> None:
    """Called once by the kernel launcher, after the shell exists and before any cell runs."""
    sys.addaudithook(_policy(allowed, protected, writable, alias))


def check(phase: str, nonce: str) -> str:
    """Run by the grader around test cells; leaves a JSON report in ``last`` for it to read."""
    global last
    snapshot: _Snapshot | None = _state.get("snapshot")
    report: dict = {"nonce": nonce, "phase": phase, "changes": [], "threads": []}
    if phase == "baseline":  # the grader's first request, before any cell of the notebook
        if snapshot is None:
            _state["snapshot"] = _Snapshot()
    elif snapshot is None:
        report["changes"].append("the grading kernel was not set up")
    elif phase == "trust":
        report["changes"] = snapshot.repair()
        snapshot.trust()
    else:
        report["changes"] = snapshot.repair()
        report["threads"] = snapshot.foreign_threads()
        if phase == "post" and snapshot.shell is not None:
            _forget_cell_sources(snapshot.shell)
    last = json.dumps(report)
    return last
