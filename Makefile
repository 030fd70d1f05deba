# Two commands on a fresh machine:  `make demo` (the main job) and `make test` (the whole suite).
# Both create ./.venv from nothing but this repository and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
AIRFLOW_VERSION ?= 3.3.*
# What every venv here installs besides Airflow: this project, editable, with its test tools. The one
# place to change when the packaging changes (both .venv and the compatibility venv use it).
PROJECT_PACKAGES := -e ./sandbox -e '.[dev]'

# `make test-compat`: the unit and integration tiers on the oldest Airflow we claim, in its own venv.
# The pins Airflow 3.1 needs (its published constraint file is out of CI's reach) are explained in the file.
COMPAT_AIRFLOW_VERSION ?= 3.1.8
COMPAT_CONSTRAINTS := .ci/constraints-airflow-3.1.txt
# Inside .venv, which git, ruff and `make clean` already leave out or remove (a venv of its own beside it
# would show up in `git status` and be linted: its bin/jp.py fails `ruff check .`).
COMPAT_VENV := $(VENV)/airflow-3.1
COMPAT_BIN := $(COMPAT_VENV)/bin
COMPAT_STAMP := $(COMPAT_VENV)/.installed-stamp
COMPAT_TESTS := tests/unit tests/packaging tests/sandbox tests/client tests/integration tests/faults \
	tests/test_no_secrets_in_logs.py

.PHONY: install test lint unit demo sandbox bench bench-quick clean airflow test-compat test-random

$(STAMP): pyproject.toml sandbox/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PROJECT_PACKAGES) "apache-airflow==$(AIRFLOW_VERSION)"
	touch $(STAMP)

$(COMPAT_STAMP): pyproject.toml sandbox/pyproject.toml $(COMPAT_CONSTRAINTS)
	test -x $(COMPAT_BIN)/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_BIN)/python -m pip install --quiet --upgrade pip
	$(COMPAT_BIN)/python -m pip install --quiet $(PROJECT_PACKAGES) "apache-airflow==$(COMPAT_AIRFLOW_VERSION)" \
		--constraint $(COMPAT_CONSTRAINTS)
	touch $(COMPAT_STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit tests/sandbox tests/client

# The fast tiers in a shuffled order (files, and the tests in each file), to catch a test that passes only
# after another one; `make test` keeps the file order. The seed is printed; SEED=n repeats an order.
SEED ?= $(shell date +%s)
test-random: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --shuffle=$(SEED) tests/unit tests/sandbox tests/client tests/packaging

# Not part of `make test`; .ci/run runs it after `make test`. Leaves out the distributed, UI and deployment tiers.
test-compat: $(COMPAT_STAMP)
	$(COMPAT_BIN)/python -m pytest -p no:cacheprovider $(COMPAT_TESTS)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The Airflow UI on http://localhost:8080 with the example DAGs and the sandbox; login printed at start.
airflow: $(STAMP)
	$(BIN)/python scripts/airflow_standalone.py

sandbox: $(STAMP)
	$(BIN)/preservica-sandbox --port 8765

# Every benchmark, one table (18-30 minutes on 2 CPUs); also rewrites benchmarks/RESULTS.md. bench-quick: a few minutes' smoke run.
bench: $(STAMP)
	nice $(BIN)/python benchmarks/run_all.py --results benchmarks/RESULTS.md

bench-quick: $(STAMP)
	nice $(BIN)/python benchmarks/run_all.py --quick

clean:
	rm -rf $(VENV) .demo
