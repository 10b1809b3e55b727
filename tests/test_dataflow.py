"""zoolib.dataflow: style-independent traces, and messages that name the real mistake.

The reference is zoolib's Inception module with inception (3a)'s widths from Table 1 of
Szegedy et al. 2014 (192 in; 64 | 96->128 | 16->32 | pool->32). Each "correct" variant is
written the way a student might write it (other creation and call order, plain lists,
functional ReLU, in-place ReLU, ``padding='same'``); that they compute the same function is
checked independently, by copying the weights across and comparing outputs.
"""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import zoolib
from zoolib import checks, dataflow
from zoolib.dataflow import Trace, compare, trace
from zoolib.models.googlenet import Inception

X = torch.randn(2, 192, 28, 28)
WIDTHS = dict(in_channels=192, ch1x1=64, ch3x3red=96, ch3x3=128, ch5x5red=16, ch5x5=32, pool_proj=32)


def reference() -> nn.Module:
    torch.manual_seed(0)
    return Inception(**WIDTHS)


def conv(cin, cout, k, **kw):
    return nn.Conv2d(cin, cout, k, **kw)


class PlainList(nn.Module):
    """Branches in a plain Python list (not registered as submodules), created last-first."""

    def __init__(self):
        super().__init__()
        pool = [nn.MaxPool2d(3, 1, 1), conv(192, 32, 1), nn.ReLU()]
        five = [conv(192, 16, 1), nn.ReLU(), conv(16, 32, 5, padding=2), nn.ReLU()]
        three = [conv(192, 96, 1), nn.ReLU(), conv(96, 128, 3, padding=1), nn.ReLU()]
        one = [conv(192, 64, 1), nn.ReLU()]
        self.branches = [one, three, five, pool]

    def forward(self, x):
        outs = []
        for branch in reversed(self.branches):        # computed in the other order ...
            y = x
            for layer in branch:
                y = layer(y)
            outs.append(y)
        return torch.cat(outs[::-1], dim=1)           # ... concatenated in the required one


class Functional(nn.Module):
    """Convolutions as attributes, F.relu in place, padding='same', branches computed 4-3-2-1."""

    def __init__(self):
        super().__init__()
        self.p = conv(192, 32, 1)
        self.c5 = conv(16, 32, 5, padding="same")
        self.r5 = conv(192, 16, 1)
        self.c3 = conv(96, 128, 3, padding="same")
        self.r3 = conv(192, 96, 1)
        self.b1 = conv(192, 64, 1)

    def forward(self, x):
        b4 = F.relu(self.p(F.max_pool2d(x, 3, stride=1, padding=1)), inplace=True)
        b3 = F.relu(self.c5(F.relu(self.r5(x))))
        b2 = torch.relu(self.c3(self.r3(x).relu_()))
        b1 = F.relu(self.b1(x))
        return torch.cat((b1, b2, b3, b4), 1)


class ModuleListStyle(nn.Module):
    """d2l's style: Sequential branches in a ModuleList, with a helper taking keyword arguments."""

    def __init__(self):
        super().__init__()

        def unit(cin, cout, k, padding=0):
            return [nn.Conv2d(cin, cout, kernel_size=k, padding=padding), nn.ReLU(inplace=True)]

        self.paths = nn.ModuleList([nn.Sequential(*unit(192, 64, 1)),
                                    nn.Sequential(*unit(192, 96, 1), *unit(96, 128, 3, padding=1)),
                                    nn.Sequential(*unit(192, 16, 1), *unit(16, 32, 5, padding=2)),
                                    nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1), *unit(192, 32, 1))])
        self.scale = nn.Parameter(torch.ones(()), requires_grad=False)  # an extra attribute of their own
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        return torch.cat([p(x) for p in self.paths], dim=1)


class CountedFromTheBack(nn.Module):
    """Branches in a ModuleDict, concatenated with torch.concat along dim -3 (the channels of an NCHW map)."""

    def __init__(self):
        super().__init__()
        self.paths = nn.ModuleDict({
            "1x1": nn.Sequential(conv(192, 64, 1), nn.ReLU()),
            "3x3": nn.Sequential(conv(192, 96, 1), nn.ReLU(), conv(96, 128, 3, padding="same"), nn.ReLU()),
            "5x5": nn.Sequential(conv(192, 16, 1), nn.ReLU(), conv(16, 32, 5, padding="same"), nn.ReLU()),
            "pool": nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(192, 32, 1), nn.ReLU())})

    def forward(self, x):
        return torch.concat([p(x) for p in self.paths.values()], dim=-3)


CORRECT = {"plain list, other orders": PlainList, "functional, in place, padding='same'": Functional,
           "ModuleList with extras": ModuleListStyle, "ModuleDict, torch.concat along dim -3": CountedFromTheBack}


def _convs_by_role(module: nn.Module) -> list[nn.Conv2d]:
    """The six convolutions keyed by (in, out, kernel): each is unique in this block."""
    found = {}
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            found[(m.in_channels, m.out_channels, m.kernel_size)] = m
    if hasattr(module, "branches"):  # PlainList's convolutions are not submodules
        for branch in module.branches:
            for m in branch:
                if isinstance(m, nn.Conv2d):
                    found[(m.in_channels, m.out_channels, m.kernel_size)] = m
    return found


@pytest.mark.parametrize("name", CORRECT)
def test_a_correct_block_in_another_style_traces_the_same(name):
    ref, mine = reference(), CORRECT[name]()
    assert compare(trace(mine, X), trace(ref, X)) == []
    # independent check that they really compute the same function
    ref_convs, my_convs = _convs_by_role(ref), _convs_by_role(mine)
    assert ref_convs.keys() == my_convs.keys()
    with torch.no_grad():
        for key, m in my_convs.items():
            m.weight.copy_(ref_convs[key].weight)
            m.bias.copy_(ref_convs[key].bias)
        torch.testing.assert_close(mine(X), ref(X))


def _edited(**changes) -> nn.Module:
    """The reference with some layers replaced (keys are attribute paths)."""
    block = reference()
    for path, layer in changes.items():
        parent, _, leaf = path.rpartition(".")
        setattr(block.get_submodule(parent) if parent else block, leaf, layer)
    return block


def _messages(block: nn.Module) -> list[str]:
    return [str(f) for f in compare(trace(block, X), trace(reference(), X))]


def test_a_pool_of_the_wrong_kind_is_named_with_its_branch():
    msgs = _messages(_edited(**{"branch4.0": nn.AvgPool2d(3, 1, 1)}))
    assert len(msgs) == 1 and msgs[0].startswith("branch 4, layer 1:")
    assert "AvgPool 3" in msgs[0] and "expected MaxPool 3" in msgs[0] and "wrong kind of pooling" in msgs[0]


@pytest.mark.parametrize("pool,words", [
    (nn.MaxPool2d(3, 1, 1, ceil_mode=True), "ceil_mode should be False, not True"),
    (nn.MaxPool2d(3, 1, 1, dilation=1), None),                          # the same pool, spelled out
])
def test_pool_settings_are_compared(pool, words):
    msgs = _messages(_edited(**{"branch4.0": pool}))
    assert (msgs == []) if words is None else (len(msgs) == 1 and words in msgs[0])


def test_branches_concatenated_in_the_wrong_order():
    block = reference()
    block.forward = lambda x: torch.cat([block.branch2(x), block.branch1(x), block.branch3(x), block.branch4(x)], 1)
    msgs = _messages(block)
    assert len(msgs) == 1 and "wrong order" in msgs[0] and "(2, 1, 3, 4)" in msgs[0]


def _agree(mine: nn.Module, ref: nn.Module, x: torch.Tensor, atol: float = 0.0) -> tuple[bool, bool]:
    """(PyTorch computes the same, to ``atol``, with ``ref``'s weights loaded into ``mine``; the traces match)."""
    mine.load_state_dict(ref.state_dict())
    with torch.no_grad():
        a, b = mine(x), ref(x)
    same = a.shape == b.shape and torch.allclose(a, b, rtol=0.0, atol=atol)
    return same, compare(trace(mine, x), trace(ref, x)) == []


class TwoPaths(nn.Module):
    """Two 1x1 paths of equal width concatenated along ``dim``: any axis of these maps is a valid one."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.a, self.b = conv(4, 4, 1), conv(4, 4, 1)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=self.dim)


@pytest.mark.parametrize("dim,words", [(-3, None), (1, None), (-2, "along dim 2 of 2 inputs; expected concatenation along dim 1"),
                                       (3, "along dim 3 of 2 inputs; expected concatenation along dim 1")])
def test_a_concatenation_axis_counts_from_the_front(dim, words):
    # torch.cat(xs, -3) on NCHW maps is torch.cat(xs, 1); -2 is the height, another function
    x = torch.randn(1, 4, 3, 3)
    mine, ref = TwoPaths(dim), TwoPaths(1)
    assert _agree(mine, ref, x) == (words is None, words is None)
    msgs = [str(f) for f in compare(trace(mine, x), trace(ref, x))]
    assert (msgs == []) if words is None else (len(msgs) == 1 and words in msgs[0]), msgs


def test_a_missing_relu_is_named_with_what_it_follows():
    block = reference()
    block.branch2[1] = next(m for m in block.branch2[1].modules() if isinstance(m, nn.Conv2d))  # its ReLU dropped
    msgs = _messages(block)
    assert len(msgs) == 1 and msgs[0].startswith("branch 2")
    assert "missing ReLU after Conv 3x3, 96->128" in msgs[0]


def test_a_wrong_padding_is_named():
    # a 5x5 with padding 2 on one side only would not concatenate; 'padding 2' vs 1 on a 3x3 neither.
    # So change the 3x3's dilation and padding together: same shape, different function.
    block = reference()
    c = next(m for m in block.branch2.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    c.padding, c.dilation = (2, 2), (2, 2)
    msgs = _messages(block)
    assert len(msgs) == 1 and "branch 2, layer 3" in msgs[0]
    assert "padding should be (1, 1), not (2, 2)" in msgs[0] and "dilation should be (1, 1), not (2, 2)" in msgs[0]


def bn_unit(momentum=0.1, eps=1e-3, track=True, kernel=(1, 7), padding=(0, 3)) -> nn.Module:
    return nn.Sequential(nn.Conv2d(8, 8, kernel, padding=padding, bias=False),
                         nn.BatchNorm2d(8, eps=eps, momentum=momentum, track_running_stats=track), nn.ReLU())


@pytest.mark.parametrize("student,words", [
    (bn_unit(momentum=0.9), ["momentum should be 0.1, not 0.9"]),
    (bn_unit(eps=1e-5), ["eps should be 0.001, not 1e-05"]),
    (bn_unit(track=False), ["without running statistics", "track_running_stats=True"]),
    (bn_unit(kernel=(7, 1), padding=(3, 0)), ["Conv 7x1", "expected Conv 1x7", "swapped"]),
])
def test_batch_norm_settings_and_kernel_orientation(student, words):
    x = torch.randn(4, 8, 9, 9)
    msgs = [str(f) for f in compare(trace(student, x), trace(bn_unit(), x))]
    assert len(msgs) == 1 and msgs[0].startswith("layer ")
    for w in words:
        assert w in msgs[0], msgs[0]


class Residual(nn.Module):
    def __init__(self, shortcut_first: bool, scale: float = 0.17):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.shortcut_first, self.scale = shortcut_first, scale

    def forward(self, x):
        if self.shortcut_first:
            return F.relu(x + self.scale * self.body(x))
        return F.relu(self.body(x) * self.scale + x)


def test_a_residual_block_with_the_shortcut_written_first_is_the_same():
    x = torch.randn(2, 8, 6, 6)
    assert compare(trace(Residual(True), x), trace(Residual(False), x)) == []


def test_a_wrong_residual_scale_is_found():
    x = torch.randn(2, 8, 6, 6)
    msgs = [str(f) for f in compare(trace(Residual(True, scale=0.1), x), trace(Residual(False), x))]
    assert msgs and any("0.1" in m and "0.17" in m for m in msgs), msgs


class BufferScaled(nn.Module):
    """Residual's function with the scale kept as a persistent buffer, registered before the layers."""

    def __init__(self, scale: float):
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale))   # float32, as torch.tensor makes it
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))

    def forward(self, x):
        return F.relu(self.scale * self.body(x) + x)


@pytest.mark.parametrize("scale", [1.0, 0.17])
def test_a_scale_kept_in_a_buffer_is_the_number_it_holds(scale):
    x = torch.randn(2, 8, 6, 6)
    mine, ref = BufferScaled(scale), Residual(True, scale=scale)
    assert [str(f) for f in compare(trace(mine, x), trace(ref, x))] == []
    torch.manual_seed(3)
    checks.same_function(mine, ref, x, what="a block with its scale in a buffer")   # weights paired by dataflow
    with torch.no_grad():  # and it really is the same function (the buffer counts as its float32 value)
        assert torch.allclose(mine(x), ref(x), atol=1e-6)


def test_a_learned_scale_stays_a_weight():
    class Learned(nn.Module):
        def __init__(self):
            super().__init__()
            self.gamma = nn.Parameter(torch.tensor(0.5))    # trained, so not a constant of the architecture

        def forward(self, x):
            return x * self.gamma.sigmoid() + x * self.gamma

    ops = [op for op in trace(Learned(), torch.randn(1, 2, 3, 3)).ops if op.kind == "mul"]
    assert len(ops) == 2 and all(op.settings.get("args") == [] for op in ops)
    assert [op.params for op in ops] == [[], ["gamma"]]


def test_a_wrong_scale_in_a_buffer_is_found():
    x = torch.randn(2, 8, 6, 6)
    msgs = [str(f) for f in compare(trace(BufferScaled(0.2), x), trace(Residual(True), x))]
    assert msgs and any("0.2" in m and "0.17" in m for m in msgs), msgs


class ConvThen(nn.Module):
    """A 1x1 convolution followed by ``act``, a function of the student's choice."""

    def __init__(self, act):
        super().__init__()
        self.conv, self.act = conv(4, 4, 1), act

    def forward(self, x):
        return self.act(self.conv(x))


@pytest.mark.parametrize("act,same", [
    (lambda y: y.clamp(min=0), True), (lambda y: torch.clamp_min(y, 0.0), True), (lambda y: y.clamp_(0), True),
    (lambda y: F.threshold(y, 0.0, 0.0), True), (lambda y: torch.clamp(y, min=torch.tensor(0.0)), True),
    (lambda y: y.clamp(0, 6), False), (lambda y: y.clamp(min=0.1), False), (lambda y: F.threshold(y, 0.0, -1.0), False),
])
def test_a_relu_written_as_a_clamp_at_zero_is_a_relu(act, same):
    x = torch.randn(2, 4, 5, 5) * 10    # values above 6 too, so that ReLU6 differs
    assert _agree(ConvThen(act), ConvThen(nn.ReLU()), x) == (same, same)   # PyTorch's outputs, and the traces


@pytest.mark.parametrize("pool,side,same", [
    (lambda y: F.avg_pool2d(y, y.shape[2:]), 5, True), (lambda y: F.avg_pool2d(y, y.shape[2:]), 7, True),
    (lambda y: F.avg_pool2d(y, list(y.shape[2:])), 1, True),
    (nn.AvgPool2d(5), 5, True),                     # the window is the whole map at this size ...
    (nn.AvgPool2d(5), 6, False),                    # ... and only a corner of a larger one
    (lambda y: F.avg_pool2d(y, y.shape[2:], padding=1), 5, False),
])
def test_an_average_pool_over_the_whole_map_is_a_global_average_pool(pool, side, same):
    x = torch.randn(2, 4, side, side)
    assert _agree(ConvThen(pool), ConvThen(nn.AdaptiveAvgPool2d(1)), x, atol=1e-6) == (same, same)


class LooseBN(nn.Module):
    """Conv-BN-ReLU kept in a plain Python list: the module does not register them."""

    def __init__(self, register: bool):
        super().__init__()
        layers = [conv(4, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()]
        self.layers = nn.Sequential(*layers) if register else layers

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def test_layers_in_a_plain_list_are_named_when_eval_mode_does_not_reach_them():
    x = torch.randn(2, 4, 6, 6)
    loose, ref = LooseBN(register=False), LooseBN(register=True)
    loose.eval()
    assert loose.layers[1].training and list(loose.parameters()) == []   # PyTorch's own behaviour
    t = trace_shapes_of(loose, x)
    assert [op.unregistered for op in t.ops if op.kind == "convolution"] == [4 * 8 * 9]
    back = Trace.from_json(t.to_json())
    assert dataflow.unregistered_layers(back, "your block").startswith("2 of the layers your block runs")
    assert dataflow.unregistered_layers(trace_shapes_of(ref, x)) is None
    assert compare(t, trace_shapes_of(ref, x)) == []      # the same graph: the structure is right
    with pytest.raises(checks.CheckFailed) as failed:     # but in eval mode its BatchNorm uses the batch's statistics
        checks.same_function(loose, ref, x, what="your block")
    assert "not registered" in str(failed.value) and "nn.ModuleList" in str(failed.value)


def trace_shapes_of(module: nn.Module, x: torch.Tensor) -> Trace:
    return dataflow.trace_shapes(module, tuple(x.shape), train=False)


def test_a_trace_is_plain_json_and_round_trips():
    t = trace(reference(), X)
    text = t.to_json()
    back = Trace.from_json(text)
    assert compare(back, t) == [] and json.loads(text)["input_shape"] == [2, 192, 28, 28]
    kinds = [o.kind for o in t.ops]
    assert kinds.count("convolution") == 6 and kinds.count("relu") == 6 and kinds.count("cat") == 1
    assert kinds.count("max_pool2d_with_indices") == 1


def test_untrusted_trace_data_is_refused():
    with pytest.raises(ValueError):
        Trace.from_json({"ops": [{"id": 0, "kind": "relu", "settings": {"x": object()}, "inputs": [-1]}]})
    with pytest.raises(ValueError):
        Trace.from_json('{"ops": 3}')


@pytest.mark.parametrize("name", CORRECT)
def test_same_function_pairs_weights_by_dataflow_not_by_creation_order(name):
    from zoolib import checks

    checks.same_structure(CORRECT[name](), reference(), (1, 192, 28, 28))
    checks.same_function(CORRECT[name](), reference(), torch.randn(2, 192, 9, 9))


def test_same_function_still_fails_a_block_that_computes_something_else():
    from zoolib import checks

    block = Functional()
    block.forward = lambda x: torch.cat((F.relu(block.b1(x)), torch.relu(block.c3(block.r3(x))),   # ReLU missing
                                         F.relu(block.c5(F.relu(block.r5(x)))),
                                         F.relu(block.p(F.max_pool2d(x, 3, 1, 1)))), 1)
    with pytest.raises(checks.CheckFailed):
        checks.same_function(block, reference(), torch.randn(2, 192, 9, 9))


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("make,size", [
    (lambda: zoolib.InceptionFig5(192, 32), (2, 192, 35, 35)),
    (lambda: zoolib.Block35(320, 32, (32, 32), (32, 48, 64), scale=0.17), (2, 320, 9, 9)),
    (lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, momentum=0.3, eps=1e-3), nn.ReLU(),
                           nn.BatchNorm2d(8, affine=False)), (4, 3, 9, 7)),
])
def test_a_shape_trace_is_the_trace_on_real_numbers(make, size, train):
    """trace_shapes computes nothing (meta tensors; batch norm by shape alone): it must record what a
    forward pass on real tensors records, op for op, in both modes."""
    torch.manual_seed(0)
    module = make()
    fake = dataflow.trace_shapes(module, size, train=train)
    with torch.no_grad():
        real = dataflow.trace(module, torch.randn(size), train=train)
    assert [(o.kind, o.settings, o.shape, o.inputs, o.params) for o in fake.ops] == \
           [(o.kind, o.settings, o.shape, o.inputs, o.params) for o in real.ops]
    assert fake.output_shapes == real.output_shapes


def test_a_shape_trace_leaves_the_module_as_it_was():
    """On meta tensors nothing is computed or written: in training mode PyTorch's batch norm would update
    its running statistics and count the batch; a shape trace must change no weight and no buffer."""
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    before = {k: v.clone() for k, v in block.state_dict().items()}
    dataflow.trace_shapes(block, (4, 3, 9, 9), train=True)
    after = block.state_dict()
    assert all(torch.equal(before[k], after[k]) and not after[k].is_meta for k in before)
    with torch.no_grad():
        block.train()(torch.randn(4, 3, 9, 9))   # the same forward on real numbers does change them
    assert int(block[1].num_batches_tracked) == 1 and not torch.equal(block[1].running_mean, before["1.running_mean"])


def test_a_block_that_reads_values_cannot_be_traced_on_shapes():
    """A forward that branches on its data has no shape-only trace: trace_shapes raises, and the checks then
    trace on real numbers (checks._dataflow, probe._trace)."""
    class ReadsValues(nn.Module):
        def forward(self, x):
            return x if x.sum().item() > 0 else -x

    with pytest.raises((RuntimeError, NotImplementedError)):
        dataflow.trace_shapes(ReadsValues(), (1, 3))
    assert checks._dataflow(ReadsValues(), (1, 3)) is not None
