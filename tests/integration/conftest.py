"""Real Airflow on its embedded SQLite database: DAGs run with ``dag.test()`` in this process."""

from __future__ import annotations

from tests.support.airflow_db import airflow_db, run_dag

__all__ = ["airflow_db", "run_dag"]
