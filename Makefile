# Developer entry points. `make test` and `make demo` set up their own virtualenv (.venv).
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGE := airflow_provider_gradient
SRC := $(PACKAGE) tests example_dags benchmarks docs/hooks

# find_python(X.Y): a Python X.Y that runs, found by uv (`uv python find`), on PATH (pythonX.Y), or
# among pyenv's installed versions; empty when there is none.
find_python = $(firstword $(foreach candidate,\
	$(shell uv python find $(1) 2>/dev/null) \
	$(shell command -v python$(1) 2>/dev/null) \
	$(shell pyenv prefix $$(pyenv latest $(1) 2>/dev/null) 2>/dev/null | sed 's|$$|/bin/python|'),\
	$(shell $(candidate) -c 'import sys; assert "%d.%d" % sys.version_info[:2] == "$(1)"' 2>/dev/null && echo $(candidate))))
PYTHON ?= python3

# --- The tested versions -----------------------------------------------------------------------
# constraints/pyX.Y.txt pins every package `.venv` installs (the package's dependencies and every
# extra: test tools, docs, bench), one file per supported Python, as Airflow's own constraints
# files do. `make venv` installs through the file of the venv's Python; `make upgrade-deps`
# re-resolves them all with the newest releases pyproject.toml allows; `make test-newest` runs the
# unit suite on unpinned newest versions, so drift shows before the files are refreshed.
LOCK_PYTHONS := 3.10 3.11 3.12 3.13
LOCKS := $(foreach version,$(LOCK_PYTHONS),constraints/py$(version).txt)
VENV_PY_VERSION = $$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCKS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip -q
	@lock=constraints/py$(VENV_PY_VERSION).txt; test -f $$lock || { echo "$$lock: no tested versions for this Python (supported: $(LOCK_PYTHONS)); use PYTHON=python3.X"; exit 1; }
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints/py$(VENV_PY_VERSION).txt uv
	$(BIN)/python -m uv pip install -q --python $(BIN)/python -c constraints/py$(VENV_PY_VERSION).txt -e ".[test]"
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv with the package and its test tools, at the versions of constraints/

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
	rm -rf $(VENV) .venv-oldest .venv-newest .pytest_cache .mypy_cache .ruff_cache build dist

.PHONY: system-test
system-test: $(STAMP) ## Real multi-process Airflow + PostgreSQL + emulator system tests (tests/system, 7-10 min; CI runs it)
	$(BIN)/pytest tests/system -m system -p no:cacheprovider

.PHONY: system-test-celery
system-test-celery: $(STAMP) ## The CeleryExecutor system tests: Redis, 2 workers, 3 triggerers, 2 tokens (tests/system/celery; CI runs it)
	$(BIN)/python -m uv pip install -q --python $(BIN)/python -c constraints/py$(VENV_PY_VERSION).txt -e ".[test,celery]"
	$(BIN)/pytest tests/system/celery -m system_celery -p no:cacheprovider -rP

# --- Oldest supported versions -----------------------------------------------------------------
# Python 3.10 and the lowest release of every direct dependency that pyproject.toml allows
# (apache-airflow 3.0.0, common-compat 1.20, aiohttp 3.10, tenacity 8.3, ...), picked by uv's
# lowest-direct resolution: the declared floors are installed and tested, not guessed. The test
# tools then come at their normal versions. The DAG-run tests (a metadata DB, dag.test) and the
# UI tests are left to `make test`.
OLDEST_VENV ?= .venv-oldest
OLDEST_PYTHON ?= $(or $(call find_python,3.10),python3.10)
# The docs (built and rendered: signatures print differently across versions), the release artifacts,
# a DAG run (OpenLineage) and the check that .venv holds the locked versions stay in `make test`.
OLDEST_SKIP := tests/test_docs_build.py tests/test_docs_pages.py tests/test_openlineage.py tests/test_release.py \
	tests/test_constraints.py
OLDEST_TESTS ?= $(filter-out $(OLDEST_SKIP),$(wildcard tests/test_*.py)) tests/hooks tests/operators tests/sensors tests/triggers tests/links
OLDEST_PYTEST_ARGS ?= -m "not airflow_db and not system and not ui"
OLDEST_STAMP := $(OLDEST_VENV)/.installed-stamp
# Warnings are errors in the suite, so that deprecations in the versions users install today
# surface (make test, make test-newest); the oldest releases' own deprecation warnings (Airflow 3.0
# warns about its own moved classes) are theirs, long since resolved, and are not errors here.
OLDEST_DEPRECATIONS := -W ignore::DeprecationWarning

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
	$(OLDEST_VENV)/bin/pytest -p no:cacheprovider $(OLDEST_DEPRECATIONS) $(OLDEST_PYTEST_ARGS) $(OLDEST_TESTS)

# --- Newest versions ---------------------------------------------------------------------------
# The newest supported Python and the newest release of everything (no constraints), re-resolved on
# every run: what a user installing today gets. The same unit suite as `make test-oldest`.
NEWEST_VENV ?= .venv-newest
NEWEST_PYTHON ?= $(or $(call find_python,3.13),$(PYTHON))

.PHONY: test-newest
test-newest: ## Unit suite on the newest Python and the newest releases of every dependency (unlocked)
	test -x $(NEWEST_VENV)/bin/python || $(NEWEST_PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install -q --disable-pip-version-check --upgrade uv
	$(NEWEST_VENV)/bin/python -m uv pip install -q --python $(NEWEST_VENV)/bin/python --upgrade -e ".[test]"
	@$(NEWEST_VENV)/bin/python -c 'import sys, airflow; print(f"newest: Python {sys.version.split()[0]}, Airflow {airflow.__version__}")'
	$(NEWEST_VENV)/bin/pytest -p no:cacheprovider $(OLDEST_PYTEST_ARGS) $(OLDEST_TESTS)

.PHONY: upgrade-deps
upgrade-deps: $(STAMP) ## Re-resolve constraints/pyX.Y.txt with the newest releases pyproject.toml allows
	$(MAKE) lock LOCK_ARGS=--upgrade
	@echo "Refreshed $(LOCKS). Run make clean test to try them."

.PHONY: lock
lock: $(STAMP) ## Re-resolve constraints/pyX.Y.txt after a pyproject.toml change, keeping the pins it allows
	for version in $(LOCK_PYTHONS); do \
		$(BIN)/python -m uv pip compile pyproject.toml --all-extras $(LOCK_ARGS) --quiet \
			--python-version $$version --python-platform linux --no-annotate \
			--custom-compile-command "make upgrade-deps" -o constraints/py$$version.txt || exit 1; \
	done

.PHONY: docs
docs: $(STAMP) ## Build the documentation site into site/ (mkdocs --strict: warnings are errors)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

.PHONY: docs-render
docs-render: $(STAMP) ## Write what the docs pages show from the code (examples, parameters, API) into them
	$(BIN)/python docs/hooks/gradient_docs.py

.PHONY: docs-serve
docs-serve: $(STAMP) ## Serve the documentation site at http://127.0.0.1:8000, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# --- Release artifacts -------------------------------------------------------------------------
.PHONY: dist
dist: $(STAMP) ## Build the sdist and the wheel (from the sdist) into dist/
	rm -rf dist
	$(BIN)/python -m build --installer uv --outdir dist .
	@ls -l dist

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks (~60 min, 2 cores) and render docs/performance.md from their results
	$(BIN)/python -m uv pip install -q --python $(BIN)/python -c constraints/py$(VENV_PY_VERSION).txt -e ".[test,bench]"
	$(BIN)/python benchmarks/bench_emulator.py
	$(BIN)/python benchmarks/bench_parse.py
	$(BIN)/python benchmarks/bench_ratelimit.py
	$(BIN)/python benchmarks/bench_fleet.py
	$(BIN)/python benchmarks/bench_overhead.py
	$(BIN)/python benchmarks/report.py
