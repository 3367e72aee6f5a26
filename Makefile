# metricbatch — every target installs what it needs itself (fresh machine: Python 3.11, Node 20, make).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1
ENVS := dev staging prod
CHECKOV_VENV := .venv-checkov

# Deploying one environment: make deploy ENV=prod [CONTEXT="-c encryption_key=kms"] [DEPLOY_ARGS=...]
ENV ?= dev
CONTEXT ?=
DEPLOY_ARGS ?=
# cdk.json runs `python3 app.py`: the venv's python3 must come first on PATH.
CDK := PATH="$(CURDIR)/$(BIN):$$PATH" npx --no-install cdk
ASSEMBLY = cdk.out/$(ENV)
SYNTH_COMMAND = $(CDK) synth --quiet -c env=$(ENV) $(CONTEXT) -o $(ASSEMBLY)
VALIDATE_COMMAND = $(BIN)/python -m infra.validate $(ASSEMBLY)
# Deploys the assembly just synthesized and validated, not a second synth of the same sources.
DEPLOY_COMMAND = $(CDK) deploy --app $(ASSEMBLY) $(DEPLOY_ARGS)
DIFF_COMMAND = $(CDK) diff --app $(ASSEMBLY)

.PHONY: setup lint format test test-fast demo synth validate assembly deploy diff deploy-dry-run lambda-deps \
	test-node node-build bench soak clean package-env

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins packages that clash with requirements-dev.txt: its own venv.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

# The batcher's pinned dependencies for Python 3.13 on arm64, built once per content of requirements.txt into
# build/lambda-deps/<digest>/; every synth copies them into the function's package (infra/artifact.py).
lambda-deps: $(BIN)/.installed
	$(BIN)/python -m infra.artifact build-deps


# The Node producer (clients/node): pinned by its package-lock.json, installed with npm ci, built with tsc.
NODE_CLIENT := clients/node
NODE_SOURCES := $(wildcard $(NODE_CLIENT)/src/*.ts) $(wildcard $(NODE_CLIENT)/tsconfig*.json) $(NODE_CLIENT)/package.json

$(NODE_CLIENT)/node_modules/.installed: $(NODE_CLIENT)/package-lock.json
	cd $(NODE_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(NODE_CLIENT)/dist/esm/index.js: $(NODE_CLIENT)/node_modules/.installed $(NODE_SOURCES)
	cd $(NODE_CLIENT) && npm run --silent build
	touch $@

node-build: $(NODE_CLIENT)/dist/esm/index.js

setup: $(BIN)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed lambda-deps node-build

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

# node:test unit tests of the Node producer (type-checked and compiled with its tests first), then the packed
# package's exports and types under every resolution (@arethetypeswrong/cli --pack) and publint.
test-node: node-build
	cd $(NODE_CLIENT) && npm test --silent
	cd $(NODE_CLIENT) && npm run --silent check-package

# The packages as users install them, outside the repository (README "Install"): the wheel and sdist, a fresh venv
# with only the wheel's declared dependencies (at requirements.txt's versions), and one Node app with the packed
# tarball. tests/e2e/test_installed_packages.py runs the README's quick starts there (METRICBATCH_PACKAGE_ENV).
PACKAGE_ENV ?= $(or $(TMPDIR),/tmp)/metricbatch-package-env-$(shell printf '%s' '$(CURDIR)' | cksum | cut -d' ' -f1)
export METRICBATCH_PACKAGE_ENV := $(PACKAGE_ENV)
package-env: $(BIN)/.installed node-build
	rm -rf $(PACKAGE_ENV) && mkdir -p $(PACKAGE_ENV)/dist $(PACKAGE_ENV)/node-app
	$(BIN)/python -m build --outdir $(PACKAGE_ENV)/dist . >$(PACKAGE_ENV)/build.log 2>&1 || (cat $(PACKAGE_ENV)/build.log; exit 1)
	cd $(NODE_CLIENT) && npm pack --silent --pack-destination $(PACKAGE_ENV)/dist >/dev/null
	$(PYTHON) -m venv $(PACKAGE_ENV)/venv
	# env -u PYTHONPATH: only what the venv holds counts as installed (not this repository or its egg-info)
	env -u PYTHONPATH $(PACKAGE_ENV)/venv/bin/python -m pip install --quiet --disable-pip-version-check \
		-c requirements.txt \
		$(PACKAGE_ENV)/dist/metricbatch-*.whl
	cd $(PACKAGE_ENV)/node-app && printf '{"name": "app", "private": true}\n' >package.json && \
		npm install --no-audit --no-fund --loglevel=error @aws-sdk/client-sqs@^3 ../dist/metricbatch-*.tgz

# The deploy dry run proves the deploy command line without credentials: synth and validate prod, print the rest.
test: setup lint test-node package-env
	$(MAKE) --no-print-directory deploy-dry-run ENV=prod
	$(BIN)/pytest

test-fast: $(BIN)/.installed
	$(BIN)/pytest tests/unit tests/functional -q

# The batcher runs as Lambda runs it: the dev stack's package, synthesized here (~10 s), under AWS's runtime client.
demo: $(BIN)/.installed node_modules/.installed lambda-deps
	$(CDK) synth --quiet -c env=dev -o cdk.out/dev
	$(BIN)/metricbatch demo --assembly cdk.out/dev

synth: setup
	for env in $(ENVS); do $(CDK) synth --quiet -c env=$$env -o cdk.out/$$env || exit 1; done

# cfn-lint and checkov over the three environments' templates.
validate: synth
	$(BIN)/python -m infra.validate $(addprefix cdk.out/,$(ENVS))

# One environment's cloud assembly in cdk.out/$(ENV), synthesized and validated: what deploy and diff use.
assembly: setup
	$(SYNTH_COMMAND)
	$(VALIDATE_COMMAND)

# Needs credentials and a bootstrapped account/region (npx cdk bootstrap, once; see README "Deploy").
deploy: assembly
	$(DEPLOY_COMMAND)

diff: assembly
	$(DIFF_COMMAND)

# No credentials needed: everything deploy does before it talks to AWS, then the command it would run.
deploy-dry-run: assembly
	@echo "make deploy ENV=$(ENV) would now run:"
	@echo '  $(DEPLOY_COMMAND)'

bench: $(BIN)/.installed lambda-deps node-build
	$(BIN)/python -m benchmarks

soak: $(BIN)/.installed
	$(BIN)/python -m benchmarks.soak

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules cdk.out build .mypy_cache .ruff_cache .pytest_cache \
		$(NODE_CLIENT)/node_modules $(NODE_CLIENT)/dist $(NODE_CLIENT)/build $(PACKAGE_ENV) metricbatch.egg-info
