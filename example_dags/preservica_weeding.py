"""Delete folders or assets from Preservica after a person has approved exactly what will go.

1. ``manifest`` lists everything the deletion would remove (refs, titles, parents, file sizes, every
   folder and asset below a folder), nothing is deleted;
2. ``approve`` waits in Airflow's Required Actions screen (human in the loop, Airflow 3.1+), showing that
   list; "Reject" skips the deletion;
3. ``delete`` re-checks the repository against the approved list (anything added, moved, retitled or
   gone since: it refuses and says what), asks Preservica to delete each requested entity, and approves
   each request with the second account of ``preservica_manager``, as Preservica requires.

    airflow connections add preservica_manager --conn-type preservica --conn-host eu.preservica.com \
        --conn-login records.manager@example.org --conn-password '...' --conn-extra '{"tenant": "EXAMPLE"}'
    airflow dags trigger preservica_weeding -c '{"refs": "<folder ref> <asset ref>", "reason": "retention ended"}'
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, Param

from airflow_provider_preservica.operators import (
    PreservicaDeleteOperator,
    PreservicaDeletionManifestOperator,
)

with DAG(
    "preservica_weeding",
    description="Delete from Preservica: dry-run manifest, human approval, two-account deletion",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["preservica", "example", "deletion"],
    params={
        "refs": Param("", type="string", description="folder and asset references, separated by spaces"),
        "reason": Param("retention period ended", type="string", description="logged by Preservica"),
    },
) as dag:
    manifest = PreservicaDeletionManifestOperator(task_id="manifest", refs="{{ params.refs }}")
    approve = ApprovalOperator(
        task_id="approve",
        subject="Delete {{ params.refs }} from Preservica? ({{ params.reason }})",
        body="{{ ti.xcom_pull(task_ids='manifest', key='markdown') }}",
    )
    delete = PreservicaDeleteOperator(
        task_id="delete",
        manifest_task_id="manifest",
        approval_task_id="approve",
        manager_conn_id="preservica_manager",
        operator_comment="{{ params.reason }} (Airflow DAG {{ dag.dag_id }}, run {{ run_id }})",
        deferrable=True,  # Preservica's deletion workflow is waited for in the triggerer, not in a worker slot
        retries=2,  # a retry approves the requests already made: never a second request
    )
    manifest >> approve >> delete
