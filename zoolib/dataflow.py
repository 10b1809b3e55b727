"""What a block *does*, as plain data: every operation on the data, in dataflow order.

:func:`trace` runs a module once under a PyTorch dispatch mode and records each ATen
operation whose inputs descend from the block's input: convolutions with their kernel,
stride, padding, dilation and groups; pooling with size, stride, padding, ``ceil_mode`` and
``count_include_pad``; batch norm with momentum, eps and whether it tracks running
statistics; activations, concatenations and additions. The result is a :class:`Trace` that
converts to and from JSON, so a grader can receive it from another process.

The dispatch level is below every style choice a student can make: ``nn.ReLU`` and
``F.relu`` (or ``inplace=True``) are the same ``relu``; ``padding='same'`` arrives as
explicit padding; a ``list`` of branches, a ``ModuleList`` or four attributes, created in any
order and called in any order, produce the same graph as long as the data flows the same way.

:func:`compare` matches a student's trace against a reference trace by dataflow, never by
position in ``__init__`` or in the call sequence: it walks both graphs back from the output,
pairs the inputs of each concatenation in order (the order the assignment fixes), the two
sides of an addition in either order, and aligns each chain of layers, so a missing, extra
or different layer is named with its branch and position.
"""
from __future__ import annotations

import contextlib
import difflib
import json
import struct
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["Op", "Trace", "Finding", "trace", "trace_shapes", "compare", "pair", "describe"]

aten = torch.ops.aten

# Operations that only re-view or copy the data: transparent for structure (their output is
# the same node as their input), so `x.view(n, -1)` and `torch.flatten(x, 1)` agree.
_TRANSPARENT = {"view", "_unsafe_view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous", "clone",
                "detach", "alias", "expand", "permute", "transpose", "t", "_to_copy", "lift_fresh", "copy"}
_COMMUTATIVE = {"add", "mul", "maximum", "minimum"}
_ARITHMETIC = {"add", "sub", "mul", "div"}
# Operations whose values do not depend on their input's values (only its shape): a dropout
# mask made with empty_like(x).bernoulli_(p) is not data flowing from x.
_SHAPE_ONLY = {"empty_like", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "randint_like",
               "new_empty", "new_zeros", "new_ones", "new_full", "empty_strided", "scalar_tensor", "size",
               "sym_size", "sym_numel", "numel", "dim"}


@dataclass
class Op:
    """One operation on the data."""
    id: int
    kind: str                         # ATen name without overload or in-place underscore: "convolution"
    settings: dict                    # plain values that decide what it computes
    inputs: list                      # ids of the data nodes it reads, in argument order; -1 is the block input
    shape: list                       # output shape
    params: list = field(default_factory=list)   # qualified names of the module parameters it reads
    weights: int = 0                  # how many parameter values it reads
    unregistered: int = 0             # parameter values it reads that the module does not register (a plain list)


@dataclass
class Trace:
    ops: list[Op]
    output: list[int]                  # node ids of the block's output tensor(s)
    input_shape: list
    # op id -> the parameter and buffer tensors it read, in argument order; only for a trace
    # made in this process (never serialised), so checks can pair weights by dataflow
    tensors: dict = field(default_factory=dict, repr=False, compare=False)
    output_shapes: list = field(default_factory=list, compare=False)   # of each output (None: not a tensor)

    def to_json(self) -> str:
        return json.dumps({"ops": [vars(o) for o in self.ops], "output": self.output,
                           "input_shape": self.input_shape, "output_shapes": self.output_shapes})

    @classmethod
    def from_json(cls, text: str | dict) -> "Trace":
        """Parses untrusted data: only the expected fields and plain types are accepted."""
        data = json.loads(text) if isinstance(text, str) else text
        if not isinstance(data, dict) or not isinstance(data.get("ops"), list):
            raise ValueError("a trace is an object with a list of ops")
        ops = []
        for raw in data["ops"]:
            if not isinstance(raw, dict):
                raise ValueError("each op is an object")
            op = Op(id=int(raw["id"]), kind=str(raw["kind"]), settings=_plain(raw.get("settings", {})),
                    inputs=[int(i) for i in raw.get("inputs", [])], shape=[int(s) for s in raw.get("shape", [])],
                    params=[str(p) for p in raw.get("params", [])], weights=int(raw.get("weights", 0)),
                    unregistered=int(raw.get("unregistered", 0)))
            ops.append(op)
        shapes = [None if sh is None else [int(v) for v in sh] for sh in data.get("output_shapes", [])[:64]]
        return cls(ops, [int(i) for i in data.get("output", [])], [int(s) for s in data.get("input_shape", [])],
                   output_shapes=shapes)

    def by_id(self) -> dict[int, Op]:
        return {o.id: o for o in self.ops}


def _plain(value):
    """JSON-able plain data only (no objects smuggled in through a trace)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"a trace holds plain values only, not {type(value).__name__}")


def _ints(v) -> list[int]:
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)]


def _settings(kind: str, args: tuple, kwargs: dict) -> dict:
    """The arguments that decide what an operation computes, as plain data."""
    a = list(args)
    if kind == "convolution":
        w = a[1]
        return {"out_channels": int(w.shape[0]), "in_channels_per_group": int(w.shape[1]),
                "kernel": [int(s) for s in w.shape[2:]], "bias": a[2] is not None, "stride": _ints(a[3]),
                "padding": _ints(a[4]), "dilation": _ints(a[5]), "transposed": bool(a[6]), "groups": int(a[8])}
    if kind in ("max_pool2d_with_indices", "max_pool2d"):
        return {"kernel": _ints(a[1]), "stride": _ints(a[2]) if len(a) > 2 and a[2] else _ints(a[1]),
                "padding": _ints(a[3]) if len(a) > 3 else [0, 0], "dilation": _ints(a[4]) if len(a) > 4 else [1, 1],
                "ceil_mode": bool(a[5]) if len(a) > 5 else False}
    if kind == "avg_pool2d":
        return {"kernel": _ints(a[1]), "stride": _ints(a[2]) if len(a) > 2 and a[2] else _ints(a[1]),
                "padding": _ints(a[3]) if len(a) > 3 else [0, 0], "ceil_mode": bool(a[4]) if len(a) > 4 else False,
                "count_include_pad": bool(a[5]) if len(a) > 5 else True,
                "divisor_override": a[6] if len(a) > 6 else None}
    if kind in ("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
                "batch_norm"):
        if kind == "_native_batch_norm_legit_no_training":   # (input, w, b, mean, var, momentum, eps)
            w, mean, training, momentum, eps = a[1], a[3], False, a[5], a[6]
        elif kind == "_native_batch_norm_legit" and len(a) == 6:  # no running stats: (input, w, b, training, momentum, eps)
            w, mean, training, momentum, eps = a[1], None, a[3], a[4], a[5]
        else:                                                     # (input, w, b, mean, var, training, momentum, eps)
            w, mean, training, momentum, eps = a[1], a[3], a[5], a[6], a[7]
        return {"num_features": int(a[0].shape[1]), "affine": w is not None, "running_stats": mean is not None,
                "training": bool(training), "momentum": float(momentum), "eps": float(eps)}
    if kind == "cat":
        # counted from the front: on 4-D maps torch.cat(xs, -3) and torch.cat(xs, 1) are one concatenation
        dim = int(a[1]) if len(a) > 1 else int(kwargs.get("dim", 0))
        first = next((t for t in a[0] if isinstance(t, torch.Tensor)), None) if a else None
        return {"dim": dim % first.dim() if first is not None and first.dim() else dim}
    if kind in ("native_dropout", "dropout"):
        return {"p": float(a[1]), "train": bool(a[2]) if len(a) > 2 and a[2] is not None else True}
    if kind == "mean":
        # dims counted from the front (x.mean((2, 3)) and x.mean((-1, -2)) are one global average pool);
        # keepdim only re-views the result, as a flatten or squeeze after it does, so it decides nothing
        ndim = a[0].dim() if isinstance(a[0], torch.Tensor) else 0
        dims = _ints(a[1]) if len(a) > 1 and a[1] is not None else []
        return {"dims": sorted(d % ndim if ndim else d for d in dims) if dims else list(range(ndim))}
    if kind in ("leaky_relu", "hardtanh", "elu", "softplus"):
        return {"args": [float(x) for x in a[1:] if isinstance(x, (int, float))]}
    if kind in ("addmm", "mm", "linear"):
        return {}
    if kind in _ARITHMETIC:  # a float multiplies float32 data as the float32 nearest to it, 0.17 as a buffer does
        return {"args": [_float32(x) if isinstance(x, float) else x for x in a[1:] if isinstance(x, (bool, int, float))]}
    # anything else: the plain scalar arguments
    return {"args": [x for x in a[1:] if isinstance(x, (bool, int, float, str))]}


def _is_relu(kind: str, args: tuple, kwargs: dict) -> bool:
    """A ReLU written as a clamp at 0 from below (and nothing above), or a threshold at 0 to 0."""
    rest = list(args[1:])
    if kind == "clamp":
        low = rest[0] if rest else kwargs.get("min")
        high = rest[1] if len(rest) > 1 else kwargs.get("max")
        return _is_zero(low) and high is None
    if kind == "clamp_min":
        return _is_zero(rest[0] if rest else kwargs.get("min"))
    if kind == "threshold":
        return len(rest) >= 2 and _is_zero(rest[0]) and _is_zero(rest[1])
    return False


def _is_global_average(kind: str, args: tuple, kwargs: dict) -> bool:
    """An average pool whose window is the whole map, unpadded: one mean per map, as a global average pool."""
    if kind != "avg_pool2d" or not args or not isinstance(args[0], torch.Tensor) or args[0].dim() < 2:
        return False
    s = _settings(kind, tuple(args), kwargs)
    kernel = s["kernel"] * 2 if len(s["kernel"]) == 1 else s["kernel"]
    return (kernel == list(args[0].shape[-2:]) and not any(s["padding"]) and not s["ceil_mode"]
            and s["divisor_override"] is None)


def _is_zero(x) -> bool:
    if isinstance(x, torch.Tensor):
        return x.numel() == 1 and not x.is_meta and x.item() == 0
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 0


def _float32(x: float) -> float:
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:  # beyond float32's range: kept as it is
        return x


def _identity(kind: str, settings: dict) -> bool:
    """x * 1, x / 1, x + 0, x - 0: nothing computed (a residual scale of 1 written out or left out)."""
    args = settings.get("args", [])
    if kind in ("mul", "div") and args and all(a == 1 for a in args if not isinstance(a, bool)):
        return True
    return kind in ("add", "sub") and len(args) >= 1 and args[0] == 0


_NATIVE_BATCH_NORM = torch.ops.aten.native_batch_norm.default


def _meta_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """native_batch_norm's results on meta tensors, by shape alone.

    PyTorch runs batch norm on them through its Python decomposition (about 9 ms a call, most of
    a shape trace of an Inception block); a trace needs only the shapes: the output's is the
    input's, and the saved statistics hold one value per channel in training mode, none otherwise.
    """
    stats = (x.shape[1],) if training else (0,)
    return torch.empty_like(x), x.new_empty(stats), x.new_empty(stats)


def _on_meta(a):
    """A tensor argument (or a list of them) as a meta tensor: its shape and dtype, no data."""
    if isinstance(a, (list, tuple)):
        return type(a)(_on_meta(b) for b in a)
    return a.to("meta") if isinstance(a, torch.Tensor) and not a.is_meta else a


class _Recorder(TorchDispatchMode):
    def __init__(self, params: dict[int, str], on_meta: bool = False):
        super().__init__()
        self.params = params
        # run every operation on meta copies of its arguments (shapes only; the module's own
        # tensors are read, never written): what trace_shapes does
        self.on_meta = on_meta
        self.nodes: dict[int, int] = {}       # id(tensor) -> node id
        self.keep: list = []                  # keeps traced tensors alive, so ids are not reused
        self.ops: list[Op] = []
        self.tensors: dict[int, list] = {}

    def node_of(self, t) -> int | None:
        return self.nodes.get(id(t)) if isinstance(t, torch.Tensor) else None

    def _numbers(self, kind: str, args: tuple) -> tuple:
        """An arithmetic operation's one-element constants (a buffer, ``torch.tensor(0.2)``) as the numbers
        they hold, first the data: ``x * self.scale`` with a scale buffer is ``x * 0.2`` written with a float."""
        if kind not in _ARITHMETIC:
            return args
        out = [a.item() if isinstance(a, torch.Tensor) and self.node_of(a) is None and a.numel() == 1
               and not a.requires_grad and not a.is_meta else a for a in args]   # not a weight, nor made of one
        if kind in _COMMUTATIVE and len(out) > 1 and not isinstance(out[0], torch.Tensor) \
                and isinstance(out[1], torch.Tensor):
            out[0], out[1] = out[1], out[0]
        return tuple(out)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        run_args, run_kwargs = args, kwargs
        if self.on_meta:
            run_args, run_kwargs = _on_meta(tuple(args)), {k: _on_meta(v) for k, v in kwargs.items()}
        if func is _NATIVE_BATCH_NORM and run_args[0].is_meta:
            out = _meta_batch_norm(*run_args)
        else:
            out = func(*run_args, **run_kwargs)
        kind = func.overloadpacket.__name__.rstrip("_") if hasattr(func, "overloadpacket") else str(func)
        if _is_relu(kind, args, kwargs):  # x.clamp(min=0), torch.clamp_min(x, 0), F.threshold(x, 0, 0)
            kind, args, kwargs = "relu", args[:1], {}
        elif _is_global_average(kind, args, kwargs):  # F.avg_pool2d(x, x.shape[2:]): the mean of each map
            kind, args, kwargs = "mean", (args[0], [-2, -1]), {}
        flat: list = []
        for a in list(args) + list(kwargs.values()):
            flat.extend(a if isinstance(a, (list, tuple)) else [a])
        data = [n for n in (self.node_of(a) for a in flat) if n is not None]
        if not data or kind in _SHAPE_ONLY:  # bookkeeping on buffers (num_batches_tracked += 1), constants: not dataflow
            return out
        first = out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(first, torch.Tensor):  # metadata queries (device, sizes) compute nothing
            return out
        numbers = self._numbers(kind, tuple(args)) if len(data) == 1 else tuple(args)
        constants = {id(a) for a in args if isinstance(a, torch.Tensor)} - {id(a) for a in numbers
                                                                              if isinstance(a, torch.Tensor)}
        settings = _settings(kind, numbers, kwargs)
        if len(data) == 1 and (kind in _TRANSPARENT or _identity(kind, settings)):
            node = data[0]
        else:
            read = [a for a in flat if isinstance(a, torch.Tensor) and id(a) in self.params]
            node = len(self.ops)
            # weights in a plain list are not registered, but are still nn.Parameters; a constant that is a
            # number in the settings is not a weight to copy
            self.tensors[node] = [a for a in flat if isinstance(a, torch.Tensor) and self.node_of(a) is None
                                  and id(a) not in constants]
            weights = sum(a.numel() for a in read if isinstance(a, nn.Parameter))
            loose = sum(a.numel() for a in flat if isinstance(a, nn.Parameter) and id(a) not in self.params)
            self.ops.append(Op(node, kind, settings, data, list(first.shape),
                               [self.params[id(a)] for a in read], weights, loose))
        if isinstance(first, torch.Tensor):
            self.nodes[id(first)] = node
            self.keep.append(first)
        return out


def trace(module: nn.Module, x: torch.Tensor, train: bool = True) -> Trace:
    """Run ``module`` on ``x`` once and record what it does to the data (see the module docstring).

    ``train`` traces in training mode, so dropout and batch norm's training-time settings
    are recorded; the module's mode is restored afterwards.
    """
    params = {id(p): name for name, p in module.named_parameters()}
    params.update({id(b): name for name, b in module.named_buffers()})
    with _buffers_kept(module):
        return _trace(module, x, train, params)


@contextlib.contextmanager
def _buffers_kept(module: nn.Module):
    """A traced forward in training mode updates running statistics: put every buffer back after."""
    saved = [(b, b.detach().clone()) for _, b in module.named_buffers() if not b.is_meta]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, copy in saved:
                if b.shape == copy.shape:
                    b.copy_(copy)


def _trace(module: nn.Module, x: torch.Tensor, train: bool, params: dict[int, str], on_meta: bool = False) -> Trace:
    was_training = module.training
    module.train(train)
    recorder = _Recorder(params, on_meta)
    x = x.clone()
    try:
        with recorder:
            recorder.nodes[id(x)] = -1
            recorder.keep.append(x)
            out = module(x)
    finally:
        module.train(was_training)
    outs = out if isinstance(out, (tuple, list)) else [out]
    ids = [recorder.nodes.get(id(o), -2) if isinstance(o, torch.Tensor) else -2 for o in outs]
    shapes = [list(o.shape) if isinstance(o, torch.Tensor) else None for o in outs]
    return Trace(recorder.ops, ids, list(x.shape), recorder.tensors, shapes)


def trace_shapes(module: nn.Module, input_size: Sequence[int], train: bool = True) -> Trace:
    """:func:`trace` on an input of ``input_size`` without computing anything.

    Each operation runs on meta tensors (shape and dtype, no data): the input is one, and the
    module's own weights are converted as they are read (registered or in a plain list), so
    its weights and buffers are left untouched and a full-size network traces in a fraction of
    a second (Inception-v4: 68 ms; PyTorch's fake tensors took 327 ms). A block whose forward
    reads values (``.item()``, ``nonzero``) raises here; callers then trace it on real numbers.
    """
    params = {id(p): name for name, p in module.named_parameters()}
    params.update({id(b): name for name, b in module.named_buffers()})
    return _trace(module, torch.empty(tuple(int(s) for s in input_size), device="meta"), train, params, on_meta=True)


# ---------------------------------------------------------------------------------------------------
# Describing and comparing

_NAMES = {"convolution": "Conv", "max_pool2d_with_indices": "MaxPool", "max_pool2d": "MaxPool",
          "avg_pool2d": "AvgPool", "native_batch_norm": "BatchNorm", "_native_batch_norm_legit": "BatchNorm",
          "_native_batch_norm_legit_no_training": "BatchNorm", "relu": "ReLU", "cat": "concatenation",
          "add": "addition", "native_dropout": "Dropout", "mean": "mean (global average pool)", "addmm": "Linear",
          "adaptive_max_pool2d": "AdaptiveMaxPool", "_adaptive_avg_pool2d": "AdaptiveAvgPool",
          "sigmoid": "Sigmoid", "tanh": "Tanh", "mul": "multiplication"}


def _pair(v: list[int]) -> str:
    return str(v[0]) if len(set(v)) == 1 else "x".join(map(str, v))


def describe(op: Op) -> str:
    """A layer as a student would write it: 'Conv 1x7, 128->192, stride 1, padding 0x3'."""
    s, name = op.settings, _NAMES.get(op.kind, op.kind)
    if op.kind == "convolution":
        k = "x".join(map(str, s["kernel"]))
        text = f"Conv {k}, {s['in_channels_per_group'] * s['groups']}->{s['out_channels']}, stride {_pair(s['stride'])}, " \
               f"padding {_pair(s['padding'])}"
        if s["groups"] != 1:
            text += f", groups {s['groups']}"
        if any(d != 1 for d in s["dilation"]):
            text += f", dilation {_pair(s['dilation'])}"
        return text + ("" if s["bias"] else ", no bias")
    if op.kind in ("max_pool2d_with_indices", "max_pool2d", "avg_pool2d"):
        text = f"{name} {'x'.join(map(str, s['kernel']))}, stride {_pair(s['stride'])}, padding {_pair(s['padding'])}"
        if s.get("ceil_mode"):
            text += ", ceil_mode=True"
        if op.kind == "avg_pool2d" and not s.get("count_include_pad", True):
            text += ", count_include_pad=False"
        return text
    if "batch_norm" in op.kind:
        text = f"BatchNorm({s['num_features']}, eps={s['eps']:g}, momentum={s['momentum']:g})"
        if not s["running_stats"]:
            text += " without running statistics"
        if not s["affine"]:
            text += " without affine parameters"
        return text
    if op.kind == "cat":
        return f"concatenation along dim {s['dim']}"
    if op.kind == "native_dropout":
        return f"Dropout(p={s['p']:g})"
    if op.kind in ("mul", "add", "div", "sub") and s.get("args"):
        word = {"mul": "multiplication by", "add": "addition of", "div": "division by", "sub": "subtraction of"}
        return f"{word[op.kind]} {', '.join(f'{a:g}' if isinstance(a, float) else str(a) for a in s['args'])}"
    return name


def _kind(op: Op) -> str:
    """The operation whatever ATen overload computed it: batch norm's three, max pool's two."""
    if "batch_norm" in op.kind:
        return "batch_norm"
    return "max_pool2d" if op.kind in ("max_pool2d_with_indices", "max_pool2d") else op.kind


def _signature(op: Op) -> str:
    """What must agree between a student's layer and the reference's (settings, not names)."""
    s = {k: v for k, v in op.settings.items() if not ("batch_norm" in op.kind and k == "training")}
    return _kind(op) + json.dumps(s, sort_keys=True)


@dataclass
class Finding:
    """One difference, with where it is ("branch 3, layer 2") and what to do."""
    where: str
    message: str
    module: str = ""        # the student's name for the layer, when it has parameters: 'branch3.2'

    def __str__(self) -> str:
        where = self.where + (f" ('{self.module}')" if self.module else "")
        return f"{where}: {self.message}" if where else self.message


def _owner(op: Op) -> str:
    """The module a layer's parameters belong to: 'branch3.2' for 'branch3.2.weight'."""
    names = {p.rpartition(".")[0] for p in op.params if p.rpartition(".")[2] in ("weight", "bias")}
    return names.pop() if len(names) == 1 else ""


class _Graph:
    def __init__(self, t: Trace):
        self.t, self.ops = t, t.by_id()
        self._keys: dict[int, str] = {}

    def key(self, node: int) -> str:
        """A canonical form of everything that computes ``node`` (memoised)."""
        if node < 0:
            return "INPUT" if node == -1 else "UNKNOWN"
        if node in self._keys:
            return self._keys[node]
        op = self.ops.get(node)
        if op is None:
            return "UNKNOWN"
        kids = [self.key(i) for i in self.merged_inputs(op)]
        if op.kind in _COMMUTATIVE:
            kids = sorted(kids)
        self._keys[node] = key = f"{_signature(op)}({','.join(kids)})"
        return key

    def merged_inputs(self, op: Op) -> list[int]:
        """A concatenation's inputs with nested concatenations along the same dim spliced in:
        cat([a, cat([b, c])]) computes exactly cat([a, b, c])."""
        if op.kind != "cat":
            return list(op.inputs)
        out = []
        for i in op.inputs:
            inner = self.ops.get(i)
            if inner is not None and inner.kind == "cat" and inner.settings.get("dim") == op.settings.get("dim") \
                    and len(op.shape) == len(inner.shape):
                out += self.merged_inputs(inner)
            else:
                out.append(i)
        return out

    def chain(self, node: int) -> tuple[list[int], int]:
        """Follow single-input layers back from ``node``: (layers, input-first; where the chain starts)."""
        layers = []
        while node >= 0 and node in self.ops and len(self.ops[node].inputs) == 1 and self.ops[node].kind != "cat":
            layers.append(node)
            node = self.ops[node].inputs[0]
        return layers[::-1], node


def compare(student: Trace | dict | str, reference: Trace | dict | str, what: str = "your block") -> list[Finding]:
    """Every place where ``student`` computes differently from ``reference``; empty when they agree."""
    s = student if isinstance(student, Trace) else Trace.from_json(student)
    r = reference if isinstance(reference, Trace) else Trace.from_json(reference)
    gs, gr = _Graph(s), _Graph(r)
    findings: list[Finding] = []
    if s.input_shape != r.input_shape:
        findings.append(Finding("", f"traced on input {s.input_shape}, expected {r.input_shape}"))
    if len(s.output) != len(r.output):
        findings.append(Finding("", f"{what} returns {len(s.output)} tensor(s); expected {len(r.output)}"))
        return findings
    for i, (so, ro) in enumerate(zip(s.output, r.output)):
        where = "" if len(r.output) == 1 else f"output {i + 1}"
        if so < -1:
            findings.append(Finding(where, f"{what} returns something that was not computed from its input"))
            continue
        _diff(gs, gr, so, ro, where, findings, what)
    return findings


def unregistered_layers(trace: Trace, what: str = "your block") -> str | None:
    """Why a block whose layers sit in a plain Python list behaves differently from its graph, or None.

    Such layers compute the right thing, so the graphs match, but the module does not know them:
    ``.eval()`` never reaches them (a BatchNorm keeps normalising with the batch's statistics) and
    ``.parameters()`` leaves their weights out (an optimizer would never train them).
    """
    loose = [op for op in trace.ops if op.unregistered]
    if not loose:
        return None
    first = f"the first: {describe(loose[0])}" if len(loose) > 1 else describe(loose[0])
    return (f"{len(loose)} of the layers {what} runs ({first}) are not registered in it: they sit in a plain "
            f"Python list (or dict, or tuple), so .eval() and .train() do not reach them (a BatchNorm there keeps using "
            f"the batch's statistics, a Dropout keeps dropping) and .parameters() leaves their weights out (an "
            f"optimizer would never train them).\n  hint: keep layers in nn.ModuleList, nn.Sequential or "
            f"nn.ModuleDict, or as attributes of the module")


def _path(g: _Graph, node: int) -> str:
    layers, _ = g.chain(node)
    return " -> ".join(describe(g.ops[n]) for n in layers) or "the input itself"


def _join(where: str, more: str) -> str:
    return f"{where}, {more}" if where else more


def _diff(gs: _Graph, gr: _Graph, sn: int, rn: int, where: str, out: list[Finding], what: str) -> None:
    if gs.key(sn) == gr.key(rn):
        return
    s_layers, s_start = gs.chain(sn)
    r_layers, r_start = gr.chain(rn)
    s_desc = [_signature(gs.ops[n]) for n in s_layers]
    r_desc = [_signature(gr.ops[n]) for n in r_layers]
    before = len(out)
    if s_desc != r_desc:
        origin = f" after the {_NAMES.get(gr.ops[r_start].kind, gr.ops[r_start].kind)}" \
            if r_start >= 0 and r_start in gr.ops else ""
        _diff_chain(gs, gr, s_layers, r_layers, where, out, origin)
    # then what feeds the chains
    if len(out) > before and (s_start == -1) != (r_start == -1):
        return  # one side reads the input directly, the other merges branches: the chain message says enough
    if s_start == -1 and r_start == -1:
        return
    if s_start < 0 or r_start < 0:
        if len(out) == before:
            out.append(Finding(where, "this path does not start from the block's input as expected"))
        return
    sm, rm = gs.ops[s_start], gr.ops[r_start]
    merge_where = _join(where, "before that") if r_layers else where
    if _signature(sm) != _signature(rm) or (sm.kind != rm.kind):
        out.append(Finding(merge_where, f"yours merges with {describe(sm)} of {len(sm.inputs)} inputs; "
                                        f"expected {describe(rm)} of {len(rm.inputs)} inputs"))
        return
    s_in, r_in = gs.merged_inputs(sm), gr.merged_inputs(rm)
    if len(s_in) != len(r_in):
        s_keys = [gs.key(i) for i in s_in]
        missing = [i for i, n in enumerate(r_in) if gr.key(n) not in s_keys]
        text = f"the {describe(rm)} joins {len(s_in)} branches; expected {len(r_in)}"
        if len(s_in) < len(r_in) and len(missing) == len(r_in) - len(s_in):
            text += "; missing: " + "; ".join(f"branch {i + 1} ({_path(gr, r_in[i])})" for i in missing)
        out.append(Finding(merge_where, text))
        return
    if rm.kind in _COMMUTATIVE:  # pair the operands whichever way round they were written
        if sorted(gs.key(i) for i in s_in) == sorted(gr.key(i) for i in r_in):
            return
        if gs.key(s_in[0]) == gr.key(r_in[1]) or gs.key(s_in[1]) == gr.key(r_in[0]):
            s_in = s_in[::-1]
    elif rm.kind == "cat":
        s_keys, r_keys = [gs.key(i) for i in s_in], [gr.key(i) for i in r_in]
        if sorted(s_keys) == sorted(r_keys) and s_keys != r_keys:
            order = [r_keys.index(k) + 1 for k in s_keys]
            out.append(Finding(merge_where, f"the branches are right but concatenated in the wrong order: yours "
                                            f"puts them as branches {tuple(order)} of the required order "
                                            f"(1, ..., {len(r_keys)}); torch.cat must list them in that order"))
            return
    for i, (a, b) in enumerate(zip(s_in, r_in)):
        label = f"branch {i + 1}" if rm.kind == "cat" else ("the shortcut" if gr.key(b) == "INPUT" else
                                                              f"operand {i + 1} of the {describe(rm)}")
        _diff(gs, gr, a, b, _join(where, label), out, what)


def _diff_chain(gs: _Graph, gr: _Graph, s_layers: list[int], r_layers: list[int], where: str,
                out: list[Finding], origin: str = "") -> None:
    s_sig = [_signature(gs.ops[n]) for n in s_layers]
    r_sig = [_signature(gr.ops[n]) for n in r_layers]
    # align by kind first, so a wrong setting shows as "different", not as one missing plus one extra
    s_kind = [_kind(gs.ops[n]) for n in s_layers]
    r_kind = [_kind(gr.ops[n]) for n in r_layers]
    matcher = difflib.SequenceMatcher(a=r_kind, b=s_kind, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                ri, si = i1 + k, j1 + k
                if r_sig[ri] != s_sig[si]:
                    rop, sop = gr.ops[r_layers[ri]], gs.ops[s_layers[si]]
                    out.append(Finding(_join(where, f"layer {si + 1}{origin}"), _different(sop, rop), _owner(sop)))
        elif tag == "replace" and i2 - i1 == j2 - j1:
            for k in range(i2 - i1):
                rop, sop = gr.ops[r_layers[i1 + k]], gs.ops[s_layers[j1 + k]]
                out.append(Finding(_join(where, f"layer {j1 + k + 1}{origin}"),
                                   f"yours is {describe(sop)} ({_shape(sop)}); expected {describe(rop)} "
                                   f"({_shape(rop)})" + _hint(sop, rop), _owner(sop)))
        else:
            for ri in range(i1, i2):
                after = f" after {describe(gr.ops[r_layers[ri - 1]])}" if ri > 0 else " first, on the input"
                out.append(Finding(_join(where, f"layer {j1 + 1}{origin}"),
                                   f"missing {describe(gr.ops[r_layers[ri]])}{after}"))
            for si in range(j1, j2):
                out.append(Finding(_join(where, f"layer {si + 1}{origin}"),
                                   f"{describe(gs.ops[s_layers[si]])} should not be there", _owner(gs.ops[s_layers[si]])))


def _shape(op: Op) -> str:
    text = "x".join(map(str, op.shape)) if op.shape else "a scalar"
    return f"output {text}" + (f", {op.weights:,} parameters" if op.weights else "")


def _different(sop: Op, rop: Op) -> str:
    diffs = [k for k in rop.settings if sop.settings.get(k) != rop.settings.get(k) and k != "training"]
    detail = "; ".join(_should_be(k, sop.settings.get(k), rop.settings.get(k), rop.kind) for k in diffs)
    return (f"yours is {describe(sop)} ({_shape(sop)}); expected {describe(rop)} ({_shape(rop)}): {detail}"
            + _hint(sop, rop))


def _value(v) -> str:
    return "(" + ", ".join(map(str, v)) + ")" if isinstance(v, (list, tuple)) else str(v)


def _should_be(key: str, mine, ref, kind: str) -> str:
    text = f"{key} should be {_value(ref)}, not {_value(mine)}"
    if key == "padding" and kind == "convolution":
        text += " (a k x k convolution keeps the size with padding (k-1)/2)"
    return text


def _hint(sop: Op, rop: Op) -> str:
    s, r = sop.settings, rop.settings
    if sop.kind == rop.kind == "convolution" and s.get("kernel") == r.get("kernel")[::-1] and s["kernel"] != r["kernel"]:
        return " - the 1xn and nx1 kernels are swapped"
    if "batch_norm" in sop.kind and "batch_norm" in rop.kind and not s.get("running_stats") and r.get("running_stats"):
        return " - keep track_running_stats=True so evaluation uses the running mean and variance"
    if sop.kind != rop.kind and {_kind(sop), _kind(rop)} <= _POOLS:
        return " - wrong kind of pooling"
    return ""


_POOLS = {"max_pool2d", "avg_pool2d", "mean", "adaptive_max_pool2d", "_adaptive_avg_pool2d", "amax", "max"}


def pair(student: Trace, reference: Trace) -> list[tuple[int, int]]:
    """(student op, reference op) for every layer, matched by dataflow; traces must compare equal.

    Walks both graphs back from the outputs together, so a layer is paired with the one that
    plays its part whatever order the two were created or called in.
    """
    gs, gr = _Graph(student), _Graph(reference)
    pairs: dict[int, int] = {}

    def walk(sn: int, rn: int) -> None:
        if sn < 0 or rn < 0 or sn in pairs:
            return
        pairs[sn] = rn
        sop, rop = gs.ops[sn], gr.ops[rn]
        s_in, r_in = gs.merged_inputs(sop), gr.merged_inputs(rop)
        if rop.kind in _COMMUTATIVE and len(s_in) == len(r_in) == 2 and gs.key(s_in[0]) != gr.key(r_in[0]):
            s_in = s_in[::-1]
        for a, b in zip(s_in, r_in):
            walk(a, b)

    for so, ro in zip(student.output, reference.output):
        walk(so, ro)
    return sorted(pairs.items())
