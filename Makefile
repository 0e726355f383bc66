# One-command entry points. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

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

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/solver.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
