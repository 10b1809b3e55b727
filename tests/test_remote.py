"""The judge's protocol: the wire format, the stand-ins, and what a lying kernel can and cannot get.

The kernel's side (zoolib.probe) runs here in-process through LocalChannel; a lying kernel is a
Channel whose answers are written by hand. The references are zoolib's and PyTorch's own.
"""
from __future__ import annotations

import base64
import json

import pytest
import torch
from torch import nn

import zoolib
from zoolib import checks, remote, wire

STUDENT = '''
import torch
from torch import nn
from torch.nn import functional as F

class NiNBlock(nn.Module):  # correct, with its layers in a plain list and F.relu
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        convs = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
                 nn.Conv2d(out_channels, out_channels, 1), nn.Conv2d(out_channels, out_channels, 1)]
        self.convs = convs
        for i, c in enumerate(convs):
            self.add_module(f"c{i}", c)
    def forward(self, x):
        for c in self.convs:
            x = F.relu(c(x))
        return x

class Wrong(NiNBlock):  # the last ReLU left out
    def forward(self, x):
        x = F.relu(self.convs[0](x))
        x = F.relu(self.convs[1](x))
        return self.convs[2](x)

def params(c_in, c_out, k):
    if c_in < 0:
        raise NotImplementedError("not yet")
    return k * k * c_in * c_out + c_out + 2 * (c_out * c_out + c_out)

class Agreeable(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__

def agreeable(*args):
    return Agreeable(0)

def loss(x, y):
    return F.cross_entropy(x, y, label_smoothing=0.1)
'''


@pytest.fixture()
def kernel():
    namespace: dict = {"__name__": "__main__"}
    exec(STUDENT, namespace)
    channel = remote.LocalChannel(namespace)
    channel.sources = [STUDENT]
    return channel


def test_seeded_weights_are_the_same_bits_and_in_range():
    a, b = wire.seeded([64, 3, 3], 12345, -0.2, 0.5), wire.seeded([64, 3, 3], 12345, -0.2, 0.5)
    assert torch.equal(a, b) and a.dtype == torch.float32 and a.min() >= -0.2 and a.max() <= 0.5
    assert not torch.equal(a, wire.seeded([64, 3, 3], 12346, -0.2, 0.5))


def test_seeded_weights_are_the_same_bits_in_another_process_with_more_threads():
    """The grader and the kernel each draw the weights from the seed; a kernel may run more PyTorch threads
    than the grader, and a tensor this large is filled in parallel there."""
    import subprocess
    import sys

    code = ("import sys, torch; torch.set_num_threads(2); from zoolib import wire; "
            "sys.stdout.buffer.write(wire.seeded([512, 256, 3, 3], 7, -0.05, 0.05).numpy().tobytes())")
    theirs = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert wire.seeded([512, 256, 3, 3], 7, -0.05, 0.05).numpy().tobytes() == theirs
    finally:
        torch.set_num_threads(threads)


def test_tensors_and_plain_values_cross_exactly():
    for value in (3, 2.5, "text", None, True, [1, (2, 3)], {"a": [1.5]}):
        assert wire.decode(json.loads(json.dumps(wire.encode(value)))) == value
    for t in (torch.randn(3, 4), torch.arange(6).reshape(2, 3), torch.randn(2, dtype=torch.float64),
              torch.randn(2).to(torch.bfloat16), torch.tensor([True, False])):
        back = wire.decode(json.loads(json.dumps(wire.encode(t))))
        assert back.dtype == t.dtype and torch.equal(back, t)
    assert wire.decode(wire.encode(torch.ones(2, requires_grad=True))).requires_grad


@pytest.mark.parametrize("bad", [
    {"tensor": {"dtype": "float32", "shape": [2], "data": base64.b64encode(b"\0" * 4).decode()}},   # too few bytes
    {"tensor": {"dtype": "complex64", "shape": [1], "data": ""}},                                      # unknown dtype
    {"tensor": {"dtype": "float32", "shape": [-1], "data": ""}},                                       # bad shape
    {"tensor": {"dtype": "float32", "shape": [1 << 30], "data": "AAAA"}},                              # over budget
    {"pickle": "gASV"}, {"v": {"nested": "object"}}, {"v": 1, "list": []}, ["v", 1],
])
def test_malformed_data_is_refused(bad):
    with pytest.raises(wire.WireError):
        wire.decode(bad)


def test_a_grader_object_is_never_sent():
    with pytest.raises(wire.WireError):
        wire.encode(nn.Linear(2, 2))


def test_stand_ins_behave_like_the_kernels_objects(kernel):
    NiNBlock = kernel.lookup("NiNBlock")
    block = NiNBlock(3, 8, 3, 1, 1)
    assert isinstance(block, nn.Module) and isinstance(block, NiNBlock) and not isinstance(block, nn.Sequential)
    assert isinstance(block.c0, nn.Conv2d) and block.c0.kernel_size == (3, 3)
    assert checks.type_name(block) == "NiNBlock" and len(block.convs) == 3
    out = block(torch.randn(2, 3, 5, 5))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 8, 5, 5) and bool((out >= 0).all())
    with pytest.raises(NameError):
        kernel.lookup("undefined_name")
    with pytest.raises(NotImplementedError, match="not yet"):   # the student's exception, by its own name
        kernel.lookup("params")(-1, 1, 1)


def test_a_correct_block_in_another_style_passes_every_check(kernel):
    NiNBlock = kernel.lookup("NiNBlock")
    reference = zoolib.NiNBlock(3, 8, 5, 2, 2)
    for m in reference.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    checks.same_structure(NiNBlock(3, 96, 11, 4, 0), zoolib.NiNBlock(3, 96, 11, 4, 0), (1, 3, 224, 224))
    checks.expect_shape(NiNBlock(3, 96, 11, 4, 0), (2, 3, 224, 224), (2, 96, 54, 54))
    checks.same_function(NiNBlock(3, 8, 5, 2, 2), reference, torch.randn(1, 3, 11, 11))
    checks.gradients_flow(NiNBlock(4, 8, 3, 1, 1), torch.randn(2, 4, 6, 6))
    checks.function_matches(kernel.lookup("params"), lambda a, b, k: checks.param_count(zoolib.NiNBlock(a, b, k)),
                            [(3, 96, 11), (5, 7, 2)])


def test_a_wrong_block_is_told_the_same_as_in_a_notebook(kernel):
    wrong = kernel.lookup("Wrong")
    with pytest.raises(checks.CheckFailed) as judged:
        checks.same_structure(wrong(3, 8, 3, 1, 1), zoolib.NiNBlock(3, 8, 3, 1, 1), (1, 3, 6, 6), what="yours")
    local: dict = {}
    exec(STUDENT, local)
    with pytest.raises(checks.CheckFailed) as in_notebook:
        checks.same_structure(local["Wrong"](3, 8, 3, 1, 1), zoolib.NiNBlock(3, 8, 3, 1, 1), (1, 3, 6, 6),
                              what="yours")
    assert str(judged.value) == str(in_notebook.value) and "ReLU" in str(judged.value)


def test_an_agreeable_int_and_a_forbidden_keyword_are_caught(kernel):
    with pytest.raises(checks.CheckFailed, match=r"object of type Agreeable \(a subclass of int\)"):
        checks.function_matches(kernel.lookup("agreeable"), lambda: 0, [()])
    with pytest.raises(checks.CheckFailed, match="label_smoothing"):  # read from the source, in the grader
        checks.does_not_call(kernel.lookup("loss"), {"label_smoothing"}, what="loss", why="")


def test_gradients_of_a_remote_function_match_pytorch(kernel):
    logits = torch.randn(3, 5, requires_grad=True)
    target = torch.tensor([0, 4, 2])
    out, grads = checks.vjp(kernel.lookup("loss"), (logits, target))
    torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.1).backward()
    assert torch.allclose(grads[0], logits.grad) and grads[1] is None
    assert torch.allclose(out, torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.1))


class Liar(remote.Channel):
    """A kernel that answers every request with data of its own choosing."""

    def __init__(self, answer):
        self.answer = answer

    def ask(self, text: str) -> str:
        request = json.loads(text)
        if request["op"] == "lookup":
            return json.dumps({"ok": {"ref": {"id": 1, "type": "NiNBlock", "mro": [], "kind": "class"}}})
        if request["op"] == "call":
            return json.dumps({"ok": {"ref": {"id": 2, "type": "NiNBlock", "mro": [["torch.nn.modules.module",
                                                                                    "Module"]], "kind": "module"}}})
        return json.dumps(self.answer(request))


def _trace_of(model, x) -> tuple[dict, dict]:
    from zoolib import dataflow

    t = dataflow.trace(model, x, train=False)
    return json.loads(t.to_json()), {str(k): [[list(v.shape), str(v.dtype).removeprefix("torch.")] for v in ts]
                                     for k, ts in t.tensors.items()}


@pytest.mark.parametrize("answer", [
    lambda r: {"ok": {"v": None}},
    lambda r: {"ok": {"dict": {"trace": {"v": None}, "error": {"v": None}}}},
    lambda r: {"raised": ["AssertionError", "fine"]},
    lambda r: "not even an object",
])
def test_a_kernel_that_lies_without_the_numbers_fails(answer):
    block = Liar(answer).lookup("NiNBlock")(3, 8, 3, 1, 1)
    with pytest.raises((checks.CheckFailed, remote.RemoteError, wire.WireError)):
        checks.same_structure(block, zoolib.NiNBlock(3, 8, 3, 1, 1), (1, 3, 6, 6))
    with pytest.raises((checks.CheckFailed, remote.RemoteError, wire.WireError)):
        checks.same_function(block, zoolib.NiNBlock(3, 8, 3, 1, 1), torch.randn(1, 3, 6, 6))


def test_a_kernel_that_copies_the_references_trace_still_needs_its_outputs():
    reference = zoolib.NiNBlock(3, 8, 3, 1, 1)
    x = torch.randn(1, 3, 6, 6)
    trace, read = _trace_of(zoolib.NiNBlock(3, 8, 3, 1, 1), x)

    def answer(request):
        if request["op"] == "trace":
            return {"ok": wire.encode({"trace": trace, "error": None, "unused": [], "read": read})}
        if request["op"] == "run":  # a plausible output of the right shape, not the right numbers
            return {"ok": wire.encode({"out": torch.rand(1, 8, 6, 6), "stats": [], "layers": [], "children": []})}
        return {"ok": {"v": None}}

    block = Liar(answer).lookup("NiNBlock")(3, 8, 3, 1, 1)
    checks.same_structure(block, reference, (1, 3, 6, 6))  # the structure can be copied: it is in the text
    with pytest.raises(checks.CheckFailed, match="computes something else|differs"):
        checks.same_function(block, reference, x)


def test_a_keyword_passed_to_the_students_own_helper_is_not_pytorchs():
    source = '''
import torch
from torch.nn import functional as F

def smoothed(logits, target, label_smoothing=0.0):
    logp = F.log_softmax(logits, 1)
    return -((1 - label_smoothing) * logp.gather(1, target[:, None]).squeeze(1) + label_smoothing * logp.mean(1)).mean()

def loss(logits, target, eps=0.1):
    return smoothed(logits, target, label_smoothing=eps)

def cheat(logits, target, eps=0.1):
    return smoothed(logits, target, label_smoothing=eps) * 0 + F.cross_entropy(logits, target, label_smoothing=eps)
'''
    namespace: dict = {"__name__": "__main__"}
    exec(source, namespace)
    channel = remote.LocalChannel(namespace)
    channel.sources = [source]
    checks.does_not_call(channel.lookup("loss"), {"label_smoothing"}, what="loss", why="")
    with pytest.raises(checks.CheckFailed, match="label_smoothing"):
        checks.does_not_call(channel.lookup("cheat"), {"label_smoothing"}, what="cheat", why="")
