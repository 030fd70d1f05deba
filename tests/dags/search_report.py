"""Test DAGs for PreservicaSearchOperator (output path and query come from the run's params)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_preservica.operators.search import PreservicaSearchOperator

with DAG(
    "test_search_report",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"out": "/tmp/report.csv", "query": "%", "tag": "open", "fail_on_empty": False},
) as search_report_dag:
    PreservicaSearchOperator(
        task_id="report",
        query="{{ params.query }}",
        filters={"xip.document_type": "IO"},
        exclude={"xip.security_descriptor": "{{ params.tag }}"},
        fields=["xip.title", "xip.security_descriptor", "xip.parent_ref"],
        sort=["xip.title"],
        output_path="{{ params.out }}",
        page_size=2,
        max_refs_in_xcom=3,
        retries=0,
    )

with DAG(
    "preservica_search_fail_on_empty",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"out": "/tmp/empty.csv"},
) as fail_on_empty_dag:
    PreservicaSearchOperator(
        task_id="report",
        query="nothing matches this",
        output_path="{{ params.out }}",
        fail_on_empty=True,
    )
