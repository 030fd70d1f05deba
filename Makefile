# Two commands on a fresh machine:  `make demo` (the main job) and `make test` (the whole suite).
# Both create ./.venv from nothing but this repository and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
AIRFLOW_VERSION ?= 3.3.*

.PHONY: install test lint unit demo sandbox bench bench-quick clean airflow

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' "apache-airflow==$(AIRFLOW_VERSION)"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit tests/sandbox tests/client

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
