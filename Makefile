# Everything runs in a virtual environment this Makefile creates; `make demo` and `make test` work on a
# fresh machine with Python 3.10+ (and the database servers, for the PostgreSQL and MariaDB tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tenantkit-installed

.PHONY: demo test test-sqlite lint typecheck verifytypes wheels docs bench check clean mutation screenshots translations

# Each step says what it does first, and pip shows its progress: the first run takes a minute or more.
$(STAMP): pyproject.toml
	@echo "==> creating the virtual environment $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip in $(VENV)"
	$(BIN)/python -m pip install --upgrade --progress-bar on pip
	@echo "==> installing tenantkit (editable) with its dev tools: pytest, mypy, ruff, pyright, FastAPI, Flask, drivers"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@echo "==> $(VENV) is ready"
	touch $(STAMP)

demo: $(STAMP)  ## Run the end-to-end demo on an embedded SQLite database.
	$(BIN)/python examples/demo.py

test: $(STAMP)  ## Run the whole test suite (SQLite, PostgreSQL and MariaDB).
	$(BIN)/python -m pytest

test-sqlite: $(STAMP)  ## Run the suite on SQLite alone.
	TENANTKIT_TEST_DIALECTS=sqlite $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks docs/hooks tools
	$(BIN)/ruff format --check src tests examples benchmarks docs/hooks tools

typecheck: $(STAMP)
	$(BIN)/mypy

# pyright's completeness score of the public API (what users' type checkers see); below 100 % it fails.
# pyright finds the environment through VIRTUAL_ENV and the PATH's python.
verifytypes: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))" $(BIN)/pyright --verifytypes tenantkit --ignoreexternal

# Build the wheel and the sdist and install the wheel per extra into fresh environments (.ci/wheels).
wheels: $(STAMP)
	PYTHON=$(BIN)/python bash .ci/wheels

# --strict fails on any warning (a broken link, an unrenderable docstring); the offline hook in mkdocs.yml
# fails the build when the site would load an asset from another host.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

check: lint typecheck verifytypes docs test wheels

# Not part of `make docs`: the PNGs are committed, so the strict docs build never needs a browser. Rerun
# after changing a page or its stylesheet; it needs Debian's chromium and chromium-driver.
screenshots: $(STAMP)  ## The drop-in pages photographed in headless Chromium, into docs/images/pages.
	$(BIN)/python tools/screenshots.py

# The pages' message template, from the N_() markers of src/tenantkit/ui and the _() calls of its templates
# (mapping: babel.cfg). Commit the result: a test fails while it is behind the sources. No locations, so
# that moving a line does not change the file; translators copy it to <locale>/LC_MESSAGES/tenantkit.po.
translations: $(STAMP)
	$(BIN)/pybabel extract --mapping-file=babel.cfg --output-file=src/tenantkit/ui/locale/tenantkit.pot \
		--project=tenantkit --copyright-holder="tenantkit developers" --no-location --sort-output .

# Slow (minutes), so not part of `make check`: see docs/contributing.md. MUTATION_ARGS passes options, e.g.
# MUTATION_ARGS="tokens --sample 20" or "--no-cache".
MUTATION_ARGS ?=
mutation: $(STAMP)  ## Mutation testing of the security-critical modules: >= 90 % of mutants killed each.
	nice -n 15 $(BIN)/python tools/mutate.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache .hypothesis .mutation-cache
