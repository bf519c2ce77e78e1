# The two set-up commands: `make serve` and `make test`. Both create .venv on first use.
# `make serve` installs the runtime dependencies only; `make test` adds the dev/test extras.
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed
STAMP := $(VENV)/.installed-dev

.PHONY: serve test lint bench-ingest bench-authorize bench-history

$(BIN)/python:
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(RUNTIME) $(STAMP)

serve: $(RUNTIME)
	$(BIN)/creditgate serve

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

test: lint
	$(BIN)/pytest

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

bench-authorize: $(STAMP)
	$(BIN)/python bench/authorize.py

# 10 M usage events over 10,000 accounts (seeded by COPY); EVENTS=1000000 for a quick run
bench-history: $(STAMP)
	$(BIN)/python bench/history.py $(if $(EVENTS),--events $(EVENTS))
