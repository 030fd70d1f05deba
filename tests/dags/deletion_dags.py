"""Test DAGs for deletion with a human approval: manifest -> approval -> delete (refs from params).

``delete_dag`` waits in the worker; ``deferred_delete_dag`` waits in the triggerer. ``recorded_answer_dag``
is the deferred DAG with the approval task replaced by a task that returns the answer a person gave (the
XCom an ``ApprovalOperator`` leaves): Airflow 3.1's ``dag.test()`` cannot run the human-in-the-loop trigger,
and the deferred deletion must be tested there too.
"""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, task

from airflow_provider_preservica.operators.deletion import (
    PreservicaDeleteOperator,
    PreservicaDeletionManifestOperator,
)


def _delete(deferrable: bool) -> PreservicaDeleteOperator:
    return PreservicaDeleteOperator(
        task_id="delete",
        manifest_task_id="manifest",
        approval_task_id="approve",
        manager_conn_id="preservica_manager",
        deferrable=deferrable,
        poll_interval=0.05,
        timeout=60,
        retries=1,
        retry_delay=datetime.timedelta(0),
    )


def _approval() -> ApprovalOperator:
    return ApprovalOperator(
        task_id="approve",
        subject="Delete from Preservica?",
        body="{{ ti.xcom_pull(task_ids='manifest', key='markdown') }}",
    )


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params={"refs": ""},
    )


with _dag("preservica_delete_with_approval") as delete_dag:
    PreservicaDeletionManifestOperator(task_id="manifest", refs="{{ params.refs }}") >> _approval() >> _delete(False)

with _dag("preservica_delete_deferred") as deferred_delete_dag:
    PreservicaDeletionManifestOperator(task_id="manifest", refs="{{ params.refs }}") >> _approval() >> _delete(True)

with _dag("preservica_delete_deferred_recorded_answer") as recorded_answer_dag:

    @task(task_id="approve")
    def recorded_answer() -> dict[str, Any]:
        return {"chosen_options": ["Approve"], "params_input": {}, "responded_by_user": {"id": "cora", "name": "Cora"}}

    (
        PreservicaDeletionManifestOperator(task_id="manifest", refs="{{ params.refs }}")
        >> recorded_answer()
        >> _delete(True)
    )
