"""The lecture ledger: every record recomputed, every verdict pinned, every erratum explained."""
import math
import re
from dataclasses import fields
from pathlib import Path

import pytest

from zoolib import ledger

RECORDS = ledger.records()
BY_CLAIM = list(zip(ledger.CLAIMS, RECORDS))


def test_record_fields():
    assert [f.name for f in fields(ledger.Record)][:7] == [
        "source", "claim", "quantity", "claimed", "computed", "formula", "verdict"]


# (stated, computed, unit) -> verdict: the ledger's judge and this file's `rule` must agree
JUDGED = [
    ((55, 55, 1), "exact"),
    ((800e3, 802_816, 1e3), "rounded"),          # within 1 %
    ((1.22e6, 1_228_800, 0.01e6), "rounded"),    # truncated, within a unit
    ((3, 2.708, 1), "rounded"),                  # 10 % off, but within the one stated digit
    ((99, 100, 0.5), "rounded"),                 # exactly 1 % off counts
    ((10, 12, 2), "erratum"),                    # a whole unit off and more than 1 %
    ((358e6, 271_351_808, 1e6), "erratum"),
    ((12, 8.72, 1), "erratum"),
    ((96, 96, 0), "exact"),
    (((288, 35, 35), (288, 35, 35), 0), "exact"),
    (((288, 35, 35), (192, 35, 35), 0), "erratum"),  # a shape has no "nearly"
    ((288, (288, 35, 35), 0), "erratum"),
]


@pytest.mark.parametrize("args,verdict", JUDGED)
def test_judge(args, verdict):
    assert ledger.judge(*args) == verdict == rule(*args)


def test_the_known_slide_errors_are_found():
    errata = {r.claim for r in ledger.errata()}
    assert any("358M" in c for c in errata), "the bottleneck sum (271M, not 358M)"
    assert any("TOTAL memory: 24M" in c for c in errata), "VGG16's memory rows add up to 15.2M"
    assert any("7x7/2: params 2.7K" in c for c in errata), "GoogLeNet Table 1, conv1"
    assert any("6,797,700" in c for c in errata), "GoogLeNet Table 1's total"
    assert any("<< 20M" in c for c in errata)


def test_key_values():
    get = {r.claim: r.computed for r in RECORDS}
    assert get["with 1x1 bottlenecks: 28*28*(64*256 + 64*256 + 128*256 + 192*9*64 + 96*25*64 + 64*256) = 358M ops"] == 271_351_808
    assert get["naive inception module: 28*28*(128*1*1*256 + 192*3*3*256 + 96*5*5*256) = 854M ops"] == 854_196_224
    assert get["VGG16 TOTAL memory: 24M (values per image, forward)"] == 15_237_608


def test_every_source_has_claims():
    """Runs everywhere: the ledger's own data names five lectures and draws claims from each."""
    assert len(ledger.SOURCES) == 5 and all(name.endswith(".txt") for name in ledger.SOURCES)
    assert {r.source for r in RECORDS} == set(ledger.SOURCES)


def test_every_lecture_is_covered(lectures_dir):
    """Needs the lecture texts (ZOO_LECTURES): every text in the folder is one of the ledger's sources."""
    files = {p.name for p in lectures_dir.glob("*.txt")}
    assert files == set(ledger.SOURCES)


def test_dataframe():
    df = ledger.to_dataframe()
    assert len(df) == len(RECORDS) and set(df.verdict) <= {"exact", "rounded", "erratum"}


def test_records_can_be_filtered_without_evaluating_everything():
    some = ledger.records(match="googlenet table 1, inception4c")
    assert [r.claim for r in some] == ["GoogLeNet Table 1, inception4c: params 463K", "GoogLeNet Table 1, inception4c: ops 100M"]
    assert [r.verdict for r in ledger.errata(match="inception4c")] == ["erratum"]


# ---------------------------------------------------------------------------
# The errata, by category. Each test recomputes the numbers from the terms printed on the
# slide or in the paper (not from zoolib), then checks the ledger's value and category.

ERRATA_BY_KEY = {e.key: e for e in ledger.ERRATA}
WRONG = [r for r in RECORDS if r.verdict == "erratum"]


def computed(key: str, claim_start: str = ""):
    values = {r.computed for r in WRONG if r.erratum == key and r.claim.startswith(claim_start)}
    assert len(values) == 1, (key, claim_start, values)
    return values.pop()


def category(key: str) -> str:
    cats = {r.category for r in WRONG if r.erratum == key}
    assert cats == {ERRATA_BY_KEY[key].category}, (key, cats)
    return cats.pop()


def test_every_erratum_is_explained_once_and_nothing_else_is():
    assert {r.claim for r in WRONG} == {c for e in ledger.ERRATA for c in e.claims}
    assert len(ERRATA_BY_KEY) == len(ledger.ERRATA)
    for r in RECORDS:
        if r.verdict == "erratum":
            assert r.category in ledger.CATEGORIES and r.erratum in ERRATA_BY_KEY
        else:
            assert r.category == "" and r.erratum == ""
    for e in ledger.ERRATA:
        assert e.why and e.tell_students and e.title, e.key
    # the same slip on several lectures is one entry
    assert sum(1 for r in WRONG if r.erratum == "alexnet-head") == 2
    assert len({r.source for r in WRONG if r.erratum == "v3-stem"}) == 2


def test_every_erratum_claim_carries_its_own_explanation():
    for claim, record in BY_CLAIM:
        if record.verdict == "erratum":
            assert claim.explanation.strip(), f"{claim.claim}: no explanation in the ledger's data"
            assert record.explanation and "\n" not in record.explanation, claim.claim


def test_evaluate_does_not_invent_an_explanation():
    unexplained = ledger.Claim(ledger.FRAZ, "two is three", "count", 3, 1, lambda: (2, "2"), "erratum")
    record = ledger.evaluate(unexplained)
    assert record.verdict == "erratum" and record.explanation == ""


def test_the_errata_file_ships_with_zoolib():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert ledger.ERRATA_FILE.name in project["tool"]["setuptools"]["package-data"]["zoolib"]


def test_each_erratum_links_to_a_chapter_section_that_exists():
    import json

    import yaml
    from docutils.nodes import make_id   # how Sphinx names a section's anchor

    root = Path(__file__).resolve().parents[1]
    toc = yaml.safe_dump(yaml.safe_load((root / "_toc.yml").read_text()))
    for e in ledger.ERRATA:
        doc, anchor, _ = e.section
        assert f"file: {doc}" in toc, f"{e.key}: {doc} is not in the book"
        cells = json.loads((root / f"{doc}.ipynb").read_text())["cells"]
        headings = [line.lstrip("#").strip() for c in cells if c["cell_type"] == "markdown"
                    for line in "".join(c["source"]).splitlines() if line.startswith("#")]
        assert anchor in {make_id(h) for h in headings}, f"{e.key}: no section #{anchor} in {doc}"


# GoogLeNet's Table 1 as the paper (and the slide) prints it: input channels, then
# #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj; the map side; params (K); ops (M).
TABLE1 = {
    "inception3a": (192, (64, 96, 128, 16, 32, 32), 28, 159, 128),
    "inception3b": (256, (128, 128, 192, 32, 96, 64), 28, 380, 304),
    "inception4a": (480, (192, 96, 208, 16, 48, 64), 14, 364, 73),
    "inception4b": (512, (160, 112, 224, 24, 64, 64), 14, 437, 88),
    "inception4c": (512, (128, 128, 256, 24, 64, 64), 14, 463, 100),
    "inception4d": (512, (112, 144, 288, 32, 64, 64), 14, 580, 119),
    "inception4e": (528, (256, 160, 320, 32, 128, 128), 14, 840, 170),
    "inception5a": (832, (256, 160, 320, 32, 128, 128), 7, 1072, 54),
    "inception5b": (832, (384, 192, 384, 48, 128, 128), 7, 1388, 71),
}
STEM_AND_HEAD_K = {"conv1": 2.7, "conv2+3": 112, "linear": 1000}


def inception_weights(c_in, cols):
    c1, c3r, c3, c5r, c5, pp = cols
    return c1 * c_in + c3r * c_in + 9 * c3r * c3 + c5r * c_in + 25 * c5r * c5 + pp * c_in


def test_slide_slips():
    # VGG16's rows, as the slide lists them: input, 13 convs, 5 pools, 3 dense layers
    rows = [224 * 224 * 3] + [224 * 224 * 64] * 2 + [112 * 112 * 64] + [112 * 112 * 128] * 2 + [56 * 56 * 128] \
        + [56 * 56 * 256] * 3 + [28 * 28 * 256] + [28 * 28 * 512] * 3 + [14 * 14 * 512] + [14 * 14 * 512] * 3 \
        + [7 * 7 * 512] + [4096, 4096, 1000]
    assert len(rows) == 22 and sum(rows) == computed("vgg16-memory", "VGG16 TOTAL memory: 24M (") == 15_237_608
    assert 4 * sum(rows) == computed("vgg16-memory", "VGG16 TOTAL memory: 24M x") < 0.65 * 96e6
    assert category("vgg16-memory") == "slide slip"

    terms = 28 * 28 * (64 * 256 + 64 * 256 + 128 * 256 + 192 * 9 * 64 + 96 * 25 * 64 + 64 * 256)
    assert terms == computed("bottleneck-sum") and abs(terms - 358e6) > 80e6
    assert category("bottleneck-sum") == "slide slip"

    without = 28 * 28 * 32 * (5 * 5 * 192)          # the previous slide's 120M
    assert without == computed("bottleneck-20m") and round(without / 1e6) == 120
    assert category("bottleneck-20m") == "slide slip"

    # 6,797,700 is Table 1's params column summed with K = 1000 ...
    column = sum(STEM_AND_HEAD_K.values()) + sum(row[3] for row in TABLE1.values())
    assert round(column * 1000) == 6_797_700
    # ... while the weights the channel columns describe are
    weights = 7 * 7 * 3 * 64 + 64 * 64 + 9 * 64 * 192 + sum(inception_weights(c, cols) for c, cols, *_ in TABLE1.values()) \
        + 1024 * 1000
    assert weights == computed("table1-total") == 6_990_272
    assert category("table1-total") == "slide slip"


def test_the_papers_own_numbers():
    # conv1: a full 7x7 convolution does not give 2.7K / 34M ...
    full = 7 * 7 * 3 * 64
    assert full == computed("table1-conv1", "GoogLeNet Table 1, convolution 7x7/2: params")
    assert 112 * 112 * full == computed("table1-conv1", "GoogLeNet Table 1, convolution 7x7/2: ops")
    # ... a depthwise-separable 7x7 with depth multiplier 8 does, to the table's precision
    separable = 7 * 7 * 3 * 8 + 3 * 8 * 64
    assert separable == 2_712 and abs(separable - 2.7 * 1024) < 0.1 * 1024 and abs(separable / 1000 - 2.7) < 0.05
    assert round(112 * 112 * separable / 1e6) == 34
    assert ledger.separable_conv1()[:2] == (separable, 112 * 112 * separable)   # the profiler agrees
    assert category("table1-conv1") == "paper's own number"

    # Table 1's rows against their own channel columns, K = 1024: all agree within 1 % but four
    off = set()
    for name, (c_in, cols, side, k, ops) in TABLE1.items():
        w = inception_weights(c_in, cols)
        if abs(w - k * 1024) > 0.01 * w:
            off.add(name)
            assert w == computed("table1-rows", f"GoogLeNet Table 1, {name}: params")
        assert abs(w - k * 1000) > 0.01 * w, f"{name} would fit K = 1000"
    assert off == {"inception4c", "inception4d", "inception5a", "inception5b"}
    # 5a's 54M operations are its (wrong) stated params times its 7x7 positions
    assert round(7 * 7 * 1072 * 1024 / 1e6) == 54
    assert 7 * 7 * inception_weights(832, TABLE1["inception5a"][1]) == computed("table1-rows", "GoogLeNet Table 1, inception5a: ops")
    assert category("table1-rows") == "paper's own number"

    # "5 million" is the Inception-v3 paper's 60M / 12; "12x" is the GoogLeNet paper's
    alexnet = ALEXNET_PARAMS   # the paper's two-GPU AlexNet, derived below
    assert alexnet == 60_965_224
    googlenet = computed("googlenet-5m")
    assert googlenet == 6_990_272 and math.isclose(computed("googlenet-12x"), alexnet / googlenet)
    assert 8.5 < alexnet / googlenet < 9
    assert category("googlenet-5m") == category("googlenet-12x") == "paper's own number"


def test_d2l_variants():
    from zoolib.arith import conv_out_size as out

    def alexnet_maps(side, pad1):
        conv1 = out(side, 11, 4, pad1)
        pool1 = out(conv1, 3, 2)
        pool2 = out(pool1, 3, 2)          # conv2 (5x5, pad 2) keeps the size
        return conv1, pool2, out(pool2, 3, 2)   # conv3-5 (3x3, pad 1) keep it too

    d2l, paper = alexnet_maps(224, 1), alexnet_maps(227, 0)
    assert (d2l[0], paper[0]) == (54, 55)
    assert 256 * d2l[2] ** 2 * 4096 == 26_214_400            # the lecture's 26M: d2l's 5x5 map
    assert 256 * paper[2] ** 2 * 4096 == computed("alexnet-head") == 37_748_736
    assert d2l[1] == 12 and paper[1] == computed("alexnet-last-map") == 13
    assert category("alexnet-head") == category("alexnet-last-map") == "d2l variant"


def test_paper_against_released_code():
    # torchvision's Inception-v3 is a port of the network Google released
    import torch
    from torch import nn
    from torchvision.models import inception_v3
    from torchvision.models.inception import InceptionC

    with torch.device("meta"):
        released = inception_v3(weights=None, aux_logits=False, init_weights=False)
    assert released.Mixed_5b.branch1x1.conv.in_channels == 192 == computed("v3-35x35-input")[0]
    assert sum(isinstance(m, InceptionC) for m in released.modules()) == 4 == computed("v3-17x17-count")
    stem = [released.Conv2d_1a_3x3, released.Conv2d_2a_3x3, released.Conv2d_2b_3x3,
            released.Conv2d_3b_1x1, released.Conv2d_4a_3x3]
    assert [m.conv.kernel_size for m in stem] == [(3, 3)] * 3 + [(1, 1), (3, 3)]
    assert isinstance(released.maxpool2, nn.MaxPool2d) and len(stem) == computed("v3-stem")
    for key in ("v3-35x35-input", "v3-17x17-count", "v3-stem"):
        assert category(key) == "paper against released code"


def test_claims_table_merges_lectures_and_explains_errata():
    table = ledger.claims_table("v3 table", "17x17")
    # White's and Fraz's slides both reproduce the v3 table: one row per claim, both named
    assert list(table.claim) == ["v3 table: 5 x Inception (figure 6) takes 17x17x768", "v3 table: 5 x Inception at 17x17"]
    assert set(table.lecture) == {"White, Fraz"}
    assert list(table.stated) == ["768x17x17", "5"] and list(table.verdict) == ["exact", "erratum"]
    assert table.why.iloc[1].endswith("(paper against released code)")
    assert ledger.shown(34_944) == "34,944" and ledger.shown(2.78) == "2.78" and ledger.shown((96, 54, 54)) == "96x54x54"
    assert ledger.claims_table("no such claim").empty


# ---------------------------------------------------------------------------
# Every record against a value derived here, from the slide's own terms or the paper's
# tables, by hand arithmetic: no derivation below builds a zoolib model, runs the profiler
# or calls a ledger function; only the tests read the ledger, to compare. The conventions,
# read off the lectures and matched by the ledger: "weights" count conv and dense weights
# only; "parameters" add one bias per output channel (the zoo's GoogLeNet has no batch
# norm); "ops", "FLOPS" and "multiplications" are multiply-adds of the weights (biases and
# pooling cost nothing), so a convolution costs its weights times the positions of its
# output grid.

def side_out(size, kernel, stride=1, pad=0, ceil=False):
    """The conv/pool output formula O = (I - K + 2P) / S + 1, floored or (ceil_mode) raised."""
    span = size - kernel + 2 * pad
    return (-(-span // stride) if ceil else span // stride) + 1


# AlexNet (Krizhevsky et al. 2012, Fig. 2) on one GPU: (kernel, input channels, filters)
ALEXNET_CONVS = [(11, 3, 96), (5, 96, 256), (3, 256, 384), (3, 384, 384), (3, 384, 256)]
# the paper's two-GPU model: conv2, conv4 and conv5 see half their input channels
ALEXNET_PARAMS = (11 * 11 * 3 * 96 + 96) + (5 * 5 * 48 * 256 + 256) + (3 * 3 * 256 * 384 + 384) \
    + (3 * 3 * 192 * 384 + 384) + (3 * 3 * 192 * 256 + 256) + (256 * 6 * 6 * 4096 + 4096) \
    + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)


def alexnet_last_map(side, pad1):
    """The side of AlexNet's last conv map: conv1 11x11/4, two 3x3/2 pools; the other convs keep size."""
    return side_out(side_out(side_out(side, 11, 4, pad1), 3, 2), 3, 2)


def vgg16_rows():
    """(label, memory, weights) of the slide's 21 rows: configuration D of Simonyan & Zisserman's
    Table 1 at 224x224; memory is the row's output H*W*C, weights are 3*3*Cin*Cout (or In*Out)."""
    config_d = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    rows, side, c_in = [], 224, 3
    for width in config_d:
        if width == "M":
            side //= 2
            rows.append(("POOL2", side * side * c_in, 0))
        else:
            rows.append((f"CONV3-{width}", side * side * width, 3 * 3 * c_in * width))
            c_in = width
    for n_in, n_out in ((side * side * c_in, 4096), (4096, 4096), (4096, 1000)):
        rows.append((f"FC-{n_out}", n_out, n_in * n_out))
    return rows


VGG16_ROWS = vgg16_rows()
VGG16_MEMORY = 224 * 224 * 3 + sum(memory for _, memory, _ in VGG16_ROWS)
VGG16_PARAMS = sum(weights for _, _, weights in VGG16_ROWS) + sum(  # + a bias per conv filter / unit
    int(label.split("-")[1]) for label, _, _ in VGG16_ROWS if "-" in label)


def vgg11_stage(i):
    """d2l's VGG-11 (configuration A), 224x224: 3x3 convs keep the size, each 2x2/2 pool halves it."""
    side = 224
    for _ in range(i):
        side = side_out(side, 2, 2)
    return ((64, 128, 256, 512, 512)[i - 1], side, side)


def nin_stages():
    """d2l's ImageNet NiN at 224x224, 10 classes: blocks 11x11/4, 5x5 pad 2, 3x3 pad 1, 3x3 pad 1
    (96, 256, 384, 10 channels), a 3x3/2 max pool after each of the first three, a global pool."""
    s1 = side_out(224, 11, 4)
    p0 = side_out(s1, 3, 2)
    s2 = side_out(p0, 5, 1, 2)
    p1 = side_out(s2, 3, 2)
    s3 = side_out(p1, 3, 1, 1)
    p2 = side_out(s3, 3, 2)
    s4 = side_out(p2, 3, 1, 1)
    return {"sequential1": (96, s1, s1), "pool0": (96, p0, p0), "sequential2": (256, s2, s2),
            "pool1": (256, p1, p1), "sequential3": (384, s3, s3), "pool2": (384, p2, p2),
            "sequential4": (10, s4, s4), "pool3": (10, 1, 1)}


def googlenet_weights():
    """GoogLeNet's conv and dense weights from the channel columns of its Table 1."""
    return 7 * 7 * 3 * 64 + 64 * 64 + 9 * 64 * 192 + 1024 * 1000 + sum(
        inception_weights(c_in, cols) for c_in, cols, *_ in TABLE1.values())


# GoogLeNet's stem: conv1 7x7/2 pad 3, then a 3x3/2 max pool (ceil mode) before conv2 and conv3
GOOGLENET_CONV1_SIDE = side_out(224, 7, 2, 3)
GOOGLENET_CONV23_SIDE = side_out(GOOGLENET_CONV1_SIDE, 3, 2, ceil=True)
INCEPTION3A = inception_weights(192, TABLE1["inception3a"][1])
INCEPTION3A_BIASES = sum(TABLE1["inception3a"][1])


def label_smoothing_identity():
    """1.0 if H(q', p) = (1 - e) H(q, p) + e H(u, p) for q' = (1 - e) q + e u on an example."""
    logits, target, eps = [0.3, -1.2, 2.0, 0.7], 2, 0.1
    log_z = math.log(sum(math.exp(x) for x in logits))
    logp = [x - log_z for x in logits]
    smoothed = [(1 - eps) * (k == target) + eps / len(logits) for k in range(len(logits))]
    left = -sum(q * lp for q, lp in zip(smoothed, logp))
    right = (1 - eps) * -logp[target] + eps * -sum(logp) / len(logits)
    return float(abs(left - right) < 1e-12)


# Claims pinned one by one: claim text -> the computed value the ledger must report
PINS = {
    "AlexNet conv1: O = (227 - 11 + 2*0)/4 + 1 = 55": side_out(227, 11, 4),
    "AlexNet first max pool: O = (55 - 3)/2 + 1 = 27": side_out(55, 3, 2),
    "AlexNet conv1 weights: 11^2 x 3 x 96 = 34,848": 11 * 11 * 3 * 96,
    "AlexNet last FC: 4096 x 1000 = 4,096,000 weights": 4096 * 1000,
    "AlexNet last FC: 4,097,000 parameters": 4096 * 1000 + 1000,
    "AlexNet had ~60 million parameters": ALEXNET_PARAMS,
    "VGG16 INPUT memory: 224 x 224 x 3 = 150K": 224 * 224 * 3,
    "VGG16 TOTAL memory: 24M (values per image, forward)": VGG16_MEMORY,
    "VGG16 TOTAL memory: 24M x 4 bytes = 96MB / image": 4 * VGG16_MEMORY,
    "VGG16 TOTAL params: 138M": VGG16_PARAMS,
    "three stacked 3x3 convs have the receptive field of one 7x7": 1 + 3 * (3 - 1),
    "three 3x3 layers: 3 x (3^2 C^2) = 27 C^2 weights": 3 * 3 ** 2,
    "one 7x7 layer: 7^2 C^2 = 49 C^2 weights": 7 ** 2,
    # LeNet-5 on 28x28 padded by 2: 5x5 conv -> 28, 2x2 pool -> 14, 5x5 conv -> 10, pool -> 5
    "LeNet last layer(s): 16 x 5 x 5 x 120 = 48k":
        16 * side_out(side_out(side_out(side_out(28, 5, 1, 2), 2, 2), 5), 2, 2) ** 2 * 120,
    "AlexNet last layer(s): 256 x 5 x 5 x 4096 = 26M": 256 * side_out(alexnet_last_map(227, 0), 3, 2) ** 2 * 4096,
    "VGG last layer(s): 512 x 7 x 7 x 4096 = 102M": 512 * 7 * 7 * 4096,
    "VGG last layer(s): 512 x 7 x 7 x 4096 = 103M": 512 * 7 * 7 * 4096,
    # NiN's CIFAR model (paper Sec. 4.2): 5x5 pad 2 keeps 32, two 3x3/2 ceil-mode pools
    "CIFAR NiN ends with AvgPool2d(8): the last map is 8x8":
        side_out(side_out(32, 3, 2, ceil=True), 3, 2, ceil=True),
    "GoogLeNet Table 1, convolution 7x7/2: params 2.7K": 7 * 7 * 3 * 64,
    "GoogLeNet Table 1, convolution 7x7/2: ops 34M": GOOGLENET_CONV1_SIDE ** 2 * 7 * 7 * 3 * 64,
    "GoogLeNet Table 1, convolution 3x3/1 (with 1x1 reduce 64): params 112K": 64 * 64 + 9 * 64 * 192,
    "GoogLeNet Table 1, convolution 3x3/1: ops 360M": GOOGLENET_CONV23_SIDE ** 2 * (64 * 64 + 9 * 64 * 192),
    "GoogLeNet Table 1, linear: params 1000K": 1024 * 1000,
    "GoogLeNet Table 1, linear: ops 1M": 1024 * 1000,
    "GoogLeNet: 6,797,700 parameters (total of Table 1)": googlenet_weights(),
    "GoogLeNet: 22 layers (with weights)": 3 + 2 * len(TABLE1) + 1,  # stem convs, 2 deep per module, linear
    "GoogLeNet: only 5 million parameters": googlenet_weights(),
    "GoogLeNet has 12x fewer parameters than AlexNet": ALEXNET_PARAMS / googlenet_weights(),
    "Inception-v1: ~5 million parameters": googlenet_weights(),
    "Inception-v1 body: 9 stacked inception modules": len(TABLE1),
    "GoogLeNet: 5 stages with 9 inception blocks": len(TABLE1),
    "GoogLeNet stage 3: 256 then 480 channels": sum(TABLE1["inception3b"][1][i] for i in (0, 2, 4, 5)),
    "GoogLeNet stage 3 goes from 28x28 to 14x14": side_out(28, 3, 2, ceil=True),
    "GoogLeNet stage 4 ends with 832 channels": sum(TABLE1["inception4e"][1][i] for i in (0, 2, 4, 5)),
    "GoogLeNet ends with 1024 channels, average-pooled over 7x7":
        sum(TABLE1["inception5b"][1][i] for i in (0, 2, 4, 5)) * 7 * 7,
    "AlexNet ends with a 12x12 map; GoogLeNet after stage 2 with 28x28": alexnet_last_map(227, 0),
    # BN-Inception (Ioffe & Szegedy 2015, Fig. 5) runs 3a, 3b, 3c at 28x28; GoogLeNet 3a, 3b
    "BN-Inception: 1 more 28x28 inception module": 3 - 2,
    "Inception-v3 reduces the classifiers from 3 to 2": 2,  # the main head and one auxiliary
    "Inception block: 0.16M parameters": INCEPTION3A + INCEPTION3A_BIASES,
    "3x3 conv (192 -> 256): 0.44M parameters": 3 * 3 * 192 * 256 + 256,
    "5x5 conv (192 -> 256): 1.22M parameters": 5 * 5 * 192 * 256 + 256,
    "Inception block: 128M FLOPS": 28 * 28 * INCEPTION3A,
    "3x3 conv: 346M FLOPS": 28 * 28 * 3 * 3 * 192 * 256,
    "5x5 conv: 963M FLOPS": 28 * 28 * 5 * 5 * 192 * 256,
    "with inception you only need 160,000 parameters": INCEPTION3A + INCEPTION3A_BIASES,
    "a 3x3 layer costs about three times the inception block": 3 * 3 * 192 * 256 / INCEPTION3A,
    "a 5x5 layer costs about eight times the inception block": 5 * 5 * 192 * 256 / INCEPTION3A,
    "1x7, 7x1, 1x7, 7x1 cost 28 parameters (per channel pair) against 25 for a 5x5": 4 * 7,
    "5x5 conv, 32 filters on 28x28x192: 120M multiplications": 28 * 28 * 32 * (5 * 5 * 192),
    "1x1 bottleneck, 16 filters: 2.4M multiplications": 28 * 28 * 16 * 192,
    "then 5x5, 32 filters on 28x28x16: 10.0M multiplications": 28 * 28 * 32 * (5 * 5 * 16),
    "bottleneck total: 12.4M": 28 * 28 * (16 * 192 + 32 * 25 * 16),
    "12.4M << 20M (the cost without the bottleneck)": 28 * 28 * 32 * (5 * 5 * 192),
    "naive inception module: 28*28*(128*1*1*256 + 192*3*3*256 + 96*5*5*256) = 854M ops":
        28 * 28 * (128 * 1 * 1 * 256 + 192 * 3 * 3 * 256 + 96 * 5 * 5 * 256),
    "with 1x1 bottlenecks: 28*28*(64*256 + 64*256 + 128*256 + 192*9*64 + 96*25*64 + 64*256) = 358M ops":
        28 * 28 * (64 * 256 + 64 * 256 + 128 * 256 + 192 * 9 * 64 + 96 * 25 * 64 + 64 * 256),
    "a 5x5 convolution is 2.78x as expensive as a 3x3": 25 / 9,
    "1x3 followed by 3x1 is 33% cheaper than a 3x3": 1 - (3 + 3) / 9,
    # Inception-v3 as released (torchvision documents the widths): the stem ends with 192
    # channels at 35x35; Mixed_5b-5d put out 288, Mixed_6a 768, Mixed_7a 1280, Mixed_7c 2048.
    "v3 table: 3 x Inception (figure 5) takes 35x35x288": (192, 35, 35),
    "v3 table: 5 x Inception (figure 6) takes 17x17x768": (384 + 96 + 288, 17, 17),
    "v3 table: 2 x Inception (figure 7) takes 8x8x1280": (320 + 192 + 768, 8, 8),
    "v3 table: pool 8x8 takes 8x8x2048": (320 + 2 * 384 + 2 * 384 + 192, 8, 8),
    "v3 table: 3 x Inception at 35x35": 3,   # Mixed_5b, 5c, 5d
    "v3 table: 5 x Inception at 17x17": 4,   # Mixed_6b to 6e
    "v3 table: 2 x Inception at 8x8": 2,     # Mixed_7b, 7c
    # Conv2d_1a, 2a, 2b, 3b (1x1), 4a, with two max pools
    "v3 table: the stem is conv 3x3/2, 3x3/1, 3x3/1 padded, pool, then three more 3x3 convs": 5,
    "H(q', p) = (1 - eps) H(q, p) + eps H(u, p)": label_smoothing_identity(),
}


def table1_row(m):
    c_in, cols, side, *_ = TABLE1[m["row"]]
    weights = inception_weights(c_in, cols)
    return weights if m["what"] == "params" else weights * side * side


def alexnet_conv(m):
    kernel, c_in, c_out = ALEXNET_CONVS[int(m["i"]) - 1]
    return kernel * kernel * c_in * c_out + c_out


def vgg16_row(m):
    label, memory, weights = VGG16_ROWS[int(m["i"]) - 1]
    assert m["label"] == label, f"row {m['i']} is {label} in configuration D"
    return memory if m["what"] == "memory" else weights


# Claim families: a pattern for the claim text -> (the value derived from what it matched,
# what K means in the figure the claim quotes, group "stated")
FAMILIES = {
    r"AlexNet conv(?P<i>\d) parameters = (?P<stated>[\d,]+)": (alexnet_conv, 1000),
    r"VGG16 row (?P<i>\d+) (?P<label>\S+): (?P<what>memory|params) (?P<stated>[\d.,]+[KM]?).*": (vgg16_row, 1000),
    r"VGG sequential(?P<i>\d) output shape: \(1, (?P<stated>[\d, ]+)\)": (lambda m: vgg11_stage(int(m["i"])), 0),
    r"NiN (?P<label>\w+) output shape: \((?P<stated>[\d, ]+)\)": (lambda m: nin_stages()[m["label"]], 0),
    r"GoogLeNet Table 1, (?P<row>inception\w+): (?P<what>params|ops) (?P<stated>\d+[KM])": (table1_row, 1024),
}


def figure(text, k):
    """A figure as the slide prints it: 1,728 or 3.2M or 159K (K = k), or a shape 64, 112, 112."""
    if "," in text and " " in text:
        return tuple(int(n) for n in text.split(", "))
    scale = {"K": k, "M": 1e6}.get(text[-1], 1)
    return float(text.rstrip("KM").replace(",", "")) * scale


def derived(claim_text):
    """The independently derived value of a claim, or a KeyError naming a claim nothing pins."""
    found = [pin(m) for pattern, (pin, _) in FAMILIES.items() if (m := re.fullmatch(pattern, claim_text))]
    if claim_text in PINS:
        found.append(PINS[claim_text])
    if len(found) != 1:
        raise KeyError(f"{len(found)} pins for {claim_text!r}")
    return found[0]


def test_the_families_state_what_their_text_quotes():
    """A family's stated value is read back from the claim's text: the number a row quotes."""
    checked = 0
    for c in ledger.CLAIMS:
        for pattern, (_, k) in FAMILIES.items():
            if m := re.fullmatch(pattern, c.claim):
                assert same_value(c.claimed, figure(m["stated"], k)), c.claim
                checked += 1
    assert checked == 73


def rule(stated, value, unit):
    """The ledger's judging rule in our words: the same number is exact; a shape either is the
    same or it is wrong; a number off by less than its last stated digit (unit) or by no more
    than 1 % of the true value is rounded; anything else is an erratum."""
    if stated == value:
        return "exact"
    if isinstance(stated, tuple) or isinstance(value, tuple):
        return "erratum"
    off = abs(stated - value)
    return "rounded" if off < unit or off <= abs(value) / 100 else "erratum"


def same_value(a, b):
    if isinstance(a, float) and not a.is_integer() or isinstance(b, float) and not b.is_integer():
        return math.isclose(a, b, rel_tol=1e-12)   # a ratio: the same up to float rounding
    return a == b


def renderings(n, k):
    """The ways a slide writes the figure n: 34,848, 150K, 0.16M, 60 million, 10.0M, 33%, 35x35x288."""
    if isinstance(n, tuple):
        c, h, w = n
        return {f"{h}x{w}x{c}", str(n)}
    shown = {f"{n:g}", f"{n * 100:g}%", f"{n / 1e6:.1f}M"}
    if float(n).is_integer():
        shown.add(f"{int(n):,}")
    for scale, names in ((1e6, ("M", " million")), (k, ("K", "k"))):
        shown |= {f"{n / scale:g}{name}" for name in names}
    return shown


# Stated values a claim's text gives in words or as a product, not as a figure
STATED_IN_WORDS = {
    "GoogLeNet ends with 1024 channels, average-pooled over 7x7": 1024 * 7 * 7,
    "a 5x5 layer costs about eight times the inception block": 8,
    "v3 table: the stem is conv 3x3/2, 3x3/1, 3x3/1 padded, pool, then three more 3x3 convs": 3 + 3,
}


def test_the_single_pins_state_a_figure_their_text_quotes():
    """Weaker than the families' check (the figure may stand anywhere in the text), but a
    stated value no rendering of which appears in the claim is a transcription slip."""
    for c in ledger.CLAIMS:
        if c.claim in STATED_IN_WORDS:
            assert c.claimed == STATED_IN_WORDS[c.claim], c.claim
        elif c.claim in PINS:
            k = 1024 if "K = 1024" in c.quantity else 1000
            assert any(r in c.claim for r in renderings(c.claimed, k)), (c.claim, c.claimed)


def test_every_claim_has_exactly_one_independent_pin():
    missing = []
    for c in ledger.CLAIMS:
        try:
            derived(c.claim)
        except KeyError as e:
            missing.append(str(e))
    assert not missing, missing
    texts = {c.claim for c in ledger.CLAIMS}
    assert set(PINS) <= texts, f"pins for claims the ledger no longer makes: {set(PINS) - texts}"
    for pattern in FAMILIES:
        assert any(re.fullmatch(pattern, t) for t in texts), f"no claim matches {pattern}"


@pytest.mark.parametrize("claim,record", BY_CLAIM, ids=[f"{c.source[:3]}:{c.claim[:60]}" for c in ledger.CLAIMS])
def test_every_record_matches_its_independent_value_and_verdict(claim, record):
    value = derived(claim.claim)
    assert same_value(record.computed, value), f"{claim.claim}: ledger {record.computed}, derived {value}"
    verdict = rule(claim.claimed, value, claim.unit)
    assert record.verdict == verdict == claim.expect, (
        f"{claim.claim}: stated {claim.claimed}, derived {value} -> {verdict}; "
        f"ledger says {record.verdict}, expects {claim.expect}")


def test_the_independent_pins_count():
    family = sum(1 for c in ledger.CLAIMS for p in FAMILIES if re.fullmatch(p, c.claim))
    assert family + sum(1 for c in ledger.CLAIMS if c.claim in PINS) == len(ledger.CLAIMS) == 162
