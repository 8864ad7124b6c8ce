# Two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
AWSCLI_VENV ?= .venv-awscli
CONFIG ?=
LINTED := $(wildcard monitor tests bench)

# Exact versions and hashes of everything installed: runtime, test and build
# dependencies in one lock, the AWS CLI in its own. `make lock` refreshes both.
LOCK        := requirements.lock
AWSCLI_LOCK := requirements-awscli.lock
UV_VERSION  := 0.13.9
UV_VENV     := .venv-uv
UV          := $(UV_VENV)/bin/uv
# `make lock LOCK_FLAGS=` keeps existing pins and only resolves what changed.
LOCK_FLAGS  ?= --upgrade
UV_COMPILE   = $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(LOCK_FLAGS)

.PHONY: run test lint typecheck bench venv lock clean

# The project goes in without its dependencies (all came from the lock) and without
# build isolation, so its build uses the locked setuptools instead of fetching one.
$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --require-hashes -r $(LOCK)
	$(BIN)/pip install -qq --no-deps --no-build-isolation -e .
	touch $@

# The AWS CLI v1 pins one exact botocore; it lives in its own environment so it
# never fights aiobotocore's botocore range.
$(AWSCLI_VENV)/bin/aws: $(AWSCLI_LOCK)
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/pip install -qq --require-hashes -r $(AWSCLI_LOCK)
	touch $@

venv: $(BIN)/.installed $(AWSCLI_VENV)/bin/aws

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install -qq uv==$(UV_VERSION)

lock: $(UV)
	sed -n '/^\[build-system\]/,/^\[/s/^requires = \[\(.*\)\]/\1/p' pyproject.toml \
		| tr -d '" ' | tr ',' '\n' \
		| $(UV_COMPILE) --extra test -o $(LOCK) pyproject.toml -
	echo awscli | $(UV_COMPILE) -o $(AWSCLI_LOCK) -

run: $(BIN)/.installed
ifeq ($(CONFIG),)
	$(BIN)/cloudfront-invalidation-monitor demo
else
	$(BIN)/cloudfront-invalidation-monitor run --config $(CONFIG)
endif

lint: $(BIN)/.installed
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(BIN)/.installed
	$(BIN)/mypy monitor bench

test: venv lint typecheck
	AWS_CLI=$(abspath $(AWSCLI_VENV))/bin/aws $(BIN)/pytest -q $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(AWSCLI_VENV) $(UV_VENV) .pytest_cache .mypy_cache .ruff_cache state build dist
