"""The lecture ledger: every numeric claim of ``shared/lectures`` recomputed from zoolib.

Each claim is written down once, as data: where it is made, what it says, what it
counts, the value it states and how precisely (``unit``), and a function that computes
the value from the zoo's models, the profiler or the formulas in :mod:`zoolib.arith`.
:func:`records` evaluates them all and judges each one:

- ``exact``: the computed value equals the stated one;
- ``rounded``: it differs by less than one unit of the last stated digit, or by at
  most 1 % (slides round "802,816" to "800K");
- ``erratum``: anything else. Every erratum carries a one-line explanation.

Claims that cite results rather than state arithmetic (top-5 errors, dataset sizes,
training-step ratios) are not in the ledger: the code can't recompute them. Chapter 5
measures its own version of BN's "14x fewer steps".

Every erratum is explained once in :data:`ERRATA` (read from ``errata.json`` beside this
file), however many lectures repeat it: its category (:data:`CATEGORIES`: a slip on the
slide, the paper's own number, d2l's variant of AlexNet, or the Inception-v3 paper against
Google's released code), a paragraph on what happened, what to tell students, and the
chapter section that recomputes it.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import arith
from ._registry import get_model, model_spec
from .profiler import profile

__all__ = ["Record", "Claim", "CLAIMS", "SOURCES", "records", "errata", "to_dataframe", "judge", "evaluate",
           "CATEGORIES", "Erratum", "ERRATA", "erratum_of", "separable_conv1", "shown", "claims_table"]

SOURCES = {
    "000_e5729e9928e2c152.txt": "Kainz, Deep Learning: NiN, Inception (transcript)",
    "001_2e919c1e90c4924c.txt": "White, Inception Network Overview (slides)",
    "002_9248de079df68187.txt": "Fraz, CS867 Lecture 10: CNN Architectures (slides)",
    "003_1d598ce937019ef1.txt": "Smola & Li, CNN Models Part 1 (slides)",
    "004_f02ddbbd261ead49.txt": "Smola, L13_1 Inception / GoogLeNet (transcript)",
}
KAINZ, WHITE, FRAZ, SMOLA_SLIDES, SMOLA_TALK = SOURCES
RELATIVE_TOLERANCE = 0.01


@dataclass(frozen=True)
class Record:
    source: str       # lecture file
    claim: str        # the claim as stated
    quantity: str     # what is counted
    claimed: float | tuple    # a number, or a shape (C, H, W)
    computed: float | tuple
    formula: str      # how ``computed`` is obtained
    verdict: str      # "exact" | "rounded" | "erratum"
    explanation: str  # one line; always present for an erratum
    category: str = ""   # an erratum's category (a key of CATEGORIES); "" otherwise
    erratum: str = ""    # the key of its entry in ERRATA; "" otherwise


@dataclass(frozen=True)
class Claim:
    source: str
    claim: str
    quantity: str
    claimed: float | tuple
    unit: float                                  # resolution of the stated figure
    compute: Callable[[], tuple[float, str]]     # -> (value, formula)
    expect: str                                  # the verdict we expect (pinned by the tests)
    explanation: str = ""        # may quote the value as {computed}, {k} (/1024) or {m} (/1e6)


def judge(claimed, computed, unit: float) -> str:
    if computed == claimed:
        return "exact"
    if isinstance(claimed, tuple) or isinstance(computed, tuple):  # shapes agree or they don't
        return "erratum"
    diff = abs(computed - claimed)
    if diff < unit or diff <= RELATIVE_TOLERANCE * abs(computed):
        return "rounded"
    return "erratum"


# ---------------------------------------------------------------------------
# Measurements on the zoo (cached: several claims read the same profile)

def _model(name: str, num_classes: int | None = None, **kw) -> nn.Module:
    return _meta_model(name, num_classes or model_spec(name).default_num_classes, **kw)


@functools.lru_cache(maxsize=None)
def _meta_model(name: str, num_classes: int, **kw) -> nn.Module:
    # The ledger counts and profiles: it needs structure, never values, so skip the
    # random initialisation of VGG's 124M dense weights (seconds per model).
    with torch.device("meta"):
        return get_model(name, num_classes=num_classes, **kw)


@functools.lru_cache(maxsize=None)
def _profile(name: str, size: int, num_classes: int = 1000):
    in_ch = 1 if name == "lenet" else 3
    return profile(_model(name, num_classes=num_classes), (1, in_ch, size, size))


def _leaf_rows(name: str, size: int, kinds: tuple[str, ...], num_classes: int = 1000):
    return [r for r in _profile(name, size, num_classes) if r.kind in kinds]


def _weights(module: nn.Module) -> int:
    """Weights of convolutions and linear layers only: what the papers call parameters."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _shape_code(shape) -> tuple[int, ...]:
    """A shape as a plain tuple of ints (C, H, W), the way the slides print it."""
    return tuple(int(s) for s in shape)


def _naive_inception_macs() -> tuple[float, str]:
    from .models.googlenet import NaiveInception

    block = NaiveInception(256, ch1x1=128, ch3x3=192, ch5x5=96)
    p = profile(block, (1, 256, 28, 28))
    return p.total_macs, "profile(NaiveInception(256, 128, 192, 96), 28x28).total_macs"


def _bottleneck_inception_macs() -> tuple[float, str]:
    from .models.googlenet import Inception

    block = Inception(256, ch1x1=128, ch3x3red=64, ch3x3=192, ch5x5red=64, ch5x5=96, pool_proj=64)
    p = profile(block, (1, 256, 28, 28))
    return p.total_macs, "profile(Inception(256, 128, 64, 192, 64, 96, 64), 28x28).total_macs"


# ---------------------------------------------------------------------------
# The claims, lecture by lecture

def _alexnet_claims() -> list[Claim]:
    convs = lambda: [r for r in _profile("alexnet", 227) if r.kind == "Conv2d"]
    fcs = lambda: [r for r in _profile("alexnet", 227) if r.kind == "Linear"]
    out = [
        Claim(FRAZ, "AlexNet conv1: O = (227 - 11 + 2*0)/4 + 1 = 55", "output width", 55, 1,
              lambda: (convs()[0].out_shape[-1], "profile(alexnet, 227).conv1 output width"), "exact"),
        Claim(FRAZ, "AlexNet first max pool: O = (55 - 3)/2 + 1 = 27", "output width", 27, 1,
              lambda: (arith.conv_out_size(55, 3, 2), "arith.conv_out_size(55, 3, 2)"), "exact"),
        Claim(FRAZ, "AlexNet conv1 weights: 11^2 x 3 x 96 = 34,848", "weights", 34_848, 1,
              lambda: (arith.conv_weights(11, 3, 96), "arith.conv_weights(11, 3, 96)"), "exact"),
    ]
    for i, stated in enumerate([34_944, 614_656, 885_120, 1_327_488, 884_992]):
        out.append(Claim(FRAZ, f"AlexNet conv{i + 1} parameters = {stated:,}", "weights + biases",
                         stated, 1, lambda i=i: (convs()[i].params, f"profile(alexnet).conv{i + 1}.params"),
                         "exact"))
    out += [
        Claim(FRAZ, "AlexNet last FC: 4096 x 1000 = 4,096,000 weights", "weights", 4_096_000, 1,
              lambda: (fcs()[-1].params - fcs()[-1].out_shape[-1], "last Linear params - biases"), "exact"),
        Claim(FRAZ, "AlexNet last FC: 4,097,000 parameters", "weights + biases", 4_097_000, 1,
              lambda: (fcs()[-1].params, "profile(alexnet).fc3.params"), "exact"),
        Claim(WHITE, "AlexNet had ~60 million parameters", "weights + biases", 60e6, 1e6,
              _alexnet_two_gpu_params, "rounded",
              "the paper's two-GPU model (conv2, conv4, conv5 in 2 groups) has 60,965,224"),
    ]
    return out


def _alexnet_two_gpu_params() -> tuple[float, str]:
    model = _model("alexnet")
    total = sum(p.numel() for p in model.parameters())
    convs = _convs(model)
    saved = sum(arith.conv_weights(c.kernel_size, c.in_channels, c.out_channels)
                - arith.conv_weights(c.kernel_size, c.in_channels, c.out_channels, groups=2)
                for c in (convs[1], convs[3], convs[4]))
    return total - saved, "alexnet params - weights saved by groups=2 in conv2, conv4, conv5"


# VGG16 on the Fraz slide (CS231n's table): (row, stated memory, stated weights).
_VGG16_SLIDE = [
    ("CONV3-64", 3.2e6, 1_728), ("CONV3-64", 3.2e6, 36_864), ("POOL2", 800e3, 0),
    ("CONV3-128", 1.6e6, 73_728), ("CONV3-128", 1.6e6, 147_456), ("POOL2", 400e3, 0),
    ("CONV3-256", 800e3, 294_912), ("CONV3-256", 800e3, 589_824), ("CONV3-256", 800e3, 589_824),
    ("POOL2", 200e3, 0),
    ("CONV3-512", 400e3, 1_179_648), ("CONV3-512", 400e3, 2_359_296), ("CONV3-512", 400e3, 2_359_296),
    ("POOL2", 100e3, 0),
    ("CONV3-512", 100e3, 2_359_296), ("CONV3-512", 100e3, 2_359_296), ("CONV3-512", 100e3, 2_359_296),
    ("POOL2", 25e3, 0),
    ("FC-4096", 4096, 102_760_448), ("FC-4096", 4096, 16_777_216), ("FC-1000", 1000, 4_096_000),
]


def _vgg_layers():
    return _leaf_rows("vgg16", 224, ("Conv2d", "MaxPool2d", "Linear"))


def _vgg_weights(row) -> int:
    module = dict(_model("vgg16").named_modules())[row.name]
    return module.weight.numel() if hasattr(module, "weight") else 0


def _vgg16_memory() -> tuple[float, str]:
    return (3 * 224 * 224 + sum(r.activations for r in _vgg_layers()),
            "input + output elements of the 21 rows (profile(vgg16).activations)")


def _vgg_claims() -> list[Claim]:
    out = [Claim(FRAZ, "VGG16 INPUT memory: 224 x 224 x 3 = 150K", "elements", 150e3, 1e3,
                 lambda: (3 * 224 * 224, "3 * 224 * 224"), "rounded")]
    for i, (row, memory, weights) in enumerate(_VGG16_SLIDE):
        unit = 100e3 if memory >= 1e6 else 1e3
        out.append(Claim(FRAZ, f"VGG16 row {i + 1} {row}: memory {arith_label(memory)}", "elements",
                         memory, unit, lambda i=i: (_vgg_layers()[i].activations,
                                                    f"profile(vgg16) row {i + 1}.activations"),
                         "exact" if memory in (4096, 1000) else "rounded"))
        if weights:
            out.append(Claim(FRAZ, f"VGG16 row {i + 1} {row}: params {weights:,} (weights only)",
                             "weights", weights, 1,
                             lambda i=i: (_vgg_weights(_vgg_layers()[i]), f"vgg16 row {i + 1} weight.numel()"),
                             "exact"))
    out += [
        Claim(FRAZ, "VGG16 TOTAL memory: 24M (values per image, forward)", "elements", 24e6, 1e6,
              _vgg16_memory, "erratum",
              "the slide's own 22 rows add up to 15.2M values (61 MB in float32), not 24M"),
        Claim(FRAZ, "VGG16 TOTAL memory: 24M x 4 bytes = 96MB / image", "bytes", 96e6, 1e6,
              lambda: (4 * _vgg16_memory()[0], "4 bytes x the rows' total"), "erratum",
              "follows from the 24M above; the rows give 61 MB"),
        Claim(FRAZ, "VGG16 TOTAL params: 138M", "weights + biases", 138e6, 1e6,
              lambda: (_profile("vgg16", 224).total_params, "profile(vgg16).total_params"), "rounded"),
        Claim(FRAZ, "three stacked 3x3 convs have the receptive field of one 7x7", "pixels", 7, 1,
              lambda: (arith.receptive_field([(3, 1)] * 3), "arith.receptive_field([(3, 1)] * 3)"), "exact"),
        Claim(FRAZ, "three 3x3 layers: 3 x (3^2 C^2) = 27 C^2 weights", "weights / C^2", 27, 1,
              lambda: (_stack_weights_per_c2(3, 3), "weights of 3 stacked 3x3 convs, C=64, / C^2"), "exact"),
        Claim(FRAZ, "one 7x7 layer: 7^2 C^2 = 49 C^2 weights", "weights / C^2", 49, 1,
              lambda: (_stack_weights_per_c2(7, 1), "weights of one 7x7 conv, C=64, / C^2"), "exact"),
    ]
    return out


def arith_label(n: float) -> str:
    for unit, size in (("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:g}{unit}"
    return f"{n:g}"


def _stack_weights_per_c2(kernel: int, depth: int, c: int = 64) -> float:
    stack = nn.Sequential(*[nn.Conv2d(c, c, kernel, padding=kernel // 2, bias=False) for _ in range(depth)])
    return _weights(stack) / c ** 2


def _last_layer_claims() -> list[Claim]:
    def first_dense(name, size, num_classes=1000):
        fc = next(m for m in _model(name, num_classes=num_classes).modules() if isinstance(m, nn.Linear))
        return fc.weight.numel()

    out = []
    for src in (SMOLA_SLIDES, KAINZ):
        out += [
            Claim(src, "LeNet last layer(s): 16 x 5 x 5 x 120 = 48k", "weights", 48e3, 1e3,
                  lambda: (first_dense("lenet", 28, 10), "lenet: first Linear weight.numel()"), "exact"),
            Claim(src, "AlexNet last layer(s): 256 x 5 x 5 x 4096 = 26M", "weights", 26e6, 1e6,
                  lambda: (first_dense("alexnet", 227), "alexnet: first Linear weight.numel()"), "erratum",
                  "AlexNet's last map is 6x6x256 (227 input), so 37.7M; 5x5 is d2l's 224-pixel variant"),
        ]
    out += [
        Claim(SMOLA_SLIDES, "VGG last layer(s): 512 x 7 x 7 x 4096 = 102M", "weights", 102e6, 1e6,
              lambda: (first_dense("vgg16", 224), "vgg16: first Linear weight.numel()"), "rounded"),
        Claim(KAINZ, "VGG last layer(s): 512 x 7 x 7 x 4096 = 103M", "weights", 103e6, 1e6,
              lambda: (first_dense("vgg16", 224), "vgg16: first Linear weight.numel()"), "rounded"),
    ]
    # d2l's VGG-11 printout on the Smola slide (batch 1, 224x224, 10 classes).
    stages = [(64, 112), (128, 56), (256, 28), (512, 14), (512, 7)]
    for i, (c, s) in enumerate(stages):
        out.append(Claim(SMOLA_SLIDES, f"VGG sequential{i + 1} output shape: (1, {c}, {s}, {s})", "shape",
                         _shape_code((c, s, s)), 0,
                         lambda i=i: (_shape_code(_leaf_rows("vgg11", 224, ("MaxPool2d",), 10)[i].out_shape[1:]),
                                      f"profile(vgg11, 10 classes): max pool {i + 1} output"), "exact"))
    return out


def _nin_claims() -> list[Claim]:
    # The NiN printout on the Smola slide: d2l's ImageNet NiN with 10 classes at 224x224.
    printed = [("sequential1", (96, 54, 54)), ("pool0", (96, 26, 26)), ("sequential2", (256, 26, 26)),
               ("pool1", (256, 12, 12)), ("sequential3", (384, 12, 12)), ("pool2", (384, 5, 5)),
               ("sequential4", (10, 5, 5)), ("pool3", (10, 1, 1))]

    def stage_shapes():
        # d2l prints each NiN block and each pool: the same rows in zoolib's profile
        rows = _profile("nin", 224, 10)
        return [r.out_shape[1:] for r in rows
                if r.kind in ("NiNBlock", "MaxPool2d", "AdaptiveAvgPool2d") and len(r.out_shape) == 4]

    out = [Claim(SMOLA_SLIDES, f"NiN {label} output shape: {shape}", "shape", _shape_code(shape), 0,
                 lambda i=i: (_shape_code(stage_shapes()[i]), f"profile(nin, 10 classes) stage {i + 1}"), "exact")
           for i, (label, shape) in enumerate(printed)]
    out.append(Claim(KAINZ, "CIFAR NiN ends with AvgPool2d(8): the last map is 8x8", "output width", 8, 1,
                     lambda: (_nin_cifar_last_map(), "profile(nin_cifar, 32x32): input of the global pool"),
                     "exact"))
    return out


def _nin_cifar_last_map() -> int:
    rows = [r for r in _profile("nin_cifar", 32, 10) if r.kind == "Conv2d"]
    return rows[-1].out_shape[-1]


def _googlenet_table1() -> list[Claim]:
    """Szegedy et al. 2014, Table 1, as the Fraz slide reproduces it. K means 1024 here."""
    K = 1024
    # (row, stated params in K, stated ops in M, expected verdicts for params and ops)
    rows = [("inception3a", 159, 128, "rounded", "rounded"), ("inception3b", 380, 304, "rounded", "rounded"),
            ("inception4a", 364, 73, "rounded", "rounded"), ("inception4b", 437, 88, "rounded", "rounded"),
            ("inception4c", 463, 100, "erratum", "rounded"), ("inception4d", 580, 119, "erratum", "rounded"),
            ("inception4e", 840, 170, "rounded", "rounded"), ("inception5a", 1072, 54, "erratum", "erratum"),
            ("inception5b", 1388, 71, "erratum", "rounded")]
    params_why = "the row's own channel columns give {computed:,.0f} weights ({k:.1f}K)"
    net = lambda: _model("googlenet")
    prof = lambda: _profile("googlenet", 224)
    convs = lambda: _convs(net())
    stem_out = lambda i: next(r for r in prof() if r.name and isinstance(
        dict(net().named_modules())[r.name], nn.Conv2d) and dict(net().named_modules())[r.name] is convs()[i])

    def stem_macs(indices):
        return sum(prof()[stem_out(i).name].macs for i in indices)

    out = [
        Claim(FRAZ, "GoogLeNet Table 1, convolution 7x7/2: params 2.7K", "weights (K = 1024)", 2.7 * K, 0.1 * K,
              lambda: (convs()[0].weight.numel(), "googlenet conv1 weight.numel() = 7*7*3*64"), "erratum",
              "a 7x7 convolution from 3 to 64 channels has 9,408 weights (9.2K), not 2.7K"),
        Claim(FRAZ, "GoogLeNet Table 1, convolution 7x7/2: ops 34M", "MACs", 34e6, 1e6,
              lambda: (stem_macs([0]), "profile(googlenet).conv1.macs = 112*112*9408"), "erratum",
              "112 x 112 outputs x 9,408 weights = 118M multiply-adds, not 34M"),
        Claim(FRAZ, "GoogLeNet Table 1, convolution 3x3/1 (with 1x1 reduce 64): params 112K",
              "weights (K = 1024)", 112 * K, K,
              lambda: (convs()[1].weight.numel() + convs()[2].weight.numel(), "conv2 + conv3 weights"), "exact"),
        Claim(FRAZ, "GoogLeNet Table 1, convolution 3x3/1: ops 360M", "MACs", 360e6, 1e6,
              lambda: (stem_macs([1, 2]), "profile(googlenet): conv2 + conv3 MACs"), "rounded"),
    ]
    for name, k, ops, params_verdict, ops_verdict in rows:
        out.append(Claim(FRAZ, f"GoogLeNet Table 1, {name}: params {k}K", "weights (K = 1024)", k * K, K,
                         lambda n=name: (_weights(getattr(net(), n)), f"conv weights of googlenet.{n}"),
                         params_verdict, params_why if params_verdict == "erratum" else ""))
        out.append(Claim(FRAZ, f"GoogLeNet Table 1, {name}: ops {ops}M", "MACs", ops * 1e6, 1e6,
                         lambda n=name: (prof()[n].macs, f"profile(googlenet, 224)['{n}'].macs"), ops_verdict,
                         "the row's channel columns give {m:.1f}M; 54M matches its equally wrong 1072K"
                         if ops_verdict == "erratum" else ""))
    fc = lambda: next(m for m in net().modules() if isinstance(m, nn.Linear))
    out += [
        Claim(FRAZ, "GoogLeNet Table 1, linear: params 1000K", "weights (K = 1024)", 1000 * K, K,
              lambda: (fc().weight.numel(), "googlenet fc weight.numel() = 1024*1000"), "exact"),
        Claim(FRAZ, "GoogLeNet Table 1, linear: ops 1M", "MACs", 1e6, 1e6,
              lambda: (fc().weight.numel(), "1024*1000 multiply-adds"), "rounded"),
        Claim(FRAZ, "GoogLeNet: 6,797,700 parameters (total of Table 1)", "weights", 6_797_700, 1,
              lambda: (_weights(net()), "conv + linear weights of googlenet (no auxiliary heads)"), "erratum",
              "the column is summed as if K were 1000 and keeps conv1's 2.7K; the weights add up to {computed:,.0f}"),
    ]
    return out


def _googlenet_claims() -> list[Claim]:
    net = lambda: _model("googlenet")
    blocks = lambda: [n for n, _ in net().named_children() if n.startswith("inception")]
    prof = lambda: _profile("googlenet", 224)
    weights = lambda: _weights(net())
    depth_formula = "3 stem convs + 2 per inception block + 1 linear"
    out = []
    for src in (FRAZ, WHITE):
        out.append(Claim(src, "GoogLeNet: 22 layers (with weights)", "layers", 22, 1,
                         lambda: (3 + 2 * len(blocks()) + 1, depth_formula), "exact"))
    out += [
        Claim(FRAZ, "GoogLeNet: only 5 million parameters", "weights", 5e6, 1e6, lambda: (weights(), "googlenet weights"),
              "erratum", "its own Table 1 sums to 6.8M; the 12x boast (60M / 12 = 5M) is what is being quoted"),
        Claim(FRAZ, "GoogLeNet has 12x fewer parameters than AlexNet", "ratio", 12, 1,
              lambda: (_alexnet_two_gpu_params()[0] / weights(), "AlexNet (2-GPU) params / GoogLeNet weights"),
              "erratum", "AlexNet's 61.0M parameters over GoogLeNet's weights is {computed:.1f}x"),
        Claim(WHITE, "Inception-v1: ~5 million parameters", "weights", 5e6, 1e6, lambda: (weights(), "googlenet weights"),
              "erratum", "the network has {computed:,.0f} weights (6.8M by Table 1's own column)"),
        Claim(WHITE, "Inception-v1 body: 9 stacked inception modules", "modules", 9, 1,
              lambda: (len(blocks()), "inception* children of googlenet"), "exact"),
        Claim(SMOLA_SLIDES, "GoogLeNet: 5 stages with 9 inception blocks", "modules", 9, 1,
              lambda: (len(blocks()), "inception* children of googlenet"), "exact"),
    ]
    for src in (KAINZ, SMOLA_TALK):
        out += [
            Claim(src, "GoogLeNet stage 3: 256 then 480 channels", "channels", 480, 1,
                  lambda: (prof()["inception3b"].out_shape[1], "profile(googlenet)['inception3b'] channels"), "exact"),
            Claim(src, "GoogLeNet stage 3 goes from 28x28 to 14x14", "output width", 14, 1,
                  lambda: (prof()["inception4a"].out_shape[-1], "profile(googlenet)['inception4a'] width"), "exact"),
            Claim(src, "GoogLeNet stage 4 ends with 832 channels", "channels", 832, 1,
                  lambda: (prof()["inception4e"].out_shape[1], "profile(googlenet)['inception4e'] channels"), "exact"),
            Claim(src, "GoogLeNet ends with 1024 channels, average-pooled over 7x7", "elements", 1024 * 49, 1,
                  lambda: (prof()["inception5b"].activations, "profile(googlenet)['inception5b'] elements"), "exact"),
            Claim(src, "AlexNet ends with a 12x12 map; GoogLeNet after stage 2 with 28x28", "output width", 12, 1,
                  lambda: ([r for r in _profile("alexnet", 227) if r.kind == "Conv2d"][-1].out_shape[-1],
                           "profile(alexnet, 227): last conv output width"), "erratum",
                  "the paper's AlexNet ends at 13x13 (6x6 after pooling); 12x12 is d2l's 224-pixel variant"),
        ]
    out.append(Claim(WHITE, "BN-Inception: 1 more 28x28 inception module", "modules", 1, 1,
                     _extra_28x28_modules, "exact"))
    out.append(Claim(WHITE, "Inception-v3 reduces the classifiers from 3 to 2", "classifier heads", 2, 1,
                     _v3_heads, "exact"))
    return out


def _extra_28x28_modules() -> tuple[float, str]:
    def at28(name):
        return sum(1 for r in _profile(name, 224) if r.depth == 1 and r.name.startswith("inception")
                   and r.in_shape[-1] == 28)

    return at28("bn_inception") - at28("googlenet"), "inception modules with a 28x28 input: bn_inception - googlenet"


def _v3_heads() -> tuple[float, str]:
    model = get_model("inception_v3", aux_logits=True).to("meta").train()
    with torch.no_grad():
        outputs = model(torch.empty(2, 3, 299, 299, device="meta"))
    return len(outputs), "tensors returned by inception_v3 in training mode (googlenet: 3)"


def _inception_block_claims() -> list[Claim]:
    """The 'Inception vs 3x3 vs 5x5' table: inception3a against single layers, 192 -> 256 at 28x28."""

    def single(k):
        conv = nn.Conv2d(192, 256, k, padding=k // 2)
        p = profile(conv, (1, 192, 28, 28))
        return p.total_params, p.total_macs

    block = lambda: profile(_model("googlenet").inception3a, (1, 192, 28, 28))
    out = []
    for src in (SMOLA_SLIDES, KAINZ):
        out += [
            Claim(src, "Inception block: 0.16M parameters", "weights + biases", 0.16e6, 0.01e6,
                  lambda: (block().total_params, "profile(googlenet.inception3a).total_params"), "rounded"),
            Claim(src, "3x3 conv (192 -> 256): 0.44M parameters", "weights + biases", 0.44e6, 0.01e6,
                  lambda: (single(3)[0], "profile(Conv2d(192, 256, 3)).total_params"), "rounded"),
            Claim(src, "5x5 conv (192 -> 256): 1.22M parameters", "weights + biases", 1.22e6, 0.01e6,
                  lambda: (single(5)[0], "profile(Conv2d(192, 256, 5)).total_params"), "rounded"),
        ]
    out += [
        Claim(KAINZ, "Inception block: 128M FLOPS", "MACs", 128e6, 1e6,
              lambda: (block().total_macs, "profile(inception3a, 28x28).total_macs"), "rounded",
              "the column is labelled FLOPS but holds multiply-adds (FLOPs are twice as many)"),
        Claim(KAINZ, "3x3 conv: 346M FLOPS", "MACs", 346e6, 1e6,
              lambda: (single(3)[1], "profile(Conv2d(192, 256, 3), 28x28).total_macs"), "rounded",
              "multiply-adds, like the row above"),
        Claim(KAINZ, "5x5 conv: 963M FLOPS", "MACs", 963e6, 1e6,
              lambda: (single(5)[1], "profile(Conv2d(192, 256, 5), 28x28).total_macs"), "rounded",
              "multiply-adds, like the row above"),
    ]
    for src in (KAINZ, SMOLA_TALK):
        out += [
            Claim(src, "with inception you only need 160,000 parameters", "weights + biases", 160e3, 10e3,
                  lambda: (block().total_params, "profile(inception3a).total_params"), "rounded"),
            Claim(src, "a 3x3 layer costs about three times the inception block", "ratio", 3, 1,
                  lambda: (single(3)[1] / block().total_macs, "MACs(3x3 conv) / MACs(inception3a)"), "rounded"),
            Claim(src, "a 5x5 layer costs about eight times the inception block", "ratio", 8, 1,
                  lambda: (single(5)[1] / block().total_macs, "MACs(5x5 conv) / MACs(inception3a)"), "rounded"),
            Claim(src, "1x7, 7x1, 1x7, 7x1 cost 28 parameters (per channel pair) against 25 for a 5x5",
                  "kernel taps", 28, 1, _v3_double_7x7_taps, "exact"),
        ]
    return out


def _v3_double_7x7_taps() -> tuple[float, str]:
    from .models.inception_v3 import InceptionFig6

    block = InceptionFig6(768, ch7x7red=128)
    taps = [c.kernel_size[0] * c.kernel_size[1] for c in _convs(block)
            if c.kernel_size in ((1, 7), (7, 1))]
    # InceptionFig6 has a 1x7/7x1 pair and a double pair: the double branch is the last four.
    return sum(taps[-4:]), "kernel taps of the last four 1x7/7x1 convs in InceptionFig6"


def _same_conv_macs(kernel) -> int:
    """MACs of a 64 -> 64 convolution with 'same' padding on a 28x28 map."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    conv = nn.Conv2d(64, 64, (kh, kw), padding=(kh // 2, kw // 2), bias=False)
    return profile(conv, (1, 64, 28, 28)).total_macs


def _cost_claims() -> list[Claim]:
    naive_terms = "28*28*(128*1*1*256 + 192*3*3*256 + 96*5*5*256)"
    bottleneck_terms = "28*28*(64*256 + 64*256 + 128*256 + 192*9*64 + 96*25*64 + 64*256)"
    return [
        Claim(FRAZ, "5x5 conv, 32 filters on 28x28x192: 120M multiplications", "MACs", 120e6, 1e6,
              lambda: (profile(nn.Conv2d(192, 32, 5, padding=2), (1, 192, 28, 28)).total_macs,
                       "profile(Conv2d(192, 32, 5), 28x28).total_macs"), "rounded"),
        Claim(FRAZ, "1x1 bottleneck, 16 filters: 2.4M multiplications", "MACs", 2.4e6, 0.1e6,
              lambda: (profile(nn.Conv2d(192, 16, 1), (1, 192, 28, 28)).total_macs,
                       "profile(Conv2d(192, 16, 1), 28x28).total_macs"), "rounded"),
        Claim(FRAZ, "then 5x5, 32 filters on 28x28x16: 10.0M multiplications", "MACs", 10.0e6, 0.1e6,
              lambda: (profile(nn.Conv2d(16, 32, 5, padding=2), (1, 16, 28, 28)).total_macs,
                       "profile(Conv2d(16, 32, 5), 28x28).total_macs"), "rounded"),
        Claim(FRAZ, "bottleneck total: 12.4M", "MACs", 12.4e6, 0.1e6,
              lambda: (profile(nn.Sequential(nn.Conv2d(192, 16, 1), nn.Conv2d(16, 32, 5, padding=2)),
                               (1, 192, 28, 28)).total_macs, "profile(1x1 16 -> 5x5 32).total_macs"), "rounded"),
        Claim(FRAZ, "12.4M << 20M (the cost without the bottleneck)", "MACs", 20e6, 1e6,
              lambda: (profile(nn.Conv2d(192, 32, 5, padding=2), (1, 192, 28, 28)).total_macs,
                       "profile(Conv2d(192, 32, 5), 28x28).total_macs"), "erratum",
              "the layer without a bottleneck costs 120M (the slide before), so 12.4M << 120M"),
        Claim(FRAZ, f"naive inception module: {naive_terms} = 854M ops", "MACs", 854e6, 1e6,
              _naive_inception_macs, "rounded"),
        Claim(FRAZ, f"with 1x1 bottlenecks: {bottleneck_terms} = 358M ops", "MACs", 358e6, 1e6,
              _bottleneck_inception_macs, "erratum", "the slide's six terms add up to 271M, not 358M"),
        Claim(FRAZ, "a 5x5 convolution is 2.78x as expensive as a 3x3", "ratio", 2.78, 0.01,
              lambda: (_same_conv_macs(5) / _same_conv_macs(3), "MACs of a 5x5 / a 3x3 conv, same map"),
              "rounded"),
        Claim(FRAZ, "1x3 followed by 3x1 is 33% cheaper than a 3x3", "saving", 0.33, 0.01,
              lambda: (1 - (_same_conv_macs((1, 3)) + _same_conv_macs((3, 1))) / _same_conv_macs(3),
                       "1 - (MACs 1x3 + MACs 3x1) / MACs 3x3, same map"), "rounded"),
    ]


# Inception-v3's Table 1 (Szegedy et al. 2016), reproduced on two slides; "input size" column.
def _v3_table_claims() -> list[Claim]:
    def stage_input(kind: str):
        rows = _profile("inception_v3", 299)
        return next(r for r in rows if r.kind == kind).in_shape[1:]

    def count(kind: str) -> int:
        return sum(1 for m in _model("inception_v3").modules() if type(m).__name__ == kind)

    def head_input():
        return [r for r in _profile("inception_v3", 299) if r.kind == "InceptionFig7"][-1].out_shape[1:]

    out = []
    for src in (WHITE, FRAZ):
        out += [
            Claim(src, "v3 table: 3 x Inception (figure 5) takes 35x35x288", "shape", _shape_code((288, 35, 35)), 0,
                  lambda: (_shape_code(stage_input("InceptionFig5")), "input of the first InceptionFig5"), "erratum",
                  "the first 35x35 module receives 192 channels; 288 is what the three modules output"),
            Claim(src, "v3 table: 5 x Inception (figure 6) takes 17x17x768", "shape", _shape_code((768, 17, 17)), 0,
                  lambda: (_shape_code(stage_input("InceptionFig6")), "input of the first InceptionFig6"), "exact"),
            Claim(src, "v3 table: 2 x Inception (figure 7) takes 8x8x1280", "shape", _shape_code((1280, 8, 8)), 0,
                  lambda: (_shape_code(stage_input("InceptionFig7")), "input of the first InceptionFig7"), "exact"),
            Claim(src, "v3 table: pool 8x8 takes 8x8x2048", "shape", _shape_code((2048, 8, 8)), 0,
                  lambda: (_shape_code(head_input()), "output of the last InceptionFig7"), "exact"),
            Claim(src, "v3 table: 3 x Inception at 35x35", "modules", 3, 1,
                  lambda: (count("InceptionFig5"), "InceptionFig5 modules in inception_v3"), "exact"),
            Claim(src, "v3 table: 5 x Inception at 17x17", "modules", 5, 1,
                  lambda: (count("InceptionFig6"), "InceptionFig6 modules in inception_v3"), "erratum",
                  "the released network has 4 factorized 17x17 modules (plus the 35->17 reduction)"),
            Claim(src, "v3 table: 2 x Inception at 8x8", "modules", 2, 1,
                  lambda: (count("InceptionFig7"), "InceptionFig7 modules in inception_v3"), "exact"),
            Claim(src, "v3 table: the stem is conv 3x3/2, 3x3/1, 3x3/1 padded, pool, then three more 3x3 convs",
                  "convolutions in the stem", 6, 1, _v3_stem_convs, "erratum",
                  "the released stem has 5 convs (the 4th is 1x1) and a second max pool instead of a strided conv"),
        ]
    return out


def _v3_stem_convs() -> tuple[float, str]:
    return len(_convs(_model("inception_v3").stem)), "Conv2d modules in inception_v3.stem"


def _label_smoothing_claims() -> list[Claim]:
    def gap() -> tuple[float, str]:
        torch.manual_seed(0)
        logits, target, eps = torch.randn(64, 10), torch.randint(0, 10, (64,)), 0.1
        logp = torch.log_softmax(logits, dim=1)
        h_qp = nn.functional.nll_loss(logp, target)
        h_up = -logp.mean(dim=1).mean()
        mixed = (1 - eps) * h_qp + eps * h_up
        reference = nn.functional.cross_entropy(logits, target, label_smoothing=eps)
        return float((mixed - reference).abs() < 1e-6), "|(1-e)H(q,p) + e H(u,p) - F.cross_entropy(label_smoothing=e)| < 1e-6"

    return [Claim(WHITE, "H(q', p) = (1 - eps) H(q, p) + eps H(u, p)", "identity holds (1 = yes)", 1, 1, gap, "exact")]


def _all_claims() -> list[Claim]:
    return (_alexnet_claims() + _vgg_claims() + _last_layer_claims() + _nin_claims()
            + _googlenet_table1() + _googlenet_claims() + _inception_block_claims() + _cost_claims()
            + _v3_table_claims() + _label_smoothing_claims())


CLAIMS: list[Claim] = _all_claims()


def evaluate(c: Claim) -> Record:
    """One claim, recomputed and judged; an erratum carries its category and ERRATA key.

    The explanation is the claim's own, never a default: an erratum without one shows up
    empty, and the tests fail on it."""
    value, formula = c.compute()
    verdict = judge(c.claimed, value, c.unit)
    number = not isinstance(value, tuple)
    explanation = c.explanation.format(computed=value, k=value / 1024 if number else 0,
                                       m=value / 1e6 if number else 0)
    entry = erratum_of(c.claim) if verdict == "erratum" else None
    return Record(c.source, c.claim, c.quantity, c.claimed, value, formula, verdict, explanation,
                  entry.category if entry else "", entry.key if entry else "")


@functools.lru_cache(maxsize=1)
def _records() -> tuple[Record, ...]:
    return tuple(evaluate(c) for c in CLAIMS)


def records(match: str | None = None) -> list[Record]:
    """Every claim, recomputed and judged (once per process); ``match`` keeps claims containing it."""
    if match is None:
        return list(_records())
    return [evaluate(c) for c in CLAIMS if match.lower() in c.claim.lower()]


def errata(match: str | None = None) -> list[Record]:
    return [r for r in records(match) if r.verdict == "erratum"]


def to_dataframe():
    import pandas as pd

    return pd.DataFrame([asdict(r) for r in records()])


def shown(value) -> str:
    """A stated or computed value as the slides print it: a shape as 96x54x54, a count with separators."""
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def claims_table(*words: str):
    """The claims whose text contains every one of ``words``, recomputed now, as a DataFrame.

    One row per claim: a claim several lectures make is one row that names them all. The
    columns are what a chapter shows: lecture, claim, stated, computed, verdict, and why
    (the one-line explanation and category of an erratum, else the formula).
    """
    import pandas as pd

    rows: dict[str, dict] = {}
    for c in CLAIMS:
        if not all(w in c.claim for w in words):
            continue
        lecturer = SOURCES[c.source].split(",")[0]
        if c.claim in rows:
            if lecturer not in rows[c.claim]["lecture"]:
                rows[c.claim]["lecture"] += ", " + lecturer
            continue
        r = evaluate(c)
        why = f"{r.explanation} ({r.category})" if r.verdict == "erratum" else r.formula
        rows[c.claim] = {"lecture": lecturer, "claim": r.claim, "stated": shown(r.claimed),
                         "computed": shown(r.computed), "verdict": r.verdict, "why": why}
    return pd.DataFrame(list(rows.values()), columns=["lecture", "claim", "stated", "computed", "verdict", "why"])


# ---------------------------------------------------------------------------
# The errata, explained: one entry per slip, however many lectures repeat it

CATEGORIES = {
    "slide slip": "the slide's own arithmetic or transcription is wrong; the source it cites is not",
    "paper's own number": "the slide copies the paper faithfully; it is the paper's figure that does not fit "
                          "the network the paper describes",
    "d2l variant": "right for d2l's 224-pixel AlexNet, on which the slides are built, not for the paper's "
                   "227-pixel one",
    "paper against released code": "the Inception-v3 paper's table against the network Google released "
                                   "(which torchvision and timm port)",
}


@dataclass(frozen=True)
class Erratum:
    key: str                 # stable id, also the anchor on the errata page
    category: str            # a key of CATEGORIES
    title: str
    claims: tuple[str, ...]  # the claim texts it covers, in any lecture
    why: str                 # one paragraph: what happened
    tell_students: str       # what to say in class
    section: tuple[str, str, str]   # (document, anchor, title) of the chapter section that recomputes it


def separable_conv1() -> tuple[int, int, str]:
    """Weights and MACs of GoogLeNet's conv1 as a depthwise-separable 7x7 with depth multiplier 8.

    A 7x7 depthwise convolution turns each of the 3 input channels into 8 (24 maps), and a
    1x1 convolution mixes those 24 into 64, both at the 112x112 output. Table 1's "2.7K" and
    "34M" fit this layer; the paper's text and every released GoogLeNet use a full 7x7.
    """
    layer = nn.Sequential(nn.Conv2d(3, 24, 7, stride=2, padding=3, groups=3, bias=False),
                          nn.Conv2d(24, 64, 1, bias=False))
    p = profile(layer, (1, 3, 224, 224))
    return _weights(layer), p.total_macs, "Conv2d(3, 24, 7, stride 2, groups=3) + Conv2d(24, 64, 1) at 224x224"


# One entry per slip. The entries are prose (a title, a paragraph on what happened, what to tell
# students, the section that recomputes it), so they live as data in errata.json beside this file.
ERRATA_FILE = Path(__file__).with_name("errata.json")


def _load_errata() -> tuple[Erratum, ...]:
    entries = json.loads(ERRATA_FILE.read_text(encoding="utf-8"))
    return tuple(Erratum(**{**e, "claims": tuple(e["claims"]), "section": tuple(e["section"])}) for e in entries)


ERRATA: tuple[Erratum, ...] = _load_errata()
_ERRATUM_OF = {claim: e for e in ERRATA for claim in e.claims}


def erratum_of(claim: str) -> Erratum | None:
    """The ERRATA entry that explains a claim (by its text), or None."""
    return _ERRATUM_OF.get(claim)
