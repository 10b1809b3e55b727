import torch

from zoolib import bench


def test_bench_rows_and_table():
    device = torch.device("cpu")
    rows = [bench.bench_model("resnet18", device, batch=2, repeats=1),
            bench.bench_model("lenet", device, batch=8, repeats=1)]
    assert rows[0].counterpart == "torchvision:resnet18"
    assert rows[0].fwd > 0 and rows[0].fwd_lib > 0 and rows[0].train_ratio > 0
    assert rows[1].counterpart == "" and rows[1].fwd_ratio is None
    text = bench.format_table(rows, device)
    assert "torchvision:resnet18" in text and "lenet" in text and "ratio" in text
