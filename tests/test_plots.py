"""zoolib.plots: the smallest drawn text that the book's figures record for the browser test."""
import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from zoolib import plots  # noqa: E402


@pytest.fixture
def fig():
    with matplotlib.rc_context({"font.size": 10}):
        f, ax = plt.subplots(figsize=(3, 2))
        yield f, ax
    plt.close(f)


def test_default_tick_labels_are_matplotlibs_font_size(fig):
    f, ax = fig
    ax.plot([0, 1], [0, 1])
    sizes = plots.drawn_font_sizes(f)
    assert sizes and set(sizes) == {10.0}  # rcParams["xtick.labelsize"] is "medium", i.e. font.size


def test_small_text_and_relative_sizes_count(fig):
    f, ax = fig
    ax.plot([0, 1], [0, 1])
    ax.text(0.5, 0.5, "note", fontsize=6)
    ax.legend(["line"], fontsize="small")  # matplotlib scales "small" by 0.833
    sizes = plots.drawn_font_sizes(f)
    assert sizes[0] == 6.0
    assert 8.33 in sizes


def test_scripts_count_at_the_size_of_their_line(fig):
    f, ax = fig
    ax.loglog([1, 1e4], [1, 1e3])  # tick labels 10^0 ... 10^4: mathtext draws the exponent at 0.7
    ax.set_title(r"$\mu_B$", fontsize=12)
    assert set(plots.drawn_font_sizes(f)) == {10.0, 12.0}
    svg = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        f.savefig(svg, format="svg")
    assert "font-size: 7px" in svg.getvalue()  # the exponents themselves, which are not counted


def test_a_hidden_axis_draws_no_tick_labels(fig):
    f, ax = fig
    ax.plot([0, 1], [0, 1])
    ax.axis("off")
    ax.set_title("only this", fontsize=13)
    assert plots.drawn_font_sizes(f) == [13.0]


def test_book_png_records_the_smallest_text_and_matches_the_inline_size(fig):
    f, ax = fig
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("x", fontsize=7.5)
    image = Image.open(io.BytesIO(plots.book_png(f)))
    assert image.text[plots.SMALLEST_TEXT_KEY] == "7.5"
    # the inline backend's PNG: tight bounding box at the figure's dpi
    inline = io.BytesIO()
    f.savefig(inline, format="png", bbox_inches="tight")
    assert image.size == Image.open(inline).size
    assert round(image.info["dpi"][0]) == round(f.dpi)


def test_use_book_figures_is_a_no_op_outside_ipython():
    assert plots.use_book_figures() is False


# The book's column is 720 CSS px and its body text 16 px (both measured by test_book_browser).
# At matplotlib's 100 dpi a PNG up to 720 px wide is shown unscaled, and 70 % of 16 px is
# 11.2 px = 11.2 * 72 / 100 = 8.06 pt.
COLUMN_PX = 720


def _fits_the_column(fig):
    """What the browser test checks on the page, here on the figure alone: PNGs at 100 dpi,
    and drawings as SVG, sized in points that a browser shows at 96/72 px each."""
    png, svg = plots.book_png(fig), plots.book_svg(fig)
    plt.close(fig)
    assert (png is None) != (svg is None), "a figure is shown either as PNG or as SVG"
    if png is not None:
        image = Image.open(io.BytesIO(png))
        width_px, smallest = image.size[0], float(image.text[plots.SMALLEST_TEXT_KEY])
        text_px = smallest / 72 * image.info["dpi"][0]
    else:
        width_px = float(re.search(r'<svg[^>]* width="([0-9.]+)pt"', svg).group(1)) * 96 / 72
        smallest = float(re.search(plots.SMALLEST_TEXT_KEY + r"=([0-9.]+)", svg).group(1))
        text_px = smallest * 96 / 72
    assert width_px <= COLUMN_PX, f"{width_px:.0f} px wide: the page would scale it down"
    assert text_px >= 0.70 * 16, f"{smallest} pt text shows at {text_px:.1f} px"


ALEXNET = [("input", (3, 227, 227)), ("conv1", (96, 55, 55)), ("pool1", (96, 27, 27)), ("conv2", (256, 27, 27)),
           ("pool2", (256, 13, 13)), ("conv3", (384, 13, 13)), ("conv4", (384, 13, 13)), ("conv5", (256, 13, 13)),
           ("pool5", (256, 6, 6)), ("fc6", (4096,)), ("fc7", (4096,)), ("fc8", (1000,))]


def test_a_long_chain_of_stages_wraps_into_even_rows_that_fit():
    axes = plots.draw_stages(ALEXNET, title="AlexNet")
    assert [sum(t.get_text() in dict(ALEXNET) for t in a.texts) for a in axes] == [6, 6]
    _fits_the_column(axes[0].figure)
    single = plots.draw_stages(ALEXNET[:5])
    labels = [t.get_text() for t in single.texts if not t.get_text() == ""]  # arrows are empty annotations
    assert labels == [x for name, shape in ALEXNET[:5] for x in (name, "x".join(map(str, shape)))]
    _fits_the_column(single.figure)


def test_branch_diagrams_and_feature_maps_fit_the_column():
    import torch
    from torch import nn

    v3_c = [("branch1x1", ["1x1 conv 320"]), ("branch3x3", ["1x1 conv 384", "1x3 | 3x1 conv 384+384"]),
            ("branch3x3dbl", ["1x1 conv 448", "3x3 conv 384", "1x3 | 3x1 conv 384+384"]),
            ("branch_pool", ["3x3 avg pool", "1x1 conv 192"])]
    ax = plots.draw_branches(v3_c, "input 8x8x2048", "8x8x2048", title="InceptionFig7")
    # a label too long for its box goes onto two lines, whole words kept
    assert "1x3 | 3x1 conv\n384+384" in [t.get_text() for t in ax.texts]
    _fits_the_column(ax.figure)
    conv = nn.Conv2d(3, 8, 3)
    fig = plots.show_feature_maps(conv, torch.rand(1, 3, 16, 16), n=8, title="eight maps")
    assert sum(a.get_visible() and bool(a.images) for a in fig.axes) == 9
    _fits_the_column(fig)


def test_the_ilsvrc_chart_fits_the_column():
    import pandas as pd

    from zoolib import ilsvrc

    costs = pd.DataFrame({"network": ["AlexNet", "VGG-16 (D)"], "macs": [7.1e8, 1.55e10],
                          "top5_error": [20.9, 9.6], "params": [6.1e7, 1.38e8]})
    left, _ = ilsvrc.plot_ilsvrc(costs)
    _fits_the_column(left.figure)


def test_a_history_has_its_loss_and_its_accuracies_on_labelled_scales():
    from types import SimpleNamespace

    hist = SimpleNamespace(epochs=[1, 2, 3], train_loss=[2.3, 1.4, 0.9], train_acc=[0.3, 0.6, 0.8],
                           test_acc=[0.35, 0.62, 0.78])
    ax = plots.plot_history(hist, title="a title long enough to need a second line in its panel")
    loss_ax, acc_ax = ax.figure.axes
    assert loss_ax is ax and loss_ax.get_ylabel() and acc_ax.get_ylabel()
    assert acc_ax.get_ylim() == (0, 1) and loss_ax.get_ylim()[1] >= 2.3  # a loss above 1 stays in view
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train loss", "train accuracy", "test accuracy"]
    assert "\n" in ax.get_title()
    _fits_the_column(ax.figure)


def test_drawings_are_svg_that_comes_out_the_same_every_time():
    axes = plots.draw_stages(ALEXNET[:4], title="the same drawing twice")
    first, again = plots.book_svg(axes.figure), plots.book_svg(axes.figure)
    plt.close(axes.figure)
    assert first == again and "<svg" in first
    assert "<text" not in first  # glyphs as paths: the page needs none of matplotlib's fonts
    assert plots.book_png(plt.figure()) is not None and plots.book_svg(plt.gcf()) is None
    plt.close("all")
