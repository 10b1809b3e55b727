"""The verdict, decided in the grader's process: test cells run here, never in the student's kernel.

:class:`zoograde.execute.GuardedExecute` runs a submission's own cells in the sandboxed
kernel as before. A test cell (graded, not an answer) is not sent there. :class:`Judge` runs
its source, the instructor's (nbgrader's ``OverwriteCells`` has restored it from the
gradebook), in a namespace of this process where

* the course's setup cells (locked, not graded) have run, so ``torch``, ``nn`` and
  ``checks`` are the grader's own;
* every other name the test reads is looked up in the kernel and bound to a stand-in
  (:class:`zoolib.remote.RemoteObject`): the kernel only ever answers what the student's
  objects do on the inputs and weights sent from here (:mod:`zoolib.probe`), as plain data.

The reference models, the comparison and the message are computed here; the cell's outputs
are written here (an error output when the test fails, which is what nbgrader's
``SaveAutoGrades`` scores). Nothing the kernel does can change them, and the hidden test
code never reaches the kernel, so it cannot leak into the student's feedback through the
kernel's history either.
"""
from __future__ import annotations

import ast
import asyncio
import builtins
import concurrent.futures
import contextlib
import io
import os
import secrets
import socket
import time
import warnings

import torch
from nbformat.v4 import new_output
from nbgrader import utils

from zoolib import remote, wire

__all__ = ["Judge", "KernelChannel"]

_BUILTINS = set(dir(builtins))


class _Abort(BaseException):
    """The kernel is gone: unwinds the test code (which may catch Exception) back to the judge."""


class KernelChannel(remote.Channel):
    """Requests to :mod:`zoolib.probe` in the kernel, for one test cell.

    Where the kernel can reach a Unix socket of ours (``folder``, its own folder), the first
    request starts a *session*: one silent execution whose user expression,
    :func:`zoolib.probe.session`, connects to a socket this process listens on and answers
    requests until :meth:`close`. A request then costs a socket round trip (about 0.1 ms)
    instead of a Jupyter execution (3-8 ms, 60 of them per notebook of assignment 3). The
    kernel proves it is the one asked by sending the token the session request carried;
    anything else that connects is refused. If the session cannot start, each request is a
    silent execution of its own, as before.

    Called from the thread that runs the test code; Jupyter messages are sent on the
    executor's event loop.
    """

    def __init__(self, executor, loop: asyncio.AbstractEventLoop, deadline: float, sources: list[str],
                 folder: str | None = None):
        self.executor, self.loop, self.deadline = executor, loop, deadline
        self.sources = sources
        self.gone: BaseException | None = None
        self.requests = 0
        self.folder = folder
        self._conn: socket.socket | None = None
        self._session: concurrent.futures.Future | None = None

    def _execute(self, expression: str) -> concurrent.futures.Future:
        """A silent execution of ``expression`` in the kernel; its future holds the reply (or _KernelGone)."""
        return asyncio.run_coroutine_threadsafe(
            self.executor._run_silently("", max(self.deadline - time.monotonic(), 0.001), {"r": expression}),
            self.loop)

    def _reply(self, future: concurrent.futures.Future) -> dict:
        try:
            content = future.result()
        except Exception as err:  # noqa: BLE001 - _KernelGone: the cell's time is up or the kernel died
            self.gone = err
            raise _Abort() from None
        result = (content or {}).get("user_expressions", {}).get("r", {})
        if result.get("status") != "ok":
            raise remote.remote_error("KernelError", "the grading kernel could not answer the test's request "
                                      f"({result.get('ename', 'no answer')}: {result.get('evalue', '')})"[:500])
        return result

    def ask(self, text: str) -> str:
        if self.gone is not None:
            raise _Abort()
        self.requests += 1
        if self._conn is None and self.folder is not None:
            self._open()
        if self._conn is not None:
            return self._exchange(text)
        expression = f"__import__('zoolib.probe', fromlist=['serve']).serve(globals(), {text!r})"
        result = self._reply(self._execute(expression))
        try:
            return ast.literal_eval(result["data"]["text/plain"])
        except (KeyError, TypeError, ValueError, SyntaxError, MemoryError):
            raise remote.remote_error("KernelError", "the grading kernel's answer was not readable") from None

    # -- the session ------------------------------------------------------------------------------------
    def _open(self) -> None:
        folder, self.folder = self.folder, None   # one try per test cell
        token = secrets.token_hex(16)
        path = os.path.join(folder, f"judge-{secrets.token_hex(6)}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)   # fails if the kernel put something there: then no session
            listener.listen(4)
        except OSError:
            listener.close()
            return
        try:
            self._session = self._execute(
                f"__import__('zoolib.probe', fromlist=['session']).session(globals(), {path!r}, {token!r})")
            listener.settimeout(0.05)
            while self._conn is None:
                if self._session.done():  # the kernel could not start the session: requests go one by one
                    self._reply(self._session)
                    self._session = None
                    return
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    continue
                conn.settimeout(0.25)
                try:
                    hello = wire.recv_frame(conn, limit=64, waiting=self._waiting)
                except (OSError, wire.WireError):
                    hello = None
                if hello == token.encode():
                    self._conn = conn
                else:
                    conn.close()
        finally:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _waiting(self) -> None:
        """Between polls of the socket: give up if the session's execution has ended (time limit, death)."""
        if self._session is not None and self._session.done():
            self._drop()
            self._reply(self._session)   # raises _Abort when the kernel is gone
            raise remote.remote_error("KernelError", "the grading kernel stopped answering the test's requests")

    def _exchange(self, text: str) -> str:
        try:
            wire.send_frame(self._conn, text.encode())
            answer = wire.recv_frame(self._conn, waiting=self._waiting)
        except (OSError, wire.WireError) as err:
            problem = f"the grading kernel's answer was not readable ({err})"
        else:
            if answer is not None:
                return answer.decode(errors="replace")
            problem = "the grading kernel ended the test's session"
        self._drop()
        if self._session is not None:  # a dead kernel closes the socket first: let its execution say why
            concurrent.futures.wait([self._session], timeout=2)
            if self._session.done():
                self._reply(self._session)   # _Abort when the kernel is gone
        raise remote.remote_error("KernelError", problem)

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """End the session: the kernel's execution returns, and the kernel is ready for the next cell."""
        self._drop()
        session, self._session = self._session, None
        if session is not None and self.gone is None:
            try:
                session.result()
            except Exception as err:  # noqa: BLE001 - _KernelGone
                self.gone = err


def _assigned(tree: ast.AST) -> set[str]:
    """Names a cell binds itself (assignments, loop and comprehension targets, defs, arguments, imports)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _free_names(source: str) -> list[str]:
    tree = ast.parse(source)
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return sorted(loaded - _assigned(tree) - _BUILTINS)


class Judge:
    """One notebook's test cells, run in this process against the kernel's objects."""

    def __init__(self, executor, cells: list, folder: str | None = None):
        self.executor = executor
        self.folder = folder   # where the kernel can reach our Unix socket (None: a Jupyter execution per request)
        self.namespace: dict = {"__name__": "__grader__"}
        self.sources = [c.source for c in cells if c.cell_type == "code" and
                        (utils.is_solution(c) or not c.metadata.get("nbgrader"))]
        self.seconds = 0.0
        self.requests = 0
        # as many PyTorch threads as the kernel has: the two take turns on the same cores, and on a busy
        # machine more threads than cores made A6's judging 1.5x slower (8.1-9.4 s against 5.4-6.5 s)
        self.threads = max(1, int(getattr(executor, "threads", 1)))

    def setup(self, cell) -> str | None:
        """Run an instructor's setup cell here too; returns why it failed, if it did."""
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                exec(compile(cell.source, f"<setup {cell.metadata.get('nbgrader', {}).get('grade_id', '')}>",
                             "exec"), self.namespace)
        except Exception as err:  # noqa: BLE001
            return f"{type(err).__name__}: {err}"
        return None

    def forget_kernel(self) -> None:
        """After a restart: stand-ins point into a kernel that no longer exists."""
        for name in [n for n, v in self.namespace.items() if remote.is_remote(v)]:
            del self.namespace[name]

    async def run(self, cell, deadline: float) -> BaseException | None:
        """Run a test cell; write its outputs. Returns the kernel's failure (a timeout, a death) if there was one."""
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        channel = KernelChannel(self.executor, loop, deadline, self.sources, self.folder)
        printed = io.StringIO()
        error: BaseException | None = None

        def work():
            nonlocal error
            threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                code = compile(cell.source, f"<test {cell.metadata.get('nbgrader', {}).get('grade_id', '')}>",
                               "exec")
                for name in _free_names(cell.source):
                    current = self.namespace.get(name)
                    if name in self.namespace and not remote.is_remote(current):
                        continue  # the grader's own (torch, nn, checks, a helper of an earlier test)
                    try:
                        self.namespace[name] = channel.lookup(name)
                    except NameError:
                        self.namespace.pop(name, None)
                with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
                    warnings.simplefilter("ignore")
                    exec(code, self.namespace)
            except _Abort:
                pass
            except BaseException as err:  # noqa: BLE001 - the verdict: any exception fails the test
                error = err
            finally:
                torch.set_num_threads(threads)
                channel.close()

        await asyncio.to_thread(work)
        self.seconds += time.monotonic() - started
        self.requests += channel.requests
        if channel.gone is not None:
            return channel.gone
        cell.outputs = []
        if printed.getvalue():
            cell.outputs.append(new_output("stream", name="stdout", text=printed.getvalue()[:20_000]))
        if error is not None:
            ename = getattr(error, "ename", None) or type(error).__name__
            evalue = str(error)[:20_000]
            cell.outputs.append(new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))
        return None
