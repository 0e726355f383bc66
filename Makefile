# One-command entry points. Each creates .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The live suite (tests/live) runs a real Triton and a real Prometheus. pytriton needs numpy<2,
# so Triton gets its own venv; Prometheus is Debian's package, run by the tests themselves.
TRITON_VENV  := .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed
PYTRITON     ?= nvidia-pytriton==0.7.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# `make test` fails below this line coverage of inferno: the measured total minus about 2 points
# (measured 94.3% with the live suite, 93.2% without). Raise it when coverage rises; never lower
# it to make a change pass.
COV_MIN ?= 92

.PHONY: demo test quick lint typecheck contracts unit live live-deps prometheus bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/inferno simulate samples/scenarios/demo.yaml --out out/demo

lint: $(STAMP)
	$(BIN)/ruff check inferno tests bench
	$(BIN)/ruff format --check inferno tests bench

# bench/'s scripts are top-level modules named like tests/' packages (emulator, simulate): one
# mypy run each
typecheck: $(STAMP)
	$(BIN)/mypy inferno tests
	$(BIN)/mypy bench

# the import contracts in pyproject.toml ([tool.importlinter]): layers and who imports what
contracts: $(STAMP)
	$(BIN)/lint-imports --no-cache --no-logo

$(TRITON_STAMP):
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TRITON_VENV)/bin/python -m pip install --quiet '$(PYTRITON)'
	touch $(TRITON_STAMP)

prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@prometheus --version 2>&1 | head -1

live-deps: $(TRITON_STAMP) prometheus

# INFERNO_REQUIRE_LIVE=1: a missing Triton or Prometheus fails the live suite instead of skipping it
unit: $(STAMP) live-deps
	INFERNO_REQUIRE_LIVE=1 $(BIN)/pytest -q \
	  --cov=inferno --cov-report=term:skip-covered --cov-fail-under=$(COV_MIN)

test: lint typecheck contracts unit

# the inner loop: ruff, mypy and the fast tests (no live servers, nothing marked slow)
quick: lint typecheck
	$(BIN)/pytest -q -m "not slow" --ignore=tests/live

# the live suite alone, printing what it measured (the numbers in docs/triton.md)
live: $(STAMP) live-deps
	INFERNO_REQUIRE_LIVE=1 $(BIN)/pytest -q -s tests/live

bench: $(STAMP)
	$(BIN)/python bench/solver.py

clean:
	rm -rf $(VENV) $(TRITON_VENV) .mypy_cache .pytest_cache .ruff_cache
