"""``make bench``: throughput of every zoolib model against its torchvision or timm twin.

For each model it times a forward pass (eval mode, no autograd) and a forward+backward
pass (train mode) at the model's paper input size, alternating zoolib and library runs so
that both see the same machine load, and reports the median images per second and the
ratio zoolib / library (above 1.0: zoolib is faster). Models whose library counterpart is
only a relative (same idea, different layers) are marked "~"; models without one are
timed alone.

    python -m zoolib.bench [--models a,b] [--batch N] [--repeats R] [--device cuda] [--csv out.csv]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

from ._registry import list_models, model_spec


@dataclass
class BenchRow:
    model: str
    counterpart: str          # "torchvision:vgg16", "~torchvision:googlenet" or ""
    batch: int
    fwd: float                # images / s, zoolib
    fwd_lib: float | None
    train: float              # images / s, forward + backward
    train_lib: float | None

    @property
    def fwd_ratio(self):
        return self.fwd / self.fwd_lib if self.fwd_lib else None

    @property
    def train_ratio(self):
        return self.train / self.train_lib if self.train_lib else None


def library_model(source: str, name: str) -> nn.Module:
    if source == "torchvision":
        import torchvision

        kwargs = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
        if name == "googlenet":
            kwargs["aux_logits"] = False  # zoolib's googlenet builds no auxiliary heads by default
        return torchvision.models.get_model(name, weights=None, **kwargs)
    import timm

    return timm.create_model(name, pretrained=False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(model: nn.Module, x: torch.Tensor, train: bool) -> None:
    if train:
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        out.float().sum().backward()
    else:
        with torch.inference_mode():
            model(x)


def _time(models: list[nn.Module], x: torch.Tensor, train: bool, repeats: int) -> list[float]:
    """Median images/s of each model, runs interleaved (A B A B ...) after one warm-up each."""
    for m in models:
        m.train(train)
        _step(m, x, train)
    times = [[] for _ in models]
    for _ in range(repeats):
        for i, m in enumerate(models):
            if train:
                m.zero_grad(set_to_none=True)
            _sync(x.device)
            t0 = time.perf_counter()
            _step(m, x, train)
            _sync(x.device)
            times[i].append(time.perf_counter() - t0)
    return [x.shape[0] / statistics.median(t) for t in times]


def default_batch(name: str, device: torch.device) -> int:
    if device.type == "cuda":
        return 64
    size = model_spec(name).input_size[-1]
    return 32 if size <= 32 else 4


def bench_model(name: str, device: torch.device, batch: int | None = None, repeats: int = 3) -> BenchRow:
    spec = model_spec(name)
    batch = batch or default_batch(name, device)
    ours = spec.builder().to(device)
    label, lib = "", None
    for kind, table in (("", spec.twins), ("~", spec.relatives)):
        if table:
            source, other = next(iter(table.items()))
            lib, label = library_model(source, other).to(device), f"{kind}{source}:{other}"
            break
    x = torch.randn(batch, *spec.input_size, device=device)
    models = [ours] + ([lib] if lib is not None else [])
    fwd = _time(models, x, train=False, repeats=repeats)
    train = _time(models, x, train=True, repeats=repeats)
    return BenchRow(name, label, batch, fwd[0], fwd[1] if lib is not None else None,
                    train[0], train[1] if lib is not None else None)


def format_table(rows: list[BenchRow], device: torch.device) -> str:
    def num(v, fmt="{:.1f}"):
        return "-" if v is None else fmt.format(v)

    head = ("model", "counterpart", "batch", "fwd img/s", "lib", "ratio", "fwd+bwd img/s", "lib", "ratio")
    body = [(r.model, r.counterpart or "-", str(r.batch), num(r.fwd), num(r.fwd_lib), num(r.fwd_ratio, "{:.2f}"),
             num(r.train), num(r.train_lib), num(r.train_ratio, "{:.2f}")) for r in rows]
    widths = [max(len(c) for c in col) for col in zip(head, *body)]
    lines = ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
             for cells in [head, ["-" * w for w in widths], *body]]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    lines.insert(0, f"zoolib vs library throughput on {name} (torch {torch.__version__}); "
                    f"ratio = zoolib / library, '~' = related but not identical architecture")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(list_models()))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = []
    for name in args.models.split(","):
        rows.append(bench_model(name.strip(), device, args.batch, args.repeats))
        print(f"  timed {name}", file=sys.stderr, flush=True)
    print(format_table(rows, device))
    if args.csv:
        import csv

        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["model", "counterpart", "batch", "fwd", "fwd_lib", "fwd_ratio", "train", "train_lib",
                        "train_ratio"])
            for r in rows:
                w.writerow([r.model, r.counterpart, r.batch, r.fwd, r.fwd_lib, r.fwd_ratio, r.train,
                            r.train_lib, r.train_ratio])
    return 0


if __name__ == "__main__":
    sys.exit(main())
