"""Plain data between a grading kernel and the grader: the encoding both sides use.

What crosses is JSON. Python's plain values travel as themselves; tensors as dtype, shape
and base64 bytes; any other object stays where it lives and travels as a numbered reference
(with its type's name and method resolution order, for messages and ``isinstance``).
Nothing is ever unpickled or evaluated, and :func:`decode` checks every field, because the
side that sends a reply may be hostile.
"""
from __future__ import annotations

import base64
import socket
from typing import Any, Callable

import torch

__all__ = ["encode", "decode", "seeded", "send_frame", "recv_frame", "WireError", "MAX_ITEMS", "MAX_BYTES"]

MAX_ITEMS = 10_000            # elements of one list, dict or iterator
MAX_BYTES = 64 << 20          # bytes of tensor data in one message
MAX_DEPTH = 32
MAX_FRAME = 2 * MAX_BYTES + (16 << 20)   # one message on a socket: base64 tensors and the JSON around them
_PLAIN = (bool, int, float, str, type(None))
_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16, torch.int8,
    torch.uint8, torch.bool)}


class WireError(ValueError):
    """A message that is not what the protocol allows."""


def encode(value: Any, ref: Callable[[Any], dict] | None = None, depth: int = 0) -> dict:
    """``value`` as JSON-able data; ``ref(obj)`` describes an object that is not data (None: refuse)."""
    if depth > MAX_DEPTH:
        raise WireError("data nested too deeply")
    kind = type(value)
    if kind in _PLAIN:
        return {"v": value}
    if kind in (list, tuple) or kind is torch.Size:
        if len(value) > MAX_ITEMS:
            raise WireError(f"more than {MAX_ITEMS:,} items")
        return {"list" if kind is list else "tuple": [encode(v, ref, depth + 1) for v in value]}
    if kind is dict and all(type(k) is str for k in value):
        if len(value) > MAX_ITEMS:
            raise WireError(f"more than {MAX_ITEMS:,} items")
        return {"dict": {k: encode(v, ref, depth + 1) for k, v in value.items()}}
    if kind is slice:
        return {"slice": [encode(v, ref, depth + 1) for v in (value.start, value.stop, value.step)]}
    if isinstance(value, torch.Tensor):
        return _encode_tensor(value)
    if ref is None:
        raise WireError(f"a {kind.__name__} cannot be sent")
    return {"ref": ref(value)}


def _encode_tensor(t: torch.Tensor) -> dict:
    grad = bool(t.requires_grad)
    t = torch.Tensor.detach(t)
    dtype = str(t.dtype).removeprefix("torch.")
    if dtype not in _DTYPES:
        t, dtype = t.float(), "float32"
    out = {"dtype": dtype, "shape": list(t.shape), "grad": grad}
    if t.is_meta:
        out["data"] = None
    else:
        data = t.cpu().contiguous()
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        raw = data.numpy().tobytes()
        if len(raw) > MAX_BYTES:
            raise WireError(f"a tensor of {len(raw):,} bytes is more than a message may hold")
        out["data"] = base64.b64encode(raw).decode("ascii")
    return {"tensor": out}


def decode(data: Any, ref: Callable[[dict], Any] | None = None, depth: int = 0, budget: list | None = None) -> Any:
    """The value ``data`` encodes; ``ref(description)`` turns a reference into a local stand-in."""
    budget = budget if budget is not None else [MAX_BYTES]
    if depth > MAX_DEPTH:
        raise WireError("data nested too deeply")
    if not isinstance(data, dict) or len(data) != 1:
        raise WireError("each value is an object with one key")
    (key, body), = data.items()
    if key == "v":
        if type(body) not in _PLAIN:
            raise WireError("a plain value must be null, a boolean, a number or a string")
        return body
    if key in ("list", "tuple"):
        if not isinstance(body, list) or len(body) > MAX_ITEMS:
            raise WireError("a list of at most 10,000 items expected")
        items = [decode(v, ref, depth + 1, budget) for v in body]
        return items if key == "list" else tuple(items)
    if key == "dict":
        if not isinstance(body, dict) or len(body) > MAX_ITEMS:
            raise WireError("a dict of at most 10,000 items expected")
        return {str(k): decode(v, ref, depth + 1, budget) for k, v in body.items()}
    if key == "slice":
        if not isinstance(body, list) or len(body) != 3:
            raise WireError("a slice has three parts")
        parts = [decode(v, None, depth + 1, budget) for v in body]
        if any(p is not None and type(p) is not int for p in parts):
            raise WireError("a slice holds integers")
        return slice(*parts)
    if key == "tensor":
        return _decode_tensor(body, budget)
    if key == "ref" and ref is not None:
        return ref(body)
    raise WireError(f"unknown kind of value {key!r}")


def _decode_tensor(body: Any, budget: list) -> torch.Tensor:
    if not isinstance(body, dict) or body.get("dtype") not in _DTYPES or not isinstance(body.get("shape"), list):
        raise WireError("a tensor has a known dtype and a shape")
    shape = body["shape"]
    if len(shape) > 8 or any(type(s) is not int or s < 0 for s in shape):
        raise WireError("a tensor's shape is at most 8 non-negative integers")
    dtype = _DTYPES[body["dtype"]]
    numel = 1
    for s in shape:
        numel *= s
    if body.get("data") is None:
        if numel > (1 << 40):
            raise WireError("a meta tensor too large to describe")
        return torch.empty(shape, dtype=dtype, device="meta")
    if not isinstance(body["data"], str):
        raise WireError("tensor data is base64 text")
    size = numel * torch.empty((), dtype=dtype).element_size()
    if size > budget[0] or len(body["data"]) > 4 * (size // 3 + 2):
        raise WireError("tensor data larger than its shape or than a message may hold")
    budget[0] -= size
    try:
        raw = base64.b64decode(body["data"], validate=True)
    except ValueError as err:
        raise WireError(f"tensor data is not base64: {err}") from None
    if len(raw) != size:
        raise WireError(f"a {body['dtype']} tensor of shape {shape} has {size} bytes, not {len(raw)}")
    storage = torch.int16 if dtype == torch.bfloat16 else dtype
    t = torch.frombuffer(bytearray(raw), dtype=storage) if size else torch.empty(0, dtype=storage)
    t = t.view(dtype).reshape(shape) if dtype == torch.bfloat16 else t.reshape(shape)
    if body.get("grad") is True and t.is_floating_point():
        t.requires_grad_(True)
    return t


def seeded(shape, seed: int, low: float, high: float, dtype: str = "float32") -> torch.Tensor:
    """Values uniform in [low, high] from ``seed``: the same bits in the grader and in the kernel.

    The grader gives the reference and the student's block the same weights by sending a seed
    and a range per tensor instead of the tensor (PyTorch's CPU generator is deterministic).
    """
    if dtype not in _DTYPES or not all(type(s) is int and s >= 0 for s in shape) or len(shape) > 8:
        raise WireError("a seeded tensor has a known dtype and a shape of non-negative integers")
    g = torch.Generator().manual_seed(int(seed))
    # drawn in float32 (float64 for a float64 tensor), scaled in place: 2.5x faster than drawing in float64,
    # and elementwise, so the bits do not depend on the number of threads
    work = torch.float64 if dtype == "float64" else torch.float32
    values = torch.rand(tuple(shape), generator=g, dtype=work).mul_(float(high) - float(low)).add_(float(low))
    return values.to(_DTYPES[dtype])


# -- messages on a stream socket: an 8-byte length, then the bytes ---------------------------------

def send_frame(sock, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(8, "big"))
    sock.sendall(payload)


def recv_frame(sock, limit: int = MAX_FRAME, waiting: Callable[[], None] | None = None) -> bytes | None:
    """The next message, or None if the other side closed the connection between messages.

    On a socket with a timeout, ``waiting()`` is called each time it passes with nothing read (it
    may raise to give up). A length over ``limit`` or a connection closed mid-message is a WireError.
    """
    header = _recv_exactly(sock, 8, waiting, closed_ok=True)
    if header is None:
        return None
    size = int.from_bytes(header, "big")
    if size > limit:
        raise WireError(f"a message of {size:,} bytes (the limit is {limit:,})")
    return _recv_exactly(sock, size, waiting)


def _recv_exactly(sock, size: int, waiting, closed_ok: bool = False) -> bytes | None:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        try:
            n = sock.recv_into(view[got:], size - got)
        except socket.timeout:
            if waiting is not None:
                waiting()
            continue
        if n == 0:
            if got == 0 and closed_ok:
                return None
            raise WireError("the connection closed in the middle of a message")
        got += n
    return bytes(buffer)
