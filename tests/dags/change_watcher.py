"""A DAG scheduled on Preservica changes, for the scheduler test: the watcher polls every second.

The collection to watch comes from ``PRESERVICA_WATCH_COLLECTION`` (the test sets it before Airflow parses
this file), and event types, if any, from ``PRESERVICA_WATCH_EVENT_TYPES`` (comma separated). The consumer
task returns the refs of every triggering event, so the test reads them from XCom.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_preservica.triggers.changes import PreservicaChangesTrigger, change_payload

CHANGES = Asset(
    name="preservica_test_changes",
    uri="x-preservica-test://changes",
    watchers=[
        AssetWatcher(
            name="preservica_test_change_watcher",
            trigger=PreservicaChangesTrigger(
                collection=os.environ.get("PRESERVICA_WATCH_COLLECTION", "00000000-0000-4000-8000-00000000c011"),
                entity_types=["IO"],
                event_types=[t for t in os.environ.get("PRESERVICA_WATCH_EVENT_TYPES", "").split(",") if t] or None,
                poll_interval=1,
                lag=0.5,
                settle_seconds=2,
                # "variable": the Airflow 3.1 store, on any Airflow (the test runs both)
                cursor_store=os.environ.get("PRESERVICA_WATCH_CURSOR_STORE") or None,
                cursor_variable="preservica_test_change_cursor",
            ),
        )
    ],
)

with DAG(
    "preservica_on_change",
    schedule=[CHANGES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
):

    @task
    def changed(triggering_asset_events: Any = None) -> list[list[str]]:
        return [change_payload(event.extra).get("refs", []) for event in triggering_asset_events[CHANGES]]

    changed()
