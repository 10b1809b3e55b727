"""Per-module shapes, parameters and multiply-adds, computed on meta tensors.

``profile(model, input_size)`` runs one forward pass of a *clone* of ``model`` whose
parameters and buffers live on the ``meta`` device: every operator computes its output
shape and nothing else, so no arithmetic is done and no activation memory is used,
whatever the batch size. The model you pass is never moved or modified.

Multiply-adds are counted with PyTorch's own formulas (``torch.utils.flop_counter``,
2 FLOPs per multiply-add; we report half, the quantity the papers' "ops" columns and
the lectures use) on every convolution, linear layer and matrix product, caught at the
``torch.nn.functional`` level so functional calls count too. We intercept those few
functions rather than run :class:`~torch.utils.flop_counter.FlopCounterMode`, which
sees every aten operator and decomposes BatchNorm into a dozen of them: on
Inception-ResNet-v2 that mode costs more than the forward pass itself. The test suite
checks that both give the same totals on every zoo model. Bias additions, BatchNorm,
activations and pooling count zero, as in the papers.

The clone runs in eval mode unless ``train=True``: the papers' costs are inference
costs, and auxiliary classifiers (which run only in training) are then not counted.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, asdict
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from torch.utils import flop_counter

__all__ = ["ProfileRow", "Profile", "profile", "meta_clone", "format_count"]


@dataclass(frozen=True)
class ProfileRow:
    name: str            # qualified name from ``named_modules`` ("" is the whole model)
    kind: str            # class name
    depth: int           # 0 for the model, 1 for its children, ...
    in_shape: tuple      # shape of the (first) input tensor
    out_shape: tuple     # shape of the (first) output tensor, batch dimension included
    params: int          # parameters of this module and its children
    macs: int            # multiply-adds of convolutions and linear layers inside it
    activations: int     # elements of all output tensors (summed over calls)
    calls: int           # how many times the module ran in the forward pass


def format_count(n: float) -> str:
    """1234 -> '1.23K', 6_797_700 -> '6.80M' (decimal units, as the lectures use)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(int(n))


class Profile:
    """The result of :func:`profile`: ``rows``, totals, a table (``str``) and a DataFrame."""

    def __init__(self, rows: list[ProfileRow], input_shape: tuple, total_params: int):
        self.rows = rows
        self.input_shape = input_shape
        self.total_params = total_params
        self.total_macs = rows[0].macs if rows else 0
        self._by_name = {r.name: r for r in rows}

    def __getitem__(self, name: str) -> ProfileRow:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no module named {name!r} in this profile") from None

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows])

    def table(self, depth: int | None = None) -> str:
        rows = [r for r in self.rows if depth is None or r.depth <= depth]
        head = ("module", "kind", "output shape", "params", "MACs", "activations")  # in_shape: see DataFrame
        body = [(("  " * r.depth) + (r.name.rsplit(".", 1)[-1] or "(model)"), r.kind,
                 "x".join(map(str, r.out_shape)), f"{r.params:,}", format_count(r.macs),
                 format_count(r.activations)) for r in rows]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
        right = (False, False, False, True, True, True)

        def line(cells):
            return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right))

        out = [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]
        out.append(f"input {'x'.join(map(str, self.input_shape))}: {self.total_params:,} parameters, "
                   f"{format_count(self.total_macs)} multiply-adds")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (f"Profile({len(self.rows)} modules, params={self.total_params:,}, "
                f"macs={self.total_macs:,})")


def meta_clone(model: nn.Module, shape_only_norms: bool = False) -> nn.Module:
    """A structural copy of ``model`` whose tensors are on the meta device (no data copied).

    Each module is shallow-copied with fresh hook and child dictionaries, so hooks put on
    the clone never reach ``model``. This is ~20x cheaper than ``copy.deepcopy``, which
    walks every tensor's metadata. With ``shape_only_norms`` the clone's BatchNorm layers
    return their input: in eval mode they change no shape and do no multiply-add, and
    their meta-tensor decomposition is the slowest part of a meta forward pass.
    """
    memo: dict[int, object] = {}

    def meta(t):
        if id(t) not in memo:
            m = torch.empty_like(t, device="meta")
            memo[id(t)] = nn.Parameter(m, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else m
        return memo[id(t)]

    def clone(module: nn.Module) -> nn.Module:
        if id(module) in memo:
            return memo[id(module)]
        new = copy.copy(module)
        memo[id(module)] = new
        for key, value in list(new.__dict__.items()):
            if isinstance(value, dict):  # hooks, _parameters, _buffers, _modules, ...
                new.__dict__[key] = type(value)(value)
            elif isinstance(value, torch.Tensor):
                new.__dict__[key] = meta(value)
        for key, t in new._parameters.items():
            if t is not None:
                new._parameters[key] = meta(t)
        for key, t in new._buffers.items():
            if t is not None:
                new._buffers[key] = meta(t)
        for key, child in new._modules.items():
            if child is not None:
                new._modules[key] = clone(child)
        if shape_only_norms and isinstance(module, nn.modules.batchnorm._BatchNorm):
            new.forward = _pass_through
        return new

    return clone(model)


def _pass_through(x: torch.Tensor) -> torch.Tensor:
    return x


def _tensors(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


_CONVS = {F.conv1d: False, F.conv2d: False, F.conv3d: False,
          F.conv_transpose1d: True, F.conv_transpose2d: True, F.conv_transpose3d: True}
_MATMULS = {torch.matmul, torch.mm, torch.bmm, torch.Tensor.matmul, torch.Tensor.__matmul__,
            torch.Tensor.mm, torch.Tensor.bmm}


class _MacCounter(TorchFunctionMode):
    """Adds the multiply-adds of each conv / linear / matmul call to the modules running it."""

    def __init__(self, stack: list[str], macs: dict[str, int]):
        super().__init__()
        self.stack, self.macs = stack, macs

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        n = 0
        if func in _CONVS:
            x, w = args[0], (args[1] if len(args) > 1 else kwargs["weight"])
            flops = flop_counter.conv_flop_count(list(x.shape), list(w.shape), list(out.shape),
                                                 transposed=_CONVS[func])
            n = flops // 2
        elif func is F.linear:
            x, w = args[0], (args[1] if len(args) > 1 else kwargs["weight"])
            rows = x.numel() // max(x.shape[-1], 1)
            n = flop_counter.mm_flop([rows, w.shape[1]], [w.shape[1], w.shape[0]]) // 2
        elif func in _MATMULS and isinstance(out, torch.Tensor):
            n = out.numel() * args[0].shape[-1]
        if n:
            for name in self.stack:
                self.macs[name] = self.macs.get(name, 0) + n
        return out


def profile(model: nn.Module | str, input_size: Sequence[int] | None = None, depth: int | None = None,
            device: str | torch.device = "meta", train: bool = False) -> Profile:
    """Profile one forward pass.

    ``model`` is a module or a registered model name; ``input_size`` is ``(N, C, H, W)``
    or ``(C, H, W)`` (batch 1), and defaults to the registered model's paper input.
    ``depth`` keeps only rows that deep (0: the model alone, 1: its children, ...).
    ``device="meta"`` computes nothing; any other device runs a real forward on a copy.
    ``train=True`` profiles the training-mode forward (auxiliary heads included).
    """
    if isinstance(model, str):
        from ._registry import get_model, model_spec

        input_size = input_size or (1, *model_spec(model).input_size)
        model = get_model(model)
    if not isinstance(model, nn.Module):
        raise TypeError(f"profile() needs an nn.Module or a model name, not {type(model).__name__}")
    if input_size is None:
        raise ValueError("profile() needs input_size, e.g. (1, 3, 224, 224)")
    shape = tuple(int(s) for s in input_size)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"input_size must be (N, C, H, W) or (C, H, W) with positive sizes, got {tuple(input_size)}")

    device = torch.device(device)
    if device.type == "meta":
        work = meta_clone(model, shape_only_norms=not train)
    else:
        work = copy.deepcopy(model).to(device)
    work.train(train)
    named = list(work.named_modules())
    names = {id(m): n for n, m in named}
    records: dict[str, dict] = {n: {"in_shape": (), "out_shape": (), "activations": 0, "calls": 0}
                                for n, _ in named}
    stack: list[str] = []
    macs: dict[str, int] = {}

    def enter(module, inputs):
        stack.append(names[id(module)])
        tensors = _tensors(inputs)
        if tensors:
            records[stack[-1]]["in_shape"] = tuple(tensors[0].shape)

    def leave(module, _inputs, output):
        stack.pop()
        rec = records[names[id(module)]]
        tensors = _tensors(output)
        if tensors:
            rec["out_shape"] = tuple(tensors[0].shape)
        rec["activations"] += sum(t.numel() for t in tensors)
        rec["calls"] += 1

    handles = [h for _, m in named
               for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    x = torch.empty(shape, device=device)
    try:
        with torch.no_grad(), _MacCounter(stack, macs):
            work(x)
    finally:
        for h in handles:
            h.remove()

    rows = []
    for n, m in named:
        rec = records[n]
        rows.append(ProfileRow(
            name=n, kind=type(m).__name__, depth=0 if n == "" else n.count(".") + 1,
            in_shape=rec["in_shape"], out_shape=rec["out_shape"], params=sum(p.numel() for p in m.parameters()),
            macs=macs.get(n, 0), activations=rec["activations"], calls=rec["calls"]))
    total_params = sum(p.numel() for p in model.parameters())
    if depth is not None:
        rows = [r for r in rows if r.depth <= depth]
    return Profile(rows, shape, total_params)
