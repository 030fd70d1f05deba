"""The fault matrix runs real Airflow on the session's SQLite database, like ``tests/integration``."""

from __future__ import annotations

from tests.support.airflow_db import airflow_db

__all__ = ["airflow_db"]
