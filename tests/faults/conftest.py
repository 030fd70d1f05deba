"""The fault matrix runs real Airflow on the session's SQLite database, like ``tests/integration``."""

from __future__ import annotations

from tests.integration.conftest import airflow_db

__all__ = ["airflow_db"]
