"""Nightly ingest: the day's delivery from a landing folder into Preservica, filed away only once verified.

Configure with Airflow Variables (or edit the defaults):

    preservica_landing_dir   /data/landing     one sub-folder per day (/data/landing/2026-11-25), plus the
                                               done/ and quarantine/ folders this DAG files deliveries into
    preservica_reports_dir   /data/reports     ingest-<day>.csv and .txt (a local path or s3://..., gs://...)
    preservica_security_tag  closed            tag of the new assets (no silent default to "open")
    preservica_staging_dir   (optional)        default <landing>/.staging; keep it on the landing filesystem
                                               so that staging is a hard link, not a copy

and a pool that caps the concurrent ingests into one Preservica account (the DAG's pool name is
``preservica_ingest_<connection id>``):

    airflow pools set --include-deferred preservica_ingest_preservica_default 2 "Ingests into Preservica"

(``--include-deferred``: an ingest keeps its slot while it waits in the triggerer.)

Steps:

1. ``stage``: validate every name in ``<landing>/<day>``. Files Preservica would reject move to
   ``quarantine/illegal-name/<day>/`` (relative paths kept) and are listed; the rest are hard-linked into the
   staging folder, hashed (SHA-256), and looked up below this year's folder by SourceID and fixity (the
   ingest operator's rule, see "What identifies a file" in the README): a file Preservica holds there with the
   same content is skipped; one it holds there with *other* content (a changed file redelivered under the same
   day) is a conflict and moves to ``quarantine/conflict/<day>/``, never skipped and never overwritten.
2. ``anything_to_ingest`` stops here when nothing is new (the report is still written).
3. ``ingest``: OPEX package with fixity, S3 upload, deferred wait, fixity verification of every asset. A
   retry adopts the ingest in flight. At most the pool's slots run at once per account.
4. ``file_and_report`` (after success): the sources move to ``done/<day>/``; ``ingest-<day>.csv`` gets one
   row per file (path, SourceID, created/skipped/quarantined, ref, fixity) and ``ingest-<day>.txt`` a summary.
5. ``quarantine_on_failure`` (only when ``ingest`` failed): the sources move to
   ``quarantine/ingest-failed/<day>/`` or ``quarantine/verification-failed/<day>/``, and the report says so.

An ingest that created assets emits an asset event through the alias ``preservica_nightly_ingest``: for the
asset ``preservica://<host>/<year folder ref>``, with the refs created, counts and a fixity summary in its
extra. ``preservica_export_on_ingest.py`` is scheduled on it; a DAG of yours can be too, or on the year
folder's own asset (``schedule=[preservica_asset("<host>", "<folder ref>")]``). A run with nothing new
emits nothing.

No source is deleted or moved before its ingest was verified. Re-running a day skips what is already in
Preservica below the year folder with the same content.
Try it: ``airflow dags test preservica_nightly_ingest 2026-11-25``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, AssetAlias, Variable, task

from airflow_provider_preservica.compat import AirflowFailException, AirflowSkipException
from airflow_provider_preservica.exceptions import NothingDelivered
from airflow_provider_preservica.hooks import PreservicaHook
from airflow_provider_preservica.ingest import (
    LandingLayout,
    StagingManifest,
    file_delivery,
    held_below,
    record_ingested,
    stage_delivery,
    write_report,
)
from airflow_provider_preservica.operators import PreservicaIngestOperator

CONN_ID = "preservica_default"
POOL = f"preservica_ingest_{CONN_ID}"
# The year folder's ref is known only at run time: the ingest adds its asset to this alias.
NIGHTLY_INGEST = AssetAlias("preservica_nightly_ingest")
# The year folder carries this identifier (type, value): found by it, created on first use.
FOLDER_IDENTIFIER = "pipeline"


def year_folder_id(ds: str | None) -> str:
    return f"nightly-ingest-{str(ds)[:4]}"


def landing(ds: str | None) -> LandingLayout:
    return LandingLayout.of(
        Variable.get("preservica_landing_dir", default="/tmp/preservica-landing"),
        str(ds),
        Variable.get("preservica_staging_dir", default="") or None,
    )


def report_path(ds: str | None) -> str:
    return f"{Variable.get('preservica_reports_dir', default='/tmp/preservica-reports')}/ingest-{ds}.csv"


def publish(manifest: StagingManifest, ds: str | None) -> str:
    csv_path, summary_path = write_report(manifest, report_path(ds))
    print(manifest.summary())
    print(f"Ingest report {csv_path} (summary {summary_path})")
    return csv_path


with DAG(
    "preservica_nightly_ingest",
    description="Landing folder -> OPEX with fixity -> Preservica -> done/ or quarantine/, with a CSV report",
    schedule="30 1 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["preservica", "example", "ingest"],
) as dag:

    @task(multiple_outputs=True)
    def stage(ds: str | None = None) -> dict:
        """Quarantine bad names and conflicts, stage the rest, skip what the year folder already holds."""
        hook = PreservicaHook(CONN_ID)
        folder = hook.entities.find_folder(FOLDER_IDENTIFIER, year_folder_id(ds))  # not created here
        try:
            manifest = stage_delivery(landing(ds), existing=held_below(hook.entities, folder and folder.ref))
        except NothingDelivered as exc:
            raise AirflowSkipException(str(exc)) from None
        for record in manifest.quarantined():
            print(f"Quarantined {record.path}: {record.detail}")
        print(
            f"{manifest.to_ingest} files staged for ingest, {manifest.count('skipped')} already in Preservica, "
            f"{len(manifest.quarantined())} quarantined"
        )
        return manifest.to_xcom(landing(ds).manifest_path)

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def anything_to_ingest(staged: dict) -> bool:
        return staged["to_ingest"] > 0

    @task
    def target_folder(ds: str | None = None) -> str:
        """The Preservica folder for this year's deliveries, created on first use (found by identifier)."""
        year = str(ds)[:4]
        folder, created = PreservicaHook(CONN_ID).entities.ensure_folder(
            FOLDER_IDENTIFIER,
            year_folder_id(ds),
            title=f"Nightly ingest {year}",
            parent_ref=None,
            security_tag="closed",
        )
        print(f"{'Created' if created else 'Using'} Preservica folder {folder.title!r} ({folder.ref})")
        return folder.ref

    staged = stage()
    folder = target_folder()
    ingest = PreservicaIngestOperator(
        task_id="ingest",
        source=staged["staged"],
        parent_ref=folder,
        security_tag="{{ var.value.get('preservica_security_tag', 'closed') }}",
        source_id_namespace="{{ ds }}",  # the same SourceIDs as stage() computed
        deferrable=True,
        verify=True,
        # A large delivery goes as several packages, 2 uploaded at once; a retry re-sends none of them.
        max_package_assets=10_000,
        max_package_bytes=20 * 1024**3,
        package_concurrency=2,
        timeout=12 * 3600,  # Preservica's processing of a very large night can take hours; a retry adopts it
        pool=POOL,
        poll_interval=2,
        retries=2,
        preservica_conn_id=CONN_ID,
        outlets=[NIGHTLY_INGEST],
    )

    @task(trigger_rule="none_failed")
    def file_and_report(ds: str | None = None, ti: Any = None) -> str:
        """Runs after a verified ingest, or when there was nothing new: sources to done/, then the report."""
        staged_info = ti.xcom_pull(task_ids="stage")
        if not staged_info:
            raise AirflowSkipException("nothing was delivered")
        manifest = StagingManifest.load(staged_info["manifest"])
        manifest.parent_ref = ti.xcom_pull(task_ids="target_folder") or ""
        if manifest.to_ingest:  # the refs of what was sent: below the folder, same content (a search per 100)
            lookup = held_below(PreservicaHook(CONN_ID).entities, manifest.parent_ref, read_lagging=True)
            record_ingested(manifest, lookup([r for r in manifest.files if r.outcome == "pending"]).present)
        missing = manifest.count("missing")
        if missing:  # never file away sources Preservica cannot show
            publish(manifest, ds)
            raise AirflowFailException(f"{missing} files sent are not in Preservica; the delivery stays in place")
        file_delivery(landing(ds), manifest)
        return publish(manifest, ds)

    @task(trigger_rule="one_failed")
    def quarantine_on_failure(ds: str | None = None, ti: Any = None) -> str:
        """Runs when ``ingest`` failed (not when an earlier task did): sources to quarantine/<reason>/."""
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=["ingest"], run_ids=[ti.run_id])
        if states.get(ti.run_id, {}).get("ingest") != "failed":
            raise AirflowSkipException("the ingest did not run; the delivery stays where it is")
        manifest = StagingManifest.load(ti.xcom_pull(task_ids="stage")["manifest"])
        manifest.parent_ref = ti.xcom_pull(task_ids="target_folder") or ""
        token = ti.xcom_pull(task_ids="ingest", key="progress_token")
        reason, detail = "ingest-failed", "the ingest failed before Preservica accepted the package"
        if token:
            progress = PreservicaHook(CONN_ID).progress(token)
            reason = "verification-failed" if progress.succeeded else "ingest-failed"
            detail = f"Preservica ingest {token} ended {progress.status}" + (
                f": {progress.errors[0]}" if progress.errors else ""
            )
        file_delivery(landing(ds), manifest, reason=reason, detail=detail)
        publish(manifest, ds)
        return reason

    gate = anything_to_ingest(staged)
    gate >> folder
    ingest >> [file_and_report(), quarantine_on_failure()]
    staged >> gate
