"""DAGs of the distributed test tier (loaded by the deployment's dag-processor; runs come from the tests).

Each task reports which emulated worker host ran it: the basename of its ``PRESERVICA_LOCK_DIR``.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, dag, task

from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.operators.export import PreservicaExportOperator
from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
#: Mapped tasks of the token herd; each calls Preservica every ``HERD_PAUSE`` s for ``HERD_SECONDS`` s, so
#: that the run (about four waves of 16 worker slots) lasts several token lifetimes.
HERD_TASKS = 50
HERD_SECONDS = 30.0
HERD_PAUSE = 2.0
#: Every worker slot of the deployment (2 workers x 8); the deferrable DAG fills them all at once.
SLOTS = 16
INGEST_PARAMS = {"source": "/tmp/batch", "parent": "a0000000-0000-4000-8000-000000000001"}


def _host() -> str:
    return Path(os.environ.get("PRESERVICA_LOCK_DIR", "unknown")).name


@dag(schedule=None, start_date=START, catchup=False, max_active_tasks=64, tags=["distributed"])
def preservica_token_herd():
    """50 tasks on two worker hosts, each calling Preservica for longer than one token lifetime."""

    @task(retries=0)
    def call_preservica(index: int) -> dict[str, object]:
        hook = PreservicaHook()
        client = hook.get_conn()
        calls, started = 0, time.monotonic()
        while True:
            client.user_details()
            calls += 1
            if time.monotonic() - started + HERD_PAUSE > HERD_SECONDS:
                break
            time.sleep(HERD_PAUSE)
        cache = hook.token_cache
        return {"host": _host(), "calls": calls, "logins_here": cache.logins, "refreshes_here": cache.refreshes}

    call_preservica.expand(index=list(range(HERD_TASKS)))


@dag(
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_tasks=64,
    tags=["distributed"],
    params={**INGEST_PARAMS, "export_ref": INGEST_PARAMS["parent"], "export_to": "/tmp/export.zip", "barrier": "/tmp"},
)
def preservica_fill_slots_while_deferred():
    """Deferrable ingest and export, plus one task per worker slot that only succeeds if all run at once."""

    PreservicaIngestOperator(
        task_id="ingest",
        source="{{ params.source }}",
        parent_ref="{{ params.parent }}",
        security_tag="open",
        deferrable=True,
        poll_interval=1,
        timeout=600,
        retries=0,
    )
    PreservicaExportOperator(
        task_id="export",
        entity_ref="{{ params.export_ref }}",
        destination="{{ params.export_to }}",
        deferrable=True,
        poll_interval=1,
        timeout=600,
        min_free_bytes=1024 * 1024,
        retries=0,
    )

    @task(retries=0)
    def hold_a_slot(index: int, barrier: str) -> dict[str, object]:
        """Wait until every worker slot holds one of these tasks, then keep it a few seconds longer."""
        folder = Path(barrier)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index}").write_text(_host())
        deadline = time.time() + 240
        while len(list(folder.iterdir())) < SLOTS:
            if time.time() > deadline:
                raise RuntimeError(f"only {len(list(folder.iterdir()))} of {SLOTS} worker slots were free together")
            time.sleep(0.2)
        all_in = time.time()
        time.sleep(5)
        return {"host": _host(), "all_in": all_in}

    hold_a_slot.partial(barrier="{{ params.barrier }}").expand(index=list(range(SLOTS)))


with DAG(
    "preservica_ingest_worker_killed",
    schedule=None,
    start_date=START,
    catchup=False,
    params=INGEST_PARAMS,
    tags=["distributed"],
) as ingest_worker_killed:
    PreservicaIngestOperator(
        task_id="ingest",
        source="{{ params.source }}",
        parent_ref="{{ params.parent }}",
        security_tag="open",
        deferrable=False,
        poll_interval=1,
        timeout=600,
        retries=1,
        retry_delay=timedelta(seconds=2),
    )


@dag(schedule=None, start_date=START, catchup=False, max_active_tasks=64, tags=["distributed"], params=INGEST_PARAMS)
def preservica_database_outage():
    """An ingest and a crowd of Preservica callers, running while the test cuts every DB connection."""

    PreservicaIngestOperator(
        task_id="ingest",
        source="{{ params.source }}",
        parent_ref="{{ params.parent }}",
        security_tag="open",
        deferrable=False,
        poll_interval=1,
        timeout=600,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )

    @task(retries=2, retry_delay=timedelta(seconds=2))
    def call_preservica(index: int) -> str:
        client = PreservicaHook().get_conn()
        for call in range(5):
            if call:
                time.sleep(2)
            client.user_details()
        return _host()

    call_preservica.expand(index=list(range(12)))


token_herd = preservica_token_herd()
fill_slots_while_deferred = preservica_fill_slots_while_deferred()
database_outage = preservica_database_outage()
