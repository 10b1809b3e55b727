"""The ILSVRC figure's data: costs pinned to torchvision's published metadata."""
import pytest

import zoolib
from zoolib import ilsvrc
from torchvision.models import get_model_weights


@pytest.fixture(scope="module")
def costs():
    return ilsvrc.released_weights()


def test_the_profiler_reproduces_torchvisions_published_counts(costs):
    # torchvision's Weights.meta: "num_params" and "_ops" (GFLOPS in its docs, counted as
    # multiply-adds, rounded to 3 decimals); the profiler runs on torchvision's own modules.
    assert list(costs.builder) == list(ilsvrc.RELEASED)
    for row in costs.itertuples():
        assert row.params == row.tv_params, row.network
        assert round(row.macs / 1e9, 3) == pytest.approx(row.tv_gmacs, abs=1e-9), row.network


@pytest.mark.parametrize("name, side", [("vgg16", 224), ("inception_v3", 299), ("resnet18", 224)])
def test_zoolibs_own_networks_cost_what_torchvision_publishes(name, side):
    """Where zoolib builds the same architecture as torchvision, its cost is torchvision's."""
    meta = get_model_weights(name).IMAGENET1K_V1.meta
    prof = zoolib.profile(name, (1, 3, side, side))
    assert round(prof.total_macs / 1e9, 3) == meta["_ops"]
    assert prof.total_params == meta["num_params"]


def test_the_errors_are_torchvisions_metrics(costs):
    # two rows by hand from torchvision's model table: ResNet-50's IMAGENET1K_V1 weights
    # 92.862 % top-5 (not V2's 95.434 %), AlexNet 79.066 %
    by = costs.set_index("builder")
    assert by.loc["resnet50", "top5_error"] == pytest.approx(100 - 92.862)
    assert by.loc["alexnet", "top5_error"] == pytest.approx(100 - 79.066)
    assert (costs.top5_error < costs.top1_error).all()


def test_the_winners_table_is_one_entry_a_year_each_better_than_the_last():
    years = [e.year for e in ilsvrc.WINNERS]
    assert years == list(range(2010, 2018))
    errors = [e.top5 for e in ilsvrc.WINNERS]
    assert errors == sorted(errors, reverse=True)
    # the lectures: GoogLeNet won 2014 with 6.67 %, VGG was second with 7.3 %
    by_year = {e.year: e for e in ilsvrc.WINNERS}
    assert by_year[2014].team == "GoogLeNet" and by_year[2014].top5 == 6.67
    assert [round(e.top5, 1) for e in ilsvrc.RUNNERS_UP if e.year == 2014] == [7.3]
    # the first winner under one human annotator's 5.1 % was ResNet, in 2015
    beat_human = [e.year for e in ilsvrc.WINNERS if e.top5 < ilsvrc.HUMAN_TOP5]
    assert beat_human[0] == 2015


def test_the_figure_draws_every_winner_and_network(costs):
    import matplotlib

    matplotlib.use("Agg")
    left, right = ilsvrc.plot_ilsvrc(costs)
    assert len(left.patches) == len(ilsvrc.WINNERS)
    assert len(right.collections[0].get_offsets()) == len(costs)
    for ax in (left, right):
        assert ax.get_xlabel() and ax.get_ylabel()
