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

.PHONY: bench-check
bench-check: $(STAMP) ## Fail if docs/performance.md differs from what benchmarks/results/ renders
	$(BIN)/python benchmarks/report.py --check

.PHONY: test
test: lint type bench-check unit ## Lint, type-check, check docs/performance.md and run every test

.PHONY: mutation
mutation: $(STAMP) ## Mutation run (mutmut) over the decision code, ~20 min; not part of make test (docs/testing.md)
	$(BIN)/python -m uv pip install -q --python $(BIN)/python "mutmut==3.8.1"
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 $(MUTATION_TARGETS)
	$(BIN)/mutmut results

#: The decision code: the job outcome, the start reconciliation, the wait events and the request budget.
MUTATION_TARGETS := "airflow_provider_gradient.models.x_classify*" \
	"airflow_provider_gradient.hooks.gradient.xǁGradientHookǁfind_started_job*" \
	"airflow_provider_gradient._outcome.*" "airflow_provider_gradient.hooks._budget.*"

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
system-test: $(STAMP) ## Real multi-process Airflow + PostgreSQL + emulator system tests (tests/system, 7-10 min; CI runs it)
	$(BIN)/pytest tests/system -m system -p no:cacheprovider

# --- Oldest supported versions -----------------------------------------------------------------
# Python 3.10 and the lowest release of every direct dependency that pyproject.toml allows
# (apache-airflow 3.0.0, common-compat 1.20, aiohttp 3.10, tenacity 8.3, ...), picked by uv's
# lowest-direct resolution: the declared floors are installed and tested, not guessed. The test
# tools then come at their normal versions. The DAG-run tests (a metadata DB, dag.test) and the
# UI tests are left to `make test`.
OLDEST_VENV ?= .venv-oldest
OLDEST_PYTHON ?= $(firstword $(wildcard /root/.pyenv/versions/3.10.*/bin/python) $(shell command -v python3.10) python3)
# The docs build, the release artifacts and a DAG run (OpenLineage) stay in `make test`.
OLDEST_SKIP := tests/test_docs_build.py tests/test_openlineage.py tests/test_release.py
OLDEST_TESTS ?= $(filter-out $(OLDEST_SKIP),$(wildcard tests/test_*.py)) tests/hooks tests/operators tests/sensors tests/triggers tests/links
OLDEST_PYTEST_ARGS ?= -m "not airflow_db and not system and not ui"
OLDEST_STAMP := $(OLDEST_VENV)/.installed-stamp

$(OLDEST_STAMP): pyproject.toml
	rm -rf $(OLDEST_VENV)
	$(OLDEST_PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --disable-pip-version-check uv
	$(OLDEST_VENV)/bin/python -m uv pip install -q --python $(OLDEST_VENV)/bin/python --resolution lowest-direct -e .
	$(OLDEST_VENV)/bin/python -m uv pip install -q --python $(OLDEST_VENV)/bin/python -e ".[test]"
	@touch $@

.PHONY: test-oldest
test-oldest: $(OLDEST_STAMP) ## Unit suite on Python 3.10 with the lowest supported Airflow and dependencies
	@$(OLDEST_VENV)/bin/python -c 'import sys, airflow; print(f"oldest: Python {sys.version.split()[0]}, Airflow {airflow.__version__}")'
	$(OLDEST_VENV)/bin/pytest -p no:cacheprovider $(OLDEST_PYTEST_ARGS) $(OLDEST_TESTS)

.PHONY: docs
docs: $(STAMP) ## Build the documentation site into site/ (mkdocs --strict: warnings are errors)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# --- Release artifacts -------------------------------------------------------------------------
.PHONY: dist
dist: $(STAMP) ## Build the sdist and the wheel (from the sdist) into dist/
	rm -rf dist
	$(BIN)/python -m build --installer uv --outdir dist .
	@ls -l dist

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks (~25 min, 2 cores) and render docs/performance.md from their results
	$(BIN)/python -m uv pip install -q --python $(BIN)/python -e ".[test,bench]"
	$(BIN)/python benchmarks/bench_emulator.py
	$(BIN)/python benchmarks/bench_parse.py
	$(BIN)/python benchmarks/bench_ratelimit.py
	$(BIN)/python benchmarks/bench_fleet.py
	$(BIN)/python benchmarks/bench_overhead.py
	$(BIN)/python benchmarks/report.py
