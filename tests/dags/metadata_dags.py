"""Test DAGs for PreservicaMetadataOperator (the sheet and the report path come from the run's params)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_preservica.operators.metadata import PreservicaMetadataOperator

PARAMS = {"sheet": "/tmp/corrections.csv", "report": "", "metadata_root": ""}

for mode, options in {
    "polling": {"deferrable": False},
    "deferrable": {"deferrable": True},
    "dry_run": {"dry_run": True},
    "partial": {"allow_partial": True},
}.items():
    with DAG(
        f"preservica_metadata_{mode}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params=PARAMS,
    ) as dag:
        PreservicaMetadataOperator(
            task_id="corrections",
            source="{{ params.sheet }}",
            report_path="{{ params.report }}",  # empty: next to the sheet
            metadata_root="{{ params.metadata_root }}",  # empty: the sheet's folder
            poll_interval=0.2,
            timeout=60,
            retries=0,
            **options,
        )
    globals()[f"metadata_{mode}_dag"] = dag
