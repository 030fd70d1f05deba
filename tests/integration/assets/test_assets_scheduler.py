"""The example DAG pair on a real Airflow: the scheduler starts the export because the ingest emitted an asset event.

No ``dag.test()`` here. A private ``AIRFLOW_HOME`` on SQLite runs ``airflow api-server`` (the Execution API the
LocalExecutor's tasks talk to), ``scheduler``, ``dag-processor`` and ``triggerer`` (both DAGs defer) as
subprocesses (``airflow_processes.py``: the harness, its waits and its failure report). Its DAGs folder holds copies of
``example_dags/preservica_nightly_ingest.py`` and ``example_dags/preservica_export_on_ingest.py`` as they ship.

The test triggers one nightly ingest run through the REST API and waits until the *scheduler* has created an
``asset_triggered`` run of ``preservica_export_on_ingest`` from the ingest's asset event, and that run has
exported the folder. The cron schedule of the nightly DAG also starts a run for today, which finds no
delivery: it must emit nothing, so exactly one export run and one asset event exist at the end.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tests.support.airflow_processes import Airflow, airflow_env, free_port, reporting

# A hang is caught by Airflow.wait (nothing moved for STALL_SECONDS); this bound is only the last resort.
pytestmark = [pytest.mark.integration, pytest.mark.multiprocess, pytest.mark.timeout(1200)]

UPSTREAM, DOWNSTREAM = "preservica_nightly_ingest", "preservica_export_on_ingest"
DAY = "2026-03-02"  # the triggered run's day; the cron run is for today, whose landing folder stays empty
DELIVERY = {
    "minutes-1921.pdf": b"%PDF-1.4 minutes " * 300,
    "letters/to-the-mayor.pdf": b"%PDF-1.4 letter " * 200,
    "letters/reply.pdf": b"%PDF-1.4 reply " * 250,
}


@pytest.fixture
def airflow(sandbox, tmp_path: Path) -> Iterator[tuple[Airflow, dict[str, Path]]]:
    sandbox.state.update_config({"ingest_seconds": 0.3, "export_seconds": 0.3})
    home, dags = tmp_path / "airflow-home", tmp_path / "dags"
    data = {name: tmp_path / name for name in ("landing", "reports", "exports")}
    for folder in (home, dags, *data.values()):
        folder.mkdir()
    for dag_id in (UPSTREAM, DOWNSTREAM):
        shutil.copy2(REPO / "example_dags" / f"{dag_id}.py", dags)
    port = free_port()
    env = airflow_env(
        sandbox,
        home,
        dags,
        port,
        AIRFLOW_VAR_PRESERVICA_LANDING_DIR=str(data["landing"]),
        AIRFLOW_VAR_PRESERVICA_REPORTS_DIR=str(data["reports"]),
        AIRFLOW_VAR_PRESERVICA_EXPORT_DIR=str(data["exports"]),
        PRESERVICA_LOCK_DIR=str(tmp_path),
    )
    deployment = Airflow(tmp_path, env, port)
    deployment.migrate()
    try:
        reporting(deployment, deployment.start)
        yield deployment, data
    finally:
        deployment.stop()


def test_the_export_dag_runs_because_the_ingest_emitted_an_asset_event(airflow, sandbox) -> None:
    af, data = airflow
    reporting(af, lambda: check_the_pair(af, data, sandbox))


def check_the_pair(af: Airflow, data: dict[str, Path], sandbox: Any) -> None:
    started = time.monotonic()
    for name, content in DELIVERY.items():
        (data["landing"] / DAY / name).parent.mkdir(parents=True, exist_ok=True)
        (data["landing"] / DAY / name).write_bytes(content)
    af.wait(af.healthy, "the api-server and the scheduler")
    af.api(
        "POST", "/pools", json={"name": "preservica_ingest_preservica_default", "slots": 2, "include_deferred": True}
    )
    af.wait(lambda: af.dag_parsed(UPSTREAM) and af.dag_parsed(DOWNSTREAM), "both DAGs to be parsed")

    run_id = "nightly-ingest-under-the-scheduler"
    af.api("POST", f"/dags/{UPSTREAM}/dagRuns", json={"dag_run_id": run_id, "logical_date": f"{DAY}T01:30:00Z"})
    af.wait(lambda: af.run_state(UPSTREAM, run_id) in ("success", "failed"), "the ingest run")
    assert af.run_state(UPSTREAM, run_id) == "success", af.task_states(UPSTREAM, run_id)
    assert af.task_states(UPSTREAM, run_id)["ingest"] == "success"
    folder = af.xcom(UPSTREAM, run_id, "target_folder")
    ingest_report = af.xcom(UPSTREAM, run_id, "ingest")
    assert ingest_report["created_count"] == len(DELIVERY)

    # The scheduler, not the test, creates the export run: from the asset event of the ingest.
    def export_finished() -> dict[str, Any] | None:
        runs = [r for r in af.runs(DOWNSTREAM) if r["state"] in ("success", "failed")]
        return runs[0] if runs else None

    export_run = af.wait(export_finished, "the asset-triggered export run")
    assert export_run["run_type"] == "asset_triggered"
    assert export_run["state"] == "success", af.task_states(DOWNSTREAM, export_run["dag_run_id"])
    events = af.api("GET", f"/dags/{DOWNSTREAM}/dagRuns/{export_run['dag_run_id']}/upstreamAssetEvents")
    (event,) = events["asset_events"]
    host = sandbox.base_url.split("://", 1)[1]
    assert event["uri"] == f"preservica://{host}/{folder}"
    assert (event["source_dag_id"], event["source_run_id"], event["source_task_id"]) == (UPSTREAM, run_id, "ingest")
    extra = event["extra"]
    assert extra["ref"] == folder and extra["state"] == "COMPLETED" and extra["created_count"] == len(DELIVERY)
    assert sorted(extra["created_refs"]) == sorted(ingest_report["created_refs"])
    assert extra["fixity"]["algorithm"] == "SHA-256" and extra["fixity"]["verified"] == len(DELIVERY)
    assert len(extra["fixity"]["manifest_sha256"]) == 64

    # The export ran on the folder named by the event, verified and unpacked.
    result = af.xcom(DOWNSTREAM, export_run["dag_run_id"], "export", map_index=0)
    zip_path = Path(result["path"])
    assert zip_path.parent == data["exports"] / folder and zip_path.is_file()
    with zipfile.ZipFile(zip_path) as archive:
        assert sum(name.endswith(".pax.zip") for name in archive.namelist()) == len(DELIVERY)
    assert result["bitstreams_checked"] == len(DELIVERY)

    # Today's cron run found no delivery: no asset event, so no second export run.
    def upstream_done() -> bool:
        runs = af.runs(UPSTREAM)
        return len(runs) >= 2 and all(r["state"] in ("success", "failed") for r in runs)

    af.wait(upstream_done, "the nightly DAG's own cron run")
    scheduled = [r for r in af.runs(UPSTREAM) if r["run_type"] == "scheduled"]
    assert scheduled and af.task_states(UPSTREAM, scheduled[0]["dag_run_id"])["ingest"] == "skipped"
    produced = af.api("GET", "/assets/events", params={"source_dag_id": UPSTREAM})["asset_events"]
    assert len(produced) == 1
    assert len(af.runs(DOWNSTREAM)) == 1
    phases = ", ".join(f"{what} {seconds:.0f} s" for what, seconds in af.phases.items())
    print(f"\nscheduler test: {time.monotonic() - started:.0f} s after start-up ({phases})")
