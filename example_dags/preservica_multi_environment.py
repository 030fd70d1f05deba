"""One delivery, two Preservica systems: ingest into test, verify, and only then into production.

Two Connections, one per system and account, each with its own token cache (the Airflow Variables
``preservica_access_token__preservica_test`` and ``preservica_access_token__preservica_prod``):

    airflow connections add preservica_test --conn-type preservica --conn-host test.example.org \\
        --conn-login robot@example.org --conn-password '...' --conn-extra '{"tenant": "TEST"}'
    airflow connections add preservica_prod --conn-type preservica --conn-host eu.preservica.com \\
        --conn-login robot@example.org --conn-password '...' --conn-extra '{"tenant": "PROD"}'

Variables: ``preservica_promote_landing_dir`` (one sub-folder per day, plus done/ and quarantine/) and
``preservica_security_tag`` (default ``closed``). Pools, one per system:

    airflow pools set --include-deferred preservica_ingest_preservica_test 2 "Ingests into Preservica test"
    airflow pools set --include-deferred preservica_ingest_preservica_prod 2 "Ingests into production"

The production ingest runs only when the test ingest succeeded and every asset there holds the fixity
its manifest promised (``verify=True``). The sources move to ``done/<day>`` after production verified
them, or to ``quarantine/<test|prod>-ingest-failed/<day>`` when an ingest failed; nothing is deleted.
Run it: ``airflow dags test preservica_multi_environment 2026-11-25``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Variable, task

from airflow_provider_preservica.compat import AirflowSkipException
from airflow_provider_preservica.exceptions import NothingDelivered
from airflow_provider_preservica.hooks import PreservicaHook
from airflow_provider_preservica.ingest import (
    LandingLayout,
    StagingManifest,
    file_delivery,
    stage_delivery,
)
from airflow_provider_preservica.operators import PreservicaIngestOperator

ENVIRONMENTS = {"test": "preservica_test", "prod": "preservica_prod"}


def landing(ds: str | None) -> LandingLayout:
    return LandingLayout.of(Variable.get("preservica_promote_landing_dir", default="/tmp/preservica-promote"), str(ds))


with DAG(
    "preservica_multi_environment",
    description="Ingest a delivery into Preservica test, verify, then into production",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["preservica", "example", "ingest"],
) as dag:

    @task(multiple_outputs=True)
    def stage(ds: str | None = None) -> dict:
        """Quarantine bad names and stage the rest; each system skips what it already holds itself."""
        try:
            manifest = stage_delivery(landing(ds))
        except NothingDelivered as exc:
            raise AirflowSkipException(str(exc)) from None
        return manifest.to_xcom(landing(ds).manifest_path)

    @task
    def target_folder(conn_id: str, ds: str | None = None) -> str:
        year = str(ds)[:4]
        folder, _ = PreservicaHook(conn_id).entities.ensure_folder(
            "pipeline", f"promoted-{year}", title=f"Promoted deliveries {year}", parent_ref=None, security_tag="closed"
        )
        return folder.ref

    staged = stage()
    previous: Any = staged
    ingests = []
    for name, conn_id in ENVIRONMENTS.items():
        folder = target_folder.override(task_id=f"{name}_folder")(conn_id)
        ingest = PreservicaIngestOperator(
            task_id=f"{name}_ingest",
            source=staged["staged"],
            parent_ref=folder,
            security_tag="{{ var.value.get('preservica_security_tag', 'closed') }}",
            source_id_namespace="{{ ds }}",
            deferrable=True,
            verify=True,
            pool=f"preservica_ingest_{conn_id}",
            poll_interval=2,
            retries=2,
            preservica_conn_id=conn_id,
        )
        previous >> folder  # prod starts only after test's ingest and verification succeeded
        previous = ingest
        ingests.append(ingest)

    @task
    def file_and_summarise(ds: str | None = None, ti: Any = None) -> dict[str, Any]:
        """Both systems verified: file the sources under done/, and show what each system did."""
        manifest = StagingManifest.load(ti.xcom_pull(task_ids="stage")["manifest"])
        target = file_delivery(landing(ds), manifest)
        summary: dict[str, Any] = {"filed_to": str(target)}
        for name, conn_id in ENVIRONMENTS.items():
            report = ti.xcom_pull(task_ids=f"{name}_ingest")
            cache = f"preservica_access_token__{conn_id}"
            summary[name] = {
                "created": report["created_count"],
                "already_present": report["skipped_existing"],
                "verified": report["verified"],
                "token_cache": cache if Variable.get(cache, default=None) else "(none)",
            }
            print(
                f"{name:>4} ({conn_id}): {report['created_count']} created, {report['skipped_existing']} already "
                f"present, {report['verified']} verified; token cache Variable {summary[name]['token_cache']}"
            )
        print(f"Sources filed to {target}")
        return summary

    @task(trigger_rule="one_failed")
    def quarantine_on_failure(ds: str | None = None, ti: Any = None) -> str:
        """An ingest failed: the sources go to quarantine/<environment>-ingest-failed/<day>."""
        task_ids = [f"{name}_ingest" for name in ENVIRONMENTS]
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=task_ids, run_ids=[ti.run_id]).get(ti.run_id, {})
        failed = [name for name in ENVIRONMENTS if states.get(f"{name}_ingest") == "failed"]
        if not failed:
            raise AirflowSkipException("no ingest ran and failed; the delivery stays where it is")
        manifest = StagingManifest.load(ti.xcom_pull(task_ids="stage")["manifest"])
        reason = f"{failed[0]}-ingest-failed"
        target = file_delivery(landing(ds), manifest, reason=reason, detail=f"the {failed[0]} ingest failed")
        print(f"The {failed[0]} ingest failed; sources filed to {target}")
        return reason

    ingests[-1] >> file_and_summarise()
    ingests >> quarantine_on_failure()
