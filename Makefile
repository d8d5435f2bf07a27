# Developer entry points. `make test` and `make demo` set up their own virtualenv (.venv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGE := airflow_provider_gradient
SRC := $(PACKAGE) tests example_dags benchmarks

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip -q
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/python -m uv pip install -q --python $(BIN)/python -e ".[test]"
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv with the package and its test tools

.PHONY: lint
lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)

.PHONY: type
type: $(STAMP) ## mypy (strict) on the package
	$(BIN)/mypy

.PHONY: unit
unit: $(STAMP) ## The test suite only
	$(BIN)/pytest

.PHONY: test
test: lint type unit ## Lint, type-check and run every test

.PHONY: format
format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix $(SRC)
	$(BIN)/ruff format $(SRC)

.PHONY: demo
demo: $(STAMP) ## Run the example DAGs against the embedded Gradient API emulator
	$(BIN)/python -m $(PACKAGE).testing.demo

.PHONY: emulator
emulator: $(STAMP) ## Start the Gradient API emulator in the foreground
	$(BIN)/python -m $(PACKAGE).testing.emulator --port 8765

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist

.PHONY: system-test
system-test: $(STAMP) ## Real multi-process Airflow + PostgreSQL + emulator system tests (tests/system, ~10 min)
	$(BIN)/pytest tests/system -m system -p no:cacheprovider
