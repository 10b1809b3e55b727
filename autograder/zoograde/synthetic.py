"""A synthetic class of ``04_inception`` submissions, for the similarity check's tests and timing.

Each answer cell gets one of four ways of writing it (the reference solution and three other
plausible styles), then small edits that students make without thinking: comments, blank
lines, keyword or positional arguments, ``inplace=True``, a debugging print. A few
submissions are left unanswered, broken or oversized, as in a real class.

    python -m zoograde.synthetic 300 DIR      # DIR/<student>/04_inception/04_inception.ipynb
    python -m zoograde.synthetic --time 300   # time `zoo-grade similarity` on such a class, on a course copy;
                                              # appends to results/bench-similarity.csv
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from .coursekit import cell_of, copy_course, solution_cells
from .sources import ROOT

ASSIGNMENT = "04_inception"

# The text after each cell's given lines (the `def`/`class` header the release already shows).
STYLES: dict[str, list[str]] = {
    "inception_macs": [
        None,  # the reference solution (read from the source notebook)
        """\
def inception_macs(h, w, c_in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
    macs = 0
    macs += c_in * ch1x1
    macs += c_in * ch3x3red + 3 * 3 * ch3x3red * ch3x3
    macs += c_in * ch5x5red + 5 * 5 * ch5x5red * ch5x5
    macs += c_in * pool_proj
    return int(macs * h * w)
""",
        """\
def inception_macs(h, w, c_in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
    def conv(k, cin, cout):
        return h * w * k * k * cin * cout

    return (conv(1, c_in, ch1x1) + conv(1, c_in, ch3x3red) + conv(3, ch3x3red, ch3x3)
            + conv(1, c_in, ch5x5red) + conv(5, ch5x5red, ch5x5) + conv(1, c_in, pool_proj))
""",
        """\
def inception_macs(h, w, c_in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
    layers = [(1, c_in, ch1x1), (1, c_in, ch3x3red), (3, ch3x3red, ch3x3),
              (1, c_in, ch5x5red), (5, ch5x5red, ch5x5), (1, c_in, pool_proj)]
    total = sum(k * k * a * b for k, a, b in layers)
    return h * w * total
""",
    ],
    "inception_block": [
        None,
        """\
class Inception(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()

        def conv(cin, cout, k, p=0):
            return [nn.Conv2d(cin, cout, kernel_size=k, padding=p), nn.ReLU()]

        self.branch1 = nn.Sequential(*conv(in_channels, ch1x1, 1))
        self.branch2 = nn.Sequential(*conv(in_channels, ch3x3red, 1), *conv(ch3x3red, ch3x3, 3, 1))
        self.branch3 = nn.Sequential(*conv(in_channels, ch5x5red, 1), *conv(ch5x5red, ch5x5, 5, 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                                     *conv(in_channels, pool_proj, 1))

    def forward(self, x):
        outputs = [branch(x) for branch in (self.branch1, self.branch2, self.branch3, self.branch4)]
        return torch.cat(outputs, 1)
""",
        """\
class Inception(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        relu = nn.ReLU
        self.branch1 = nn.Sequential(
            nn.Conv2d(in_channels, ch1x1, kernel_size=1),
            relu(),
        )
        reduce3 = nn.Conv2d(in_channels, ch3x3red, kernel_size=1)
        conv3 = nn.Conv2d(ch3x3red, ch3x3, kernel_size=3, padding=1)
        self.branch2 = nn.Sequential(reduce3, relu(), conv3, relu())
        reduce5 = nn.Conv2d(in_channels, ch5x5red, kernel_size=1)
        conv5 = nn.Conv2d(ch5x5red, ch5x5, kernel_size=5, padding=2)
        self.branch3 = nn.Sequential(reduce5, relu(), conv5, relu())
        pool = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        proj = nn.Conv2d(in_channels, pool_proj, kernel_size=1)
        self.branch4 = nn.Sequential(pool, proj, relu())

    def forward(self, x):
        b1 = self.branch1(x)
        b2 = self.branch2(x)
        b3 = self.branch3(x)
        b4 = self.branch4(x)
        return torch.cat((b1, b2, b3, b4), dim=1)
""",
        """\
class Inception(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()

        def reduce_then(k, mid, out):
            return nn.Sequential(nn.Conv2d(in_channels, mid, 1), nn.ReLU(),
                                 nn.Conv2d(mid, out, k, padding=k // 2), nn.ReLU())

        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1), nn.ReLU())
        self.branch2 = reduce_then(3, ch3x3red, ch3x3)
        self.branch3 = reduce_then(5, ch5x5red, ch5x5)
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(in_channels, pool_proj, 1), nn.ReLU())

    def forward(self, x):
        return torch.cat([getattr(self, f"branch{i}")(x) for i in range(1, 5)], dim=1)
""",
    ],
    "stage3": [
        None,
        """\
def googlenet_stage3():
    block_a = Inception(192, 64, 96, 128, 16, 32, 32)
    block_b = Inception(64 + 128 + 32 + 32, 128, 128, 192, 32, 96, 64)
    pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
    return nn.Sequential(block_a, block_b, pool)
""",
        """\
def googlenet_stage3():
    widths_3a = (64, 96, 128, 16, 32, 32)
    widths_3b = (128, 128, 192, 32, 96, 64)
    out_3a = widths_3a[0] + widths_3a[2] + widths_3a[4] + widths_3a[5]
    layers = [Inception(192, *widths_3a), Inception(out_3a, *widths_3b), nn.MaxPool2d(3, 2, ceil_mode=True)]
    return nn.Sequential(*layers)
""",
        """\
def googlenet_stage3():
    from collections import OrderedDict

    return nn.Sequential(OrderedDict([
        ("inception3a", Inception(192, 64, 96, 128, 16, 32, 32)),
        ("inception3b", Inception(256, 128, 128, 192, 32, 96, 64)),
        ("maxpool3", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
    ]))
""",
    ],
    "aux_loss": [
        None,
        """\
def googlenet_loss(outputs, target):
    if not isinstance(outputs, (tuple, list)):
        return F.cross_entropy(outputs, target)
    main, aux1, aux2 = outputs
    loss = F.cross_entropy(main, target)
    loss = loss + 0.3 * F.cross_entropy(aux1, target)
    loss = loss + 0.3 * F.cross_entropy(aux2, target)
    return loss
""",
        """\
def googlenet_loss(outputs, target):
    criterion = nn.CrossEntropyLoss()
    if torch.is_tensor(outputs):
        return criterion(outputs, target)
    weights = [1.0, 0.3, 0.3]
    return sum(w * criterion(o, target) for w, o in zip(weights, outputs))
""",
        """\
def googlenet_loss(outputs, target):
    if isinstance(outputs, tuple):
        logits, *aux = outputs
    else:
        logits, aux = outputs, []
    total = F.cross_entropy(logits, target)
    for a in aux:
        total += 0.3 * F.cross_entropy(a, target)
    return total
""",
    ],
}

# Edits a student makes without changing the approach: (old, new), each applied with probability 1/2.
EDITS = [("nn.ReLU()", "nn.ReLU(inplace=True)"), ("dim=1)", "1)"), ("MaxPool2d(3, stride=1, padding=1)", "MaxPool2d(3, 1, 1)"),
         ("F.cross_entropy", "nn.functional.cross_entropy")]
COMMENTS = ["# my solution", "# follows Table 1 of the paper", "# TODO: check the shapes again",
            "# see the lecture slides", "# tested on inception3a", "# four branches, concatenated"]


def reference_answers(name: str = ASSIGNMENT) -> dict[str, str]:
    """grade_id -> the source notebook's solution cell, without nbgrader's solution markers."""
    return {cell: text + "\n" for cell, text in solution_cells(ROOT, name).items()}


def _edit(text: str, rng: random.Random) -> str:
    for old, new in EDITS:
        if old in text and rng.random() < 0.5:
            text = text.replace(old, new)
    lines = text.splitlines()
    if rng.random() < 0.6:
        at = rng.randrange(1, len(lines)) if len(lines) > 1 else 1
        indent = " " * (len(lines[at]) - len(lines[at].lstrip())) if at < len(lines) else "    "
        lines.insert(at, indent + rng.choice(COMMENTS))
    if rng.random() < 0.3:
        lines.insert(rng.randrange(1, len(lines) + 1), "")
    if rng.random() < 0.15 and lines[-1].lstrip().startswith("return "):
        last = lines[-1]
        lines.insert(len(lines) - 1, " " * (len(last) - len(last.lstrip())) + "print('debug')")
    return "\n".join(lines) + "\n"


def answers_for(rng: random.Random, reference: dict[str, str]) -> dict[str, str]:
    """One plausible student's answer cells: a style per cell, then small edits."""
    out = {}
    for cell, styles in STYLES.items():
        text = rng.choice([reference[cell] if s is None else s for s in styles])
        out[cell] = _edit(text, rng)
    return out


def notebook_with(answers: dict[str, str], name: str = ASSIGNMENT) -> dict:
    """The released notebook of ``name`` (solutions replaced by stubs) with these answers filled in."""
    from .pages import student_version

    nb = student_version(name)
    source = json.loads((ROOT / "source" / name / f"{name}.ipynb").read_text())
    released = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"] for c in source["cells"]
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}
    data = json.loads(__import__("nbformat").writes(nb))
    # matched by grade_id, not by position: the book's page adds cells of its own at the top
    for cell in data["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in released:
            cell["metadata"]["nbgrader"] = released[grade_id]   # as the release has it
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return data


def write_class(folder: Path, n: int, seed: int = 0, name: str = ASSIGNMENT) -> list[str]:
    """``n`` synthetic submissions in ``folder/<student>/<name>/<name>.ipynb``; returns the student ids.

    About 1 in 20 leaves a cell unanswered, 1 in 50 has a syntax error, one has a huge cell
    and one is not a notebook at all.
    """
    rng = random.Random(seed)
    reference = reference_answers(name)
    stub = notebook_with({}, name)
    students = []
    for i in range(n):
        student = f"s{i:04d}"
        answers = answers_for(rng, reference)
        for cell in list(answers):
            if rng.random() < 0.05:
                del answers[cell]                                    # left as released
            elif rng.random() < 0.02:
                answers[cell] = answers[cell].replace("):", ")", 1)  # a syntax error
        path = folder / student / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        if i == n - 1 and n > 2:
            path.write_text("{ this is not a notebook")
        else:
            nb = notebook_with(answers, name) if answers else stub
            if i == n - 2 and n > 2:
                cell_of(nb, "aux_loss")["source"] += "\n" + "\n".join(f"x_{k} = {k}" for k in range(40_000))   # ~400 kB
            path.write_text(json.dumps(nb, indent=1))
        students.append(student)
    return students


def time_similarity(n: int, csv_path: Path | None = None) -> dict:
    """Time ``zoo-grade similarity`` on a course copy with ``n`` synthetic submissions (a fresh process
    would also pay for the imports: they are included, as the command pays for them too)."""
    import csv
    import os
    import tempfile
    import time

    started = time.monotonic()
    from . import similarity

    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        copy_course(ROOT, course)
        write_class(course / "submitted", n)
        generated = time.monotonic()
        load_before = os.getloadavg()
        result = similarity.similarity(course, ASSIGNMENT)
        done = time.monotonic()
        load_after = os.getloadavg()
    row = {"submissions": n, "cpus": os.cpu_count(), "seconds": round(done - generated, 1),
           "imports_and_generation_s": round(generated - started, 1), "pairs_scored": len(result.pairs),
           "problems": len(result.problems), "loadavg_1min_before": load_before[0], "loadavg_1min_after": load_after[0],
           "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    if csv_path is not None:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        new = not csv_path.exists()
        with csv_path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
    return row


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--time":
        row = time_similarity(int(argv[1]), ROOT.parent / "results" / "bench-similarity.csv")
        print(f"zoo-grade similarity on {row['submissions']} synthetic submissions of {ASSIGNMENT}: "
              f"{row['seconds']} s on {row['cpus']} CPU(s) (load average {row['loadavg_1min_before']:.2f} before, "
              f"{row['loadavg_1min_after']:.2f} after); results/bench-similarity.csv")
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    students = write_class(Path(argv[1]), int(argv[0]))
    print(f"{len(students)} submissions of {ASSIGNMENT} in {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
