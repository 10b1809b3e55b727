"""The grader's side of judging: stand-ins for the student's objects, which live in the kernel.

:class:`RemoteObject` behaves enough like the object it stands for that an assignment's test
code runs unchanged in the grader's process: calling it, reading an attribute, indexing,
``len``, iteration and ``isinstance`` each become one request to the kernel
(:mod:`zoolib.probe`), answered as plain data (:mod:`zoolib.wire`). The checks of
:mod:`zoolib.checks` recognise stand-ins and ask the kernel for traces and outputs instead
of running the object themselves, so the reference and the verdict stay here.

A stand-in's ``__class__`` is the PyTorch class the object says it derives from (or a
stand-in class deriving from it), so ``isinstance(block.pool, nn.MaxPool2d)`` reads as in a
notebook; the kernel's word on types is data like the rest, and a verdict never rests on it
alone.
"""
from __future__ import annotations

import builtins
import importlib
import json
from typing import Any

from . import wire

__all__ = ["Channel", "LocalChannel", "RemoteObject", "RemoteError", "is_remote", "request", "type_name"]


_PLAIN_TYPES = (int, float, bool, str, bytes, complex, type(None), tuple, list)


class PlainValueExpected(AssertionError):
    """A test compared an answer with a plain value, and the answer is an object of the student's own type."""


class RemoteError(Exception):
    """An exception the student's code raised in the kernel; ``ename`` is its type's name there."""

    ename = "Exception"


_ERRORS: dict[str, type] = {}


def remote_error(name: str, message: str) -> RemoteError:
    """An exception whose type is named ``name``; it also is the built-in exception of that name, if
    there is one, so the test code's ``except NotImplementedError`` catches it as it would locally."""
    name = name if name.isidentifier() else "Exception"
    cls = _ERRORS.get(name)
    if cls is None:
        builtin = getattr(builtins, name, None)
        bases = (RemoteError,)
        if isinstance(builtin, type) and issubclass(builtin, Exception) and builtin is not Exception:
            bases = (RemoteError, builtin)
        cls = _ERRORS[name] = type(name, bases, {"ename": name, "__module__": "kernel"})
    return cls(message)


class Channel:
    """A way to send one request to the kernel and get its JSON answer."""

    def ask(self, text: str) -> str:
        raise NotImplementedError

    def request(self, op: str, **fields) -> Any:
        text = self.ask(json.dumps({"op": op, **fields}))
        try:
            reply = json.loads(text)
        except (TypeError, ValueError):
            raise wire.WireError("the kernel's answer is not JSON") from None
        if not isinstance(reply, dict) or len(reply) != 1:
            raise wire.WireError("the kernel's answer has one key, ok or raised")
        if "raised" in reply:
            raised = reply["raised"]
            if not (isinstance(raised, list) and len(raised) == 2 and all(isinstance(r, str) for r in raised)):
                raise wire.WireError("a raised exception is [type name, message]")
            raise remote_error(raised[0][:100], raised[1][:4000])
        if "ok" not in reply:
            raise wire.WireError("the kernel's answer has one key, ok or raised")
        return wire.decode(reply["ok"], lambda info: RemoteObject(self, info))

    def send(self, value: Any) -> dict:
        """``value`` encoded for a request: plain data, tensors, and stand-ins of this channel."""
        def ref(obj):
            if type(obj) is RemoteObject and object.__getattribute__(obj, "_channel") is self:
                return {"id": object.__getattribute__(obj, "_info")["id"]}
            raise wire.WireError(f"a {type(obj).__name__} of the grader cannot be sent to the kernel")
        return wire.encode(value, ref)

    def lookup(self, name: str) -> Any:
        """The notebook's global ``name`` (a stand-in, or its value); raises NameError if it has none."""
        return self.request("lookup", name=name)


class LocalChannel(Channel):
    """The kernel's side called in this same process, on ``namespace``: for tests of the protocol only."""

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def ask(self, text: str) -> str:
        from . import probe

        return probe.serve(self.namespace, text)


def _resolve(module: str, qualname: str):
    """A PyTorch class by its module and qualified name, or None."""
    if not (module == "torch" or module.startswith("torch.")):
        return None
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:  # noqa: BLE001
        return None
    return obj if isinstance(obj, type) else None


_STAND_INS: dict[tuple, type] = {}


def _local_class(info: dict) -> type | None:
    mro = info.get("mro") if isinstance(info.get("mro"), list) else []
    for i, entry in enumerate(mro[:64]):
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)):
            return None
        cls = _resolve(*entry)
        if cls is None:
            continue
        if i == 0:
            return cls
        key = (str(info.get("type")), cls)
        if key not in _STAND_INS:
            try:
                _STAND_INS[key] = type(str(info.get("type", "object"))[:100] or "object", (cls,),
                                       {"__module__": "student"})
            except TypeError:  # a class that cannot be subclassed: the base itself
                _STAND_INS[key] = cls
        return _STAND_INS[key]
    return None


class RemoteObject:
    """Stands for an object of the kernel; every use is a request (see the module docstring)."""

    __slots__ = ("_channel", "_info")

    def __init__(self, channel: Channel, info: dict):
        if not isinstance(info, dict) or type(info.get("id")) is not int:
            raise wire.WireError("a reference has a number")
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_info", info)

    def _ask(self, op: str, **fields):
        return object.__getattribute__(self, "_channel").request(op, id=object.__getattribute__(self, "_info")["id"],
                                                                 **fields)

    @property
    def __class__(self):  # noqa: D401 - what isinstance() sees (see the module docstring)
        return _local_class(object.__getattribute__(self, "_info")) or RemoteObject

    def __call__(self, *args, **kwargs):
        channel = object.__getattribute__(self, "_channel")
        result = self._ask("call", args=[channel.send(a) for a in args],
                           kwargs={k: channel.send(v) for k, v in kwargs.items()})
        if type(result) is RemoteObject:  # remembered for messages: "f(3, 96, 11) returned ..."
            info = object.__getattribute__(self, "_info")
            shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
            object.__getattribute__(result, "_info")["origin"] = f"{info.get('name') or info.get('type')}({shown})"[:200]
        return result

    def __eq__(self, other):
        if type(other) in _PLAIN_TYPES:  # a test compares an answer with a number: the answer must be one
            info = object.__getattribute__(self, "_info")
            plain = [q for m, q in mro_of(self)[1:] if m == "builtins" and q in {t.__name__ for t in _PLAIN_TYPES}]
            raise PlainValueExpected(
                f"{info.get('origin', 'your function')} returned an object of type {info.get('type', 'object')}"
                + (f" (a subclass of {plain[0]})" if plain else "")
                + f"; return a plain {plain[0] if plain else type(other).__name__}.")
        return self is other

    __hash__ = object.__hash__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __getattr__(self, name: str):
        if name.startswith("__") and name != "__name__":
            raise AttributeError(name)
        if name == "__name__" and object.__getattribute__(self, "_info").get("name"):
            return object.__getattribute__(self, "_info")["name"]
        return self._ask("getattr", name=name)

    def __setattr__(self, name, value):
        raise AttributeError("the grader does not change the student's objects")

    def __getitem__(self, key):
        return self._ask("getitem", key=object.__getattribute__(self, "_channel").send(key))

    def __len__(self) -> int:
        n = self._ask("len")
        if type(n) is not int or n < 0:
            raise TypeError("len() of the student's object is not a non-negative int")
        return n

    def __iter__(self):
        items = self._ask("iter")
        if not isinstance(items, list):
            raise TypeError("the student's object did not iterate to a list")
        return iter(items)

    def __bool__(self) -> bool:
        return self._ask("bool") is True

    def __instancecheck__(self, obj) -> bool:
        if type(obj) is not RemoteObject:
            return False
        return object.__getattribute__(obj, "_channel").request(
            "isinstance", id=object.__getattribute__(obj, "_info")["id"],
            cls=object.__getattribute__(self, "_info")["id"]) is True

    def __repr__(self) -> str:
        info = object.__getattribute__(self, "_info")
        return f"<your {info.get('name') or info.get('type', 'object')} (in the grading kernel)>"


def is_remote(obj) -> bool:
    return type(obj) is RemoteObject


def request(obj: RemoteObject, op: str, **fields) -> Any:
    """One request about ``obj`` (see :mod:`zoolib.probe` for the operations); tensors and stand-ins are sent as such."""
    channel = object.__getattribute__(obj, "_channel")
    sent = {k: (channel.send(v) if k in ("x", "upstream", "by_order", "values") else v)
            for k, v in fields.items()}
    if "args" in fields:
        sent["args"] = [channel.send(a) for a in fields["args"]]
    if "kwargs" in fields:
        sent["kwargs"] = {k: channel.send(v) for k, v in fields["kwargs"].items()}
    return channel.request(op, id=object.__getattribute__(obj, "_info")["id"], **sent)


def sources_of(obj: RemoteObject) -> list:
    """The submitted cells' source, as the grader read it from the notebook (for static checks)."""
    return list(getattr(object.__getattribute__(obj, "_channel"), "sources", []))


def mro_of(obj: RemoteObject) -> list[tuple[str, str]]:
    """(module, qualified name) of each class of the object's type, as the kernel reported them."""
    mro = object.__getattribute__(obj, "_info").get("mro")
    return [tuple(e) for e in mro[:64] if isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)] \
        if isinstance(mro, list) else []


def type_name(obj) -> str:
    """The name of ``obj``'s type, for messages (a stand-in's is that of the object it stands for)."""
    if type(obj) is RemoteObject:
        return str(object.__getattribute__(obj, "_info").get("type", "object"))
    return type(obj).__name__
