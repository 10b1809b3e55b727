"""Summarise the training runs logged with ``ZOO_RECORD`` (``python -m zoolib.runs FILE``)."""
from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m zoolib.runs results/full-mode.jsonl", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        print(f"no runs were recorded in {argv[0]}", file=sys.stderr)
        return 1
    cols = ["model", "dataset", "mode", "device", "image_size", "epochs", "test_acc", "seconds"]
    table = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(cols, *table)]
    for line in [cols, ["-" * w for w in widths], *table]:
        print("  ".join(x.ljust(w) for x, w in zip(line, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
