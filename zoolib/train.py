"""A small, honest training loop for the chapters: progress bar, history, accuracy.

d2l has two training loops, ``d2l.train_ch6`` and ``d2l.Trainer``; the chapters use :func:`train`
instead because a rendered book needs what they do not give: both draw an animated figure
through ``IPython.display`` every few batches (a static page keeps one frame, or a pile of
them) and return nothing, so a chapter cannot plot, tabulate or compare runs afterwards; both
are plain SGD only (fast mode uses Adam where SGD would not leave the sigmoid plateau in the
steps a CPU affords); neither evaluates every *n* steps (the BN chapter counts steps to an
accuracy) or stops after a number of steps, and neither logs runs (``ZOO_RECORD``).
The initialisation is d2l's own (:func:`init_weights` applies ``d2l.init_cnn``).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from . import config

__all__ = ["History", "train", "evaluate", "init_weights", "main_logits"]


@dataclass
class History:
    """What a run measured: per-epoch losses and accuracies, and (optionally) per-step checks."""
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)          # step of each periodic evaluation
    step_acc: list[float] = field(default_factory=list)     # test accuracy at those steps
    step_loss: list[float] = field(default_factory=list)    # the training loss of every step (free to keep)
    grad_norm: list[float] = field(default_factory=list)    # global gradient norm before clipping, per step
    seconds: float = 0.0
    cpu_seconds: float = 0.0     # CPU time of the whole process during training (all threads)
    examples_per_second: float = 0.0
    device: str = "cpu"
    optimizer: object = field(default=None, repr=False)    # the run's optimiser, for its state

    @property
    def final_test_acc(self) -> float:
        return self.test_acc[-1] if self.test_acc else float("nan")

    def steps_to(self, accuracy: float) -> int | None:
        """The first evaluated step at which test accuracy reached ``accuracy`` (None: never)."""
        return next((s for s, a in zip(self.steps, self.step_acc) if a >= accuracy), None)

    def summary(self) -> str:
        return (f"test accuracy {self.final_test_acc:.3f} after {self.epochs[-1] if self.epochs else 0} epoch(s), "
                f"{self.examples_per_second:,.0f} examples/s on {self.device}")

    def plot(self, ax=None, title: str | None = None):
        from .plots import plot_history

        return plot_history(self, ax=ax, title=title)


def main_logits(outputs) -> torch.Tensor:
    """The main head's logits, whether a model returns a tensor or (logits, aux...)."""
    return outputs[0] if isinstance(outputs, tuple) else outputs


def init_weights(model: nn.Module, scheme: str = "xavier") -> nn.Module:
    """Initialise every ``nn.Conv2d`` and ``nn.Linear`` of ``model`` and return it.

    ``"xavier"`` (the default) is d2l's ``init_cnn``: Xavier-uniform weights, biases keep PyTorch's
    default; d2l uses it for all its CNNs trained from scratch, and full mode uses it.
    ``"he"`` is Kaiming-normal weights for ReLU (variance 2/fan-in) and zero biases. Xavier's
    variance, 2/(fan-in + fan-out), halves the signal at every ReLU layer, so a deep ReLU network
    without BatchNorm (NiN, GoogLeNet) starts with almost constant outputs and takes many steps to
    leave that plateau; He's keeps the signal's size, which the fast runs' few hundred steps need.
    """
    if scheme == "he":
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        return model
    if scheme != "xavier":
        raise ValueError(f"scheme must be 'xavier' or 'he', not {scheme!r}")
    try:
        from d2l import torch as d2l
    except ImportError as err:
        raise ImportError("zoolib.train.init_weights uses d2l's init_cnn: `make setup` installs d2l "
                          "(pip install --no-deps d2l==1.0.3)") from err
    model.apply(d2l.init_cnn)
    return model


@torch.no_grad()
def evaluate(model: nn.Module, data: Iterable, device: torch.device | None = None, max_batches: int | None = None) -> float:
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = total = 0
    for i, (x, y) in enumerate(data):
        if max_batches is not None and i >= max_batches:
            break
        x, y = x.to(device), y.to(device)
        correct += (main_logits(model(x)).argmax(1) == y).sum().item()
        total += y.numel()
    model.train(was_training)
    return correct / max(total, 1)


def train(model: nn.Module, data, epochs: int, lr: float, *, optimizer: str = "sgd", momentum: float = 0.0,
          weight_decay: float = 0.0, loss_fn: Callable | None = None, device: torch.device | None = None,
          eval_every: int | None = None, max_steps: int | None = None, progress: bool = True,
          seed: int | None = 0, name: str | None = None, schedule: str = "constant",
          label_smoothing: float = 0.0, clip_grad_norm: float | None = None) -> History:
    """Train ``model`` on ``data`` (a :class:`zoolib.data.DataBundle`) and return its :class:`History`.

    ``loss_fn(outputs, targets)`` defaults to cross-entropy on the main logits, so models with
    auxiliary heads can pass e.g. :func:`zoolib.models.googlenet.googlenet_loss`.
    ``eval_every`` also evaluates on the test set every that many steps (for steps-to-accuracy).
    ``name`` labels the run in the ``ZOO_RECORD`` log (default: the model's class name).
    ``schedule="cosine"`` lowers the learning rate from ``lr`` to 0 along a half cosine over the
    run's steps (one update per step); ``"constant"`` (the default, d2l's) keeps it. A short run
    ends nearer a minimum when its last steps are small: the fast recipes use it.

    Inception-v3's recipe (Szegedy et al. 2016, Sec. 8) adds three options: ``optimizer=
    "rmsprop_tf"`` is RMSProp with decay 0.9 and epsilon 1.0 as TensorFlow computes it
    (timm's ``RMSpropTF``: epsilon inside the square root and a mean square that starts at 1;
    PyTorch's ``RMSprop`` adds epsilon outside the root and starts at 0, which at epsilon 1.0
    is a different optimiser), ``clip_grad_norm`` rescales the gradients whenever their global
    norm exceeds it (``History.grad_norm`` keeps each step's norm before clipping), and
    ``label_smoothing`` smooths the default cross-entropy's targets. ``History.optimizer`` is
    the run's optimiser, whose state (RMSProp's mean squares, Adam's moments) can be read.
    """
    if seed is not None:
        torch.manual_seed(seed)
    device = device or config.device()
    model.to(device)
    loss_fn = loss_fn or (lambda out, y: F.cross_entropy(main_logits(out), y,
                                                         label_smoothing=label_smoothing))
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "rmsprop_tf":
        from timm.optim import RMSpropTF

        opt = RMSpropTF(params, lr=lr, alpha=0.9, eps=1.0, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'sgd', 'adam' or 'rmsprop_tf', not {optimizer!r}")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', not {schedule!r}")

    from tqdm.auto import tqdm

    hist = History(device=str(device))
    step, seen, start, cpu_start = 0, 0, time.perf_counter(), time.process_time()
    train_iter, test_iter = data.train_iter(), data.test_iter()
    total = epochs * len(train_iter) if max_steps is None else min(max_steps, epochs * len(train_iter))
    # about 100 updates per run, at most one a second: a long run in a notebook would otherwise queue
    # thousands of widget messages, more than the kernel's output channel holds (nbval then times out)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total) if schedule == "cosine" else None
    bar = tqdm(total=total, desc=name or type(model).__name__, disable=not progress, unit="step", leave=True,
               mininterval=1.0, miniters=max(1, total // 100))
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum = correct = count = 0.0
        for x, y in train_iter:
            if max_steps is not None and step >= max_steps:
                break
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss = loss_fn(out, y)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}: lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:  # returns the norm it measured before clipping
                hist.grad_norm.append(float(nn.utils.clip_grad_norm_(params, clip_grad_norm)))
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            seen += y.numel()
            hist.step_loss.append(loss.item())
            loss_sum += hist.step_loss[-1] * y.numel()
            correct += (main_logits(out).argmax(1) == y).sum().item()
            count += y.numel()
            bar.update(1)
            # refresh=False: shown at the bar's next update. tqdm's default redraws at once, which in a notebook
            # sent two widget messages per step (6,119 for 3,000 steps against 21), past the 1,000 the output
            # channel holds: nbval, reading it after the cell, then waited for a status message that was dropped
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", refresh=False)
            if eval_every and step % eval_every == 0:
                hist.steps.append(step)
                hist.step_acc.append(evaluate(model, test_iter, device))
        hist.epochs.append(epoch)
        hist.train_loss.append(loss_sum / max(count, 1))
        hist.train_acc.append(correct / max(count, 1))
        hist.test_acc.append(evaluate(model, test_iter, device))
        if max_steps is not None and step >= max_steps:
            break
    bar.close()
    hist.seconds = time.perf_counter() - start
    hist.cpu_seconds = time.process_time() - cpu_start
    hist.examples_per_second = seen / max(hist.seconds, 1e-9)
    hist.optimizer = opt
    _record(name or type(model).__name__, data, hist, lr, optimizer)
    return hist


def _record(name: str, data, hist: History, lr: float, optimizer: str) -> None:
    """With ``ZOO_RECORD=path``, append one JSON line per run (``make test-gpu`` collects them)."""
    path = os.environ.get("ZOO_RECORD")
    if not path:
        return
    row = {"model": name, "dataset": getattr(data, "name", "?"), "mode": config.mode(),
           "device": hist.device, "image_size": getattr(data, "image_size", None), "optimizer": optimizer, "lr": lr,
           "epochs": len(hist.epochs), "train_examples": len(data.train), "test_examples": len(data.test),
           "test_acc": round(hist.final_test_acc, 4), "seconds": round(hist.seconds, 1),
           "cpu_seconds": round(hist.cpu_seconds, 1), "load_average": os.getloadavg()[0]}
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
