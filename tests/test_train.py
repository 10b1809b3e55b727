"""zoolib.train: what a History records agrees with what was computed (no dataset needed)."""
import pytest
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


def _one_step(**kw):
    """One full-batch step of a linear model; returns (weights before, gradient, weights after)."""
    data = _bundle(n_train=16, batch_size=16)
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    w0 = model[1].weight.detach().clone()
    x, y = data.train.tensors
    model.zero_grad()
    F.cross_entropy(model(x), y, label_smoothing=kw.get("label_smoothing", 0.0)).backward()
    g = model[1].weight.grad.detach().clone()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    train(model, data, epochs=1, lr=0.045, progress=False, device=torch.device("cpu"), seed=None, **kw)
    return w0, g, grads, model[1].weight.detach()


def test_rmsprop_tf_is_tensorflows_rmsprop_with_the_papers_settings():
    # TensorFlow's RMSProp (tf.compat.v1.train.RMSPropOptimizer): ms starts at 1,
    # ms <- decay*ms + (1-decay)*g^2, mom <- momentum*mom + lr*g/sqrt(ms + eps), w <- w - mom.
    # Inception-v3 (Szegedy et al. 2016, Sec. 8): decay 0.9, eps 1.0. First step, momentum 0:
    w0, g, _, w1 = _one_step(optimizer="rmsprop_tf")
    ms = 0.9 * 1.0 + 0.1 * g ** 2
    assert torch.allclose(w1, w0 - 0.045 * g / torch.sqrt(ms + 1.0), atol=1e-7)
    # PyTorch's own RMSprop at the same settings (eps outside the root, ms from 0) differs
    torch_step = 0.045 * g / (torch.sqrt(0.1 * g ** 2) + 1.0)
    assert not torch.allclose(w0 - torch_step, w1, atol=1e-5)


def test_gradient_clipping_rescales_to_the_global_norm():
    # plain SGD, so the step is lr times the clipped gradient: g * min(1, c / ||all grads||)
    w0, g, grads, w1 = _one_step(optimizer="sgd", clip_grad_norm=0.01)
    norm = torch.sqrt(sum((t ** 2).sum() for t in grads))
    assert norm > 0.01
    assert torch.allclose(w1, w0 - 0.045 * g * (0.01 / norm), atol=1e-7)


def test_the_history_keeps_gradient_norms_and_the_optimiser():
    data = _bundle(n_train=16, batch_size=16)
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    x, y = data.train.tensors
    F.cross_entropy(model(x), y).backward()
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters())).item()
    model.zero_grad()
    hist = train(model, data, epochs=1, lr=0.045, optimizer="rmsprop_tf", clip_grad_norm=0.01,
                 progress=False, device=torch.device("cpu"), seed=None)
    assert hist.grad_norm == [pytest.approx(norm, rel=1e-5)]
    # TensorFlow's mean square after one step: 0.9 * 1 + 0.1 * g^2, with g the clipped gradient
    weight = model[1].weight
    state = hist.optimizer.state[weight]["square_avg"]
    assert torch.all(state >= 0.9) and torch.all(state <= 0.9 + 0.1 * 0.01 ** 2 + 1e-7)


def test_label_smoothing_reaches_the_default_loss():
    w0, g, _, w1 = _one_step(optimizer="sgd", label_smoothing=0.1)
    assert torch.allclose(w1, w0 - 0.045 * g, atol=1e-7)
    _, g_plain, _, _ = _one_step(optimizer="sgd")
    assert not torch.allclose(g, g_plain)


def test_a_long_run_in_a_notebook_sends_few_messages():
    """In a Jupyter kernel the progress bar is a widget, and every redraw is a message on the kernel's IOPub
    channel, whose ZeroMQ socket holds 1,000 before it drops (nbval reads it only after the cell: a dropped
    status message made a chapter's cell time out). 2,000 steps must stay far below that."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    code = ("import torch\nfrom torch import nn\nfrom torch.utils.data import TensorDataset\n"
            "from zoolib.data import DataBundle\nfrom zoolib.train import train\n"
            "torch.manual_seed(0)\n"
            "x, y = torch.randn(4000, 4), torch.randint(0, 2, (4000,))\n"
            "data = DataBundle('toy', 'random', TensorDataset(x, y), TensorDataset(x[:8], y[:8]), ['a', 'b'], 2, 2)\n"
            "hist = train(nn.Linear(4, 2), data, 1, 0.01)\n"
            "print(len(hist.step_loss))")
    try:
        msg_id = kc.execute(code)
        messages, printed = 0, ""
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages += 1
            if msg["msg_type"] == "stream":
                printed += msg["content"]["text"]
            if msg["msg_type"] == "error":
                pytest.fail("\n".join(msg["content"]["traceback"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert printed.strip() == "2000" and messages < 200, (printed, messages)
