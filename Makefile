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

# `make test-compat`: the test files that exercise Airflow (COMPAT_TESTS) on the oldest Airflow we claim, in its own venv.
# The pins Airflow 3.1 needs (its published constraint file is out of CI's reach) are explained in the file.
COMPAT_AIRFLOW_VERSION ?= 3.1.8
COMPAT_CONSTRAINTS := .ci/constraints-airflow-3.1.txt
# Inside .venv, which git, ruff and `make clean` already leave out or remove (a venv of its own beside it
# would show up in `git status` and be linted: its bin/jp.py fails `ruff check .`).
COMPAT_VENV := $(VENV)/airflow-3.1
COMPAT_BIN := $(COMPAT_VENV)/bin
COMPAT_STAMP := $(COMPAT_VENV)/.installed-stamp
# The 3.1 tier runs the test files that exercise Airflow itself, which is what differs between versions: a file
# is in it when it imports `airflow` (directly or through the provider module it tests), uses PreservicaHook
# (Airflow's BaseHook, Connection lookup, Variable token store, secret masker), an operator, sensor or trigger,
# compat.py, the example DAGs or the `airflow_db`/`run_dag` fixtures. Left out, because they never import Airflow
# (checked: `airflow` is not in sys.modules after they run): tests/sandbox (the emulator's own wire tests),
# tests/packaging (offline OPEX building and checks), the unit files below that are not listed
# (ini, settings, staging, claims, lease, TOTP, CSV reports, the 0.1 import path) and tests/client/test_filewrite.py.
# Also left out, because what they measure cannot differ between Airflow versions: the two scale files, which
# count our client's requests per file (test_ingest_scale: the operator's execute() with a stand-in task instance,
# no task runner) and its memory per sheet row (test_metadata_scale); the little Airflow they touch (a Connection
# lookup, the token Variable, BaseOperator, TaskDeferred) runs on 3.1 in the files that stay.
# A new test file that touches Airflow belongs in this list (or in a directory of it).
COMPAT_TESTS := tests/unit/test_assets.py tests/unit/test_lineage.py tests/unit/metadata/test_metadata_sheet.py \
	tests/unit/client/auth/test_token_renewal.py tests/unit/client/test_progress_waits.py tests/unit/test_jobs.py \
	tests/unit/test_moved.py tests/unit/test_public_names.py tests/client tests/integration tests/system tests/faults
COMPAT_EXCLUDED := tests/client/test_filewrite.py tests/client/test_metadata_scale.py \
	tests/integration/ingest/test_ingest_scale.py
# The 3.1 tier's two halves, run side by side like `make test`'s (see there); the second half is every other file
# of COMPAT_TESTS. Measured with the change watcher's scheduler test in the first half (make test-compat, load
# 3 to 6 from other work on 2 cores): 7:58 and 4:22 (in CI before dag.test() on 3.1 kept one Execution API per
# process, tests/integration/conftest.py: the second took 14:49). That test (about 1:45) now runs in the second.
COMPAT_SHARD_1 := tests/faults tests/system/test_example_dags.py $(addprefix tests/integration/, \
	assets/test_assets_and_lineage.py assets/test_assets_scheduler.py connection/test_cli_import_ini.py \
	export/test_export_operator.py export/test_export_unzip.py ingest/test_ingest_housekeeping.py \
	ingest/test_ingest_operator.py auth/test_single_flight_processes.py)

# `make test` runs the suite as three pytest sessions side by side on 2 cores, then the secrets audit in a fourth:
# - TEST_SHARD_1: the tiers that run Airflow in the test process (`dag.test()`), mostly CPU, but TEST_SHARD_2_TOO;
# - TEST_SHARD_3: the tiers that mostly wait on other processes, not on this one's CPU: the release tier (uv's
#   download, then `airflow` commands in the clean venv), the Airflow deployments as processes (the change watcher,
#   the asset-triggered export), the task-process token races and the browser test (an Airflow UI and Chromium);
# - the second session: every other test file (a new tier lands there by itself), including the distributed
#   deployment and TEST_SHARD_2_TOO (two ingests in task processes of their own).
# Balanced by --durations (three sessions, load 4 to 6 from other work): 7:43, 9:45 and 5:06 before the token races
# and the asset scheduler test (about 2 minutes) moved from the second session to the third.
# While a session waits on those processes its core is free: the third session's tests use it meanwhile.
# - tests/test_no_secrets_in_logs.py last, alone: it reads the logs and issued tokens of every session.
# Each session has its own Airflow home, sandbox and lock directory, in one folder of the run
# (PRESERVICA_TEST_RUN_DIR; see tests/conftest.py). A plain `pytest` still runs everything in one session.
# Each session ends with its slowest tests (--durations): the figures to rebalance the sessions by.
# (Files, not the folder: a file named after a folder that holds it is collected with that folder, --ignore and all.)
TEST_SHARD_3 := tests/release tests/ui tests/integration/changes/test_change_watcher_scheduler.py \
	tests/integration/assets/test_assets_scheduler.py tests/integration/auth/test_single_flight_processes.py \
	tests/integration/auth/test_token_refresh_processes.py
TEST_SHARD_2_TOO := tests/integration/ingest/test_ingest_identity.py
TEST_SHARD_1 := tests/faults $(filter-out $(TEST_SHARD_2_TOO) $(TEST_SHARD_3),$(wildcard tests/integration/test_*.py \
	tests/integration/*/test_*.py tests/system/test_*.py))
AUDIT := tests/test_no_secrets_in_logs.py
PYTEST := python -m pytest -p no:cacheprovider --durations=20
# Run a recipe's pytest sessions in a fresh run folder, keep going past a failed one, then audit the run (the
# audit checks that it found all the sessions: PRESERVICA_TEST_SESSIONS, itself included).
# $(1): the python; $(2): the make targets (each test-* target is one session).
define run_sessions
	@run=$$(mktemp -d -t preservica-tests-XXXXXX); \
	PRESERVICA_TEST_RUN_DIR=$$run $(MAKE) -f $(firstword $(MAKEFILE_LIST)) --no-print-directory -k -j4 --output-sync=target $(2); status=$$?; \
	PRESERVICA_TEST_RUN_DIR=$$run PRESERVICA_TEST_SESSIONS=$(words x $(filter test-%,$(2))) \
		$(1) -m pytest -p no:cacheprovider $(AUDIT) || status=1; \
	exit $$status
endef

.PHONY: install test lint unit demo sandbox bench bench-quick clean airflow test-compat test-random compat-install \
	test-shard-1 test-shard-2 test-shard-3 test-compat-shard-1 test-compat-shard-2

$(STAMP): pyproject.toml sandbox/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PROJECT_PACKAGES) "apache-airflow==$(AIRFLOW_VERSION)"
	touch $(STAMP)

# Built with .venv's uv (the dev extra): .ci/run builds it while `make test` runs, and pip's install (compiling every
# module of Airflow to bytecode) took CPU from the tests on 2 cores; uv compiles nothing and fetches in parallel.
$(COMPAT_STAMP): $(STAMP) pyproject.toml sandbox/pyproject.toml $(COMPAT_CONSTRAINTS)
	test -x $(COMPAT_BIN)/python || $(BIN)/uv venv --quiet --python $(PYTHON) $(COMPAT_VENV)
	$(BIN)/uv pip install --quiet --python $(COMPAT_BIN)/python $(PROJECT_PACKAGES) \
		"apache-airflow==$(COMPAT_AIRFLOW_VERSION)" --constraint $(COMPAT_CONSTRAINTS)
	touch $(COMPAT_STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# ruff and mypy run beside the test sessions; each session's report is printed when it ends.
test: $(STAMP)
	$(call run_sessions,$(BIN)/python,lint test-shard-1 test-shard-2 test-shard-3)

test-shard-1: $(STAMP)
	$(BIN)/$(PYTEST) $(TEST_SHARD_1)

test-shard-2: $(STAMP)
	$(BIN)/$(PYTEST) tests $(addprefix --ignore=,$(TEST_SHARD_1) $(TEST_SHARD_3) $(AUDIT))

test-shard-3: $(STAMP)
	$(BIN)/$(PYTEST) $(TEST_SHARD_3)

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit tests/sandbox tests/client

# The fast tiers in a shuffled order (files, and the tests in each file), to catch a test that passes only
# after another one; `make test` keeps the file order. The seed is printed; SEED=n repeats an order.
SEED ?= $(shell date +%s)
test-random: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --shuffle=$(SEED) tests/unit tests/sandbox tests/client tests/packaging

# Not part of `make test`; .ci/run runs it after `make test` (and builds its venv meanwhile: compat-install).
# The files of COMPAT_TESTS in two sessions side by side, then the secrets audit, as in `make test`.
compat-install: $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	$(call run_sessions,$(COMPAT_BIN)/python,test-compat-shard-1 test-compat-shard-2)

test-compat-shard-1: $(COMPAT_STAMP)
	$(COMPAT_BIN)/$(PYTEST) $(COMPAT_SHARD_1)

test-compat-shard-2: $(COMPAT_STAMP)
	$(COMPAT_BIN)/$(PYTEST) $(filter-out $(COMPAT_SHARD_1),$(COMPAT_TESTS)) \
		$(addprefix --ignore=,$(COMPAT_SHARD_1) $(COMPAT_EXCLUDED))

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The Airflow UI on http://localhost:8080 with the example DAGs and the sandbox; login printed at start.
airflow: $(STAMP)
	$(BIN)/python scripts/airflow_standalone.py

sandbox: $(STAMP)
	$(BIN)/preservica-sandbox --port 8765

# Every benchmark, one table (18-30 minutes on 2 CPUs); also rewrites benchmarks/RESULTS.md. bench-quick: a few minutes' smoke run.
bench: $(STAMP)
	nice $(BIN)/python -m benchmarks.run_all --results benchmarks/RESULTS.md

bench-quick: $(STAMP)
	nice $(BIN)/python -m benchmarks.run_all --quick

clean:
	rm -rf $(VENV) .demo
