"""Nightly ingest: today's folder from the landing area, into Preservica, safely.

Configure with Airflow Variables (or edit the defaults):

    preservica_landing_dir   /data/landing          (one sub-folder per day: /data/landing/2026-11-25)
    preservica_reports_dir   /data/reports
    preservica_security_tag  closed                 (no silent default to "open")

Steps: make sure the target folder exists (idempotent, found by identifier), build an OPEX package
with SHA-256 fixity, skip files whose SourceID Preservica already holds, upload through the
S3-compatible endpoint, wait for the outcome (deferrable when ``[operators] default_deferrable`` is
on), and write a readable ingest report next to the other reports. A retry adopts the ingest in
flight instead of uploading again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator

with DAG(
    "preservica_nightly_ingest",
    description="Landing folder -> OPEX with fixity -> Preservica, with an ingest report",
    schedule="30 1 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["preservica", "example", "ingest"],
) as dag:

    @task
    def target_folder(ds: str | None = None) -> str:
        """The Preservica folder for this year's deliveries, created on first use."""
        year = (ds or "")[:4]
        folder, created = PreservicaHook().entities.ensure_folder(
            "pipeline",
            f"nightly-ingest-{year}",
            title=f"Nightly ingest {year}",
            parent_ref=None,
            security_tag="closed",
        )
        print(f"{'Created' if created else 'Using'} Preservica folder {folder.title!r} ({folder.ref})")
        return folder.ref

    parent = target_folder()
    ingest = PreservicaIngestOperator(
        task_id="ingest",
        source="{{ var.value.get('preservica_landing_dir', '/tmp/preservica-landing') }}/{{ ds }}",
        parent_ref=parent,
        security_tag="{{ var.value.get('preservica_security_tag', 'closed') }}",
        poll_interval=2,
        retries=2,
    )

    @task
    def write_report(report: dict, ds: str | None = None) -> str:
        from airflow.sdk import Variable

        folder = Path(Variable.get("preservica_reports_dir", default="/tmp/preservica-reports"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ingest-{ds}.json"
        path.write_text(json.dumps(report, indent=2))
        print(
            f"Ingest {report['state']}: {report['created_count']} assets created, "
            f"{report['skipped_existing']} already present, progress token {report['progress_token']}; "
            f"report {path}"
        )
        return str(path)

    write_report(ingest.output)
