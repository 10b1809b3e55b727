# CNN Zoo. `make book` and `make test` work on a fresh clone: both set up .venv first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM ?= $(shell command -v chromium || echo /usr/bin/chromium)

.PHONY: help setup fashion-mnist browser test test-gpu book bench clean-book

help:
	@echo "make setup     - create/update $(VENV) (idempotent)"
	@echo "make test      - every test on the CPU: unit tests, nbval on every chapter, the book in Chromium"
	@echo "make book      - build the rendered book into _build/html (cached execution)"
	@echo "make bench     - zoolib vs torchvision/timm throughput, then grading speed (nbgrader vs zoograde.batch)"
	@echo "make test-gpu  - every chapter in full mode on CUDA, then the bench on the GPU"

setup: $(STAMP) fashion-mnist

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@# d2l 1.0.3 hard-pins numpy 1.23.5, matplotlib 3.7.2, pandas 2.0.3, scipy 1.10.1 and requests,
	@# which no longer install on current Pythons (d2l-ai/d2l-en#2608, #2638). Installed without them,
	@# `import d2l.torch` works with ours: what it imports (torch, torchvision, numpy, pandas,
	@# matplotlib, matplotlib-inline, IPython, requests) comes with '.[dev]' (tests/test_d2l.py checks).
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps 'd2l==1.0.3'
	@touch $@

# The real Fashion-MNIST, offline: Debian's dataset-fashion-mnist puts the four original
# *-ubyte.gz files in $(FASHION_DIR) (zoolib.data looks there after ZOO_DATA and data/).
FASHION_DIR := /usr/share/datasets/fashion-mnist
fashion-mnist:
	@test -f $(FASHION_DIR)/train-images-idx3-ubyte.gz || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  else echo "note: no Fashion-MNIST in $(FASHION_DIR); install it (sudo apt-get install dataset-fashion-mnist)" \
	    "or put the four *-ubyte.gz files in data/, or the chapters fall back to scikit-learn's digits" >&2; fi; }

# The browser test drives Debian's chromium (Playwright's own browser download needs the network).
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "please install Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

test: setup browser
	$(BIN)/python -m pytest

book: setup
	$(BIN)/jupyter-book build . -W --keep-going

# Grading: plain sequential `nbgrader autograde` vs zoograde.batch on 40 notebooks (several minutes);
# the numbers are appended to results/bench-grading.csv. nbgrader runs `alembic` from the PATH.
bench: setup
	$(BIN)/python -m zoolib.bench
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m zoograde.bench

# Full mode on CUDA: the chapters train the real recipes (outputs differ from the stored
# fast-mode ones, so nbval checks that every cell runs, not what it prints); every training
# run is logged to results/full-mode.jsonl and summarised at the end.
test-gpu: setup
	@$(BIN)/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'make test-gpu needs CUDA')"
	@mkdir -p results && rm -f results/full-mode.jsonl
	ZOO_MODE=full ZOO_RECORD=$(CURDIR)/results/full-mode.jsonl $(BIN)/python -m pytest notebooks \
	  --nbval-lax --nbval-cell-timeout=3600 -p no:cacheprovider
	$(BIN)/python -m zoolib.runs results/full-mode.jsonl --save
	$(BIN)/python -m zoolib.bench --device cuda --csv results/bench-cuda.csv

clean-book:
	rm -rf _build
