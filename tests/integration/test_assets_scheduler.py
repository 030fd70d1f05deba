"""The example DAG pair on a real Airflow: the scheduler starts the export because the ingest emitted an asset event.

No ``dag.test()`` here. A private ``AIRFLOW_HOME`` on SQLite runs ``airflow api-server`` (the Execution API the
LocalExecutor's tasks talk to), ``scheduler``, ``dag-processor`` and ``triggerer`` (both DAGs defer) as
subprocesses, each in its own process group and stopped at the end. Its DAGs folder holds copies of
``example_dags/preservica_nightly_ingest.py`` and ``example_dags/preservica_export_on_ingest.py`` as they ship.

The test triggers one nightly ingest run through the REST API and waits until the *scheduler* has created an
``asset_triggered`` run of ``preservica_export_on_ingest`` from the ingest's asset event, and that run has
exported the folder. The cron schedule of the nightly DAG also starts a run for today, which finds no
delivery: it must emit nothing, so exactly one export run and one asset event exist at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import connection_json

pytestmark = [pytest.mark.integration, pytest.mark.multiprocess]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
UPSTREAM, DOWNSTREAM = "preservica_nightly_ingest", "preservica_export_on_ingest"
DAY = "2026-03-02"  # the triggered run's day; the cron run is for today, whose landing folder stays empty
DELIVERY = {
    "minutes-1921.pdf": b"%PDF-1.4 minutes " * 300,
    "letters/to-the-mayor.pdf": b"%PDF-1.4 letter " * 200,
    "letters/reply.pdf": b"%PDF-1.4 reply " * 250,
}
TIMEOUT = 240.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PHASES: dict[str, float] = {}  # what took how long, printed at the end (``-s``) and in a failure's report


def _wait(condition: Callable[[], Any], timeout: float, what: str, check: Callable[[], None]) -> Any:
    began = time.monotonic()
    deadline = began + timeout
    while True:
        check()
        result = condition()
        if result:
            PHASES[what] = time.monotonic() - began
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)


class Airflow:
    """One private Airflow: its home, its processes (one process group each) and its REST API."""

    COMPONENTS = {
        "api-server": ["api-server", "--port", "{port}"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }

    def __init__(self, root: Path, env: dict[str, str], port: int) -> None:
        self.root, self.env, self.port = root, env, port
        self.url = f"http://127.0.0.1:{port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None

    def run(self, *args: str) -> None:
        log = self.root / f"{args[0]}-{args[1]}.log"
        with log.open("wb") as out:
            result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        assert result.returncode == 0, f"airflow {' '.join(args)} failed; see {log}"

    def start(self, *only: str) -> None:
        """Start every component, or only those named (a restart after ``kill``)."""
        for name, argv in self.COMPONENTS.items():
            if only and name not in only:
                continue
            with (self.root / f"{name}.log").open("ab") as out:  # a restarted component appends
                self.processes[name] = subprocess.Popen(
                    [str(BIN / "airflow"), *(a.format(port=self.port) for a in argv)],
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )

    def kill(self, name: str) -> None:
        """SIGKILL one component's process group, as a crash would (no clean shutdown)."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        assert not dead, f"Airflow components died: {dead}\n{self.report()}"

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group: task processes and anything left
            process.wait(timeout=10)

    def report(self, lines: int = 25) -> str:
        parts = []
        for log in sorted(self.root.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"----- {log.name} -----\n" + "\n".join(text))
        return "\n".join(parts)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            response = requests.get(f"{self.url}/auth/token", timeout=30)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        for attempt in range(4):
            response = requests.request(
                method,
                f"{self.url}/api/v2{path}",
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=30,
                **kwargs,
            )
            # SQLite has one writer at a time: a request that waited out the lock gets a 500 and changed nothing.
            if response.status_code < 500 or attempt == 3:
                break
            time.sleep(1)
        if response.status_code == 409 and attempt and method == "POST":
            return None  # an earlier attempt did land after all
        assert response.status_code < 400, f"{method} {path} -> {response.status_code}: {response.text[:500]}"
        return response.json() if response.content else None

    def healthy(self) -> bool:
        try:
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    def dag_parsed(self, dag_id: str) -> bool:
        try:
            return bool(self.api("GET", f"/dags/{dag_id}"))
        except AssertionError:
            return False

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"] for ti in tis}

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.api("GET", path, params={"map_index": map_index, "deserialize": True})["value"]


def airflow_env(sandbox: Any, home: Path, dags: Path, port: int, **extra: str) -> dict[str, str]:
    """A private Airflow's environment: SQLite, the LocalExecutor, its Preservica Connection on the sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PRESERVICA", "PYTEST", "_AIRFLOW"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",  # allowed on SQLite in Airflow 3 (tasks use the API)
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": "5bVSQmY6mzQ0aOJQy8b3bR1QhXdY0vYk7b8yV3xEJ0A=",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW_CONN_PRESERVICA_DEFAULT": connection_json(sandbox),
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def airflow(sandbox, tmp_path: Path) -> Iterator[tuple[Airflow, dict[str, Path]]]:
    sandbox.state.update_config({"ingest_seconds": 0.3, "export_seconds": 0.3})
    home, dags = tmp_path / "airflow-home", tmp_path / "dags"
    data = {name: tmp_path / name for name in ("landing", "reports", "exports")}
    for folder in (home, dags, *data.values()):
        folder.mkdir()
    for dag_id in (UPSTREAM, DOWNSTREAM):
        shutil.copy2(REPO / "example_dags" / f"{dag_id}.py", dags)
    port = _free_port()
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
    deployment.run("db", "migrate")
    # Readers then never block the writer (nor the writer them): four processes share this file.
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        db.execute("PRAGMA journal_mode=WAL")
    deployment.start()
    try:
        yield deployment, data
    finally:
        deployment.stop()


def test_the_export_dag_runs_because_the_ingest_emitted_an_asset_event(airflow, sandbox) -> None:
    af, data = airflow
    try:
        check_the_pair(af, data, sandbox)
    except AssertionError:
        print(af.report())  # the tail of every component's log
        raise


def check_the_pair(af: Airflow, data: dict[str, Path], sandbox: Any) -> None:
    started = time.monotonic()
    for name, content in DELIVERY.items():
        (data["landing"] / DAY / name).parent.mkdir(parents=True, exist_ok=True)
        (data["landing"] / DAY / name).write_bytes(content)
    check = af.check_alive
    _wait(af.healthy, 120, "the api-server and the scheduler", check)
    af.api(
        "POST", "/pools", json={"name": "preservica_ingest_preservica_default", "slots": 2, "include_deferred": True}
    )
    _wait(lambda: af.dag_parsed(UPSTREAM) and af.dag_parsed(DOWNSTREAM), 90, "both DAGs to be parsed", check)

    run_id = "nightly-ingest-under-the-scheduler"
    af.api("POST", f"/dags/{UPSTREAM}/dagRuns", json={"dag_run_id": run_id, "logical_date": f"{DAY}T01:30:00Z"})
    state = _wait(lambda: af.run_state(UPSTREAM, run_id) in ("success", "failed"), TIMEOUT, "the ingest run", check)
    assert state and af.run_state(UPSTREAM, run_id) == "success", af.task_states(UPSTREAM, run_id)
    assert af.task_states(UPSTREAM, run_id)["ingest"] == "success"
    folder = af.xcom(UPSTREAM, run_id, "target_folder")
    ingest_report = af.xcom(UPSTREAM, run_id, "ingest")
    assert ingest_report["created_count"] == len(DELIVERY)

    # The scheduler, not the test, creates the export run: from the asset event of the ingest.
    def export_finished() -> dict[str, Any] | None:
        runs = [r for r in af.runs(DOWNSTREAM) if r["state"] in ("success", "failed")]
        return runs[0] if runs else None

    export_run = _wait(export_finished, TIMEOUT, "the asset-triggered export run", check)
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

    _wait(upstream_done, TIMEOUT, "the nightly DAG's own cron run", check)
    scheduled = [r for r in af.runs(UPSTREAM) if r["run_type"] == "scheduled"]
    assert scheduled and af.task_states(UPSTREAM, scheduled[0]["dag_run_id"])["ingest"] == "skipped"
    produced = af.api("GET", "/assets/events", params={"source_dag_id": UPSTREAM})["asset_events"]
    assert len(produced) == 1
    assert len(af.runs(DOWNSTREAM)) == 1
    phases = ", ".join(f"{what} {seconds:.0f} s" for what, seconds in PHASES.items())
    print(f"\nscheduler test: {time.monotonic() - started:.0f} s after start-up ({phases})")
