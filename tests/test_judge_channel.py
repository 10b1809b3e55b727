"""zoograde.judge.KernelChannel: the requests of one test cell, over a socket session or one execution each.

The kernel is played by this process: a silent execution evaluates its user expression in a
thread (as a kernel's main thread would), in a namespace whose ``zoolib.probe`` can be replaced,
the way a hostile submission replaces it. What must hold whatever the kernel does:

- an honest kernel answers a whole test's requests in one execution (the session);
- a connection that does not bring the session's token is refused, and the right one is used;
- a kernel that declines the session is asked one execution per request, and still answered;
- an answer that breaks the protocol (a length of 2**60) fails the request with a KernelError,
  whose message says so, instead of exhausting the grader's memory;
- a kernel that never answers is given up at the test's deadline (the cell's time limit).
"""
from __future__ import annotations

import asyncio
import builtins
import socket
import threading
import time
import types

import pytest

from zoograde import execute, judge
from zoolib import probe, wire


class PlayedKernel:
    """The executor's side the channel uses: ``_run_silently`` evaluates the user expression ``r``."""

    def __init__(self, fake_probe: types.ModuleType | None = None):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.executions = 0
        real_import = builtins.__import__

        def importer(name, *args, **kwargs):
            return fake_probe if name == "zoolib.probe" and fake_probe is not None else real_import(name, *args, **kwargs)

        self.namespace = {"__builtins__": {**vars(builtins), "__import__": importer}, "answer": 42}

    async def _run_silently(self, code: str, timeout: float, expressions: dict) -> dict:
        self.executions += 1
        work = asyncio.ensure_future(asyncio.to_thread(eval, expressions["r"], self.namespace))
        try:
            value = await asyncio.wait_for(asyncio.shield(work), timeout)
        except asyncio.TimeoutError:
            raise execute._KernelGone("CellTimeout", "the kernel stopped responding") from None
        except Exception as err:  # noqa: BLE001 - what the kernel would report as an error
            return {"user_expressions": {"r": {"status": "error", "ename": type(err).__name__, "evalue": str(err)}}}
        return {"user_expressions": {"r": {"status": "ok", "data": {"text/plain": repr(value)}}}}

    def channel(self, folder, seconds: float = 20.0) -> judge.KernelChannel:
        return judge.KernelChannel(self, self.loop, time.monotonic() + seconds, [], str(folder))

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def played():
    kernels = []

    def make(fake_probe=None):
        kernels.append(PlayedKernel(fake_probe))
        return kernels[-1]

    yield make
    for k in kernels:
        k.close()


def _probe_with(**functions) -> types.ModuleType:
    module = types.ModuleType("zoolib.probe")
    module.serve = probe.serve
    module.session = probe.session
    vars(module).update(functions)
    return module


def test_an_honest_kernel_answers_a_whole_test_in_one_execution(played, tmp_path):
    kernel = played()
    channel = kernel.channel(tmp_path)
    assert [channel.lookup("answer") for _ in range(20)] == [42] * 20
    with pytest.raises(NameError):
        channel.lookup("nothing_by_that_name")
    channel.close()
    assert (kernel.executions, channel.requests, channel.gone) == (1, 21, None)
    assert list(tmp_path.iterdir()) == []   # the listening socket is gone as soon as the kernel is connected


def test_a_connection_without_the_token_is_refused(played, tmp_path):
    def impostor_first(namespace, path, token):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wrong:
            wrong.connect(path)
            wire.send_frame(wrong, b"0" * 32)                     # not the token: refused
            assert wrong.recv(1) == b""                           # the grader closed it
        return probe.session(namespace, path, token)

    kernel = played(_probe_with(session=impostor_first))
    channel = kernel.channel(tmp_path)
    assert channel.lookup("answer") == 42
    channel.close()
    assert kernel.executions == 1 and channel.gone is None


def test_a_kernel_that_declines_the_session_is_asked_one_execution_per_request(played, tmp_path):
    kernel = played(_probe_with(session=lambda namespace, path, token: "no"))
    channel = kernel.channel(tmp_path)
    assert [channel.lookup("answer") for _ in range(3)] == [42] * 3
    channel.close()
    assert kernel.executions == 1 + 3


def test_an_answer_of_2_to_the_60_bytes_fails_the_request_not_the_grader(played, tmp_path):
    def flood(namespace, path, token):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(path)
            wire.send_frame(conn, token.encode())
            wire.recv_frame(conn)
            conn.sendall((1 << 60).to_bytes(8, "big"))
            time.sleep(0.5)
        return "done"

    kernel = played(_probe_with(session=flood))
    channel = kernel.channel(tmp_path)
    with pytest.raises(Exception) as raised:
        channel.lookup("answer")
    assert type(raised.value).__name__ == "KernelError"
    assert "1,152,921,504,606,846,976 bytes" in str(raised.value) and "not readable" in str(raised.value)
    channel.close()
    assert channel.gone is None


def test_a_kernel_that_never_answers_is_given_up_at_the_deadline(played, tmp_path):
    release = threading.Event()

    def stuck(namespace, path, token):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(path)
            wire.send_frame(conn, token.encode())
            wire.recv_frame(conn)
            release.wait(30)          # a student's forward pass that loops
        return "done"

    kernel = played(_probe_with(session=stuck))
    channel = kernel.channel(tmp_path, seconds=1.5)
    started = time.monotonic()
    with pytest.raises(judge._Abort):
        channel.lookup("answer")
    assert 1.0 < time.monotonic() - started < 4.0
    assert isinstance(channel.gone, execute._KernelGone) and channel.gone.ename == "CellTimeout"
    release.set()
    channel.close()
