"""Ingest a folder, then export what was ingested: the files must come back byte for byte."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.operators.export import PreservicaExportOperator
from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator

with DAG(
    "preservica_round_trip",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"source": "/tmp/batch", "out": "/tmp/round-trip.zip", "unpacked": "/tmp/round-trip"},
) as round_trip_dag:

    @task
    def target() -> str:
        folder, _ = PreservicaHook().entities.ensure_folder(
            "pipeline", "round-trip", title="Round trip", parent_ref=None, security_tag="open"
        )
        return folder.ref

    parent = target()
    ingest = PreservicaIngestOperator(
        task_id="ingest",
        source="{{ params.source }}",
        parent_ref=parent,
        security_tag="open",
        poll_interval=0.2,
        deferrable=True,
        retries=0,
    )
    export = PreservicaExportOperator(
        task_id="export",
        entity_ref=parent,
        destination="{{ params.out }}",
        unzip_to="{{ params.unpacked }}",
        poll_interval=0.2,
        min_free_bytes=0,
        deferrable=True,
        retries=0,
    )
    ingest >> export
