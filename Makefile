# CNN Zoo. `make book` and `make test` work on a fresh clone: both set up .venv first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test book bench clean-book help

help:
	@echo "make setup  - create/update $(VENV) (idempotent)"
	@echo "make test   - run every test (CPU)"
	@echo "make book   - build the rendered book into _build/html"
	@echo "make bench  - zoolib vs torchvision/timm throughput on this machine"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

test: setup
	$(BIN)/python -m pytest

book: setup
	$(BIN)/jupyter-book build . -W --keep-going

bench: setup
	$(BIN)/python -m zoolib.bench

clean-book:
	rm -rf _build
