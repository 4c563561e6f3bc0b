# The README's two commands: `make run` (Airflow with the plugin on this machine) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.campaign-runs-installed

# Extra pytest arguments for both test runs, e.g. make test PYTEST_ARGS="-m 'not slow'".
# A -m EXPR given here is combined with the PostgreSQL run's own "not browser".
PYTEST_ARGS ?=
XDIST_ARGS ?= -n 2 --dist loadfile --durations=25
export PYTEST_ARGS

.PHONY: help venv run test test-sqlite test-postgres chromium axe lint bench

help:
	@echo "make run     start Airflow with Campaign Runs on http://localhost:8080 (admin / admin)"
	@echo "make test    the test suite on SQLite, then on PostgreSQL (PYTEST_ARGS=... adds pytest arguments)"
	@echo "make lint    ruff check and mypy"
	@echo "make bench   the benchmarks"
	@echo "make venv    create or update $(VENV) from requirements-dev.txt (runtime pins + test/dev tools)"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
			|| { echo "$(PYTHON) is older than 3.11: set PYTHON=python3.11 or newer" >&2; exit 1; }; \
		echo "creating $(VENV) with $$($(PYTHON) --version)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@# setuptools writes its egg-info beside the package (egg_base defaults to the package root, plugins/), where
	@# it would be a second copy of the distribution on sys.path and Airflow would load the plugin twice.
	@# egg_base must be a directory that exists in every build context, so it is set here, not in pyproject.toml.
	@printf '[egg_info]\negg_base = %s\n' '$(abspath $(VENV))' > $(VENV)/setuptools.cfg
	DIST_EXTRA_CONFIG=$(VENV)/setuptools.cfg $(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

run: venv
	$(BIN)/python -m scripts.dev

# Browser tests drive Debian's Chromium; install it when we can (root with apt-get).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "warning: /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get)" >&2; \
		fi; \
	fi

# axe-core for the browser tests' accessibility checks, exactly as pinned in tests/browser/package-lock.json,
# installed with npm ci into $(VENV)/axe (git-ignored); the tests run the same install when it is missing.
AXE_DIR := $(VENV)/axe
axe: $(AXE_DIR)/node_modules/axe-core/axe.min.js

$(AXE_DIR)/node_modules/axe-core/axe.min.js: tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null; then \
		mkdir -p $(AXE_DIR) && cp tests/browser/package.json tests/browser/package-lock.json $(AXE_DIR)/ && \
		cd $(AXE_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else \
		echo "warning: npm is missing: the accessibility tests cannot install axe-core" >&2; \
	fi

# Both runs always run; the target fails if either failed.
test: venv chromium axe
	@status=0; \
	$(MAKE) --no-print-directory test-sqlite || status=1; \
	$(MAKE) --no-print-directory test-postgres || status=1; \
	if [ $$status != 0 ]; then echo "make test: FAILED (see the runs above)" >&2; fi; \
	exit $$status

test-sqlite: venv
	@echo "== tests on SQLite"
	@eval "args=($$PYTEST_ARGS)"; \
	set -x; \
	$(BIN)/pytest $(XDIST_ARGS) "$${args[@]}"

# Same suite on PostgreSQL without the process-starting tests (they ran on SQLite; the Celery topology test
# uses PostgreSQL itself), the static checks, the input sweeps and the factory's tests (no metadata DB; they run
# each ledger database as a parameter), and-ed with any -m in PYTEST_ARGS.
test-postgres: venv
	@echo "== tests on PostgreSQL"
	@eval "args=($$PYTEST_ARGS)"; marks="not browser and not slow and not static and not sweep and not factory"; rest=(); \
	while (( $${#args[@]} )); do \
		case "$${args[0]}" in \
			-m) marks="($${args[1]}) and not browser and not slow and not static and not sweep and not factory"; args=("$${args[@]:2}") ;; \
			-m*) marks="($${args[0]#-m}) and not browser and not slow and not static and not sweep and not factory"; args=("$${args[@]:1}") ;; \
			*) rest+=("$${args[0]}"); args=("$${args[@]:1}") ;; \
		esac; \
	done; \
	set -x; \
	CAMPAIGN_RUNS_TEST_DB=postgres $(BIN)/pytest $(XDIST_ARGS) -m "$$marks" "$${rest[@]}"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy plugins/campaign_runs
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python -m benchmarks

# The documentation site (MkDocs + Material, mkdocs.yml): built with --strict into build/site (git-ignored).
.PHONY: docs
docs: venv
	$(BIN)/mkdocs build --strict --site-dir build/site
	@echo "docs built in build/site; serve them with: $(BIN)/mkdocs serve (http://127.0.0.1:8000)"
