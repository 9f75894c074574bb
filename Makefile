# The front door: `make run` and `make test` are all a newcomer needs; both run `make setup` first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SETUP_STAMP := $(VENV)/.werkbrug-setup

.PHONY: setup run test test-unit test-integration test-e2e lint typecheck format bench clean

setup: $(SETUP_STAMP)
	@bash deploy/kafka/fetch-broker.sh

$(SETUP_STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@command -v java >/dev/null || { echo "Java 17 or newer is needed to run Kafka"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

run: setup
	@bash scripts/run.sh

test: setup
	$(BIN)/pytest -q

test-unit: setup
	$(BIN)/pytest -q tests/unit

test-integration: setup
	$(BIN)/pytest -q tests/integration

test-e2e: setup
	$(BIN)/pytest -q tests/e2e

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# `make bench` runs every benchmark; `make bench regions cold-start` only those named.
ifneq ($(filter bench,$(MAKECMDGOALS)),)
BENCH_NAMES := $(filter-out bench,$(MAKECMDGOALS))
.PHONY: $(BENCH_NAMES)
$(BENCH_NAMES):
	@:
endif

bench: setup
	$(BIN)/python -m bench $(BENCH_NAMES)

clean:
	rm -rf var
