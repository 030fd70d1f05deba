"""Test DAGs for PreservicaExportOperator (entity ref and destination come from the run's params)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_preservica.operators.export import PreservicaExportOperator

PARAMS = {"ref": "a0000000-0000-4000-8000-000000000001", "out": "/tmp/export.zip", "unzip": ""}

for mode, deferrable in (("polling", False), ("deferrable", True)):
    with DAG(
        f"preservica_export_{mode}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params=PARAMS,
    ) as dag:
        PreservicaExportOperator(
            task_id="export",
            entity_ref="{{ params.ref }}",
            destination="{{ params.out }}",
            unzip_to="{{ params.unzip or '' }}",
            poll_interval=0.2,
            timeout=60,
            min_free_bytes=0,
            deferrable=deferrable,
            retries=0,
        )
    globals()[f"export_{mode}_dag"] = dag
