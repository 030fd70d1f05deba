"""This test session's folders and Airflow environment, set when imported (``tests/conftest.py`` imports it first).

Airflow reads its configuration at import time, so the environment is fixed here, before any test module
imports Airflow. ``make test`` runs the tiers as several pytest sessions, each with its own folder (Airflow
home, session log, lock directory) in one folder of the run (``PRESERVICA_TEST_RUN_DIR``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.support import REPO

#: The folder of this test run: one sub-folder per pytest session of the run (``make test`` runs several).
RUN_ROOT = Path(os.environ.get("PRESERVICA_TEST_RUN_DIR") or tempfile.mkdtemp(prefix="preservica-tests-"))
RUN_ROOT.mkdir(parents=True, exist_ok=True)
#: This session's folder.
SESSION_DIR = Path(tempfile.mkdtemp(prefix="session-", dir=RUN_ROOT))
AIRFLOW_HOME = SESSION_DIR / "airflow-home"
AIRFLOW_HOME.mkdir()
SESSION_LOG = SESSION_DIR / "session.log"
#: Where a session leaves the tokens its sandbox issued, for an audit run in another session.
ISSUED_TOKENS_FILE = "issued-tokens.txt"

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# timeout: how long a writer waits for SQLite's one write lock (Python's default, 5 s, is too short when eight task
# processes start at once on a busy machine: "database is locked" failed a test process before it ran).
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME}/airflow.db?timeout=60"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "tests" / "dags")
os.environ["AIRFLOW__CORE__FERNET_KEY"] = "5bVSQmY6mzQ0aOJQy8b3bR1QhXdY0vYk7b8yV3xEJ0A="
os.environ["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
os.environ["PRESERVICA_LOCK_DIR"] = str(SESSION_DIR)
os.environ.pop("PRESERVICA_INI", None)
for _name in list(os.environ):
    if _name.startswith("AIRFLOW_CONN_PRESERVICA") or _name.startswith("AIRFLOW_VAR_PRESERVICA"):
        del os.environ[_name]
