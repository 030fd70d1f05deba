"""Test DAGs for PreservicaWorkflowOperator, polling and deferred (context name and parameters from params)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_preservica.operators.workflow import PreservicaWorkflowOperator

for mode, deferrable in (("polling", False), ("deferrable", True)):
    with DAG(
        f"preservica_workflow_{mode}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params={"context": "Download Assets", "note": ""},
    ) as dag:
        PreservicaWorkflowOperator(
            task_id="workflow",
            context="{{ params.context }}",
            parameters={"note": "{{ params.note }}"},
            poll_interval=0.1,
            timeout=60,
            deferrable=deferrable,
            retries=0,
        )
    globals()[f"workflow_{mode}_dag"] = dag
