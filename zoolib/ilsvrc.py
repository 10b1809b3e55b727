"""ImageNet's classification challenge (ILSVRC) in numbers, and what the zoo's networks cost.

Two tables, each naming its source:

* ``WINNERS``: the winning entry of each year's classification task, with its top-5 error on
  the challenge's test set, as the organisers published it (Russakovsky et al., 2015, Table 7
  for 2010-2014; the results pages of image-net.org for 2015-2017). These are ensembles and
  multi-crop entries, not single networks.
* ``released_weights()``: single networks. The error is the top-5 error on ImageNet's
  validation set (one centre crop) of torchvision's first released weights (``IMAGENET1K_V1``,
  trained with the classic recipes; later versions use newer training tricks), from its
  own metadata (``Weights.meta``, installed with the package: nothing is downloaded). The cost
  is measured by :func:`zoolib.profile` on torchvision's architecture, built on the meta
  device; the test suite checks that it reproduces torchvision's published parameter counts
  and "GFLOPS" (which are multiply-adds) for every row.

The errors are quoted, not recomputed: re-measuring them needs the ImageNet validation set.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Entry", "WINNERS", "RUNNERS_UP", "HUMAN_TOP5", "RELEASED", "released_weights"]

ILSVRC_PAPER = "Russakovsky et al. (2015), Table 7"
RESULTS_PAGES = "image-net.org, ILSVRC results page of that year"


@dataclass(frozen=True)
class Entry:
    year: int
    team: str
    method: str       # the network, or the kind of system before 2012
    short: str        # the figure's label
    top5: float       # top-5 error on the challenge's test set, in %
    source: str


# year, team, method, label, top-5 error (%), source
WINNERS = (
    Entry(2010, "NEC-UIUC", "SIFT and LBP codes, linear SVMs", "SVMs", 28.2, ILSVRC_PAPER),
    Entry(2011, "XRCE", "Fisher vectors, linear SVMs", "SVMs", 25.8, ILSVRC_PAPER),
    # 16.4 % without the extra ImageNet Fall 2011 images (AlexNet paper, Table 2)
    Entry(2012, "SuperVision", "AlexNet (ensemble)", "AlexNet", 15.3, ILSVRC_PAPER),
    Entry(2013, "Clarifai", "ZFNet (ensemble)", "ZFNet", 11.7, ILSVRC_PAPER),
    Entry(2014, "GoogLeNet", "GoogLeNet (7 networks, 144 crops)", "GoogLeNet", 6.67, ILSVRC_PAPER),
    Entry(2015, "MSRA", "ResNet (ensemble)", "ResNet", 3.57, RESULTS_PAGES),
    Entry(2016, "Trimps-Soushen", "ensemble of Inception/ResNet models", "mixed", 2.99, RESULTS_PAGES),
    Entry(2017, "WMW", "SENet (ensemble)", "SENet", 2.25, RESULTS_PAGES),
)
# Runners-up the chapters discuss.
RUNNERS_UP = (
    Entry(2014, "VGG", "VGG (ensemble of 7 networks)", "VGG", 7.32, ILSVRC_PAPER),
)
# One trained annotator on 1,500 test images (Russakovsky et al., 2015, Sec. 6.4).
HUMAN_TOP5 = 5.1

# torchvision's builder names and the chapter that builds each network.
RELEASED = {
    "alexnet": "AlexNet (torchvision's one-GPU variant)",
    "vgg16": "VGG-16",
    "googlenet": "GoogLeNet",
    "inception_v3": "Inception-v3",
    "resnet18": "ResNet-18",
    "resnet50": "ResNet-50",
    "resnet152": "ResNet-152",
}


def _torchvision_model(name: str) -> torch.nn.Module:
    from torchvision.models import get_model

    kw = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
    if name == "googlenet":  # its released weights come without the two auxiliary heads
        kw["aux_logits"] = False
    with torch.device("meta"):  # shapes only: nothing is allocated or initialised
        return get_model(name, weights=None, **kw)


def released_weights():
    """One row per network in ``RELEASED``: torchvision's published figures beside zoolib's.

    Columns: ``network``, ``side`` (the evaluation crop), ``top5_error`` and ``top1_error``
    (in %, torchvision's metadata), ``params`` and ``macs`` (zoolib's profiler on
    torchvision's architecture; Inception-v3's auxiliary head counts in ``params``, as in
    torchvision's figure, and not in ``macs``, the inference cost), ``tv_params`` and ``tv_gmacs``
    (torchvision's own figures, for comparison).
    """
    import pandas as pd
    from torchvision.models import get_model_weights

    from .profiler import profile

    rows = []
    for name, label in RELEASED.items():
        weights = get_model_weights(name).IMAGENET1K_V1
        meta = weights.meta
        side = weights.transforms().crop_size[0]
        prof = profile(_torchvision_model(name), (1, 3, side, side))
        acc = meta["_metrics"]["ImageNet-1K"]
        rows.append({
            "network": label, "builder": name, "side": side,
            "top5_error": round(100 - acc["acc@5"], 3), "top1_error": round(100 - acc["acc@1"], 3),
            "params": prof.total_params, "macs": prof.total_macs,
            "tv_params": meta["num_params"], "tv_gmacs": meta["_ops"],
        })
    return pd.DataFrame(rows)


def plot_ilsvrc(costs=None, axes=None):
    """Top (left, given two axes side by side): the winners' top-5 error by year. Bottom
    (right): single networks, error against cost."""
    import matplotlib.pyplot as plt

    if axes is None:  # one above the other, to fit the book's column (zoolib.plots.BOOK_WIDTH)
        _, axes = plt.subplots(2, 1, figsize=(7, 8))
    left, right = axes
    years = [e.year for e in WINNERS]
    colors = ["#999999" if e.year < 2012 else "#2b5d8a" for e in WINNERS]
    left.bar(years, [e.top5 for e in WINNERS], color=colors)
    for e in WINNERS:
        left.text(e.year, e.top5 + 0.4, f"{e.top5:g}", ha="center", va="bottom")
    left.axhline(HUMAN_TOP5, color="#b03a2e", ls="--", lw=1,
                 label=f"one trained annotator, {HUMAN_TOP5:g} %")
    left.legend(loc="upper right")
    left.set_ylim(0, 34)
    left.set_xticks(years, [f"{e.year}\n{e.short}" for e in WINNERS], fontsize=9)
    left.set_xlabel("ILSVRC classification winner (grey: no CNN)")
    left.set_ylabel("top-5 error on the test set (%)")

    if costs is None:
        costs = released_weights()
    gmacs = costs.macs / 1e9
    right.scatter(gmacs, costs.top5_error, s=costs.params / 4e5, color="#2b5d8a", alpha=0.6)
    below = {"GoogLeNet", "ResNet-50"}  # labels that would sit on a neighbour's
    for x, y, label in zip(gmacs, costs.top5_error, costs.network):
        label = label.split(" (")[0]
        offset = (-4, -14) if label in below else (7, 3)
        right.annotate(label, (x, y), xytext=offset, textcoords="offset points",
                       ha="right" if label in below else "left")
    right.set_xscale("log")
    right.set_xlim(0.4, 40)
    right.set_xticks([0.5, 1, 2, 5, 10, 20], ["0.5", "1", "2", "5", "10", "20"])
    right.set_ylim(0, 25)
    right.set_xlabel("multiply-adds per image (G, log scale)")
    right.set_ylabel("top-5 validation error, one crop (%)")
    right.set_title("marker area: parameters", loc="right", fontsize="medium")
    for ax in axes:
        ax.grid(alpha=0.3)
    return axes
