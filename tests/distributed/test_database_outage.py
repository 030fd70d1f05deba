"""Fault matrix: the metadata database drops every connection while tasks run.

The machine's PostgreSQL server is shared, so it is not restarted. The restart is simulated the way
clients see one: every backend connected to this tier's database is terminated with
``pg_terminate_backend``, three times, a few seconds apart, while an ingest and a dozen Preservica
callers run. Tasks must recover (or fail cleanly, ending in a final state) and nothing is ingested twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.deployment import Deployment, wait_until
from tests.support.distributed import asset_title_counts, make_batch
from tests.support.sandbox import MAPS_FOLDER

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]

DAG_ID = "preservica_database_outage"
FINAL_TASK_STATES = {"success", "failed", "upstream_failed", "skipped"}


def test_tasks_survive_every_database_connection_being_cut(
    dist: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist.sandbox("POST", "config", {"ingest_seconds": 15})
    names = make_batch(tmp_path, "outage-scan", files=3)
    run_id = dist.trigger(DAG_ID, {"source": str(tmp_path / "outage-scan"), "parent": MAPS_FOLDER})
    wait_until(lambda: any(ti["state"] == "running" for ti in dist.task_instances(DAG_ID, run_id)), 180, "tasks to run")

    terminated = []
    for _ in range(3):
        terminated.append(dist.terminate_backends())
        time.sleep(4)
    restarted: list[str] = []

    def finished() -> str | None:
        # Airflow's scheduler and triggerer exit when their DB connection drops; production runs them under
        # a supervisor (systemd, Kubernetes) that starts them again, and so does this loop.
        for name in dist.dead_components():
            assert name != "sandbox", "the sandbox died"
            restarted.append(name)
            dist.restart(name)
        state = dist.run_state(DAG_ID, run_id)
        return state if state in ("success", "failed") else None

    state = wait_until(finished, 300, f"run {run_id} to finish", interval=1)
    time.sleep(2)
    finished()  # leave every component running for the next test

    tis = dist.task_instances(DAG_ID, run_id)
    outcome = {f"{ti['task_id']}[{ti['map_index']}]": (ti["state"], ti["try_number"]) for ti in tis}
    print(
        f"\ndatabase outage: terminated {terminated} backends; components restarted: {restarted or 'none'}; "
        f"run {state}; tries: {sorted({t for _, t in outcome.values()})}"
    )
    assert all(s in FINAL_TASK_STATES for s, _ in outcome.values()), outcome
    assert all(n > 0 for n in terminated)
    ingests = dist.sandbox("GET", "ingests")
    assert len(ingests) == 1, ingests  # nothing ingested twice
    assert asset_title_counts(dist, "outage-scan", monkeypatch) == dict.fromkeys(names, 1)
    assert state == "success", outcome
