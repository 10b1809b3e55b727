"""Summarise the training runs logged with ``ZOO_RECORD`` (``python -m zoolib.runs FILE [--save]``).

``--save`` copies the full-mode runs made on a GPU into ``zoolib/full_mode_results.json``, where
the chapters' result tables read them (:func:`zoolib.recipes.recorded_full`); the last run of
each network wins. Only runs that really happened are saved: nothing is filled in by hand.
"""
from __future__ import annotations

import datetime
import json
import sys


def save(rows: list[dict]) -> int:
    from .recipes import RECIPES, RECORDED_FILE

    try:
        recorded = json.loads(RECORDED_FILE.read_text())
    except FileNotFoundError:
        recorded = {}
    today = datetime.date.today().isoformat()
    kept = 0
    for r in rows:
        if r.get("mode") == "full" and str(r.get("device", "")).startswith("cuda") and r.get("model") in RECIPES:
            recorded[r["model"]] = {k: r[k] for k in ("test_acc", "epochs", "image_size", "lr", "seconds") if k in r}
            recorded[r["model"]].update(device="GPU", date=today)
            kept += 1
    RECORDED_FILE.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"saved {kept} full-mode GPU run(s) to {RECORDED_FILE.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    do_save = "--save" in argv
    argv = [a for a in argv if a != "--save"]
    if len(argv) != 1:
        print("usage: python -m zoolib.runs results/full-mode.jsonl [--save]", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        print(f"no runs were recorded in {argv[0]}", file=sys.stderr)
        return 1
    cols = ["model", "dataset", "mode", "device", "image_size", "train_examples", "epochs", "test_acc", "seconds",
            "cpu_seconds", "load_average"]
    table = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(cols, *table)]
    for line in [cols, ["-" * w for w in widths], *table]:
        print("  ".join(x.ljust(w) for x, w in zip(line, widths)))
    return save(rows) if do_save else 0


if __name__ == "__main__":
    sys.exit(main())
