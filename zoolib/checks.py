"""Checks that tell a student exactly what is wrong with a block they wrote.

Every check raises :class:`CheckFailed` (an ``AssertionError``) whose message names the first
branch or layer that differs from zoolib's reference, what it produced, what was expected,
and a hint. Structural checks run on meta tensors, so checking a large block is instant;
only :func:`same_function`, :func:`gradients_flow` and the batch-norm checks compute.

The assignments' test cells call these; students can call them too while they work.
"""
from __future__ import annotations

import inspect
import types
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from . import remote, wire
from .profiler import meta_clone
from .remote import type_name

__all__ = ["CheckFailed", "expect_shape", "same_structure", "same_function", "gradients_flow",
           "not_reference", "does_not_call", "function_matches", "batchnorm_matches", "param_count",
           "vjp", "count_calls", "stage_shapes", "type_name"]

_PARAM_LAYERS = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase)


class CheckFailed(AssertionError):
    """A check failed; the message is written for the student."""


def _fmt(shape) -> str:
    if shape is None:
        return "nothing"
    return "x".join(str(int(s)) for s in shape) if len(shape) else "a 0-dim scalar"


def _describe(m: nn.Module) -> str:
    if isinstance(m, nn.modules.conv._ConvNd):
        k = "x".join(map(str, m.kernel_size))
        extra = "" if m.stride in (1, (1, 1)) else f", stride {m.stride[0] if len(set(m.stride)) == 1 else m.stride}"
        pad = m.padding if isinstance(m.padding, str) else (m.padding[0] if len(set(m.padding)) == 1 else m.padding)
        return f"{type(m).__name__} {k}, {m.in_channels}->{m.out_channels}{extra}, padding {pad}"
    if isinstance(m, nn.Linear):
        return f"Linear {m.in_features}->{m.out_features}"
    if isinstance(m, nn.modules.batchnorm._NormBase):
        return f"{type(m).__name__}({m.num_features})"
    return type(m).__name__


def param_count(module: nn.Module) -> int:
    if remote.is_remote(module):
        return _remote_int(remote.request(module, "nparams"))
    return sum(p.numel() for p in module.parameters())


def _remote_int(value) -> int:
    if type(value) is not int:
        raise CheckFailed("the grading kernel answered with something that is not a count")
    return value


@dataclass
class _Call:
    name: str
    module: nn.Module
    in_shape: tuple | None
    out_shape: tuple | None
    params: int


def _trace(module: nn.Module, x: torch.Tensor, calls: list[_Call] | None = None) -> tuple[list[_Call], torch.Tensor]:
    """Run ``module`` and list its parameterised layers in the order they were called.

    ``calls`` is filled as the forward pass goes, so a caller keeps what ran before a crash.
    """
    names = {id(m): n for n, m in module.named_modules()}
    calls = [] if calls is None else calls

    def hook(m, inputs, output):
        tin = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
        tout = output if isinstance(output, torch.Tensor) else next(
            (t for t in (output if isinstance(output, (tuple, list)) else []) if isinstance(t, torch.Tensor)), None)
        calls.append(_Call(names.get(id(m), "?"), m, tuple(tin.shape) if tin is not None else None,
                           tuple(tout.shape) if tout is not None else None,
                           sum(p.numel() for p in m.parameters(recurse=False))))

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, _PARAM_LAYERS)]
    try:
        out = module(x)
    finally:
        for h in handles:
            h.remove()
    return calls, out


def _meta_run(module: nn.Module, input_size: Sequence[int]):
    """Trace ``module`` on meta tensors: (calls, output, error message or None)."""
    clone = meta_clone(module).eval()
    x = torch.empty(tuple(input_size), device="meta")
    calls: list[_Call] = []
    try:
        with torch.no_grad():
            _, out = _trace(clone, x, calls)
        return calls, out, None
    except Exception as err:  # keep the layers that ran: the culprit is usually among them
        return calls, None, f"{type(err).__name__}: {str(err).splitlines()[0]}"


def _branch(name: str) -> str:
    head = name.split(".")[0]
    return f" (in '{head}')" if "." in name else ""


def _hint(mine: _Call | None, ref: _Call | None) -> str:
    if mine is None:
        return f"a layer is missing: the reference has a {_describe(ref.module)} here."
    if ref is None:
        return f"there is an extra {_describe(mine.module)}: the reference has no layer here."
    if type(mine.module) is not type(ref.module):
        return f"expected a {_describe(ref.module)} here, found a {_describe(mine.module)}."
    a, b = mine.module, ref.module
    if isinstance(b, nn.modules.conv._ConvNd):
        if a.in_channels != b.in_channels:
            return (f"this convolution expects {a.in_channels} input channels but the layer before gives "
                    f"{b.in_channels}: check the widths of the layers that feed it.")
        if a.out_channels != b.out_channels:
            return f"out_channels should be {b.out_channels}, not {a.out_channels}: check the table's column for this branch."
        if a.kernel_size != b.kernel_size:
            return f"the kernel should be {_fmt(b.kernel_size)}, not {_fmt(a.kernel_size)}."
        if a.stride != b.stride:
            return f"the stride should be {b.stride}, not {a.stride}."
        if a.padding != b.padding:
            return (f"padding should be {b.padding}, not {a.padding}: a k x k convolution keeps the size "
                    f"with padding (k-1)/2.")
        if (a.bias is None) != (b.bias is None):
            return "bias should be " + ("off (BatchNorm follows it)." if b.bias is None else "on.")
        if a.groups != b.groups:
            return f"groups should be {b.groups}."
    if isinstance(b, nn.Linear) and (a.in_features, a.out_features) != (b.in_features, b.out_features):
        return f"expected Linear({b.in_features}, {b.out_features})."
    if isinstance(b, nn.modules.batchnorm._NormBase) and a.num_features != b.num_features:
        return f"BatchNorm should normalise {b.num_features} channels."
    if mine.in_shape != ref.in_shape:
        return "its input already differs: look at what happens before it (a pooling layer, a stride, the order)."
    return "compare this layer's settings with the reference's."


def _dataflow(module: nn.Module, input_size: Sequence[int]):
    """The module's dataflow trace, on meta tensors (or real ones if it reads values); None if it fails."""
    from . import dataflow

    # in evaluation mode: dropout is then the identity, and batch norm still records its
    # momentum and eps (the call carries them whichever mode it runs in)
    try:
        return dataflow.trace_shapes(module, input_size, train=False)
    except Exception:
        pass
    try:
        with torch.no_grad():
            return dataflow.trace(module, torch.randn(tuple(input_size)), train=False)
    except Exception:
        return None


_MAX_FINDINGS = 6


def same_structure(block: nn.Module, reference: nn.Module, input_size: Sequence[int], what: str | None = None) -> None:
    """``block`` must compute what the reference computes, layer for layer, however it is written.

    Both are traced (:mod:`zoolib.dataflow`) and matched by dataflow: every layer with its
    settings, parameter-free ones such as pooling included, each branch in the order the
    concatenation lists it. The order of creation in ``__init__`` or of calls in ``forward``,
    lists or ``ModuleList``, ``F.relu`` or ``nn.ReLU`` do not matter. A block whose forward
    pass fails is compared layer by layer up to the failure instead.
    """
    from . import dataflow

    what = what or f"your {type_name(block)}"
    if remote.is_remote(block):
        return _same_structure_remote(block, reference, input_size, what)
    ref_trace = _dataflow(reference, input_size)
    mine_trace = _dataflow(block, input_size) if ref_trace is not None else None
    if ref_trace is not None and mine_trace is not None:
        _report_findings(dataflow.compare(mine_trace, ref_trace, what), what, input_size)
        # the same computation; a layer that was built but never used would still change the
        # parameter count (attributes and buffers of the student's own are fine)
        used = {id(t) for tensors in mine_trace.tensors.values() for t in tensors}
        unused = [(name, _describe(m), param_count(m)) for name, m in block.named_modules()
                  if isinstance(m, _PARAM_LAYERS) and any(id(p) not in used for p in m.parameters(recurse=False))]
        _report_unused(unused, what)
        return
    mine, out, crash = _meta_run(block, input_size)
    _layer_by_layer(mine, tuple(out.shape) if isinstance(out, torch.Tensor) else None, crash, param_count(block),
                    reference, input_size, what)


def _layer_by_layer(mine: list[_Call], out_shape: tuple | None, crash: str | None, mine_total: int,
                    reference: nn.Module, input_size, what: str) -> None:
    """Compare the parameterised layers in the order they ran (when the dataflow cannot be traced)."""
    ref, ref_out, ref_crash = _meta_run(reference, input_size)
    if ref_crash:
        raise ValueError(f"the reference itself fails on {_fmt(input_size)}: {ref_crash}")
    for i in range(len(mine) if crash else max(len(mine), len(ref))):
        a = mine[i] if i < len(mine) else None
        b = ref[i] if i < len(ref) else None
        same = (a is not None and b is not None and type(a.module) is type(b.module)
                and a.out_shape == b.out_shape and a.params == b.params and a.in_shape == b.in_shape)
        if same:
            continue
        where = (f"at layer {i + 1} '{a.name}'{_branch(a.name)}, a {_describe(a.module)}" if a is not None
                 else f"after your last layer, where the reference still has layer {i + 1} '{b.name}'"
                      f"{_branch(b.name)}")
        lines = [f"{what} first differs from the reference {where}:"]
        if a is not None and b is not None:
            lines.append(f"  output shape {_fmt(a.out_shape)}, expected {_fmt(b.out_shape)} "
                         f"(reference layer '{b.name}', a {_describe(b.module)})")
            lines.append(f"  parameters   {a.params:,}, expected {b.params:,}")
        lines.append(f"  hint: {_hint(a, b)}")
        if crash:
            lines.append(f"  (the forward pass then fails: {crash})")
        raise CheckFailed("\n".join(lines))
    if crash:
        raise CheckFailed(f"{what} fails on an input of shape {_fmt(input_size)}: {crash}")
    ref_shape = tuple(ref_out.shape)
    if out_shape != ref_shape:
        raise CheckFailed(f"{what}'s layers all match, but it returns {_fmt(out_shape)} instead of "
                          f"{_fmt(ref_shape)} for an input of {_fmt(input_size)}.\n  hint: check how the "
                          f"branches are combined (torch.cat along dim=1) and the pooling steps.")
    ref_total = param_count(reference)
    if mine_total != ref_total:
        raise CheckFailed(f"{what} has {mine_total:,} parameters, the reference {ref_total:,}, although every "
                          f"layer that ran matches.\n  hint: a layer is created in __init__ but never used in forward.")


def _report_findings(findings: list, what: str, input_size) -> None:
    if findings:
        shown = "\n".join(f"  - {f}" for f in findings[:_MAX_FINDINGS])
        more = f"\n  ... and {len(findings) - _MAX_FINDINGS} more" if len(findings) > _MAX_FINDINGS else ""
        raise CheckFailed(f"{what} does not compute what the reference computes "
                          f"(following the data from the input of {_fmt(input_size)} to the output):\n"
                          f"{shown}{more}")


def _report_unused(unused: list, what: str) -> None:
    if unused:
        name, described, count = unused[0]
        raise CheckFailed(f"{what} computes what the reference computes, but '{name}' ({described}) is "
                          f"created in __init__ and never used in forward: its {count:,} parameters "
                          f"would still count and be trained.\n  hint: remove it, or use it where it belongs.")


def expect_shape(block: nn.Module, input_size: Sequence[int], expected: Sequence[int], what: str | None = None,
                 reference: nn.Module | None = None) -> None:
    """The block maps a ``input_size`` tensor to ``expected`` (checked on meta tensors).

    On failure, a ``reference`` lets the message name the first wrong layer; without one it
    lists the output shape of every layer that ran.
    """
    what = what or f"your {type_name(block)}"
    if remote.is_remote(block):
        return _expect_shape_remote(block, input_size, expected, what, reference)
    calls, out, crash = _meta_run(block, input_size)
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if not crash and got == tuple(expected):
        return
    if reference is not None:
        same_structure(block, reference, input_size, what)  # raises with the first wrong layer
    problem = f"fails on an input of shape {_fmt(input_size)}: {crash}" if crash else (
        f"maps an input of {_fmt(input_size)} to {_fmt(got)}; expected {_fmt(expected)}")
    ran = "\n".join(f"    {c.name}: {_describe(c.module)} -> {_fmt(c.out_shape)}" for c in calls[-12:])
    raise CheckFailed(f"{what} {problem}." + (f"\n  the layers that ran (last {min(len(calls), 12)}):\n{ran}" if calls else ""))


def _copy_weights_by_dataflow(block: nn.Module, reference: nn.Module, x: torch.Tensor) -> bool:
    """Give each of the block's layers the weights of the reference layer it matches by dataflow.

    False when the two do not trace to the same graph (then registration order decides).
    Buffers or attributes of the student's own that no layer reads are left alone.
    """
    from . import dataflow

    size = tuple(x.shape)
    mine, ref = _dataflow(block, size), _dataflow(reference, size)
    if mine is None or ref is None or dataflow.compare(mine, ref) or not mine.tensors:
        return False
    with torch.no_grad():
        for s_op, r_op in dataflow.pair(mine, ref):
            theirs, ours = ref.tensors.get(r_op, []), mine.tensors.get(s_op, [])
            if len(theirs) != len(ours) or any(a.shape != b.shape for a, b in zip(ours, theirs)):
                return False
            for a, b in zip(ours, theirs):
                a.copy_(b)
    return True


def _copy_weights(block: nn.Module, reference: nn.Module, what: str, x: torch.Tensor | None = None) -> None:
    if x is not None and _copy_weights_by_dataflow(block, reference, x):
        return
    src, dst = reference.state_dict(), block.state_dict()
    src_shapes = [tuple(v.shape) for v in src.values()]
    dst_shapes = [tuple(v.shape) for v in dst.values()]
    aligned = None if src_shapes == dst_shapes else _align_extra_entries([[k, list(v.shape)] for k, v in dst.items()],
                                                                           src)
    if aligned is not None:   # the student's extra buffers keep their values
        block.load_state_dict({k: (v if new is None else new) for (k, v), new in zip(dst.items(), aligned)})
        return
    if src_shapes != dst_shapes:
        for i, (a, b) in enumerate(zip(dst_shapes, src_shapes)):
            if a != b:
                name = list(dst)[i]
                raise CheckFailed(f"{what}'s tensors do not line up with the reference's: '{name}' is {_fmt(a)}, "
                                  f"the reference's tensor at that position is {_fmt(b)}.\n  hint: create the "
                                  f"layers in __init__ in the same order as the reference (branch by branch).")
        raise CheckFailed(f"{what} has {len(dst)} weight tensors, the reference {len(src)}.\n  hint: a layer "
                          f"(or a bias) is missing or extra.")
    block.load_state_dict(dict(zip(dst, src.values())))


def same_function(block: nn.Module, reference: nn.Module, x: torch.Tensor, what: str | None = None,
                  atol: float = 1e-5, train: bool = False, bn_seed: int | None = 0) -> None:
    """With the reference's weights loaded, ``block`` computes what the reference computes.

    Unless ``bn_seed`` is None, the reference's BatchNorm statistics and affine parameters are
    first set to seeded random values: at their defaults (mean 0, variance 1, identity affine)
    eval-mode BatchNorm is nearly the identity and would hide a misplaced normalisation.
    """
    what = what or f"your {type_name(block)}"
    if bn_seed is not None:
        _randomize_batchnorm(reference, bn_seed)
    if remote.is_remote(block):
        return _same_function_remote(block, reference, x, what, atol, train)
    _copy_weights(block, reference, what, x)
    block.train(train)
    reference.train(train)
    with torch.no_grad():
        try:
            mine, out = _trace(block, x)
        except Exception as err:
            raise CheckFailed(f"{what} fails on an input of shape {_fmt(x.shape)}: {type(err).__name__}: "
                              f"{str(err).splitlines()[0]}") from None
        ref, ref_out = _trace(reference, x)
    if not isinstance(out, torch.Tensor) or out.shape != ref_out.shape:
        raise CheckFailed(f"{what} returns {_fmt(getattr(out, 'shape', None))}, expected {_fmt(ref_out.shape)}.")
    diff = (out - ref_out).abs().max().item()
    if diff <= atol:
        if train:
            _same_running_stats(block, reference, what, atol, _bn_names(block, reference, tuple(x.shape)))
        return
    _raise_if_unregistered(_dataflow(block, tuple(x.shape)), what, diff)
    # Pair the layers as their weights were paired (registration order) and report the first
    # whose output differs: layers before it in its branch still computed the right thing.
    _explain_difference(_activations(block, x), _activations(reference, x), _branch_outputs(block, x),
                        _branch_outputs(reference, x), what, atol, diff)


def _raise_if_unregistered(trace, what: str, diff: float) -> None:
    """A difference explained by layers the module does not register (see dataflow.unregistered_layers)."""
    from . import dataflow

    why = dataflow.unregistered_layers(trace, what) if trace is not None else None
    if why:
        raise CheckFailed(f"with the reference's weights, {what}'s output differs by up to {diff:.3g}: {why}")


def _branch_outputs(module: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Outputs of the direct children that hold weights, in registration order."""
    return _outputs([(n, m) for n, m in module.named_children() if any(True for _ in m.parameters())], module, x)


def _bn_names(block: nn.Module, reference: nn.Module, size) -> dict:
    """The student's BatchNorm layers -> the reference's each plays the part of, by dataflow ({} if unknown)."""
    from . import dataflow

    mine, ref = _dataflow(block, size), _dataflow(reference, size)
    if mine is None or ref is None or dataflow.compare(mine, ref):
        return {}
    s_ops, r_ops = mine.by_id(), ref.by_id()
    return {dataflow._owner(s_ops[a]): dataflow._owner(r_ops[b]) for a, b in dataflow.pair(mine, ref)
            if a in s_ops and b in r_ops and "batch_norm" in s_ops[a].kind}


def _same_running_stats(block: nn.Module, reference: nn.Module, what: str, atol: float,
                        names: dict | None = None) -> None:
    """After a training-mode pass, each BatchNorm's running statistics equal the reference's (paired by
    dataflow when ``names`` pairs them all, else in registration order)."""
    mine = [(n, m) for n, m in block.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    ref_named = {n: m for n, m in reference.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    ref = list(ref_named.values())
    if len(mine) != len(ref):
        raise CheckFailed(f"{what} has {len(mine)} BatchNorm layers, the reference {len(ref)}.")
    if names and all(names.get(n) in ref_named for n, _ in mine):
        ref = [ref_named[names[n]] for n, _ in mine]
    for (name, a), b in zip(mine, ref):
        for stat in ("running_mean", "running_var"):
            sa, sb = getattr(a, stat, None), getattr(b, stat)
            if sa is None or not torch.allclose(sa, sb, atol=atol):
                raise CheckFailed(f"after one training-mode forward pass, the {stat} of '{name}' in {what} differs "
                                  f"from the reference's.\n  hint: use nn.BatchNorm2d with its defaults (momentum "
                                  f"0.1, running statistics on), once per forward pass.")


def _randomize_batchnorm(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.affine:
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)


def _activations(module: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Output of every parameterised layer, listed in registration order."""
    return _outputs([(n, m) for n, m in module.named_modules() if isinstance(m, _PARAM_LAYERS)], module, x)


def _outputs(watched: list[tuple[str, nn.Module]], module: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Run ``module`` on ``x`` and return the first output of each watched submodule."""
    outputs: dict[int, torch.Tensor] = {}

    def keep(m, _inputs, output) -> None:  # must return None: a returned value replaces the output
        if isinstance(output, torch.Tensor):
            outputs.setdefault(id(m), output.detach().clone())

    handles = [m.register_forward_hook(keep) for _, m in watched]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return [(n, outputs[id(m)]) for n, m in watched if id(m) in outputs]


def gradients_flow(block: nn.Module, x: torch.Tensor, what: str | None = None) -> None:
    """A backward pass reaches the input and every parameter, with finite values."""
    what = what or f"your {type_name(block)}"
    if remote.is_remote(block):
        reply = remote.request(block, "grads", x=x, upstream=None)
        params = reply.get("params") if isinstance(reply, dict) else None
        if not isinstance(params, dict):
            raise CheckFailed(f"the grading kernel did not report the gradients of {what}")
        _report_gradients([n for n, g in params.items() if not isinstance(g, float) or not g], reply.get("input"),
                          reply.get("finite") is True, what)
        return
    x = x.clone().requires_grad_(True)
    block.train()
    block.zero_grad(set_to_none=True)
    out = block(x)
    out = out[0] if isinstance(out, tuple) else out
    (out.float() * torch.randn_like(out)).sum().backward()
    dead = [n for n, p in block.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    grad = None if x.grad is None else float(x.grad.abs().sum())
    _report_gradients(dead, grad, x.grad is not None and bool(torch.isfinite(x.grad).all()), what)


def _report_gradients(dead: list, input_grad, finite: bool, what: str) -> None:
    if dead:
        raise CheckFailed(f"no gradient reaches {', '.join(repr(d) for d in dead[:3])}"
                          f"{' ...' if len(dead) > 3 else ''} in {what}.\n  hint: is that layer used in forward, "
                          f"and is its result detached (.detach(), .data, torch.no_grad) anywhere?")
    if input_grad is None or not finite or not input_grad:
        raise CheckFailed(f"no (finite) gradient reaches the input of {what}.\n  hint: avoid .detach(), .data "
                          f"and in-place changes to the input.")


def _zoolib_origin(obj) -> str | None:
    mod = getattr(obj, "__module__", "") or ""
    if mod == "zoolib" or mod.startswith("zoolib.") or mod.startswith("torchvision.models") or mod.startswith("timm."):
        return f"{mod}.{getattr(obj, '__qualname__', type(obj).__name__)}"
    return None


def not_reference(obj, allowed: Iterable[type] = (), what: str | None = None) -> None:
    """Fail when ``obj`` is, subclasses, contains or calls zoolib's (or torchvision's/timm's) reference code.

    ``allowed`` lists the shared building blocks an assignment lets students use (e.g. BasicConv2d).
    """
    if remote.is_remote(obj):
        # Judged: the grader reads the submitted source (zoograde.provenance); the kernel also reports what
        # the object is made of, which catches reuse the source hides. A kernel that lies about it has
        # patched the grading machinery, which the source analysis flags for the instructor.
        names = [f"{getattr(a, '__module__', '')}.{getattr(a, '__qualname__', '')}" for a in allowed]
        found = remote.request(obj, "reuse", allowed=names, what=what or "")
        if isinstance(found, str) and found:
            raise CheckFailed(found[:2000])
        return
    allowed = tuple(allowed)
    what = what or f"your {getattr(obj, '__name__', type(obj).__name__)}"
    why = ("This block earns no points: the exercise is to write it yourself, not to reuse the course's "
           "reference implementation")

    def bad_class(cls) -> str | None:
        for base in inspect.getmro(cls):
            if base in allowed or base.__module__.startswith("torch."):
                continue
            origin = _zoolib_origin(base)
            if origin:
                return origin
        return None

    if isinstance(obj, nn.Module):
        origin = bad_class(type(obj))
        if origin:
            raise CheckFailed(f"{what} subclasses the reference {origin}. {why}.")
        for name, m in obj.named_modules():
            origin = bad_class(type(m))
            if origin:
                raise CheckFailed(f"{what} uses the reference: '{name}' is {origin}. {why}.")
        classes = [type(obj)]
    elif inspect.isclass(obj):
        classes = [obj]
    else:
        classes = []
    functions = []
    for cls in classes:
        origin = bad_class(cls)
        if origin:
            raise CheckFailed(f"{what} subclasses the reference {origin}. {why}.")
        functions += [f for f in vars(cls).values() if isinstance(f, types.FunctionType)]
    if isinstance(obj, types.FunctionType):
        functions.append(obj)
        if _zoolib_origin(obj):
            raise CheckFailed(f"{what} is the reference {_zoolib_origin(obj)}. {why}.")
    for fn in functions:
        for name in fn.__code__.co_names:
            target = fn.__globals__.get(name)
            if isinstance(target, types.ModuleType) and (target.__name__ == "zoolib" or target.__name__.startswith("zoolib.")):
                used = [n for n in fn.__code__.co_names if n != name]
                raise CheckFailed(f"{what} calls into the reference package '{target.__name__}' "
                                  f"({fn.__qualname__} uses {name}.{used[0] if used else '...'}). {why}.")
            origin = _zoolib_origin(target) if target is not None and not isinstance(target, type(None)) else None
            if origin and not (inspect.isclass(target) and issubclass(target, allowed)) and target not in allowed:
                raise CheckFailed(f"{what} calls the reference {origin} (in {fn.__qualname__}). {why}.")


def does_not_call(obj, names: Iterable[str], what: str, why: str) -> None:
    """Fail when ``obj`` (a function, or a class's methods) uses any of ``names`` from PyTorch.

    A name counts as an attribute (``F.batch_norm``), a global bound to a PyTorch object, or a
    keyword argument (``label_smoothing=``); the notebook's own functions it calls are searched too.
    """
    names = set(names)
    if remote.is_remote(obj):
        found = _static_use(remote.sources_of(obj), getattr(obj, "__name__", ""), names)
        if found:
            raise CheckFailed(f"{what} uses PyTorch's {found}. {why}")
        return
    functions = ([f for f in vars(obj).values() if isinstance(f, types.FunctionType)] if inspect.isclass(obj)
                 else [obj])
    seen: set[int] = set()
    for fn in functions:
        found = _first_use(fn, names, seen)
        if found:
            raise CheckFailed(f"{what} uses PyTorch's {found}. {why}")


def _first_use(fn, names: set[str], seen: set[int]) -> str | None:
    import dis

    if id(fn) in seen or not isinstance(fn, types.FunctionType):
        return None
    seen.add(id(fn))
    # keyword arguments that the notebook's own functions take (a helper's label_smoothing=) are theirs
    own_params: set[str] = set()
    for ins in dis.get_instructions(fn.__code__):
        target = (fn.__globals__.get(ins.argval) if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") else
                  _closure_value(fn, ins.argval) if ins.opname == "LOAD_DEREF" else None)
        if isinstance(target, types.FunctionType) and target.__module__ == fn.__module__:
            c = target.__code__
            own_params |= set(c.co_varnames[:c.co_argcount + c.co_kwonlyargcount])
    codes = [fn.__code__]
    while codes:
        code = codes.pop()
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and ins.argval in names:
                return ins.argval
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF"):
                target = (_closure_value(fn, ins.argval) if ins.opname == "LOAD_DEREF"
                          else fn.__globals__.get(ins.argval))
                if getattr(target, "__name__", None) in names and \
                        (getattr(target, "__module__", "") or "").startswith("torch"):
                    return ins.argval
                if isinstance(target, types.FunctionType) and target.__module__ == fn.__module__:
                    found = _first_use(target, names, seen)
                    if found:
                        return found
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                codes.append(const)
            elif isinstance(const, tuple) and (names - own_params) & {c for c in const if isinstance(c, str)}:
                return sorted((names - own_params) & set(const))[0]  # a keyword argument
    return None


def _closure_value(fn, name: str):
    try:
        return fn.__closure__[fn.__code__.co_freevars.index(name)].cell_contents
    except (ValueError, TypeError, IndexError):  # not a free variable of fn, or an empty cell
        return None


def function_matches(fn: Callable, reference: Callable, cases: Iterable[tuple], what: str | None = None,
                     hint: str = "") -> None:
    """``fn(*case)`` equals ``reference(*case)`` for every case; the first wrong case is reported."""
    what = what or getattr(fn, "__name__", "your function")
    for case in cases:
        args, kwargs = (case[0], case[1]) if len(case) == 2 and isinstance(case[1], dict) else (case, {})
        call = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        expected = reference(*args, **kwargs)
        try:
            got = fn(*args, **kwargs)
        except NotImplementedError:
            raise CheckFailed(f"{what} is not written yet (it raises NotImplementedError).") from None
        except Exception as err:
            raise CheckFailed(f"{what}({call}) raised {type(err).__name__}: {err}") from None
        got = _plain_value(got, f"{what}({call})")
        if got != _plain_value(expected, "the reference"):
            raise CheckFailed(f"{what}({call}) returned {got!r}, expected {expected!r}." + (f"\n  hint: {hint}" if hint else ""))


_PLAIN = (int, float, bool, complex, str, bytes, type(None))


def _plain_value(value, what: str):
    """``value`` as built-in Python data, so that comparing it runs Python's ``==``, not the value's own.

    An object of a home-made class (say an ``int`` subclass whose ``__eq__`` always says True)
    could otherwise pass any equality test; NumPy scalars become Python numbers.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind in (tuple, list):
        return kind(_plain_value(v, what) for v in value)
    if kind is dict:
        return {_plain_value(k, what): _plain_value(v, what) for k, v in value.items()}
    if kind.__module__ == "numpy" and hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    if remote.is_remote(value):
        plain = {b.__name__ for b in _PLAIN}
        bases = [q for m, q in remote.mro_of(value)[1:] if m == "builtins" and q in plain]
    else:
        bases = [b.__name__ for b in kind.__mro__[1:] if b in _PLAIN]
    raise CheckFailed(f"{what} returned an object of type {type_name(value)}" +
                      (f" (a subclass of {bases[0]})" if bases else "") +
                      f"; return a plain {bases[0] if bases else 'Python value'}.")


def batchnorm_matches(make_layer: Callable[[], nn.Module], num_dims: int, num_features: int = 6,
                      eps: float = 1e-5, momentum: float = 0.1, batch: int = 8, what: str = "your BatchNorm",
                      seed: int = 0) -> None:
    """A from-scratch batch norm behaves as PyTorch's in training and in eval mode, running statistics included."""
    g = torch.Generator().manual_seed(seed)
    reference = (nn.BatchNorm1d if num_dims == 2 else nn.BatchNorm2d)(num_features, eps=eps, momentum=momentum)
    layer = make_layer()
    shape = (batch, num_features) if num_dims == 2 else (batch, num_features, 5, 4)
    with torch.no_grad():
        gamma = torch.rand(num_features, generator=g) + 0.5
        beta = torch.randn(num_features, generator=g)
        for m in (reference,):
            m.weight.copy_(gamma)
            m.bias.copy_(beta)
        _set_affine(layer, gamma, beta, what)
    layer.train()
    reference.train()
    for step in range(3):
        x = torch.randn(shape, generator=g) * (step + 1) + step
        with torch.no_grad():
            out, ref = layer(x), reference(x)
        if out.shape != ref.shape:
            raise CheckFailed(f"{what} returns {_fmt(out.shape)} in training mode for an input of {_fmt(shape)}.")
        if not torch.allclose(out, ref, atol=1e-4):
            hint = ("normalise with the mean and variance over the batch" +
                    (" and over height and width, one pair per channel" if num_dims == 4 else "") +
                    ", using the biased variance, and eps inside the square root")
            raise CheckFailed(f"in training mode, {what}'s output differs from nn.BatchNorm{'1d' if num_dims == 2 else '2d'}"
                              f" (max difference {(out - ref).abs().max().item():.3g}) on training step {step + 1}.\n"
                              f"  hint: {hint}.")
        stats = _running_stats(layer, what)
        for name, mine, theirs in (("moving mean", stats[0], reference.running_mean),
                                   ("moving variance", stats[1], reference.running_var)):
            if mine is None or mine.numel() != theirs.numel() or not torch.allclose(mine.reshape(-1), theirs, atol=1e-4):
                raise CheckFailed(f"after training step {step + 1}, {what}'s {name} is "
                                  f"{'missing' if mine is None else [round(v, 4) for v in mine.reshape(-1)[:3].tolist()]}"
                                  f", expected {[round(v, 4) for v in theirs[:3].tolist()]} (first channels).\n  hint: "
                                  f"update it in training mode only, as (1 - momentum) * old + momentum * batch value"
                                  f"{' with the unbiased batch variance' if name == 'moving variance' else ''}.")
    layer.eval()
    reference.eval()
    for batch_size in (batch, 1):
        x = torch.randn((batch_size,) + shape[1:], generator=g) * 3 + 1
        with torch.no_grad():
            out, ref = layer(x), reference(x)
        if not torch.allclose(out, ref, atol=1e-4):
            raise CheckFailed(f"in eval mode, {what}'s output differs from PyTorch's (max difference "
                              f"{(out - ref).abs().max().item():.3g}, batch of {batch_size}).\n  hint: in eval mode "
                              f"normalise with the moving mean and variance, not the batch's, and do not update them.")
        after = _running_stats(layer, what)
        if not torch.allclose(after[0].reshape(-1), reference.running_mean, atol=1e-4):
            raise CheckFailed(f"{what} changed its moving mean in eval mode.\n  hint: update the statistics only "
                              f"when the layer is training.")


def _set_affine(layer: nn.Module, gamma: torch.Tensor, beta: torch.Tensor, what: str) -> None:
    if remote.is_remote(layer):  # copies, by name: the values are then assigned in the kernel
        params = {k: v for k, v in _tensors_of(layer).items() if k in _remote_names(layer, "parameters")}
    else:
        params = dict(layer.named_parameters())
    g_name = "gamma" if "gamma" in params else "weight"
    b_name = "beta" if "beta" in params else "bias"
    g, b = params.get(g_name), params.get(b_name)
    if g is None or b is None:
        raise CheckFailed(f"{what} needs learnable parameters named gamma and beta (one value per channel); "
                          f"found {sorted(params) or 'none'}.")
    if g.numel() != gamma.numel() or b.numel() != beta.numel():
        raise CheckFailed(f"{what}'s gamma has {g.numel()} values and beta {b.numel()}; expected one per channel "
                          f"({gamma.numel()}).")
    if remote.is_remote(layer):
        remote.request(layer, "assign", values={g_name: gamma.reshape(g.shape), b_name: beta.reshape(b.shape)})
    else:
        g.copy_(gamma.reshape(g.shape))
        b.copy_(beta.reshape(b.shape))


def _running_stats(layer: nn.Module, what: str):
    if remote.is_remote(layer):
        bufs = _tensors_of(layer)
    else:
        bufs = {**dict(layer.named_buffers()), **{k: v for k, v in vars(layer).items() if isinstance(v, torch.Tensor)}}
    mean = bufs.get("moving_mean", bufs.get("running_mean"))
    var = bufs.get("moving_var", bufs.get("running_var"))
    if mean is None or var is None:
        raise CheckFailed(f"{what} keeps no running statistics: expected tensors named moving_mean and moving_var "
                          f"(registered with register_buffer).\n  hint: eval mode needs them.")
    return mean, var


# ---------------------------------------------------------------------------------------------------
# Judged checks: the student's object is a stand-in (zoolib.remote) for an object in the grading
# kernel. The kernel only traces and runs it on what is sent from here; the reference, the
# comparison and the message stay in this process. Messages are those of the local checks.

def _tensors_of(obj) -> dict:
    """Parameters, buffers and tensor attributes of a stand-in, by name (copies)."""
    found = remote.request(obj, "tensors")
    if not isinstance(found, dict) or not all(isinstance(v, torch.Tensor) for v in found.values()):
        raise CheckFailed("the grading kernel did not list the layer's tensors")
    return found


def _remote_names(obj, kind: str) -> set:
    names = remote.request(obj, "names", kind=kind)
    return set(names) if isinstance(names, list) else set()


def _remote_trace(block, what: str, **how):
    from . import dataflow

    reply = remote.request(block, "trace", **how)
    if not isinstance(reply, dict):
        raise CheckFailed(f"the grading kernel did not trace {what}")
    if reply.get("error") or reply.get("trace") is None:
        return None, reply
    try:
        return dataflow.Trace.from_json(reply["trace"]), reply
    except (KeyError, TypeError, ValueError) as err:
        raise CheckFailed(f"the grading kernel's trace of {what} is malformed ({err})") from None


def _trace_output_shape(t) -> tuple | None:
    return tuple(t.output_shapes[0]) if t.output_shapes and t.output_shapes[0] is not None else None


def _same_structure_remote(block, reference: nn.Module, input_size, what: str) -> None:
    from . import dataflow

    ref_trace = _dataflow(reference, input_size)
    if ref_trace is None:
        raise ValueError(f"the reference itself fails on {_fmt(input_size)}")
    mine, reply = _remote_trace(block, what, size=[int(s) for s in input_size])
    if mine is None:
        run = reply.get("calls") if isinstance(reply.get("calls"), dict) else {}
        calls = [_call_from_data(c) for c in run.get("calls", [])[:10_000] if isinstance(c, dict)]
        shape = run.get("out_shape")
        _layer_by_layer(calls, tuple(shape) if isinstance(shape, list) else None,
                        run.get("crash") if isinstance(run.get("crash"), str) else None,
                        run.get("params") if type(run.get("params")) is int else -1, reference, input_size, what)
        raise CheckFailed(f"{what} fails on an input of shape {_fmt(input_size)}: {reply.get('error')}")
    _report_findings(dataflow.compare(mine, ref_trace, what), what, input_size)
    unused = reply.get("unused") or []
    rows = [(str(u[0]), str(u[1]), int(u[2])) for u in unused
            if isinstance(u, list) and len(u) == 3 and type(u[2]) is int]
    _report_unused(rows, what)


def _call_from_data(data: dict) -> _Call:
    """A layer the kernel reported, rebuilt here on the meta device from its settings (for messages)."""
    def shape(v):
        return tuple(int(x) for x in v) if isinstance(v, list) else None

    return _Call(str(data.get("name", "?")), _layer_from_config(data.get("base"), data.get("config")),
                 shape(data.get("in_shape")), shape(data.get("out_shape")),
                 data["params"] if type(data.get("params")) is int else 0)


_REBUILT = {"Conv1d": nn.Conv1d, "Conv2d": nn.Conv2d, "Conv3d": nn.Conv3d, "Linear": nn.Linear,
            "BatchNorm1d": nn.BatchNorm1d, "BatchNorm2d": nn.BatchNorm2d, "BatchNorm3d": nn.BatchNorm3d}


def _layer_from_config(base, config) -> nn.Module:
    cls = _REBUILT.get(base) if isinstance(base, str) else None
    try:
        if cls is not None and isinstance(config, dict):
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()
                          if k in inspect.signature(cls).parameters}, device="meta")
    except (TypeError, ValueError):
        pass
    return type(str(base or "Module")[:100], (nn.Module,), {})()


def _expect_shape_remote(block, input_size, expected, what: str, reference) -> None:
    from . import dataflow

    mine, reply = _remote_trace(block, what, size=[int(s) for s in input_size])
    got = _trace_output_shape(mine) if mine is not None else None
    if mine is not None and got == tuple(expected):
        return
    if reference is not None:
        same_structure(block, reference, input_size, what)
    problem = (f"fails on an input of shape {_fmt(input_size)}: {reply.get('error')}" if mine is None else
               f"maps an input of {_fmt(input_size)} to {_fmt(got)}; expected {_fmt(expected)}")
    ops = mine.ops[-12:] if mine is not None else []
    ran = "\n".join(f"    {dataflow.describe(op)} -> {_fmt(op.shape)}" for op in ops)
    raise CheckFailed(f"{what} {problem}." + (f"\n  the operations that ran (last {len(ops)}):\n{ran}" if ops else ""))


def _same_function_remote(block, reference: nn.Module, x: torch.Tensor, what: str, atol: float, train: bool) -> None:
    from . import dataflow

    ref_trace = _dataflow(reference, tuple(x.shape))
    mine, reply = _remote_trace(block, what, size=list(x.shape), train=False, keep=True)
    load: dict = {}
    bn_names: dict = {}   # the student's BatchNorm -> the reference's it plays the part of (by dataflow)
    if mine is not None and ref_trace is not None and not dataflow.compare(mine, ref_trace):
        s_ops, r_ops = mine.by_id(), ref_trace.by_id()
        for s_op, r_op in dataflow.pair(mine, ref_trace):
            if s_op in s_ops and r_op in r_ops and "batch_norm" in s_ops[s_op].kind:
                bn_names[dataflow._owner(s_ops[s_op])] = dataflow._owner(r_ops[r_op])
        # the same weights on both sides: each tensor filled from a seed the kernel is sent, not the tensor
        read = reply.get("read") if isinstance(reply.get("read"), dict) else {}
        by_op: dict | None = {}
        seeds = torch.randint(0, 2**62, (1,)).item()
        with torch.no_grad():
            for s_op, r_op in dataflow.pair(mine, ref_trace):
                theirs = ref_trace.tensors.get(r_op, [])
                if read.get(str(s_op)) != [[list(t.shape), str(t.dtype).removeprefix("torch.")] for t in theirs] \
                        or any(not t.is_floating_point() for t in theirs):
                    by_op = None
                    break
                sent = []
                for t in theirs:
                    seeds += 1
                    low, high = (float(t.min()), float(t.max())) if t.numel() else (0.0, 0.0)
                    t.copy_(wire.seeded(list(t.shape), seeds, low, high, str(t.dtype).removeprefix("torch.")))
                    sent.append([seeds, low, high])
                by_op[str(s_op)] = sent
        if by_op:
            load = {"by_op": by_op}
    if not load:  # not the same graph: pair the state_dict entries in order, as the local check does
        state = remote.request(block, "state")
        if not isinstance(state, list):
            raise CheckFailed(f"the grading kernel did not list the tensors of {what}")
        src = reference.state_dict()
        src_shapes = [tuple(v.shape) for v in src.values()]
        dst_shapes = [tuple(s[1]) if isinstance(s, list) and len(s) == 2 else None for s in state]
        aligned = None if src_shapes == dst_shapes else _align_extra_entries(state, src)
        if aligned is not None:   # the student's extra buffers or attributes keep their values
            load = {"by_order": aligned}
        elif src_shapes != dst_shapes:
            for i, (a, b) in enumerate(zip(dst_shapes, src_shapes)):
                if a != b:
                    raise CheckFailed(f"{what}'s tensors do not line up with the reference's: '{state[i][0]}' is "
                                      f"{_fmt(a)}, the reference's tensor at that position is {_fmt(b)}.\n  hint: "
                                      f"create the layers in __init__ in the same order as the reference (branch by "
                                      f"branch).")
            raise CheckFailed(f"{what} has {len(dst_shapes)} weight tensors, the reference {len(src)}.\n  hint: a "
                              f"layer (or a bias) is missing or extra.")
        else:
            load = {"by_order": [v.detach().clone() for v in src.values()]}
    try:
        run = remote.request(block, "run", x=x, train=train, **load)
    except remote.RemoteError as err:
        raise CheckFailed(f"{what} fails on an input of shape {_fmt(x.shape)}: {err.ename}: "
                          f"{(str(err).splitlines() or [''])[0]}") from None
    out = run.get("out") if isinstance(run, dict) else None
    reference.train(train)
    with torch.no_grad():
        _, ref_out = _trace(reference, x)
    if not isinstance(out, torch.Tensor) or out.shape != ref_out.shape:
        raise CheckFailed(f"{what} returns {_fmt(getattr(out, 'shape', None))}, expected {_fmt(ref_out.shape)}.")
    diff = (out.float() - ref_out).abs().max().item() if out.numel() else 0.0
    if diff <= atol:
        if train:
            mine_stats = [s for s in run.get("stats", []) if isinstance(s, list) and len(s) == 3]
            ref_named = {n: m for n, m in reference.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
            ref_stats = list(ref_named.values())
            if len(mine_stats) != len(ref_stats):
                raise CheckFailed(f"{what} has {len(mine_stats)} BatchNorm layers, the reference {len(ref_stats)}.")
            if all(bn_names.get(s[0]) in ref_named for s in mine_stats):   # paired by dataflow, whatever the order
                ref_stats = [ref_named[bn_names[s[0]]] for s in mine_stats]
            for (name, mean, var), b in zip(mine_stats, ref_stats):
                for stat, sa in (("running_mean", mean), ("running_var", var)):
                    sb = getattr(b, stat)
                    if not isinstance(sa, torch.Tensor) or sa.shape != sb.shape or not torch.allclose(sa, sb, atol=atol):
                        raise CheckFailed(f"after one training-mode forward pass, the {stat} of '{name}' in {what} "
                                          f"differs from the reference's.\n  hint: use nn.BatchNorm2d with its "
                                          f"defaults (momentum 0.1, running statistics on), once per forward pass.")
        return
    _raise_if_unregistered(mine, what, diff)
    # what each layer computed, for the message: the same weights again, watched this time
    watched = remote.request(block, "run", x=x, train=train, watch=True, **load)
    watched = watched if isinstance(watched, dict) else {}
    _explain_difference(watched.get("layers", []), _activations(reference, x), watched.get("children", []),
                        _branch_outputs(reference, x), what, atol, diff)


def _align_extra_entries(state: list, src: dict) -> list | None:
    """The reference's state_dict entries in the order of the student's, None for entries of the student's own
    (an extra buffer such as a persistent ``scale``): each reference entry must find, in order, a student entry
    of its shape and kind (weight, bias, running_mean, ...); None when they do not line up that way."""
    ref = list(src.items())
    out, i = [], 0
    for entry in state:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            return None
        name, shape = entry
        if i < len(ref) and tuple(ref[i][1].shape) == tuple(shape) and \
                name.rpartition(".")[2] == ref[i][0].rpartition(".")[2]:
            out.append(ref[i][1].detach().clone())
            i += 1
        elif name.rpartition(".")[2] in ("weight", "bias", "running_mean", "running_var"):
            return None    # a layer's tensor without its counterpart: not an extra of the student's own
        else:
            out.append(None)
    return out if i == len(ref) else None


def _explain_difference(mine_layers, ref_layers, mine_children, ref_children, what, atol, diff) -> None:
    pairs = [(p[0], p[1]) for p in mine_layers if isinstance(p, (list, tuple)) and len(p) == 2
             and isinstance(p[1], torch.Tensor)]
    for (name, a), (_, b) in zip(pairs, ref_layers):
        if a.shape != b.shape:
            raise CheckFailed(f"with the reference's weights, '{name}' in {what} outputs {_fmt(a.shape)}, the "
                              f"matching reference layer {_fmt(b.shape)}.\n  hint: check the order in which the "
                              f"branches run and are concatenated.")
        if (a - b).abs().max().item() > atol:
            raise CheckFailed(f"with the reference's weights, {what} computes something else: the output of "
                              f"'{name}' already differs (max difference {(a - b).abs().max().item():.3g}).\n  hint: "
                              f"check what feeds this layer: the order of convolution, normalisation and ReLU, a "
                              f"missing ReLU, or a pooling step.")
    children = [(p[0], p[1]) for p in mine_children if isinstance(p, (list, tuple)) and len(p) == 2
                and isinstance(p[1], torch.Tensor)]
    if len(children) == len(ref_children):
        for (name, a), (ref_name, b) in zip(children, ref_children):
            if a.shape == b.shape and (a - b).abs().max().item() > atol:
                raise CheckFailed(f"with the reference's weights, the output of '{name}' in {what} differs from the "
                                  f"reference's '{ref_name}' (max difference {(a - b).abs().max().item():.3g}), "
                                  f"although each of its layers computes the same.\n  hint: check the activation "
                                  f"(ReLU) or pooling after its layers.")
    raise CheckFailed(f"with the reference's weights, {what}'s output differs by up to {diff:.3g}, although every "
                      f"layer's output matches.\n  hint: check how the branches are combined: the order of "
                      f"torch.cat, a residual addition or its scale, and the final ReLU.")


def vjp(fn: Callable, args: Sequence, kwargs: dict | None = None, upstream: torch.Tensor | None = None,
        index: int | None = None):
    """Call ``fn(*args, **kwargs)`` and backpropagate ``(output * upstream).sum()``.

    ``index`` picks one element of a tuple output. Returns ``(output, grads)``: one entry per
    tensor in ``args`` (in order, those inside tuples and lists included), its gradient if it
    requires one, else None. The arguments themselves are not changed, so a test can compare
    with PyTorch on the same inputs.
    """
    kwargs = kwargs or {}
    if remote.is_remote(fn):
        reply = remote.request(fn, "vjp", args=list(args), kwargs=kwargs, upstream=upstream, index=index)
        if not isinstance(reply, dict) or not isinstance(reply.get("grads"), list):
            raise CheckFailed("the grading kernel did not report the gradients")
        return reply.get("out"), reply["grads"]
    leaves: list = []

    def fresh(a):
        if isinstance(a, (tuple, list)):
            return type(a)(fresh(v) for v in a)
        if isinstance(a, torch.Tensor):
            a = a.detach().clone().requires_grad_(True) if a.requires_grad else a
            leaves.append(a)
        return a

    copies = [fresh(a) for a in args]
    out = fn(*copies, **kwargs)
    picked = out[index] if index is not None else out
    if not isinstance(picked, torch.Tensor):
        raise CheckFailed(f"expected a tensor, got a {type(picked).__name__}")
    if picked.requires_grad:
        (picked * (upstream if upstream is not None else torch.ones_like(picked))).sum().backward()
    return out, [a.grad if a.requires_grad else None for a in leaves]


def count_calls(fn: Callable, names: Iterable[str]) -> dict:
    """Call ``fn()`` once and count how often it calls each of the notebook's functions ``names``."""
    names = list(names)
    if remote.is_remote(fn):
        counts = remote.request(fn, "count_calls", names=names)
        if not isinstance(counts, dict) or not all(type(v) is int for v in counts.values()):
            raise CheckFailed("the grading kernel did not count the calls")
        return counts
    return _count_calls_here(fn, names)


def _count_calls_here(fn: Callable, names: list) -> dict:
    """count_calls on a function of this process (zoolib.probe calls it in the kernel)."""
    scope = fn.__globals__
    counts = dict.fromkeys(names, 0)
    originals = {n: scope[n] for n in names if n in scope}

    def counting(name, original):
        def wrapped(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)
        return wrapped

    try:
        for n, original in originals.items():
            scope[n] = counting(n, original)
        fn()
    finally:
        scope.update(originals)
    return counts


def stage_shapes(net: nn.Module, input_size: Sequence[int], stages: Sequence[Sequence[int]], what: str) -> None:
    """``net`` is an ``nn.Sequential`` of ``len(stages)`` modules whose outputs (batch left out) are ``stages``."""
    if remote.is_remote(net):
        reply = remote.request(net, "stages", size=[int(s) for s in input_size])
        if not isinstance(reply, dict):
            raise CheckFailed(f"the grading kernel did not run {what} stage by stage")
        sequential, rows = reply.get("sequential") is True, reply.get("rows", [])
        kind = str(reply.get("type", type_name(net)))
    else:
        sequential, rows, kind = isinstance(net, nn.Sequential), _stage_rows(net, input_size), type(net).__name__
    if not sequential:
        raise CheckFailed(f"{what} should be an nn.Sequential of {len(stages)} modules; got a {kind}")
    count = len(net)
    if count != len(stages):
        raise CheckFailed(f"{what} should be an nn.Sequential of {len(stages)} modules; it has {count}")
    size = "x".join(map(str, input_size[2:]))
    for i, (row, want) in enumerate(zip(rows, stages)):
        name, shape = (str(row[0]), row[1]) if isinstance(row, list) and len(row) == 2 else ("?", None)
        if isinstance(shape, str):
            raise CheckFailed(f"module {i} of {what}, a {name}, fails at {size}: {shape}")
        if not isinstance(shape, list) or tuple(shape[1:]) != tuple(want):
            got = "x".join(map(str, shape[1:])) if isinstance(shape, list) else "nothing"
            raise CheckFailed(f"module {i} of {what}, a {name}, outputs {got} at {size}; the lecture's table says "
                              f"{'x'.join(map(str, want))}")


def _stage_rows(net: nn.Module, input_size) -> list:
    """[type name, output shape or the error] of each module of a Sequential on a meta input, up to a failure."""
    rows: list = []
    if not isinstance(net, nn.Sequential):
        return rows
    x = torch.empty(tuple(int(s) for s in input_size), device="meta")
    with torch.no_grad():
        for child in meta_clone(net).eval():
            try:
                x = child(x)
                rows.append([type(child).__name__, list(x.shape)])
            except Exception as err:  # noqa: BLE001
                rows.append([type(child).__name__, f"{type(err).__name__}: {err}"])
                break
    return rows


def _static_use(sources: Sequence[str], name: str, names: set) -> str | None:
    """Does the definition of ``name`` in the submitted cells use any of ``names``?

    Read from the source, in the grader: an attribute (``F.batch_norm``), a keyword argument
    (``label_smoothing=``), a name not defined by the submission, or a string constant (as in
    ``getattr(F, "batch_norm")``); the submission's own functions it uses are followed.
    """
    import ast

    defs: dict[str, list] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defs.setdefault(node.name, []).append(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    for leaf in ast.walk(target):
                        if isinstance(leaf, ast.Name):
                            defs.setdefault(leaf.id, []).append(node)
    todo, seen = [name], set()
    while todo:
        current = todo.pop()
        if current in seen or current not in defs:
            continue
        seen.add(current)
        for node in defs[current]:
            # the submission's own names: parameters and local variables are not PyTorch's, and a keyword
            # argument passed to a function of the submission (a helper's label_smoothing=) goes to it
            local = {a.arg for f in ast.walk(node) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                     for a in (f.args.posonlyargs + f.args.args + f.args.kwonlyargs +
                               [x for x in (f.args.vararg, f.args.kwarg) if x])}
            local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            own_calls = {id(k) for c in ast.walk(node) if isinstance(c, ast.Call) and (
                (isinstance(c.func, ast.Name) and c.func.id in defs) or
                (isinstance(c.func, ast.Attribute) and isinstance(c.func.value, ast.Name) and c.func.value.id == "self"))
                for k in c.keywords}
            for sub in ast.walk(node):
                if isinstance(sub, ast.Attribute) and sub.attr in names and not (
                        isinstance(sub.value, ast.Name) and sub.value.id == "self"):
                    return sub.attr
                if isinstance(sub, ast.keyword) and sub.arg in names and id(sub) not in own_calls:
                    return sub.arg
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value in names:
                    return sub.value
                if isinstance(sub, ast.Name) and sub.id != current:
                    if sub.id in defs:
                        todo.append(sub.id)
                    elif sub.id in names and sub.id not in local:
                        return sub.id
    return None
