# Everything runs in a virtual environment this Makefile creates; `make demo` and `make test` work on a
# fresh machine with Python 3.10+ (and the database servers, for the PostgreSQL and MariaDB tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tenantkit-installed

.PHONY: demo test test-sqlite lint typecheck docs bench check clean mutation

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## Run the end-to-end demo on an embedded SQLite database.
	$(BIN)/python examples/demo.py

test: $(STAMP)  ## Run the whole test suite (SQLite, PostgreSQL and MariaDB).
	$(BIN)/python -m pytest

test-sqlite: $(STAMP)  ## Run the suite on SQLite alone.
	TENANTKIT_TEST_DIALECTS=sqlite $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks tools
	$(BIN)/ruff format --check src tests examples benchmarks tools

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

check: lint typecheck docs test

# Slow (minutes), so not part of `make check`: see docs/contributing.md. MUTATION_ARGS passes options, e.g.
# MUTATION_ARGS="tokens --sample 20" or "--no-cache".
MUTATION_ARGS ?=
mutation: $(STAMP)  ## Mutation testing of the security-critical modules: >= 90 % of mutants killed each.
	nice -n 15 $(BIN)/python tools/mutate.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache .hypothesis .mutation-cache
