"""Export a folder when the nightly ingest has put new assets into it: scheduled on data, not on a clock.

``preservica_nightly_ingest`` emits an asset event through the alias ``preservica_nightly_ingest`` each time
its ingest creates assets: the asset is ``preservica://<host>/<year folder ref>`` and the event's extra lists
what was created. This DAG is scheduled on that alias, so Airflow starts it after every such ingest (and
never after a night with nothing new). It exports each folder the triggering events name (usually one; two
across a new year), verifies every fixity in the zip and unpacks it:

    <preservica_export_dir>/<folder ref>/<run time>.zip   and   .../<run time>/   (the unpacked export)

The folder's own asset works as a schedule too, when you know its ref (``preservica_asset`` gives the URI)::

    schedule=[preservica_asset("eu.preservica.com", "<folder ref>")]

A manual run exports the folder given as ``folder_ref``:
``airflow dags test preservica_export_on_ingest -c '{"folder_ref": "<ref>"}'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, AssetAlias, Param, Variable, task

from airflow_provider_preservica.compat import AirflowSkipException
from airflow_provider_preservica.operators import PreservicaExportOperator

NIGHTLY_INGEST = AssetAlias("preservica_nightly_ingest")  # the ingest task's outlet in preservica_nightly_ingest


def folders_ingested_into(events: Any) -> list[str]:
    """The folder refs named by the triggering asset events, oldest first, each once."""
    refs: list[str] = []
    for event in sorted(events, key=lambda e: e.timestamp):
        ref = (event.extra or {}).get("ref") or event.asset.uri.rsplit("/", 1)[-1]
        created = (event.extra or {}).get("created_count", "?")
        print(f"Asset event {event.asset.uri} from {event.source_dag_id}/{event.source_run_id}: {created} created")
        if ref not in refs:
            refs.append(ref)
    return refs


with DAG(
    "preservica_export_on_ingest",
    description="Export the folder the nightly ingest just added assets to, verified and unpacked",
    schedule=[NIGHTLY_INGEST],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["preservica", "example", "export", "assets"],
    params={"folder_ref": Param("", type="string", description="manual runs: the folder to export")},
) as dag:

    @task
    def plan(triggering_asset_events: Any = None, dag_run: Any = None, params: dict | None = None) -> list[dict]:
        manual = (params or {}).get("folder_ref")
        events = triggering_asset_events.get(NIGHTLY_INGEST, []) if triggering_asset_events else []
        refs = [manual] if manual else folders_ingested_into(events)
        if not refs:
            raise AirflowSkipException("not started by an ingest event, and no folder_ref given")
        stamp = pendulum.instance(dag_run.run_after).format("YYYYMMDD[T]HHmmss[Z]")
        root = Path(Variable.get("preservica_export_dir", default="/tmp/preservica-exports")).expanduser()
        jobs = []
        for ref in refs:
            (root / ref).mkdir(parents=True, exist_ok=True)
            jobs.append(
                {
                    "entity_ref": ref,
                    "destination": str(root / ref / f"{stamp}.zip"),
                    "unzip_to": str(root / ref / stamp),
                }
            )
        return jobs

    export = PreservicaExportOperator.partial(
        task_id="export",
        entity_type="SO",
        verify=True,
        deferrable=True,
        poll_interval=2,
        min_free_bytes=256 * 1024 * 1024,
        retries=2,
    ).expand_kwargs(plan())

    @task
    def summary(results: Any) -> list[str]:
        lines = [
            f"Exported {r['path']}: {r['bytes']:,} bytes, {r['files']} files, {r['bitstreams_checked']} checked "
            f"against their ingest fixity, sha256 {r['sha256']}; unpacked to {r['unzipped_to']}"
            for r in results
        ]
        print("\n".join(lines))
        return lines

    summary(export.output)
