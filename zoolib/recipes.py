"""Training recipes for the chapters: fast mode (a 2-core CPU, what the book shows) and full mode.

Full mode is d2l's recipe, from *Dive into Deep Learning* 1.0.3 (English edition, PyTorch; the
version ``make setup`` installs): ``d2l.FashionMNIST(batch_size=128, resize=...)``,
``d2l.Trainer(max_epochs=10)``, the model's ``lr`` with plain SGD (``Classifier.configure_optimizers``)
and ``d2l.init_cnn`` (Xavier-uniform). The section is given with each recipe. d2l does not train
Inception-v3; chapter 6's small version keeps its paper's optimiser in both modes (``V3_PAPER``).

Fast mode is what the book shows and CI re-executes on two CPU cores: every chapter's training
together should take a few minutes, so a run gets some 15 to 60 seconds of one core (each chapter
prints its runs' CPU seconds). It scales what costs time: the width of the network, the image
side, the number of images and epochs; where plain SGD would need more steps than that, it uses
Adam, where d2l's Xavier initialisation starts a deep ReLU network too slowly, He initialisation
(``init="he"``), and where a short run ends too far from a minimum, a learning rate that falls
to zero over the run (``schedule="cosine"``). Each chapter says what
it scaled and why. The fast recipes were tuned on Fashion-MNIST with one thread
(``torch.set_num_threads(1)``, as the chapters do in fast mode): with two threads on two busy
cores, PyTorch's threads wait for each other and the same run took 10 to 15 times longer.

``D2L_PRINTED`` holds the test accuracies that d2l prints. The English 1.0.3 edition only plots
its training curves, so the figures are those of the Chinese edition (zh.d2l.ai, 2.0), whose
settings differ as noted. A network without a printed figure says so; nothing is estimated.

``RECORDED_FULL`` (``full_mode_results.json`` beside this file) holds full-mode accuracies that
``make test-gpu`` measured on a GPU; ``python -m zoolib.runs results/full-mode.jsonl --save``
copies them there. Until then the chapters write "not yet recorded".
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from . import config

__all__ = ["Recipe", "RECIPES", "D2L_PRINTED", "FAST_FLOORS", "CONTRASTS", "FloorError", "recipe", "recorded_full",
           "results_table", "RECORDED_FILE"]

RECORDED_FILE = Path(__file__).with_name("full_mode_results.json")
D2L = "d2l 1.0.3 (English), Sec."


@dataclass(frozen=True)
class Recipe:
    """How one network is trained in one mode."""
    model: str                 # what is trained, in words
    resize: int                # image side
    batch_size: int
    epochs: int
    lr: float
    optimizer: str = "sgd"
    n_train: int | None = None   # None: all 60,000 training images
    n_test: int | None = None    # None: all 10,000 test images
    source: str = ""           # where the settings come from
    momentum: float = 0.0      # SGD only
    init: str = "xavier"       # "xavier": d2l.init_cnn (zoolib.train.init_weights); "he": Kaiming normal for ReLU
    schedule: str = "constant"  # "cosine": the learning rate falls to 0 over the run (zoolib.train.train)
    label_smoothing: float = 0.0
    clip_grad_norm: float | None = None  # rescale gradients whose global norm exceeds this

    def train_options(self) -> dict:
        """The keyword arguments of :func:`zoolib.train.train` that this recipe sets."""
        return {"lr": self.lr, "optimizer": self.optimizer, "momentum": self.momentum,
                "schedule": self.schedule, "label_smoothing": self.label_smoothing,
                "clip_grad_norm": self.clip_grad_norm}

    def as_dict(self) -> dict:
        return asdict(self)


V3_PAPER = "Szegedy et al. 2016, Sec. 8 (d2l does not train Inception-v3)"
RESNET_D2L = "8.6 (ResNet18(lr=0.01)), on the paper's CIFAR network at 28x28"


def _full(model: str, section: str, lr: float, resize: int = 28) -> Recipe:
    return Recipe(model, resize, 128, 10, lr, "sgd", source=f"{D2L} {section}")


RECIPES: dict[str, dict[str, Recipe]] = {
    "lenet": {
        "fast": Recipe("LeNet-5 as d2l builds it (sigmoid)", 28, 128, 3, 1e-2, "adam"),
        "full": _full("LeNet-5 as d2l builds it (sigmoid)", "7.6 (LeNet(lr=0.1))", 0.1),
    },
    "lenet_sgd": {  # the contrast: d2l's optimiser in the fast run's budget
        "fast": Recipe("LeNet-5, d2l's plain SGD (contrast)", 28, 64, 1, 0.1, "sgd", 30_000),
        "full": _full("LeNet-5 as d2l builds it (sigmoid)", "7.6 (LeNet(lr=0.1))", 0.1),
    },
    "alexnet": {
        "fast": Recipe("AlexNet as d2l builds it, 1/4 width, 64x64 (scaled down)", 64, 64, 2, 1e-3, "adam", 20_000, 10_000),
        "full": _full("AlexNet as d2l builds it", "8.1 (AlexNet(lr=0.01))", 0.01, 224),
    },
    "vgg": {
        "fast": Recipe("VGG-11, 1/8 width, dense 512, 32x32 (scaled down)", 32, 64, 2, 2e-3, "adam", 20_000, 10_000,
                       init="he"),
        "full": _full("VGG-11 at 1/4 width, as d2l builds it", "8.2 (VGG(arch=((1, 16), (1, 32), (2, 64), "
                      "(2, 128), (2, 128)), lr=0.01))", 0.01, 224),
    },
    "nin": {
        "fast": Recipe("narrow NiN (nin_cifar layout, 1/8 width, no dropout), 24x24 (scaled down)", 24, 64, 4, 4e-3, "adam",
                       20_000, 10_000, init="he", schedule="cosine"),
        "full": _full("NiN as d2l builds it", "8.3 (NiN(lr=0.05))", 0.05, 224),
    },
    "googlenet": {
        "fast": Recipe("GoogLeNet, 1/4 width, no LRN or dropout, 32x32 (scaled down)", 32, 128, 1, 3e-3, "adam",
                       45_000, init="he"),
        "full": _full("GoogLeNet", "8.4 (GoogleNet(lr=0.01))", 0.01, 96),
    },
    "bn_lenet": {
        "fast": Recipe("LeNet with BN, as d2l builds it (sigmoid)", 28, 64, 2, 0.1, "sgd", 40_000, 2_000,
                       momentum=0.9, schedule="cosine"),
        "full": _full("LeNet with BN, as d2l builds it (sigmoid)", "8.5 (BNLeNet(lr=0.1))", 0.1),
    },
    # He et al. 2015, Sec. 4.2's CIFAR-10 networks: a residual network against its plain twin, equal budgets.
    # Full mode keeps d2l's ResNet settings (d2l trains ResNet-18; these are the paper's CIFAR networks).
    "resnet32": {
        "fast": Recipe("ResNet-32 (He et al. Sec. 4.2), 1/4 width (4-8-16 channels)", 28, 128, 2, 3e-3, "adam",
                       20_000, 10_000, init="he", schedule="cosine"),
        "full": _full("ResNet-32 (He et al. Sec. 4.2)", RESNET_D2L, 0.01),
    },
    # Szegedy et al. 2016, Sec. 8: RMSProp (decay 0.9, epsilon 1.0) at learning rate 0.045 on
    # batches of 32, gradients clipped at norm 2.0, label smoothing 0.1 (Sec. 7). The paper
    # names no momentum; 0.9 is that of Google's released training code (TF-slim's
    # train_image_classifier.py, rmsprop_momentum). d2l does not train
    # Inception-v3, so both modes keep the paper's optimiser; the paper's decay of the rate
    # (x0.94 every two epochs, over 100 epochs) becomes a cosine over these short runs.
    "inception_v3_small": {
        "fast": Recipe("Inception-v3, one module per stage, 1/8 width, 28x28 (scaled down)", 28, 32, 1, 0.045,
                       "rmsprop_tf", 20_000, 10_000, source=V3_PAPER, momentum=0.9, schedule="cosine",
                       label_smoothing=0.1, clip_grad_norm=2.0),
        "full": Recipe("Inception-v3, one module per stage, 1/2 width, 28x28", 28, 32, 10, 0.045,
                       "rmsprop_tf", source=V3_PAPER, momentum=0.9, schedule="cosine",
                       label_smoothing=0.1, clip_grad_norm=2.0),
    },
    "plain32": {
        "fast": Recipe("plain-32, the same layers without shortcuts (contrast)", 28, 128, 2, 3e-3, "adam",
                       20_000, 10_000, init="he", schedule="cosine"),
        "full": _full("plain-32, the same layers without shortcuts", RESNET_D2L, 0.01),
    },
}

D2L_PRINTED: dict[str, str] = {
    "nin": "0.772 (zh.d2l.ai 2.0, Sec. 7.3: lr 0.1, 224x224, 10 epochs)",
    "googlenet": "0.886 (zh.d2l.ai 2.0, Sec. 7.4: lr 0.1, 96x96, 10 epochs)",
    "resnet18": "0.893 (zh.d2l.ai 2.0, Sec. 7.6: lr 0.05, 96x96, 10 epochs)",
    "resnet32": "none: d2l trains ResNet-18, not the paper's CIFAR networks",
    "plain32": "none: d2l trains ResNet-18, not the paper's CIFAR networks",
    "inception_v3_small": "none: d2l does not train Inception-v3",
}


# The course's promise for fast mode on Fashion-MNIST (issue 12): every network a chapter
# presents as trained reaches this test accuracy. Contrast runs, which fail on purpose next to
# a partner that learns, have no floor. `results_table` enforces both.
FAST_FLOORS: dict[str, float] = {
    "lenet": 0.85, "bn_lenet": 0.85, "alexnet": 0.80, "vgg": 0.80, "nin": 0.80,
    "googlenet": 0.75, "resnet32": 0.80, "inception_v3_small": 0.80,
}
CONTRASTS = {"lenet_sgd": "lenet", "plain32": "resnet32"}  # contrast -> the partner that learns


class FloorError(AssertionError):
    """A fast run on Fashion-MNIST ended under the accuracy its chapter promises."""


def recipe(network: str) -> Recipe:
    """The recipe of ``network`` for the current ``ZOO_MODE``."""
    try:
        return RECIPES[network][config.mode()]
    except KeyError:
        raise KeyError(f"no recipe for {network!r}; known: {', '.join(RECIPES)}") from None


def recorded_full(network: str) -> str:
    """The full-mode test accuracy recorded on a GPU, or "not yet recorded"."""
    try:
        runs = json.loads(RECORDED_FILE.read_text())
    except FileNotFoundError:
        runs = {}
    run = runs.get(network)
    if not run:
        return "not yet recorded"
    return f"{run['test_acc']:.3f} ({run.get('device', 'GPU')}, {run.get('date', 'undated')})"


def results_table(rows: dict[str, float], dataset: str):
    """One row per network: this run / full mode recorded on a GPU / d2l's printed figure.

    ``rows`` maps a network (a key of :data:`RECIPES`) to the test accuracy this page measured
    on ``dataset`` (the data bundle's ``name``). In fast mode on Fashion-MNIST, a run under its
    floor (:data:`FAST_FLOORS`) raises :class:`FloorError`, so a chapter that stops learning
    fails its test instead of printing a worse number. A contrast run must come with its partner.
    """
    import pandas as pd

    fast = config.mode() == "fast"
    this = f"this run ({config.mode()} mode, {config.device().type.upper()}, {dataset})"

    def floor(n: str) -> str:
        if n in CONTRASTS:
            return f"none (contrast to {CONTRASTS[n]})"
        return f"{FAST_FLOORS[n]:.2f}" if n in FAST_FLOORS else "none"

    table = pd.DataFrame([{"network": RECIPES[n][config.mode()].model if n in RECIPES else n,
                           this: f"{acc:.3f}",
                           "fast-mode floor": floor(n),
                           "full mode on a GPU": recorded_full(n),
                           "d2l's printed figure": D2L_PRINTED.get(n, "none printed (1.0.3 plots only)")}
                          for n, acc in rows.items()])
    missing = [f"{c} needs its partner {p}" for c, p in CONTRASTS.items() if c in rows and p not in rows]
    if missing:
        raise ValueError("; ".join(missing))
    if fast and dataset == "Fashion-MNIST":
        under = [f"{n}: {acc:.3f} < {FAST_FLOORS[n]:.2f}" for n, acc in rows.items()
                 if n in FAST_FLOORS and acc < FAST_FLOORS[n]]
        if under:
            raise FloorError("under the fast-mode floor on Fashion-MNIST: " + "; ".join(under))
    return table.set_index("network")
