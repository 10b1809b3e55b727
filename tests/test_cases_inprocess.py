"""Every case and every correct variant of ``autograder/assignments/*.cases.yml``, graded in process.

A fast stand-in for the round trip of ``tests/test_autograder.py``: the notebook's cells run as
they do under zoo-grade, the answers in a "kernel" namespace and the test cells in a "grader"
namespace against stand-ins for the student's objects (:class:`zoolib.remote.LocalChannel`),
so a failing variant is pinpointed in seconds instead of after a full nbgrader run.

Reference reuse is decided elsewhere (``zoograde.provenance``, on the source), so the verdict of
a case about importing ``zoolib`` may differ here: such cases are skipped.

Run as a script for a summary: ``python tests/test_cases_inprocess.py [assignment ...]``.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import io
import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "autograder"
for _p in (str(ROOT), str(COURSE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

ASSIGNMENTS = sorted(p.name.replace(".cases.yml", "") for p in (COURSE / "assignments").glob("*.cases.yml"))


def spec(name: str) -> dict:
    return yaml.safe_load((COURSE / "assignments" / f"{name}.cases.yml").read_text())


def notebook(name: str) -> dict:
    return json.loads((COURSE / "source" / name / f"{name}.ipynb").read_text())


def _parse(src: str) -> ast.Module:
    try:
        return ast.parse(src)
    except SyntaxError:     # the cell fails when it runs; it affects nothing else
        return ast.Module(body=[], type_ignores=[])


def _defined(src: str) -> set[str]:
    names = set()
    for node in _parse(src).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def _used(src: str) -> set[str]:
    return {n.id for n in ast.walk(_parse(src)) if isinstance(n, ast.Name)}


def _affected(cells: list[dict], edits: list[dict]) -> set[str]:
    """The names an edit can change: what the edited cells define, and what answers built on them define."""
    edited = {e["cell"] for e in edits}
    answers = []
    for c in cells:
        g = c.get("metadata", {}).get("nbgrader", {})
        if g.get("solution"):
            src = "".join(c["source"])
            new = src
            for e in edits:
                if g.get("grade_id") == e["cell"]:
                    new = new.replace(e["old"], e["new"])
            answers.append((g.get("grade_id"), _defined(src) | _defined(new), _used(new)))
    affected = set().union(*[d for gid, d, _ in answers if gid in edited])
    grew = True
    while grew:
        grew = False
        for gid, defined, used in answers:
            if used & affected and not defined <= affected:
                affected |= defined
                grew = True
    return affected


def grade(name: str, edits: list[dict], only_affected: bool = False) -> dict[str, str]:
    """Each graded cell's verdict ('ok' or the error's type and message) for the reference with ``edits``.

    With ``only_affected``, a test cell that uses nothing the edits can change is not run: it keeps the
    reference's verdict, 'ok' (test_reference_full_marks checks that verdict).
    """
    from zoolib import remote

    nb = notebook(name)
    kernel = {"__name__": "__main__"}
    grader = {"__name__": "__grader__"}
    ch = remote.LocalChannel(kernel)
    ch.sources = []
    out: dict[str, str] = {}
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells}
    for e in edits:
        assert e["cell"] in ids, f"{name}: no cell {e['cell']!r}"
    affected = _affected(cells, edits)
    for c in cells:
        src = "".join(c["source"])
        g = c.get("metadata", {}).get("nbgrader", {})
        for e in edits:
            if g.get("grade_id") == e["cell"]:
                assert e["old"] in src, f"{name}: {e['old']!r} not in {e['cell']}"
                src = src.replace(e["old"], e["new"])
        if not (g.get("grade") and not g.get("solution")):
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(src, "cell", "exec"), kernel)
            except Exception as err:
                if g.get("grade"):
                    out[g["grade_id"]] = f"{type(err).__name__}: {err}"
            if g.get("solution"):
                ch.sources.append(src)
            elif g.get("locked"):
                exec(compile(src, "cell", "exec"), grader)
            continue
        if only_affected and not _used(src) & affected:
            out[g["grade_id"]] = "ok"
            continue
        free = ({n.id for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Name)}
                - set(grader) - set(dir(builtins)))
        for n in free:
            try:
                grader[n] = ch.lookup(n)
            except NameError:
                pass
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(src, g["grade_id"], "exec"), grader)
            out[g["grade_id"]] = "ok"
        except Exception as err:
            out[g["grade_id"]] = f"{type(err).__name__}: {err}"
    return out


def points_of(name: str) -> dict[str, int]:
    pts = {}
    for c in notebook(name)["cells"]:
        g = c.get("metadata", {}).get("nbgrader", {})
        if g.get("grade") and not g.get("solution"):
            pts[g["grade_id"]] = g["points"]
    return pts


def judge_case(name: str, case: dict, only_affected: bool = True) -> list[str]:
    """Problems with ``case``'s verdict: points that differ, feedback words missing."""
    verdicts = grade(name, case.get("edits", []), only_affected)
    pts = points_of(name)
    got = {k: (pts[k] if verdicts.get(k) == "ok" else 0) for k in pts}
    problems = []
    if got != {k: int(v) for k, v in case["points"].items()}:
        problems.append(f"points {got}, expected {case['points']}")
    text = "\n".join(verdicts.values())
    for words in case.get("feedback", []):
        if words not in text:
            problems.append(f"feedback lacks {words!r}")
    if problems:
        problems += [f"  {k}: {v}" for k, v in verdicts.items() if v != "ok"]
    return problems


def _reuse_case(case: dict) -> bool:
    return any("zoolib" in e["new"] for e in case.get("edits", []))


def _case_params():
    for name in ASSIGNMENTS:
        for i, case in enumerate(spec(name)["cases"]):
            if not _reuse_case(case):  # reuse is decided on the source (zoograde.provenance), as test_autograder grades
                yield pytest.param(name, i, id=f"{name}-case{i}")


def _variant_params():
    for name in ASSIGNMENTS:
        for i, v in enumerate(spec(name).get("variants", [])):
            yield pytest.param(name, i, id=f"{name}-{v['cell']}-{i}")


def full_marks(name: str) -> dict[str, int]:
    return points_of(name)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_reference_full_marks(name):
    problems = judge_case(name, {"points": full_marks(name), "edits": []}, only_affected=False)
    assert not problems, f"{name} / the reference:\n" + "\n".join(problems)


@pytest.mark.parametrize("name,index", list(_case_params()))
def test_case(name, index):
    case = spec(name)["cases"][index]
    problems = judge_case(name, case)
    assert not problems, f"{name} / {case['name']}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name,index", list(_variant_params()))
def test_variant_full_marks(name, index):
    v = spec(name)["variants"][index]
    for e in v["edits"]:
        e.setdefault("cell", v["cell"])
    problems = judge_case(name, {"points": full_marks(name), "edits": v["edits"]})
    assert not problems, f"{name} / variant of {v['cell']}: {v['name']}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_graded_block_has_five_variants(name):
    cells = [c["metadata"]["nbgrader"]["grade_id"] for c in notebook(name)["cells"]
             if c.get("metadata", {}).get("nbgrader", {}).get("solution")
             and c["metadata"]["nbgrader"].get("grade") is not True]
    counts = {c: 0 for c in cells}
    for v in spec(name).get("variants", []):
        counts[v["cell"]] += 1
    assert all(n >= 5 for n in counts.values()), counts


if __name__ == "__main__":
    import time

    only = sys.argv[1:]
    for name in ASSIGNMENTS:
        if only and not any(name.startswith(o) for o in only):
            continue
        s = spec(name)
        items = [("case", c) for c in s["cases"]] + [
            ("variant", {"name": f"{v['cell']}: {v['name']}", "points": full_marks(name),
                         "edits": [{**e, "cell": e.get("cell", v["cell"])} for e in v["edits"]]})
            for v in s.get("variants", [])]
        for kind, case in items:
            t = time.time()
            problems = judge_case(name, case)
            flag = "FAIL" if problems and not (kind == "case" and _reuse_case(case)) else "ok  "
            print(f"{flag} {time.time() - t:5.1f}s {name} {kind}: {case['name']}")
            for p in problems if flag == "FAIL" else []:
                print("       ", p[:600])
