"""The student-facing checks: each wrong block gets a message that names what is wrong."""
import pytest
import torch
from torch import nn

import zoolib
from zoolib import arith, checks
from zoolib.checks import CheckFailed
from zoolib.layers import ConvReLU

REF = dict(in_channels=192, ch1x1=64, ch3x3red=96, ch3x3=128, ch5x5red=16, ch5x5=32, pool_proj=32)


class StudentInception(nn.Module):
    """A student's Inception block with knobs to break it."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, pad5=2, drop_pool=False):
        super().__init__()
        self.b1 = ConvReLU(in_channels, ch1x1, 1)
        self.b2 = nn.Sequential(ConvReLU(in_channels, ch3x3red, 1), ConvReLU(ch3x3red, ch3x3, 3, padding=1))
        self.b3 = nn.Sequential(ConvReLU(in_channels, ch5x5red, 1), ConvReLU(ch5x5red, ch5x5, 5, padding=pad5))
        self.drop_pool = drop_pool
        if not drop_pool:
            self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvReLU(in_channels, pool_proj, 1))

    def forward(self, x):
        parts = [self.b1(x), self.b2(x), self.b3(x)] + ([] if self.drop_pool else [self.b4(x)])
        return torch.cat(parts, 1)


def reference():
    return zoolib.Inception(**REF)


def test_a_correct_block_passes_every_check():
    block = StudentInception(**REF)
    checks.expect_shape(block, (2, 192, 28, 28), (2, 256, 28, 28))
    checks.same_structure(block, reference(), (1, 192, 28, 28))
    checks.same_function(block, reference(), torch.randn(2, 192, 9, 9))
    checks.gradients_flow(block, torch.randn(1, 192, 7, 7))
    checks.not_reference(block, allowed=(ConvReLU,))


def test_wrong_channels_in_one_branch_names_the_branch_and_the_column():
    block = StudentInception(**{**REF, "ch5x5": 24})
    with pytest.raises(CheckFailed) as err:
        checks.same_structure(block, reference(), (1, 192, 28, 28))
    msg = str(err.value)
    assert "branch 3, layer 3 ('b3.1.conv')" in msg          # the third layer of the third branch
    assert "output 1x24x28x28, 9,624 parameters" in msg and "output 1x32x28x28, 12,832 parameters" in msg
    assert 5 * 5 * 16 * 24 + 24 == 9_624 and 5 * 5 * 16 * 32 + 32 == 12_832
    assert "out_channels should be 32, not 24" in msg


def test_wrong_padding_is_named():
    with pytest.raises(CheckFailed, match=r"(?s)output shape 1x32x26x26, expected 1x32x28x28.*padding should be \(2, 2\), not \(1, 1\)"):
        checks.same_structure(StudentInception(**REF, pad5=1), reference(), (1, 192, 28, 28))


def test_missing_branch_is_reported():
    with pytest.raises(CheckFailed, match=r"joins 3 branches; expected 4; missing: branch 4 \(MaxPool 3x3, stride 1, "
                                          r"padding 1 -> Conv 1x1, 192->32"):
        checks.same_structure(StudentInception(**REF, drop_pool=True), reference(), (1, 192, 28, 28))


def test_a_forward_that_crashes_still_names_the_culprit():
    block = StudentInception(**{**REF, "ch3x3red": 97})
    block.b2[1] = ConvReLU(96, 128, 3, padding=1)  # 97 channels come in, 96 expected
    with pytest.raises(CheckFailed, match=r"(?s)'b2.0.conv' \(in 'b2'\).*out_channels should be 96, not 97.*"
                                          r"the forward pass then fails: RuntimeError"):
        checks.same_structure(block, reference(), (1, 192, 28, 28))
    with pytest.raises(CheckFailed, match="fails on an input of shape 2x192x28x28: RuntimeError"):
        checks.expect_shape(block, (2, 192, 28, 28), (2, 256, 28, 28))


def test_same_function_finds_the_branch_with_a_missing_relu():
    block = StudentInception(**REF)
    block.b2 = nn.Sequential(ConvReLU(192, 96, 1), nn.Conv2d(96, 128, 3, padding=1))  # no ReLU at the end
    with pytest.raises(CheckFailed, match=r"the output of 'b2' in your StudentInception differs from the "
                                          r"reference's 'branch2'.*although each of its layers computes the same"):
        checks.same_function(block, reference(), torch.randn(1, 192, 8, 8))


def test_reusing_the_reference_earns_nothing():
    class Sub(zoolib.Inception):
        pass

    with pytest.raises(CheckFailed, match="subclasses the reference zoolib.models.googlenet.Inception"):
        checks.not_reference(Sub(**REF))

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = zoolib.Inception(**REF)

    with pytest.raises(CheckFailed, match="'inner' is zoolib.models.googlenet.Inception. This block earns no points"):
        checks.not_reference(Wrapper())

    def out_size(i, k, s=1, p=0):
        return zoolib.arith.conv_out_size(i, k, s, p)

    with pytest.raises(CheckFailed, match="calls into the reference package 'zoolib'"):
        checks.not_reference(out_size)


def test_function_checks_report_the_first_wrong_case():
    def off_by_one(i, k, s=1, p=0):
        return (i - k + 2 * p) // s

    def by_hand(i, k, s=1, p=0):  # floor((i - k + 2p) / s) + 1, written out again
        return (i - k + 2 * p) // s + 1

    cases = [(227, 11, 4, 0), (28, 5, 1, 2)]
    checks.function_matches(by_hand, arith.conv_out_size, cases)
    with pytest.raises(CheckFailed, match=r"off_by_one\(227, 11, 4, 0\) returned 54, expected 55"):
        checks.function_matches(off_by_one, arith.conv_out_size, cases)


def test_function_checks_are_not_fooled_by_values_that_equal_everything():
    class Agreeable(int):  # an assert-defeating trick: compares equal to anything
        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

        __hash__ = int.__hash__

    cheat = lambda i, k, s=1, p=0: Agreeable(0)
    assert cheat(1, 1) == 55  # what a plain `assert result == expected` would accept
    with pytest.raises(CheckFailed, match=r"returned an object of type Agreeable \(a subclass of int\)"):
        checks.function_matches(cheat, arith.conv_out_size, [(227, 11, 4, 0)])
    import numpy as np  # NumPy scalars are honest numbers
    checks.function_matches(lambda *a: np.int64(arith.conv_out_size(*a)), arith.conv_out_size, [(227, 11, 4, 0)])


class ScratchBN(nn.Module):
    def __init__(self, num_features, num_dims, eps=1e-5, momentum=0.1, keep_stats=True):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma, self.beta = nn.Parameter(torch.ones(shape)), nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))
        self.eps, self.momentum, self.keep_stats, self.dims = eps, momentum, keep_stats, num_dims

    def forward(self, x):
        axes = (0,) if self.dims == 2 else (0, 2, 3)
        if self.training:
            mean, var = x.mean(axes, keepdim=True), x.var(axes, unbiased=False, keepdim=True)
            if self.keep_stats:
                n = x.numel() / x.shape[1]
                with torch.no_grad():
                    self.moving_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                    self.moving_var.mul_(1 - self.momentum).add_(self.momentum * var * n / (n - 1))
        else:
            mean, var = self.moving_mean, self.moving_var
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


@pytest.mark.parametrize("dims", [2, 4])
def test_batchnorm_from_scratch(dims):
    checks.batchnorm_matches(lambda: ScratchBN(6, dims), dims)
    with pytest.raises(CheckFailed, match="moving mean is .* expected"):
        checks.batchnorm_matches(lambda: ScratchBN(6, dims, keep_stats=False), dims)


def test_expect_shape_diagnoses_with_a_reference_and_lists_layers_without():
    block = StudentInception(**REF, pad5=1)
    with pytest.raises(CheckFailed, match=r"(?s)'b3.1.conv'.*expected 1x32x28x28.*padding should be"):
        checks.expect_shape(block, (1, 192, 28, 28), (1, 256, 28, 28), reference=reference())
    with pytest.raises(CheckFailed, match=r"(?s)fails on an input.*the layers that ran.*b3.1.conv: Conv2d 5x5, 16->32, padding 1 -> 1x32x26x26"):
        checks.expect_shape(block, (1, 192, 28, 28), (1, 256, 28, 28))


def test_same_function_names_the_right_layer_behind_inplace_relus():
    class AvgInsteadOfMax(StudentInception):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.b4[0] = nn.AvgPool2d(3, 1, 1)

    with pytest.raises(CheckFailed, match=r"the output of 'b4.1.conv' already differs"):
        checks.same_function(AvgInsteadOfMax(**REF), reference(), torch.randn(1, 192, 8, 8))


def test_same_function_catches_a_misplaced_batchnorm_in_eval_mode():
    """At default statistics eval-mode BN is nearly the identity; same_function randomises them first."""
    from zoolib.layers import BasicConv2d

    class ReluBeforeBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(6, eps=1e-3)

        def forward(self, x):
            return self.bn(torch.relu(self.conv(x)))  # ReLU before BN: wrong order

    with pytest.raises(CheckFailed):
        checks.same_function(ReluBeforeBN(), BasicConv2d(4, 6, 3, padding=1), torch.randn(2, 4, 5, 5))


def test_does_not_call_finds_attributes_keywords_and_helpers():
    from torch.nn import functional as F

    def smoothed(logits, target, eps):
        return F.cross_entropy(logits, target, label_smoothing=eps)

    def via_helper(logits, target, eps):
        return smoothed(logits, target, eps)

    def by_hand(logits, target, eps):
        logp = F.log_softmax(logits, 1)
        return -((1 - eps) * logp.gather(1, target[:, None]).squeeze(1) + eps * logp.mean(1)).mean()

    for fn in (smoothed, via_helper):
        with pytest.raises(CheckFailed, match="uses PyTorch's label_smoothing. Write it yourself."):
            checks.does_not_call(fn, {"label_smoothing"}, what=fn.__name__, why="Write it yourself.")
    checks.does_not_call(by_hand, {"label_smoothing"}, what="by_hand", why="")

    class UsesTorchBN(nn.Module):
        def forward(self, x):
            return F.batch_norm(x, None, None, training=True)

    with pytest.raises(CheckFailed, match="uses PyTorch's batch_norm"):
        checks.does_not_call(UsesTorchBN, {"batch_norm"}, what="your BatchNorm", why="")
    checks.does_not_call(ScratchBN, {"batch_norm", "BatchNorm2d"}, what="ScratchBN", why="")


def test_same_function_in_training_mode_compares_running_statistics():
    class SlowMomentum(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(6, eps=1e-3, momentum=0.01)  # outputs match in training, statistics don't
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.bn(self.conv(x)))

    from zoolib.layers import BasicConv2d

    with pytest.raises(CheckFailed, match="the running_mean of 'bn' in your SlowMomentum differs"):
        checks.same_function(SlowMomentum(), BasicConv2d(4, 6, 3, padding=1), torch.randn(4, 4, 5, 5), train=True)


def test_a_helper_of_ones_own_may_take_a_keyword_named_like_pytorchs():
    from torch.nn import functional as F

    def smoothed_ce(logits, target, label_smoothing=0.0):   # the student's own helper
        logp = F.log_softmax(logits, 1)
        return -((1 - label_smoothing) * logp.gather(1, target[:, None]).squeeze(1)
                 + label_smoothing * logp.mean(1)).mean()

    def loss(logits, target, eps):
        return smoothed_ce(logits, target, label_smoothing=eps)

    checks.does_not_call(loss, {"label_smoothing"}, what="loss", why="")


def test_training_mode_pairs_batchnorms_by_dataflow_and_keeps_extra_buffers():
    from zoolib.layers import BasicConv2d

    class Reversed(nn.Module):   # the reference's two units, created last-first, with a 0-dim buffer of its own
        def __init__(self):
            super().__init__()
            self.second = BasicConv2d(6, 8, 3, padding=1)
            self.first = BasicConv2d(4, 6, 1)
            self.register_buffer("scale", torch.tensor(1.0))

        def forward(self, x):
            return self.second(self.first(x))

    reference = nn.Sequential(BasicConv2d(4, 6, 1), BasicConv2d(6, 8, 3, padding=1))
    checks.same_function(Reversed(), reference, torch.randn(4, 4, 5, 5), train=True)
    assert checks._fmt(()) == "a 0-dim scalar"


def test_a_global_mean_over_height_and_width_is_global_average_pooling():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(8, 3, 1)

        def forward(self, x):
            return self.conv(x).mean(dim=(2, 3))

    reference = nn.Sequential(nn.Conv2d(8, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    checks.same_structure(Head(), reference, (2, 8, 5, 4))
    wrong = nn.Sequential(nn.Conv2d(8, 3, 1), nn.AdaptiveMaxPool2d(1), nn.Flatten())
    with pytest.raises(CheckFailed, match="wrong kind of pooling"):
        checks.same_structure(wrong, reference, (2, 8, 5, 4))
