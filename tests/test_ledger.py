"""The lecture ledger: every record recomputed, every verdict pinned, every erratum explained."""
import math
from dataclasses import fields
from pathlib import Path

import pytest

from zoolib import ledger

RECORDS = ledger.records()
BY_CLAIM = list(zip(ledger.CLAIMS, RECORDS))


def test_record_fields():
    assert [f.name for f in fields(ledger.Record)][:7] == [
        "source", "claim", "quantity", "claimed", "computed", "formula", "verdict"]


@pytest.mark.parametrize("claim,record", BY_CLAIM, ids=[f"{c.source[:3]}:{c.claim[:60]}" for c in ledger.CLAIMS])
def test_every_record_recomputes_to_its_pinned_verdict(claim, record):
    value, formula = claim.compute()                     # recomputed here, not read back
    assert value == record.computed and formula == record.formula
    assert record.verdict == ledger.judge(claim.claimed, value, claim.unit)
    assert record.verdict == claim.expect, (
        f"{claim.claim}: stated {claim.claimed}, computed {value} -> {record.verdict}, expected {claim.expect}")
    if record.verdict == "erratum":
        assert record.explanation and "\n" not in record.explanation
    if not isinstance(value, tuple):
        assert math.isfinite(value)


def test_judge():
    assert ledger.judge(55, 55, 1) == "exact"
    assert ledger.judge(800e3, 802_816, 1e3) == "rounded"       # within 1 %
    assert ledger.judge(1.22e6, 1_228_800, 0.01e6) == "rounded"  # truncated, within a unit
    assert ledger.judge(358e6, 271_351_808, 1e6) == "erratum"
    assert ledger.judge((288, 35, 35), (192, 35, 35), 0) == "erratum"


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
    alexnet = (11 * 11 * 3 * 96 + 96) + (5 * 5 * 48 * 256 + 256) + (3 * 3 * 256 * 384 + 384) \
        + (3 * 3 * 192 * 384 + 384) + (3 * 3 * 192 * 256 + 256) + (256 * 6 * 6 * 4096 + 4096) \
        + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
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
