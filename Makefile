# One entry point for every chore. `make` alone lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
JOB    ?= customer_churn
WORKERS ?= 0
ROWS   ?= 1000000,10000000

# Airflow's processes spawn `airflow` from PATH: the venv's bin comes first.
export PATH := $(BIN):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help venv demo airflow stop-airflow test test-fast lint format run check bench psql stop-db clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The venv, and Debian's Chromium when missing: tests/e2e/test_ui_browser.py drives it with
# Playwright. A browser is never downloaded (no `playwright install`); apt-get needs root.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) \
	  || echo "Chromium is missing and could not be installed (root needed): the browser test will fail"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@# the build's egg-info beside pipeline/ would be a second copy of the package's metadata once
	@# the project is on PYTHONPATH (Airflow's processes): its plugin entry point seen twice makes
	@# Airflow skip the plugins loaded after it (the OpenLineage listener among them)
	rm -rf nightly_scoring.egg-info
	@touch $@

venv: $(STAMP) ## Create .venv with the pinned dependencies

demo: $(STAMP) ## Run customer_churn end to end (embedded Postgres unless DATABASE_URL is set)
	$(BIN)/python -m pipeline demo

airflow: $(STAMP) ## Airflow's UI, scheduler, dag-processor, triggerer here; WORKERS=2: Celery
	$(BIN)/python -m pipeline airflow --workers $(WORKERS)

stop-airflow: $(STAMP) ## Stop what `make airflow` started
	$(BIN)/python -m pipeline stop-airflow

test: $(STAMP) ## Run the whole test suite (embedded Postgres unless DATABASE_URL is set)
	$(BIN)/python -m pytest

test-fast: $(STAMP) ## Unit tests only: no server needed
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP) ## Ruff, format check, the layers contract (import-linter) and mypy
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

run: $(STAMP) ## Run one job once through Airflow: make run JOB=delivery_delay
	$(BIN)/python -m pipeline run $(JOB)

check: $(STAMP) ## Parse every job spec in dags/jobs
	$(BIN)/python -m pipeline check

bench: $(STAMP) ## Benchmark scoring against the floors and the naive peer: make bench ROWS=1000000
	$(BIN)/python -m bench --rows $(ROWS) --json bench/latest.json

psql: $(STAMP) ## Open psql on the warehouse (the embedded one by default)
	$(BIN)/python -m pipeline psql

stop-db: $(STAMP) ## Stop the embedded Postgres
	$(BIN)/python -m pipeline stop-db

clean: ## Remove the venv, local Airflow home and data (stops the embedded Postgres first)
	-$(BIN)/python -m pipeline stop-airflow
	-$(BIN)/python -m pipeline stop-db
	rm -rf $(VENV) .airflow data .pgdata .pytest_cache
