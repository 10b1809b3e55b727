"""The grading kernel's side of judging: it answers narrow requests about the student's objects.

When a submission is graded, the test cells do not run in the student's process. The grader
runs them in its own (:mod:`zoograde.judge`), where every name the student defined is a
stand-in (:class:`zoolib.remote.RemoteObject`). Whatever the test does with a stand-in (call
it, read an attribute, trace it, run it with given weights) becomes one request, which
:func:`serve` answers here, in the kernel, as plain data (:mod:`zoolib.wire`).

Nothing here decides anything, and nothing here is trusted: a student's code can replace this
module. The grader only ever learns what the student's objects do on the inputs and weights it
sends at grading time, and compares that with its own reference, which never comes here.
"""
from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import torch
from torch import nn

from . import wire

__all__ = ["serve", "session"]

_objects: dict[int, Any] = {}      # reference number -> object (kept alive while the kernel lives)
_numbers: dict[int, int] = {}      # id(object) -> reference number
_traced: dict[int, dict] = {}      # reference number -> {op id: the tensors that op read} from the last trace
_MAX_OBJECTS = 100_000


def serve(namespace: dict, request: str) -> str:
    """Answer one request (JSON text) about ``namespace``, the notebook's globals; returns JSON text."""
    try:
        req = json.loads(request)
        handler = _HANDLERS[req["op"]]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            reply = {"ok": handler(namespace, req)}
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - everything the student's code raises is reported, as data
        text = str(err)
        reply = {"raised": [type(err).__name__, text[:4000]]}
    try:
        return json.dumps(reply, allow_nan=True)
    except (TypeError, ValueError) as err:
        return json.dumps({"raised": ["WireError", f"the answer could not be sent: {err}"]})


def session(namespace: dict, path: str, token: str) -> str:
    """Answer requests on the grader's Unix socket ``path`` (in this kernel's own folder) until it closes it.

    One session serves one test cell: ``token`` (sent with the request that starts the session)
    comes first, so the grader knows it is talking to this kernel. The main thread answers, as
    it would a cell; each answer is :func:`serve`'s.
    """
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        wire.send_frame(conn, token.encode())
        while (request := wire.recv_frame(conn)) is not None:
            wire.send_frame(conn, serve(namespace, request.decode()).encode())
    return "done"


# -- references ------------------------------------------------------------------------------------
def _name(obj, attr: str) -> str:
    try:
        value = getattr(obj, attr)
    except Exception:  # noqa: BLE001
        return ""
    return value if isinstance(value, str) else ""


def _ref(obj) -> dict:
    number = _numbers.get(id(obj))
    if number is None or _objects.get(number) is not obj:
        if len(_objects) >= _MAX_OBJECTS:
            raise wire.WireError("too many objects referenced")
        number = len(_objects) + 1
        _objects[number], _numbers[id(obj)] = obj, number
    cls = type(obj)
    mro = [[_name(c, "__module__"), _name(c, "__qualname__")] for c in cls.__mro__]
    kind = ("class" if isinstance(obj, type) else "module" if isinstance(obj, nn.Module)
            else "function" if callable(obj) else "object")
    info = {"id": number, "type": _name(cls, "__name__"), "mro": mro, "kind": kind}   # names as in messages
    if kind in ("class", "function"):
        info["name"] = _name(obj, "__name__") or _name(obj, "__qualname__")
        if kind == "class":
            info["bases"] = [[_name(c, "__module__"), _name(c, "__qualname__")] for c in obj.__mro__]
    return info


def _enc(value) -> dict:
    if hasattr(value, "__next__") and not isinstance(value, torch.Tensor):  # an iterator: its items
        items = []
        for item in value:
            if len(items) >= wire.MAX_ITEMS:
                raise wire.WireError(f"more than {wire.MAX_ITEMS:,} items")
            items.append(item)
        value = items
    return wire.encode(value, _ref)


def _obj(number) -> Any:
    if type(number) is not int or number not in _objects:
        raise LookupError(f"no object number {number!r}")
    return _objects[number]


def _dec(data) -> Any:
    return wire.decode(data, lambda info: _obj(info.get("id") if isinstance(info, dict) else None))


def _args(req: dict) -> tuple[list, dict]:
    args = _dec({"list": req.get("args", [])})
    kwargs = _dec({"dict": req.get("kwargs", {})})
    return args, kwargs


# -- generic requests ------------------------------------------------------------------------------
def _lookup(ns: dict, req: dict):
    name = req["name"]
    if not isinstance(name, str) or name not in ns:
        raise NameError(f"name {name!r} is not defined")
    return _enc(ns[name])


def _call(ns, req):
    args, kwargs = _args(req)
    return _enc(_obj(req["id"])(*args, **kwargs))


def _getattr(ns, req):
    name = req["name"]
    if not isinstance(name, str) or (name.startswith("__") and name != "__name__"):
        raise AttributeError(f"attribute {name!r} is not asked for")
    return _enc(getattr(_obj(req["id"]), name))


def _getitem(ns, req):
    return _enc(_obj(req["id"])[_dec(req["key"])])


def _len(ns, req):
    return _enc(len(_obj(req["id"])))


def _iter(ns, req):
    return _enc(iter(_obj(req["id"])))


def _isinstance(ns, req):
    return _enc(isinstance(_obj(req["id"]), _obj(req["cls"])))


def _bool(ns, req):
    return _enc(bool(_obj(req["id"])))


# -- requests about a module -----------------------------------------------------------------------
def _module(number) -> nn.Module:
    m = _obj(number)
    if not isinstance(m, nn.Module):
        raise TypeError(f"expected an nn.Module, got a {type(m).__name__}")
    return m


def _trace(ns, req):
    """The module's dataflow trace on the grader's input (or, for a shape, on meta tensors)."""
    from . import dataflow

    module = _module(req["id"])
    train = bool(req.get("train", False))
    x = _dec(req["x"]) if "x" in req else None
    result: dict = {"trace": None, "error": None}
    try:
        if x is None:
            size = [int(s) for s in req["size"]]
            try:
                t = dataflow.trace_shapes(module, size, train=train)
            except Exception:  # noqa: BLE001 - a block that reads values: trace it on real numbers
                with torch.no_grad():
                    t = dataflow.trace(module, torch.randn(size), train=train)
        else:
            with torch.no_grad():
                t = dataflow.trace(module, x, train=train)
        result["trace"] = json.loads(t.to_json())
        if req.get("keep"):  # the tensors each operation read (the real ones), for a later "run" to fill
            _traced[req["id"]] = t.tensors
            result["read"] = {str(k): [[list(v.shape), str(v.dtype).removeprefix("torch.")] for v in tensors]
                              for k, tensors in t.tensors.items()}
        used = {id(v) for tensors in t.tensors.values() for v in tensors}
        result["unused"] = [[name, type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False))]
                            for name, m in module.named_modules()
                            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase))
                            and any(id(p) not in used for p in m.parameters(recurse=False))]
    except Exception as err:  # noqa: BLE001
        result["error"] = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
        if x is None:
            result["calls"] = _layers_run(module, req["size"])
    return wire.encode(result)


def _config(m: nn.Module) -> tuple[str, dict]:
    """The PyTorch class a layer derives from and the settings that rebuild it (for the grader's messages)."""
    base = next((c.__name__ for c in type(m).__mro__ if c.__module__.startswith("torch.nn.modules")), "Module")
    keys = {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
            "in_features", "out_features", "num_features", "eps", "momentum", "affine", "track_running_stats"}
    config = {k: v for k, v in vars(m).items() if k in keys and isinstance(v, (int, float, str, tuple, bool))}
    if "in_channels" in config or "in_features" in config:
        config["bias"] = getattr(m, "bias", None) is not None
    return base, config


def _layers_run(module: nn.Module, size) -> dict:
    """The parameterised layers in the order they ran on meta tensors, up to a crash (see zoolib.checks)."""
    from . import checks

    calls, out, crash = checks._meta_run(module, [int(s) for s in size])
    rows = []
    for c in calls:
        base, config = _config(c.module)
        rows.append({"name": c.name, "base": base, "config": config, "params": c.params,
                     "in_shape": list(c.in_shape) if c.in_shape else None,
                     "out_shape": list(c.out_shape) if c.out_shape else None})
    return {"calls": rows, "crash": crash, "params": sum(p.numel() for p in module.parameters()),
            "out_shape": list(out.shape) if isinstance(out, torch.Tensor) else None}


def _load(module: nn.Module, number: int, req: dict) -> None:
    with torch.no_grad():
        if "by_op" in req:  # {op id: [[seed, low, high], ...]}, in the order the last trace of this module read them
            read = _traced.get(number, {})
            by_op = req["by_op"]
            if not isinstance(by_op, dict):
                raise ValueError("by_op maps operations to seeds")
            for op, seeds in by_op.items():
                mine = read.get(int(op), [])
                if not isinstance(seeds, list) or len(mine) != len(seeds):
                    raise ValueError(f"operation {op} read {len(mine)} tensors, {len(seeds)} were sent")
                for a, (seed, low, high) in zip(mine, seeds):
                    a.copy_(wire.seeded(list(a.shape), seed, low, high, str(a.dtype).removeprefix("torch.")))
        elif "by_order" in req:  # the state_dict, entry by entry
            state = module.state_dict()
            values = _dec(req["by_order"])
            if len(values) != len(state):
                raise ValueError(f"{len(values)} tensors were sent for {len(state)} state_dict entries")
            keep = {k: v for k, v in zip(state, values) if v is None}   # the student's own extras keep their values
            module.load_state_dict({k: (state[k] if k in keep else v) for k, v in zip(state, values)})


_BN = nn.modules.batchnorm._BatchNorm
_LAYERS = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase)


def _run(ns, req):
    """Load the grader's weights, run on its input, and report the output and what a diagnosis needs."""
    number = req["id"]
    module = _module(number)
    _load(module, number, req)
    x = _dec(req["x"])
    module.train(bool(req.get("train", False)))
    watched = []
    if req.get("watch"):  # every layer's and child's output, for a diagnosis
        watched = [("layer", n, m) for n, m in module.named_modules() if isinstance(m, _LAYERS)]
        watched += [("child", n, m) for n, m in module.named_children() if any(True for _ in m.parameters())]
    seen: dict[tuple, torch.Tensor] = {}
    handles = []
    for role, name, m in watched:
        def keep(_m, _inputs, output, key=(role, name)):
            if isinstance(output, torch.Tensor):
                seen.setdefault(key, output.detach().clone())
        handles.append(m.register_forward_hook(keep))
    try:
        with torch.no_grad():
            out = module(x)
    finally:
        for h in handles:
            h.remove()
    stats = [[n, m.running_mean, m.running_var] for n, m in module.named_modules()
             if isinstance(m, _BN) and m.running_mean is not None]
    return wire.encode({"out": out if isinstance(out, (torch.Tensor, tuple, list)) else None,
                        "stats": stats,
                        "layers": [[n, seen[("layer", n)]] for r, n, _ in watched if r == "layer" and ("layer", n) in seen],
                        "children": [[n, seen[("child", n)]] for r, n, _ in watched if r == "child" and ("child", n) in seen]})


def _state(ns, req):
    return wire.encode([[k, list(v.shape)] for k, v in _module(req["id"]).state_dict().items()])


def _tensors(ns, req):
    """Parameters, buffers and tensor attributes of a module, by name (their values)."""
    m = _module(req["id"])
    found = {**dict(m.named_buffers()), **{k: v for k, v in vars(m).items() if isinstance(v, torch.Tensor)},
             **dict(m.named_parameters())}
    return wire.encode({k: v for k, v in found.items() if isinstance(k, str)})


def _names(ns, req):
    m = _module(req["id"])
    named = m.named_parameters() if req.get("kind") == "parameters" else m.named_buffers()
    return wire.encode([n for n, _ in named])


def _assign(ns, req):
    """Copy the grader's values into a module's parameters or buffers, by name."""
    m = _module(req["id"])
    values = _dec(req["values"])
    targets = {**dict(m.named_buffers()), **dict(m.named_parameters())}
    with torch.no_grad():
        for name, value in values.items():
            if name not in targets:
                raise KeyError(f"no parameter or buffer named {name!r}")
            targets[name].copy_(value)
    return wire.encode(None)


def _nparams(ns, req):
    return wire.encode(sum(p.numel() for p in _module(req["id"]).parameters()))


def _grads(ns, req):
    """One backward pass with the grader's upstream gradient: which parameters and inputs it reaches."""
    module = _module(req["id"])
    x = _dec(req["x"]).clone().requires_grad_(True)
    module.train()
    module.zero_grad(set_to_none=True)
    out = module(x)
    out = out[0] if isinstance(out, (tuple, list)) else out
    weight = _dec(req["upstream"]) if "upstream" in req else None
    weight = torch.randn_like(out) if weight is None else weight
    (out.float() * weight).sum().backward()
    params = {}
    for n, p in module.named_parameters():
        if p.requires_grad:
            params[n] = None if p.grad is None else float(p.grad.abs().sum())
    grad = x.grad
    return wire.encode({"params": params,
                        "input": None if grad is None else float(grad.abs().sum()),
                        "finite": bool(grad is not None and torch.isfinite(grad).all())})


def _vjp(ns, req):
    """Call a function of the student's with tensors that need gradients; backpropagate the grader's weights."""
    fn = _obj(req["id"])
    args, kwargs = _args(req)
    out = fn(*args, **kwargs)
    picked = out[req["index"]] if type(req.get("index")) is int else out
    if not isinstance(picked, torch.Tensor):
        raise TypeError(f"expected a tensor, got a {type(picked).__name__}")
    upstream = _dec(req["upstream"]) if "upstream" in req else None
    upstream = torch.ones_like(picked) if upstream is None else upstream
    if picked.requires_grad:
        (picked * upstream).sum().backward()
    grads = [a.grad if a.requires_grad else None for a in _leaves(args)]
    return wire.encode({"out": out if isinstance(out, (torch.Tensor, tuple, list)) else None, "grads": grads,
                        "requires_grad": bool(picked.requires_grad)}, _ref)


def _reuse(ns, req):
    """What zoolib.checks.not_reference says about an object here: its message, or None."""
    import importlib

    from . import checks

    allowed = []
    for path in req.get("allowed", [])[:100]:
        module, _, name = str(path).rpartition(".")
        try:
            allowed.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError, ValueError):
            continue
    try:
        checks.not_reference(_obj(req["id"]), allowed=allowed, what=str(req.get("what") or "") or None)
    except checks.CheckFailed as err:
        return wire.encode(str(err))
    return wire.encode(None)


def _leaves(value) -> list:
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _leaves(v)]
    return [value] if isinstance(value, torch.Tensor) else []


def _count_calls(ns, req):
    """Call a function once and count its calls of some of the notebook's other functions."""
    from . import checks

    return wire.encode(checks._count_calls_here(_obj(req["id"]), [str(n) for n in req["names"]]))


def _stages(ns, req):
    """The output shape of each module of a Sequential on a meta input: [type, shape or error]."""
    from . import checks

    module = _module(req["id"])
    if not isinstance(module, nn.Sequential):
        return wire.encode({"sequential": False, "type": type(module).__name__})
    return wire.encode({"sequential": True, "rows": checks._stage_rows(module, req["size"])})


_HANDLERS = {"lookup": _lookup, "call": _call, "getattr": _getattr, "getitem": _getitem, "len": _len,
             "iter": _iter, "isinstance": _isinstance, "bool": _bool, "trace": _trace, "run": _run,
             "state": _state, "nparams": _nparams, "tensors": _tensors, "names": _names, "assign": _assign, "reuse": _reuse, "grads": _grads, "vjp": _vjp, "count_calls": _count_calls,
             "stages": _stages}
