"""zoolib.train: what a History records agrees with what was computed (no dataset needed)."""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from zoolib.data import DataBundle
from zoolib.train import train


def _bundle(n_train=50, n_test=20, batch_size=16):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_test, 1, 4, 4, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    return DataBundle("toy", "random", TensorDataset(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:]),
                      ["neg", "pos"], 4, batch_size)


def test_step_losses_average_to_the_epoch_loss():
    data = _bundle()
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    hist = train(model, data, epochs=2, lr=0.1, progress=False, device=torch.device("cpu"))
    steps_per_epoch = -(-50 // 16)                 # 16 + 16 + 16 + 2
    assert len(hist.step_loss) == 2 * steps_per_epoch
    sizes = [16, 16, 16, 2]
    for epoch in range(2):
        losses = hist.step_loss[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
        weighted = sum(l * n for l, n in zip(losses, sizes)) / 50
        assert abs(weighted - hist.train_loss[epoch]) < 1e-6


def test_the_first_step_loss_is_the_untrained_models_loss():
    data = _bundle(n_train=16, batch_size=16)      # one batch: the first step sees every example
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    x, y = data.train.tensors
    with torch.no_grad():
        expected = F.cross_entropy(model(x), y).item()
    hist = train(model, data, epochs=1, lr=0.1, progress=False, device=torch.device("cpu"), seed=None)
    assert abs(hist.step_loss[0] - expected) < 1e-6
