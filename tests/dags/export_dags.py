"""Test DAGs for PreservicaExportOperator (entity ref and destination come from the run's params)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_preservica.operators.export import PreservicaExportOperator

PARAMS = {"ref": "a0000000-0000-4000-8000-000000000001", "out": "/tmp/export.zip", "unzip": ""}

with DAG(
    "preservica_export_polling",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params=PARAMS,
) as export_polling_dag:
    PreservicaExportOperator(
        task_id="export",
        entity_ref="{{ params.ref }}",
        destination="{{ params.out }}",
        unzip_to="{{ params.unzip or '' }}",
        poll_interval=0.2,
        timeout=60,
        min_free_bytes=0,
        deferrable=False,
        retries=0,
    )

with DAG(
    "preservica_export_deferrable",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params=PARAMS,
) as export_deferrable_dag:
    PreservicaExportOperator(
        task_id="export",
        entity_ref="{{ params.ref }}",
        destination="{{ params.out }}",
        poll_interval=0.2,
        timeout=60,
        min_free_bytes=0,
        deferrable=True,
        retries=0,
    )
