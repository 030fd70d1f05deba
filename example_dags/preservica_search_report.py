"""A nightly report: every asset below a collection that is still tagged ``open``, as CSV.

Point it at your system with a ``preservica_default`` Connection and set two Airflow Variables
(or edit the defaults below):

    airflow variables set preservica_report_collection <folder ref>      # empty = whole repository
    airflow variables set preservica_report_dir /data/reports             # a local folder, or object storage:
    airflow variables set preservica_report_dir s3://bucket/reports       #   any ObjectStoragePath URL
                                                                          #   (s3://, gs://, file://...)

Each run writes ``open-assets-<date>.csv`` (reference, title, tag, parent, created) and returns a
small summary (row count, path, first references) as its XCom. The report is written one row at a
time under a temporary name and renamed when complete, so readers never see half a report. For
``s3://`` set up an Airflow Connection for the object store (``aws_default``) and install
``apache-airflow-providers-amazon``. Try it: ``airflow dags test preservica_search_report``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_preservica.operators import PreservicaSearchOperator

with DAG(
    "preservica_search_report",
    description="Nightly CSV of open assets in a collection",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["preservica", "example", "report"],
) as dag:
    PreservicaSearchOperator(
        task_id="open_assets_report",
        filters={"xip.document_type": "IO", "xip.security_descriptor": "open"},
        parent_ref="{{ var.value.get('preservica_report_collection', '') }}",
        fields=["xip.title", "xip.security_descriptor", "xip.parent_ref", "xip.created"],
        sort=["xip.title"],
        output_path="{{ var.value.get('preservica_report_dir', '/tmp') }}/open-assets-{{ ds }}.csv",
        retries=2,
    )
