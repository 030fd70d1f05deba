"""Test DAG for deletion with a human approval: manifest -> ApprovalOperator -> delete (refs from params)."""

from __future__ import annotations

import datetime

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG

from airflow_provider_preservica.operators.deletion import (
    PreservicaDeleteOperator,
    PreservicaDeletionManifestOperator,
)

with DAG(
    "preservica_delete_with_approval",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"refs": ""},
) as delete_dag:
    manifest = PreservicaDeletionManifestOperator(task_id="manifest", refs="{{ params.refs }}")
    approve = ApprovalOperator(
        task_id="approve",
        subject="Delete from Preservica?",
        body="{{ ti.xcom_pull(task_ids='manifest', key='markdown') }}",
    )
    delete = PreservicaDeleteOperator(
        task_id="delete",
        manifest_task_id="manifest",
        approval_task_id="approve",
        manager_conn_id="preservica_manager",
        poll_interval=0.05,
        timeout=60,
        retries=1,
        retry_delay=datetime.timedelta(0),
    )
    manifest >> approve >> delete
