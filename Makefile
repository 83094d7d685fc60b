# log-exporter: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2
# make deploy: the stack, the config packaged with the function, optionally an S3 object to read,
# and more template parameters, e.g. PARAMETERS='WorkerConcurrency=100 Schedule="rate(30 minutes)"'
STACK ?= log-exporter
CONFIG ?= config.yml
CONFIG_OBJECT ?=
SAM ?= sam
LAMBDA_BUILD := .build/lambda

.PHONY: setup demo test lint typecheck unit e2e bench soak clean cfn-lint deploy

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup  ## run log-exporter against the local emulator and show the archive
	$(PY) -m emulator.demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

cfn-lint: setup  ## the SAM template and the member role template, offline
	$(BIN)/cfn-lint template.yaml deploy/member-role.yaml

test: lint typecheck cfn-lint  ## lint, type checks and the whole test suite
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

unit: setup
	$(BIN)/pytest -q tests/unit

e2e: setup
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests/e2e

SOAK_TRIALS ?= 200
soak: setup  ## the fault-injection suite, long: SOAK_TRIALS (200) seeded SIGKILL trials, tally printed
	LOG_EXPORTER_FAULT_TRIALS=$(SOAK_TRIALS) $(BIN)/pytest -q -s --timeout 3600 tests/faults/test_kill.py
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests/faults --deselect tests/faults/test_kill.py

deploy: setup  ## package CONFIG with the functions and deploy template.yaml with the SAM CLI
	@command -v $(SAM) >/dev/null 2>&1 || { echo "make deploy needs the AWS SAM CLI (sam): pip install aws-sam-cli" >&2; exit 2; }
	$(PY) deploy/stage.py --config $(CONFIG) --out $(LAMBDA_BUILD) --parameters .build/parameters.txt $(if $(CONFIG_OBJECT),--config-object $(CONFIG_OBJECT))
	$(SAM) build --template-file template.yaml $(SAM_BUILD_ARGS)
	$(SAM) deploy --stack-name $(STACK) --resolve-s3 --capabilities CAPABILITY_IAM \
	  --no-fail-on-empty-changeset --parameter-overrides $$(cat .build/parameters.txt) $(PARAMETERS) $(SAM_DEPLOY_ARGS)

bench: setup  ## speed figures against the emulator (not a test)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo .build .aws-sam
