# CNN Zoo. `make book` and `make test` work on a fresh clone: both set up .venv first.
SHELL := /bin/bash
# CI runs 3.11; pyproject.toml declares 3.11 to 3.14. The first of these found is used.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3.14 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup fashion-mnist sandbox postgres browser test test-gpu book bench generate clean-book screenshots

help:
	@echo "make setup     - create/update $(VENV) (idempotent)"
	@echo "make test      - every test on the CPU: unit tests, nbval on every chapter, the book in Chromium"
	@echo "make book      - build the rendered book into _build/html (cached execution)"
	@echo "make screenshots - the browser test alone, keeping a full-page screenshot of every page in _build/html/_screenshots"
	@echo "make bench     - zoolib vs torchvision/timm throughput, grading speed (nbgrader vs zoograde.batch), similarity of 300"
	@echo "make test-gpu  - every chapter in full mode on CUDA, then the bench on the GPU"
	@echo "make generate  - rewrite every generated file (assignment notebooks, the book's student pages)"

setup: $(STAMP) sandbox fashion-mnist

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 14) else \
	  f"CNN Zoo needs Python 3.11 to 3.14; {sys.executable} is {sys.version.split()[0]} (set PYTHON=...)")'
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
	@test -f $(FASHION_DIR)/train-images-idx3-ubyte.gz || test -n "$$ZOO_DATA" || { \
	  if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  else echo "note: no Fashion-MNIST in $(FASHION_DIR); install it (sudo apt-get install dataset-fashion-mnist)" \
	    "or put the four *-ubyte.gz files in data/, or the chapters fall back to scikit-learn's digits" >&2; fi; }

# The browser test uses any Chromium it finds (CHROMIUM=..., Debian's, Playwright's): see
# tests/test_book_browser.py. Only as root on Debian, with none found, is Debian's installed;
# elsewhere the test itself fails with a message that says how to get one.
browser: setup
	@$(BIN)/python tests/test_book_browser.py >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else $(BIN)/python tests/test_book_browser.py || true; fi; }

# Grading kernels run in bubblewrap (zoograde.sandbox); grading refuses to start without it.
sandbox:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else echo "note: grading needs bubblewrap (sudo apt-get install bubblewrap); zoo-grade refuses to grade without it" >&2; fi; }

# The class-scale grading tests also run against a throwaway PostgreSQL cluster (tests/postgres.py).
PG_BIN ?= $(firstword $(wildcard /usr/lib/postgresql/*/bin))
postgres:
	@test -n "$(PG_BIN)" || command -v initdb >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "please install PostgreSQL for the grading tests: sudo apt-get install postgresql" >&2; exit 1; fi; }

test: setup fashion-mnist browser postgres
	$(BIN)/python -m pytest

# Jupyter Book runs out-of-date chapters one at a time; execute_chapters.py runs them side by
# side (one kernel per core) into the same jupyter-cache first, so the build only renders.
book: setup fashion-mnist
	$(BIN)/python book/_ext/execute_chapters.py
	$(BIN)/jupyter-book build . -W --keep-going

# The book's browser test alone, with a full-page screenshot of every page (make test skips the pictures:
# no assertion reads them, and they cost about 30 s).
screenshots: setup fashion-mnist browser
	ZOO_SCREENSHOTS=1 $(BIN)/python -m pytest tests/test_book_browser.py -n 0 -p no:cacheprovider

# Grading: plain sequential `nbgrader autograde` vs zoograde.batch on 40 notebooks (several minutes);
# the numbers are appended to results/bench-grading.csv. nbgrader runs `alembic` from the PATH.
bench: setup
	$(BIN)/python -m zoolib.bench
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m zoograde.bench
	$(BIN)/python -m zoograde.synthetic --time 300

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

# Generated files, all committed: autograder/assignments/<name>.py -> autograder/source/<name>/<name>.ipynb
# (zoograde.sources) -> the student version in book/assignments/<name>.ipynb (zoograde.pages). The tests
# fail with "run `make generate`" when one is stale.
generate: setup
	cd autograder && ../$(BIN)/python -m zoograde.sources
	cd autograder && ../$(BIN)/python -m zoograde.pages

clean-book:
	rm -rf _build
