"""Matplotlib figures for the chapters: training curves, feature maps, architecture diagrams."""
from __future__ import annotations

import io
import re
from typing import Sequence

import torch
from torch import nn

__all__ = ["plot_history", "plot_histories", "show_feature_maps", "draw_stages", "draw_branches",
           "drawn_font_sizes", "book_png", "book_svg", "use_book_figures", "SMALLEST_TEXT_KEY",
           "BOOK_WIDTH", "DIAGRAM_PT"]

# The PNG text chunk in which book_png records a figure's smallest drawn text, in points. The
# browser test reads it back and works out how tall that text is on the page, where a figure
# wider than the book's column is scaled down and its text with it.
SMALLEST_TEXT_KEY = "zoo:smallest-text-pt"
# Figures that are drawings (the architecture diagrams) carry this gid and are shown as SVG; an
# SVG records the same size in its Dublin Core description, as "zoo:smallest-text-pt=9".
DRAWING = "zoo-drawing"


def drawn_font_sizes(fig) -> list[float]:
    """The size in points of every piece of text ``fig`` draws, smallest first.

    Read from an SVG rendering with the text kept as text, so only what is drawn counts: tick
    labels of a hidden axis or a label outside the view do not. A label with sub- or
    superscripts (``10^3`` on a log axis, ``$\\mu_B$``) counts at the size of its line, as the
    body text's formulas do: matplotlib draws the scripts at 0.7 of it.
    """
    import matplotlib as mpl

    svg = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none"}):
        fig.savefig(svg, format="svg", bbox_inches="tight")
    sizes = []
    for text in re.findall(r"<text\b.*?</text>", svg.getvalue(), flags=re.S):
        # SVG user units are 1/72 inch, so matplotlib's "px" there are points
        found = [float(x) for x in re.findall(r"font-size:\s*([0-9.]+)px", text)]
        if found:
            sizes.append(max(found))
    return sorted(sizes)


def _save_as_shown(fig, buffer, fmt: str, metadata: dict, **kw):
    """``fig`` saved into ``buffer`` as the inline backend shows it (cropped, its own face and edge
    colours), with ``metadata``; the buffer's contents."""
    fig.savefig(buffer, format=fmt, bbox_inches="tight", facecolor=fig.get_facecolor(),
                edgecolor=fig.get_edgecolor(), metadata=metadata, **kw)
    return buffer.getvalue()


def book_png(fig) -> bytes | None:
    """``fig`` as the PNG the inline backend would show, tagged with its smallest text size;
    None for a drawing, which :func:`book_svg` shows instead."""
    if fig.get_gid() == DRAWING:
        return None
    sizes = drawn_font_sizes(fig)
    meta = {SMALLEST_TEXT_KEY: f"{sizes[0]:g}"} if sizes else {}
    return _save_as_shown(fig, io.BytesIO(), "png", meta, dpi=fig.dpi)


def book_svg(fig) -> str | None:
    """A drawing as SVG (sharp at any zoom), tagged with its smallest text size; None otherwise.

    Text is drawn as paths, so the page looks the same without matplotlib's fonts, and the
    ids are salted with a constant, so the same figure gives the same file.
    """
    import matplotlib as mpl

    if fig.get_gid() != DRAWING:
        return None
    sizes = drawn_font_sizes(fig)
    meta = {"Date": None, "Description": f"{SMALLEST_TEXT_KEY}={sizes[0]:g}" if sizes else None}
    with mpl.rc_context({"svg.hashsalt": "zoolib", "svg.fonttype": "path"}):
        return _save_as_shown(fig, io.StringIO(), "svg", meta)


def use_book_figures() -> bool:
    """Show this notebook's figures through :func:`book_png` (drawings through :func:`book_svg`);
    False outside IPython.

    The chapters call it once, after importing pyplot, so that the book can check that every
    figure stays legible in its column (``tests/test_book_browser.py``).
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    # pyplot loads its backend with the first figure, and the inline backend then installs its own
    # PNG formatter: load it now, so that ours comes after
    plt.close(plt.figure())
    shell.display_formatter.formatters["image/png"].for_type(Figure, book_png)
    shell.display_formatter.formatters["image/svg+xml"].for_type(Figure, book_svg)
    return True


def _axes(ax=None, figsize=(5.5, 3.4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_history(hist, ax=None, title: str | None = None):
    """Training loss (left axis) and train/test accuracy (right axis, 0 to 1) per epoch.

    d2l's Animator draws the three curves on one unlabelled axis; a loss above 1 then squeezes
    the accuracies, so here each quantity has its own labelled scale. Returns the loss axes.
    """
    ax = _axes(ax)
    acc = ax.twinx()
    lines = ax.plot(hist.epochs, hist.train_loss, "-o", color="C0", label="train loss")
    lines += acc.plot(hist.epochs, hist.train_acc, "--s", color="C1", label="train accuracy")
    lines += acc.plot(hist.epochs, hist.test_acc, "-.^", color="C2", label="test accuracy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="C0")
    ax.set_ylim(bottom=0, top=max(max(hist.train_loss) * 1.1, 1e-3))
    acc.set_ylabel("accuracy")
    acc.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    # lower left: the loss starts high and the accuracies rise away from it (a run that never
    # learns keeps its accuracy near the bottom, but then has little else to show)
    ax.legend(handles=lines, loc="lower left", fontsize="small")
    if title:
        import textwrap

        # two panels side by side in the book's column leave about 36 characters a line
        ax.set_title("\n".join(textwrap.wrap(title, 36)), fontsize=11)
    ax.figure.tight_layout()  # the right-hand scale needs room beside a neighbouring panel
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


# The book's text column is 720 CSS px, 7.2 in at matplotlib's 100 dpi: a figure no wider than
# BOOK_WIDTH (with room for the tight bounding box) is shown unscaled, and its text at
# pt * 100/72 px. DIAGRAM_PT keeps that at 70 % of the 16 px body text or more (8.1 pt).
BOOK_WIDTH = 7.0
DIAGRAM_PT = 9


@torch.no_grad()
def show_feature_maps(layer: nn.Module, image: torch.Tensor, n: int = 8, title: str | None = None):
    """The first ``n`` channels of ``layer(image)`` as grey images after the input, at most five
    to a row so that the grid fits the book's column."""
    import math

    import matplotlib.pyplot as plt

    maps = layer.eval()(image)[0]
    n = min(n, maps.shape[0])
    cols = min(n + 1, 5)
    rows = math.ceil((n + 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(BOOK_WIDTH, 1.55 * rows + (0.3 if title else 0)),
                             squeeze=False)
    axes = axes.ravel()
    axes[0].imshow(image[0].permute(1, 2, 0).clamp(0, 1).numpy())
    axes[0].set_title("input", fontsize=DIAGRAM_PT)
    for i in range(n):
        axes[i + 1].imshow(maps[i].numpy(), cmap="gray")
        axes[i + 1].set_title(f"channel {i}", fontsize=DIAGRAM_PT)
    for a in axes:
        a.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def draw_stages(stages: Sequence[tuple[str, tuple]], ax=None, title: str | None = None, per_row: int = 6):
    """A network as a chain of boxes, each labelled with its output shape, at most ``per_row``
    to a row (rows as even as they can be).

    ``stages`` is ``[(label, (C, H, W)), ...]``; box heights follow the spatial size and
    widths the channel count (log scale), so the shrinking grid and the growing depth show.
    Returns the axes, one per row (a single axes for one row, or when ``ax`` is given).
    """
    import math

    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    if ax is None:
        per_row = math.ceil(len(stages) / math.ceil(len(stages) / per_row))
    else:
        per_row = len(stages)
    chunks = [stages[i:i + per_row] for i in range(0, len(stages), per_row)]
    if ax is None:
        fig, axes = plt.subplots(len(chunks), 1, figsize=(BOOK_WIDTH, 1.75 * len(chunks) + (0.3 if title else 0)),
                                 squeeze=False)
        axes = list(axes[:, 0])
    else:
        fig, axes = ax.figure, [ax]
    fig.set_gid(DRAWING)
    slot = 1.5  # data units per stage; the widest box (4096 channels) is 1.33
    hmax = max(s[1][-1] if len(s[1]) > 1 else 1 for s in stages)
    for row, (a, chunk) in enumerate(zip(axes, chunks)):
        for k, (label, shape) in enumerate(chunk):
            c = shape[0]
            h = (shape[-1] if len(shape) > 1 else 1) / hmax
            w = 0.25 + 0.09 * math.log2(max(c, 1))
            height = 0.25 + 1.5 * h
            x = k * slot + (slot - w) / 2
            a.add_patch(patches.FancyBboxPatch((x, -height / 2), w, height, boxstyle="round,pad=0.02",
                                               fc="#dbe8f6", ec="#2b5d8a"))
            a.text(x + w / 2, height / 2 + 0.1, label, ha="center", va="bottom", fontsize=DIAGRAM_PT)
            a.text(x + w / 2, -height / 2 - 0.1, "x".join(map(str, shape)), ha="center", va="top",
                   fontsize=DIAGRAM_PT)
            if k + 1 < len(chunk) or row + 1 < len(chunks):
                a.annotate("", xy=((k + 1) * slot - 0.02, 0), xytext=(x + w + 0.04, 0),
                           arrowprops=dict(arrowstyle="->", color="gray", lw=0.8))
        a.set_xlim(0, per_row * slot)
        a.set_ylim(-1.35, 1.7)
        a.axis("off")
    if title:
        (fig.suptitle(title, fontsize=11) if ax is None else axes[0].set_title(title, fontsize=11))
    if ax is None:
        fig.tight_layout()
    return axes[0] if len(axes) == 1 else axes


def draw_branches(branches: Sequence[tuple[str, Sequence[str]]], in_label: str, out_label: str, ax=None,
                  title: str | None = None):
    """A parallel block (Inception-style): each branch a column of layer boxes, joined at a concat.

    On its own axes it is at most :data:`BOOK_WIDTH` wide; a caller that puts several on one
    figure should keep the figure that narrow too, a diagram to a row or two side by side.
    """
    import textwrap

    import matplotlib.patches as patches

    # long labels go onto two lines rather than past their box: at DIAGRAM_PT a box of a
    # four-branch diagram in the book's column holds about 15 characters
    wrap = lambda text, chars: "\n".join(textwrap.wrap(text, chars, break_on_hyphens=False))
    depth = max(len(layers) for _, layers in branches)
    ax = _axes(ax, figsize=(min(BOOK_WIDTH, 1.75 * len(branches) + 0.3), 0.6 * depth + 1.7))
    ax.figure.set_gid(DRAWING)
    width = 1.6
    for b, (name, layers) in enumerate(branches):
        x = b * (width + 0.3)
        for j, layer in enumerate(layers):
            y = depth - j
            ax.add_patch(patches.FancyBboxPatch((x, y - 0.35), width, 0.7, boxstyle="round,pad=0.02",
                                                fc="#f6e7cf", ec="#8a5a2b"))
            ax.text(x + width / 2, y, wrap(layer, 15), ha="center", va="center", fontsize=DIAGRAM_PT,
                    linespacing=1.0)
        ax.annotate("", xy=(x + width / 2, 0.45), xytext=(x + width / 2, depth - len(layers) + 0.65),
                    arrowprops=dict(arrowstyle="->", color="gray"))
        ax.text(x + width / 2, depth + 0.55, name, ha="center", fontsize=DIAGRAM_PT, color="#555")
    total = len(branches) * (width + 0.3) - 0.3
    ax.text(total / 2, depth + 1.1, in_label, ha="center", fontsize=10, weight="bold")
    joined = wrap(f"concatenate -> {out_label}", max(26, 15 * len(branches)))
    extra = 0.35 * joined.count("\n")  # the concat box grows downwards by a line per wrap
    ax.add_patch(patches.FancyBboxPatch((0, -0.05 - extra), total, 0.45 + extra, boxstyle="round,pad=0.02",
                                        fc="#dbe8f6", ec="#2b5d8a"))
    ax.text(total / 2, 0.17 - extra / 2, joined, ha="center", va="center", fontsize=10, linespacing=1.1)
    ax.set_xlim(-0.3, total + 0.3)
    ax.set_ylim(-0.4 - extra, depth + 1.5)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return ax
