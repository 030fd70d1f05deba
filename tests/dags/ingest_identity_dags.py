"""Test DAGs for what identifies an ingested file: conflicts, and two runs ingesting the same files at once."""

from __future__ import annotations

import os
import time

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator

PARAMS = {"source": "/tmp/batch", "parent": "a0000000-0000-4000-8000-000000000001", "tag": "open"}


def _ingest(**kwargs: object) -> PreservicaIngestOperator:
    return PreservicaIngestOperator(
        task_id="ingest",
        source="{{ params.source }}",
        parent_ref="{{ params.parent }}",
        security_tag="{{ params.tag }}",
        poll_interval=0.2,
        timeout=120,
        retries=0,
        **kwargs,
    )


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, params=PARAMS)


with _dag("preservica_ingest_conflicts_skipped") as conflicts_skipped_dag:
    _ingest(on_conflict="skip")


with _dag("preservica_ingest_at_the_start_line") as start_line_dag:

    @task
    def start_line() -> None:
        """Wait until the test says go, so that two runs start their ingests within milliseconds."""
        open(os.environ["PRESERVICA_READY_FILE"], "w").close()
        deadline = time.time() + 120
        while not os.path.exists(os.environ["PRESERVICA_GO_FILE"]) and time.time() < deadline:
            time.sleep(0.005)

    start_line() >> _ingest()
