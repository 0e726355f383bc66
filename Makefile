# One-command entry points. Both create .venv on first use.
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

.PHONY: demo test lint typecheck unit live live-deps prometheus bench clean

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

typecheck: $(STAMP)
	$(BIN)/mypy inferno

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
	INFERNO_REQUIRE_LIVE=1 $(BIN)/pytest -q

test: lint typecheck unit

# the live suite alone, printing what it measured (the numbers in docs/triton.md)
live: $(STAMP) live-deps
	INFERNO_REQUIRE_LIVE=1 $(BIN)/pytest -q -s tests/live

bench: $(STAMP)
	$(BIN)/python bench/solver.py

clean:
	rm -rf $(VENV) $(TRITON_VENV) .mypy_cache .pytest_cache .ruff_cache
