# CNN Zoo. `make book` and `make test` work on a fresh clone: both set up .venv first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM ?= $(shell command -v chromium || echo /usr/bin/chromium)

.PHONY: help setup sandbox postgres browser test test-gpu book bench clean-book

help:
	@echo "make setup     - create/update $(VENV) (idempotent)"
	@echo "make test      - every test on the CPU: unit tests, nbval on every chapter, the book in Chromium"
	@echo "make book      - build the rendered book into _build/html (cached execution)"
	@echo "make bench     - zoolib vs torchvision/timm throughput, then grading speed (nbgrader vs zoograde.batch)"
	@echo "make test-gpu  - every chapter in full mode on CUDA, then the bench on the GPU"

setup: $(STAMP) sandbox

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

# The browser test drives Debian's chromium (Playwright's own browser download needs the network).
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "please install Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

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

test: setup browser postgres
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
	$(BIN)/python -m zoolib.runs results/full-mode.jsonl
	$(BIN)/python -m zoolib.bench --device cuda --csv results/bench-cuda.csv

clean-book:
	rm -rf _build
