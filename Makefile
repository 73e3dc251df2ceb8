# The two commands of the README: `make serve` and `make test`.
# Both build .venv from nothing with only python3; a stamp file keeps reinstalls to when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tody-installed
DEV_STAMP := $(VENV)/.tody-dev-installed
PYTEST_WORKERS ?= auto
# Tinybird's own clients for the compatibility tests (tests/compat), in a virtualenv of their own:
# never a dependency of tody, always the versions the compatibility contract was written against.
COMPAT := .venv-compat
COMPAT_STAMP := $(COMPAT)/.tody-compat-installed
COMPAT_CLIENTS := tinybird-cli==6.5.5 verdin==0.5.3 tinybird-python-sdk==0.3.7

.PHONY: serve test lint bench clean compat-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

$(COMPAT_STAMP):
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT)/bin/python -m pip install --quiet $(COMPAT_CLIENTS)
	touch $@

compat-venv: $(COMPAT_STAMP)

serve: $(STAMP)
	$(BIN)/tody serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint $(COMPAT_STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS)

bench: $(STAMP)
	$(BIN)/python bench/query_overhead.py

clean:
	rm -rf $(VENV) $(COMPAT) tody-data .pytest_cache
