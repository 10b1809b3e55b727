"""Matplotlib figures for the chapters: training curves, feature maps, architecture diagrams."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["plot_history", "plot_histories", "show_feature_maps", "draw_stages", "draw_branches"]


def _axes(ax=None, figsize=(5, 3.2)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_history(hist, ax=None, title: str | None = None):
    """Training loss and train/test accuracy per epoch (d2l's Animator, as one static figure)."""
    ax = _axes(ax)
    ax.plot(hist.epochs, hist.train_loss, "-o", label="train loss")
    ax.plot(hist.epochs, hist.train_acc, "--s", label="train acc")
    ax.plot(hist.epochs, hist.test_acc, "-.^", label="test acc")
    ax.set_xlabel("epoch")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_histories(histories: dict, key: str = "step_acc", ax=None, target: float | None = None):
    """Test accuracy against training steps for several runs (e.g. with and without BN)."""
    ax = _axes(ax, figsize=(6, 3.5))
    for label, hist in histories.items():
        xs = hist.steps if key == "step_acc" else hist.epochs
        ax.plot(xs, getattr(hist, key), label=label)
    if target is not None:
        ax.axhline(target, color="gray", ls=":", lw=1, label=f"target {target:.0%}")
    ax.set_xlabel("training step" if key == "step_acc" else "epoch")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


@torch.no_grad()
def show_feature_maps(layer: nn.Module, image: torch.Tensor, n: int = 8, title: str | None = None):
    """The first ``n`` channels of ``layer(image)`` as grey images next to the input."""
    import matplotlib.pyplot as plt

    maps = layer.eval()(image)[0]
    n = min(n, maps.shape[0])
    fig, axes = plt.subplots(1, n + 1, figsize=(1.6 * (n + 1), 1.9))
    axes[0].imshow(image[0].permute(1, 2, 0).clamp(0, 1).numpy())
    axes[0].set_title("input", fontsize=8)
    for i in range(n):
        axes[i + 1].imshow(maps[i].numpy(), cmap="gray")
        axes[i + 1].set_title(f"channel {i}", fontsize=8)
    for a in axes:
        a.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def draw_stages(stages: Sequence[tuple[str, tuple]], ax=None, title: str | None = None):
    """A network as a left-to-right chain of boxes, each labelled with its output shape.

    ``stages`` is ``[(label, (C, H, W)), ...]``; box heights follow the spatial size and
    widths the channel count (log scale), so the shrinking grid and the growing depth show.
    """
    import math

    import matplotlib.patches as patches

    ax = _axes(ax, figsize=(max(6, 1.25 * len(stages)), 2.8))
    x = 0.0
    hmax = max(s[1][-1] if len(s[1]) > 1 else 1 for s in stages)
    for label, shape in stages:
        c = shape[0]
        h = (shape[-1] if len(shape) > 1 else 1) / hmax
        w = 0.25 + 0.12 * math.log2(max(c, 1))
        height = 0.25 + 1.5 * h
        ax.add_patch(patches.FancyBboxPatch((x, -height / 2), w, height, boxstyle="round,pad=0.02",
                                            fc="#dbe8f6", ec="#2b5d8a"))
        ax.text(x + w / 2, height / 2 + 0.12, label, ha="center", va="bottom", fontsize=8, rotation=30)
        ax.text(x + w / 2, -height / 2 - 0.12, "x".join(map(str, shape)), ha="center", va="top", fontsize=7)
        x += w + 0.35
    ax.set_xlim(-0.2, x)
    ax.set_ylim(-1.5, 1.7)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def draw_branches(branches: Sequence[tuple[str, Sequence[str]]], in_label: str, out_label: str, ax=None,
                  title: str | None = None):
    """A parallel block (Inception-style): each branch a column of layer boxes, joined at a concat."""
    import matplotlib.patches as patches

    ax = _axes(ax, figsize=(1.9 * len(branches) + 1, 3.6))
    depth = max(len(layers) for _, layers in branches)
    width = 1.6
    for b, (name, layers) in enumerate(branches):
        x = b * (width + 0.3)
        for j, layer in enumerate(layers):
            y = depth - j
            ax.add_patch(patches.FancyBboxPatch((x, y - 0.35), width, 0.7, boxstyle="round,pad=0.02",
                                                fc="#f6e7cf", ec="#8a5a2b"))
            ax.text(x + width / 2, y, layer, ha="center", va="center", fontsize=8)
        ax.annotate("", xy=(x + width / 2, 0.45), xytext=(x + width / 2, depth - len(layers) + 0.65),
                    arrowprops=dict(arrowstyle="->", color="gray"))
        ax.text(x + width / 2, depth + 0.55, name, ha="center", fontsize=8, color="#555")
    total = len(branches) * (width + 0.3) - 0.3
    ax.text(total / 2, depth + 1.1, in_label, ha="center", fontsize=9, weight="bold")
    ax.add_patch(patches.FancyBboxPatch((0, -0.05), total, 0.45, boxstyle="round,pad=0.02", fc="#dbe8f6", ec="#2b5d8a"))
    ax.text(total / 2, 0.17, f"concatenate -> {out_label}", ha="center", va="center", fontsize=9)
    ax.set_xlim(-0.3, total + 0.3)
    ax.set_ylim(-0.4, depth + 1.5)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax
