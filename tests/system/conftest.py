"""The example DAGs of ``example_dags/``, as they ship, in real Airflow on the session's SQLite database."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.airflow_db import airflow_db
from tests.support.example_dags import load_examples

__all__ = ["airflow_db", "examples"]


@pytest.fixture(scope="module")
def examples(airflow_db: None) -> Any:
    """Every example DAG, loaded from ``example_dags/`` and serialised once (``dag.test()`` needs them in the DB).

    None may fail to import.
    """
    return load_examples()
