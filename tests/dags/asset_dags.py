"""Test DAGs whose Preservica operators declare outlets: an entity's Asset, a file's Asset and an AssetAlias.

The sandbox's address is known only when the test session starts it, so the test puts it in
``PRESERVICA_ASSETS_HOST`` before this file is parsed (a real DAG writes its host, e.g. ``eu.preservica.com``).
Paths and refs come from the run's params.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Asset, AssetAlias

from airflow_provider_preservica.assets import preservica_asset
from airflow_provider_preservica.operators.export import PreservicaExportOperator
from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
from airflow_provider_preservica.operators.metadata import PreservicaMetadataOperator
from airflow_provider_preservica.operators.search import PreservicaSearchOperator

HOST = os.environ.get("PRESERVICA_ASSETS_HOST", "http://127.0.0.1:8765")
MAPS_FOLDER = "a0000000-0000-4000-8000-000000000001"
MAPS = preservica_asset(HOST, MAPS_FOLDER)
INGESTS = AssetAlias("preservica_test_ingests")
EXPORTS = AssetAlias("preservica_test_exports")
REPORTS = AssetAlias("preservica_test_reports")
CORRECTIONS = AssetAlias("preservica_test_corrections")
MAPS_EXPORT = Asset(name="maps_export", uri="file:///exports/maps.zip")
OPEN_ASSETS_REPORT = Asset(name="open_assets_report", uri="file:///reports/open-assets.csv")
CORRECTED = Asset(name="corrections_applied", uri="x-preservica-test://corrections")
START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG(
    "preservica_assets_ingest",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"source": "/tmp/batch", "parent": MAPS_FOLDER},
) as ingest_dag:
    PreservicaIngestOperator(
        task_id="ingest",
        source="{{ params.source }}",
        parent_ref="{{ params.parent }}",
        security_tag="closed",
        poll_interval=0.2,
        timeout=120,
        deferrable=True,
        retries=0,
        outlets=[MAPS, INGESTS],
    )

with DAG(
    "preservica_assets_export",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"ref": MAPS_FOLDER, "out": "/tmp/export.zip"},
) as export_dag:
    PreservicaExportOperator(
        task_id="export",
        entity_ref="{{ params.ref }}",
        destination="{{ params.out }}",
        poll_interval=0.2,
        timeout=60,
        min_free_bytes=0,
        retries=0,
        outlets=[MAPS_EXPORT, EXPORTS],
    )

with DAG(
    "preservica_assets_search",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"out": "/tmp/report.csv", "parent": ""},
) as search_dag:
    PreservicaSearchOperator(
        task_id="report",
        filters={"xip.document_type": "IO"},
        parent_ref="{{ params.parent }}",
        fields=["xip.title"],
        output_path="{{ params.out }}",
        retries=0,
        outlets=[OPEN_ASSETS_REPORT, REPORTS],
    )

with DAG(
    "preservica_assets_metadata",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"sheet": "/tmp/corrections.csv"},
) as metadata_dag:
    preview = PreservicaMetadataOperator(
        task_id="preview",
        source="{{ params.sheet }}",
        dry_run=True,
        retries=0,
        outlets=[CORRECTED, CORRECTIONS],
    )
    apply = PreservicaMetadataOperator(
        task_id="apply",
        source="{{ params.sheet }}",
        poll_interval=0.2,
        timeout=60,
        retries=0,
        outlets=[CORRECTED, CORRECTIONS],
    )
    preview >> apply
