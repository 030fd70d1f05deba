"""One DAG with each Preservica operator, for the OpenLineage test (run with ``airflow dags test`` and the
provider's console transport). Paths and refs come from the run's params."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_preservica.operators.export import PreservicaExportOperator
from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
from airflow_provider_preservica.operators.metadata import PreservicaMetadataOperator
from airflow_provider_preservica.operators.search import PreservicaSearchOperator

MAPS_FOLDER = "a0000000-0000-4000-8000-000000000001"

with DAG(
    "preservica_lineage",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"report": "/tmp/r.csv", "zip": "/tmp/e.zip", "unzip": "/tmp/e", "source": "/tmp/b", "sheet": "/tmp/s.csv"},
) as lineage_dag:
    search = PreservicaSearchOperator(
        task_id="search",
        parent_ref=MAPS_FOLDER,
        filters={"xip.document_type": "IO"},
        output_path="{{ params.report }}",
        retries=0,
    )
    export = PreservicaExportOperator(
        task_id="export",
        entity_ref=MAPS_FOLDER,
        destination="{{ params.zip }}",
        unzip_to="{{ params.unzip }}",
        poll_interval=0.2,
        timeout=60,
        min_free_bytes=0,
        retries=0,
    )
    ingest = PreservicaIngestOperator(
        task_id="ingest",
        source="{{ params.source }}",
        parent_ref=MAPS_FOLDER,
        security_tag="closed",
        poll_interval=0.2,
        timeout=60,
        retries=0,
    )
    corrections = PreservicaMetadataOperator(task_id="corrections", source="{{ params.sheet }}", retries=0)
    search >> export >> ingest >> corrections
