# The two commands of the README: `make serve` and `make test`.
# Both build .venv from nothing with only python3; a stamp file keeps reinstalls to when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tody-installed
DEV_STAMP := $(VENV)/.tody-dev-installed
PYTEST_WORKERS ?= auto

.PHONY: serve test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

serve: $(STAMP)
	$(BIN)/tody serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS)

bench: $(STAMP)
	$(BIN)/python bench/query_overhead.py

clean:
	rm -rf $(VENV) tody-data .pytest_cache
