"""A Celery worker killed in the middle of an ingest: the retry adopts the ingest, nothing is sent twice."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.deployment import Deployment, wait_until
from tests.support.distributed import asset_title_counts, make_batch
from tests.support.sandbox import MAPS_FOLDER

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]

DAG_ID = "preservica_ingest_worker_killed"


def test_retry_after_a_killed_worker_adopts_the_ingest_in_flight(
    dist: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist.sandbox("POST", "config", {"ingest_seconds": 40})
    names = make_batch(tmp_path, "killed-worker-scan", files=4)
    run_id = dist.trigger(DAG_ID, {"source": str(tmp_path / "killed-worker-scan"), "parent": MAPS_FOLDER})

    token = wait_until(lambda: dist.xcom(DAG_ID, run_id, "ingest", key="progress_token"), 180, "the upload")
    pid = dist.task_instances(DAG_ID, run_id)[0]["pid"]
    worker = dist.worker_running(pid)
    assert worker is not None, f"task process {pid} is not under any Celery worker"
    try:
        dist.components[worker].kill(signal.SIGKILL)  # the worker, its pool and the task process
        state = dist.wait_for_run(DAG_ID, run_id, timeout=300)
    finally:
        dist.restart(worker)

    (ti,) = dist.task_instances(DAG_ID, run_id)
    assert state == "success" and ti["try_number"] == 2, ti
    report = dist.xcom(DAG_ID, run_id, "ingest")
    assert report["adopted"] and report["progress_token"] == token and report["state"] == "COMPLETED"
    assert f"Adopting the ingest an earlier try started: progress token {token}" in dist.task_log(
        DAG_ID, run_id, "ingest", attempt=2
    )
    ingests = dist.sandbox("GET", "ingests")
    assert len(ingests) == 1, ingests  # exactly one package reached Preservica
    assert asset_title_counts(dist, "killed-worker-scan", monkeypatch) == dict.fromkeys(names, 1)
    print(f"\nworker kill: {worker} SIGKILLed during ingest {token}; try 2 adopted it; {len(names)} assets once each")
