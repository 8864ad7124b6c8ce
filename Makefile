# Two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
AWSCLI_VENV ?= .venv-awscli
CONFIG ?=
LINTED := $(wildcard monitor tests bench)

.PHONY: run test lint typecheck bench venv clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[test]'
	touch $@

# The AWS CLI v1 pins one exact botocore; it lives in its own environment so it
# never fights aiobotocore's botocore range.
$(AWSCLI_VENV)/bin/aws:
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/pip install -qq awscli

venv: $(BIN)/.installed $(AWSCLI_VENV)/bin/aws

run: $(BIN)/.installed
ifeq ($(CONFIG),)
	$(BIN)/cloudfront-invalidation-monitor demo --config config/demo.yaml
else
	$(BIN)/cloudfront-invalidation-monitor run --config $(CONFIG)
endif

lint: $(BIN)/.installed
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(BIN)/.installed
	$(BIN)/mypy monitor

test: venv lint typecheck
	AWS_CLI=$(abspath $(AWSCLI_VENV))/bin/aws $(BIN)/pytest -q $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(AWSCLI_VENV) .pytest_cache .mypy_cache .ruff_cache state
