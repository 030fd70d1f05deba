"""When anything in collection X changes in Preservica, export the changed assets: scheduled on Preservica itself.

An ``AssetWatcher`` runs ``PreservicaChangesTrigger`` in the triggerer: it polls Preservica's change feed
(``updated-since``) every minute — one request when nothing changed — and, when assets below the collection
changed, emits one asset event whose extra holds the window (``since``, ``until``) and the changed refs
(``change_payload(event.extra)`` reads them).
The scheduler starts this DAG for it; each changed asset is exported, verified and kept as

    <preservica_export_dir>/changes/<asset ref>.zip      (replaced by the next export of that asset)

Redelivery is harmless: the watcher delivers at least once (after a triggerer restart it may announce a
window again), and exporting an asset twice leaves the same file. An asset whose zip was written after the
window closed already holds those changes and is skipped. Refs the event could not carry (more than
``max_refs``) are read back from the feed for the same window.

Configure with environment variables read when the DAG is parsed:
``PRESERVICA_WATCH_COLLECTION`` (the folder ref of collection X), ``PRESERVICA_WATCH_CONN``
(default ``preservica_default``) and ``PRESERVICA_WATCH_EVENT_TYPES``: for example ``Ingest,Modified`` to
export only what was ingested or edited, not what was merely moved or given another security tag (the
watcher then reads Preservica's entity events of those types; empty: every change).
A manual run exports what changed in a window you name::

    airflow dags test preservica_export_on_change \
        -c '{"since": "2026-03-02T00:00:00Z", "until": "2026-03-03T00:00:00Z"}'

"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, Param, Variable, task

from airflow_provider_preservica.changes import FeedCursor, FeedFilter, parse_instant, read_event_window, read_window
from airflow_provider_preservica.compat import AirflowSkipException
from airflow_provider_preservica.hooks import PreservicaHook
from airflow_provider_preservica.operators import PreservicaExportOperator
from airflow_provider_preservica.triggers import PreservicaChangesTrigger, change_payload

CONN_ID = os.environ.get("PRESERVICA_WATCH_CONN", "preservica_default")
COLLECTION = os.environ.get("PRESERVICA_WATCH_COLLECTION", "00000000-0000-4000-8000-00000000c011")
EVENT_TYPES = [t.strip() for t in os.environ.get("PRESERVICA_WATCH_EVENT_TYPES", "").split(",") if t.strip()] or None

COLLECTION_CHANGES = Asset(
    name="preservica_collection_changes",
    uri=f"preservica-changes://{CONN_ID}/{COLLECTION}",
    watchers=[
        AssetWatcher(
            name="preservica_collection_watcher",
            trigger=PreservicaChangesTrigger(
                preservica_conn_id=CONN_ID,
                collection=COLLECTION,
                entity_types=["IO"],
                event_types=EVENT_TYPES,
                poll_interval=60,
            ),
        )
    ],
)


def changed_assets(events: list[Any], conn_id: str) -> list[tuple[str, str]]:
    """``(asset ref, window end)`` for every asset the events name, each once with its latest window."""
    latest: dict[str, str] = {}
    for extra in events:
        refs = extra.get("refs", [])
        if extra.get("truncated"):  # the event carried only the first max_refs: read the window again
            hook = PreservicaHook(conn_id)
            event_types = extra.get("event_types")
            wanted = FeedFilter(extra.get("collection"), ("IO",), tuple(event_types) if event_types else None)
            since, until = FeedCursor(parse_instant(extra["since"])), parse_instant(extra["until"])
            if wanted.event_types:
                batch, _ = read_event_window(hook.entity_events, hook.changes, hook, since, until, wanted=wanted)
            else:
                batch, _ = read_window(hook.changes, hook, since, until, wanted=wanted)
            refs = [e.ref for e in batch.changed]
        if extra.get("unresolved"):
            print(f"Not yet searchable, so not placed in the collection (next event will): {extra['unresolved']}")
        for ref in refs:
            latest[ref] = max(latest.get(ref, ""), extra["until"])
    return sorted(latest.items())


with DAG(
    "preservica_export_on_change",
    description="Export every asset of collection X that changed in Preservica, as soon as it changed",
    schedule=[COLLECTION_CHANGES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["preservica", "example", "export", "assets", "event-driven"],
    params={
        "since": Param("", type="string", description="manual runs: window start (ISO 8601)"),
        "until": Param("", type="string", description="manual runs: window end (ISO 8601)"),
    },
) as dag:

    @task
    def plan(triggering_asset_events: Any = None, params: dict | None = None) -> list[dict]:
        params = params or {}
        if params.get("since") and params.get("until"):  # a manual run: the window it names
            extras = [
                {
                    "since": params["since"],
                    "until": params["until"],
                    "refs": [],
                    "truncated": True,
                    "collection": COLLECTION,
                    "event_types": EVENT_TYPES,
                }
            ]
        else:
            events = triggering_asset_events.get(COLLECTION_CHANGES, []) if triggering_asset_events else []
            extras = [change_payload(event.extra) for event in sorted(events, key=lambda e: e.timestamp)]
        root = Path(Variable.get("preservica_export_dir", default="/tmp/preservica-exports")).expanduser() / "changes"
        root.mkdir(parents=True, exist_ok=True)
        jobs = []
        for ref, until in changed_assets(extras, CONN_ID):
            zip_path = root / f"{ref}.zip"
            exported = zip_path.stat().st_mtime if zip_path.exists() else None
            if exported is not None and exported > parse_instant(until).timestamp():
                print(f"{ref}: exported after {until} already; skipped")
                continue
            jobs.append({"entity_ref": ref, "destination": str(zip_path)})
        if not jobs:
            raise AirflowSkipException("no changed asset left to export")
        return jobs

    PreservicaExportOperator.partial(
        task_id="export",
        preservica_conn_id=CONN_ID,
        entity_type="IO",
        verify=True,
        deferrable=True,
        poll_interval=2,
        min_free_bytes=256 * 1024 * 1024,
        retries=2,
    ).expand_kwargs(plan())
