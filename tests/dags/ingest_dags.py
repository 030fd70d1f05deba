"""Test DAGs for PreservicaIngestOperator (source folder and parent come from the run's params)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
from airflow_provider_preservica.sensors.progress import PreservicaProgressSensor

PARAMS = {"source": "/tmp/batch", "parent": "a0000000-0000-4000-8000-000000000001", "tag": "open"}

for mode, deferrable in (("polling", False), ("deferrable", True)):
    with DAG(
        f"preservica_ingest_{mode}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params=PARAMS,
    ) as dag:
        PreservicaIngestOperator(
            task_id="ingest",
            source="{{ params.source }}",
            parent_ref="{{ params.parent }}",
            security_tag="{{ params.tag }}",
            poll_interval=0.2,
            timeout=120,
            deferrable=deferrable,
            retries=0,
        )
    globals()[f"ingest_{mode}_dag"] = dag

with DAG(
    "preservica_ingest_then_sensor",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params=PARAMS,
) as ingest_then_sensor_dag:
    submit = PreservicaIngestOperator(
        task_id="ingest",
        source="{{ params.source }}",
        parent_ref="{{ params.parent }}",
        security_tag="{{ params.tag }}",
        wait_for_completion=False,
        retries=0,
    )
    wait = PreservicaProgressSensor(
        task_id="wait",
        progress_token="{{ ti.xcom_pull(task_ids='ingest', key='progress_token') }}",
        poke_interval=0.2,
        timeout=120,
        deferrable=True,
    )
    submit >> wait

# A delivery split into packages of 3 files (or of 100,000 bytes, about three of make_batch's files).
for name, limits, deferrable in (
    ("split_by_assets", {"max_package_assets": 3}, False),
    ("split_by_assets_deferrable", {"max_package_assets": 3}, True),
    ("split_by_bytes", {"max_package_bytes": 100_000}, False),
):
    with DAG(
        f"preservica_ingest_{name}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params=PARAMS,
    ) as dag:
        PreservicaIngestOperator(
            task_id="ingest",
            source="{{ params.source }}",
            parent_ref="{{ params.parent }}",
            security_tag="{{ params.tag }}",
            poll_interval=0.2,
            timeout=120,
            deferrable=deferrable,
            retries=0,
            **limits,
        )
    globals()[f"ingest_{name}_dag"] = dag
