# metricbatch — every target installs what it needs itself (fresh machine: Python 3.11, Node 20, make).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1
ENVS := dev staging prod

.PHONY: setup lint format test test-fast test-node node-build demo synth bench soak clean

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# The Node producer (clients/node): pinned by its package-lock.json, installed with npm ci, built with tsc.
NODE_CLIENT := clients/node
NODE_SOURCES := $(wildcard $(NODE_CLIENT)/src/*.ts) $(NODE_CLIENT)/tsconfig.json $(NODE_CLIENT)/package.json

$(NODE_CLIENT)/node_modules/.installed: $(NODE_CLIENT)/package-lock.json
	cd $(NODE_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(NODE_CLIENT)/dist/index.js: $(NODE_CLIENT)/node_modules/.installed $(NODE_SOURCES)
	cd $(NODE_CLIENT) && npm run --silent build
	touch $@

node-build: $(NODE_CLIENT)/dist/index.js

setup: $(BIN)/.installed node_modules/.installed node-build

lint: $(BIN)/.installed $(NODE_CLIENT)/node_modules/.installed
	cd $(NODE_CLIENT) && npm run --silent lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy metricbatch lambdas infra app.py benchmarks
	# Each test tier on its own: their conftest/support modules are top-level modules for pytest (tests/vectors: data).
	for tier in tests/*/; do ls $$tier*.py >/dev/null 2>&1 || continue; $(BIN)/mypy $$tier || exit 1; done

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# node:test unit tests of the Node producer (type-checked and compiled with its tests first).
test-node: node-build
	cd $(NODE_CLIENT) && npm test --silent

test: setup lint test-node
	$(BIN)/pytest

test-fast: $(BIN)/.installed
	$(BIN)/pytest tests/unit tests/functional -q

demo: $(BIN)/.installed
	$(BIN)/metricbatch demo

# cdk.json runs `python3 app.py`: the venv's python3 must come first on PATH.
synth: setup
	for env in $(ENVS); do PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth -q -c env=$$env -o cdk.out/$$env || exit 1; done

bench: $(BIN)/.installed node-build
	$(BIN)/python -m benchmarks

soak: $(BIN)/.installed
	$(BIN)/python -m benchmarks.soak

clean:
	rm -rf $(VENV) node_modules cdk.out .mypy_cache .ruff_cache .pytest_cache $(NODE_CLIENT)/node_modules $(NODE_CLIENT)/dist $(NODE_CLIENT)/build
