"""Run Preservica's "Ingest OPEX (Incremental)" workflow on a container in the source bucket, and wait for it.

Teams using OPEX incremental ingest copy a container (``opex/<name>/`` with its ``.opex`` manifests) to
the tenant's source bucket, then start the workflow context by name in Preservica's Workflows screen.
This DAG does the second step, waits for the instance in the triggerer, and fails with Preservica's
errors if the ingest does:

    airflow dags test preservica_opex_incremental_workflow \
        -c '{"container": "opex/accession-2026-041", "parent": "<folder ref>"}'

``context`` may name any workflow context as Preservica shows it (case does not matter) or give its id.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_preservica.operators import PreservicaWorkflowOperator

with DAG(
    "preservica_opex_incremental_workflow",
    description="Start the OPEX incremental ingest workflow on a source-bucket container and wait for it",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["preservica", "example", "workflow"],
    params={
        "context": Param("Ingest OPEX (Incremental)", type="string", description="workflow context name or id"),
        "container": Param("opex/accession", type="string", description="the container's prefix in the bucket"),
        "parent": Param("", type="string", description="folder to ingest into; empty = the repository root"),
    },
) as dag:
    PreservicaWorkflowOperator(
        task_id="ingest_container",
        context="{{ params.context }}",
        workflow_type="Ingest",
        parameters={
            "OpexContainerDirectory": "{{ params.container }}",
            "StructuralObjectReference": "{{ params.parent }}",
        },
        deferrable=True,
        poll_interval=5,
        timeout=12 * 3600,
        retries=2,  # a retry takes over the instance already started: never a second ingest
    )
