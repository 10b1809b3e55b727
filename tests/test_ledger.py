"""The lecture ledger: every record recomputed, every verdict pinned, every erratum explained."""
import math
from dataclasses import fields

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
