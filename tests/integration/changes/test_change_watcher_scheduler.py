"""The change watcher on a real Airflow: scheduler, triggerer, dag-processor and api-server as processes
(``airflow_processes.py``), the Preservica sandbox as the server.

A change made through the API starts exactly one run of the DAG scheduled on the watcher's asset, with the
changed refs; quiet polls cost one request each and start nothing; a triggerer killed (SIGKILL) and started
again picks up where its stored cursor (the asset state store on Airflow 3.3, a Variable on 3.1) left it:
the change made while it was down starts one more run, and nothing is announced twice. The same with the
event-type filter (``events``: the watcher reads Preservica's entity events of type ``Modified``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support import REPO
from tests.support.airflow_processes import Airflow, airflow_env, free_port, reporting
from tests.support.sandbox import connection_json

# A hang is caught by Airflow.wait (nothing moved for STALL_SECONDS); this bound is only the last resort.
pytestmark = [pytest.mark.integration, pytest.mark.multiprocess, pytest.mark.timeout(1200)]

DAG_ID = "preservica_on_change"


def airflow_version() -> str:
    from airflow import __version__

    return str(__version__)


def airflow_has_asset_state_store() -> bool:
    """Whether this Airflow hands a watcher's trigger an asset state store (3.3 onwards)."""
    return tuple(int(part) for part in airflow_version().split(".")[:2]) >= (3, 3)


FEED = "GET /api/entity/entities/updated-since"
EVENTS = "GET /api/entity/events"


@pytest.fixture(params=["asset state store", "variable", "events"])
def watched(
    request: pytest.FixtureRequest, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Airflow, dict[str, str]]]:
    """Airflow watching collection X; the cursor in the asset state store (3.3) or a Variable (3.1's store)."""
    if request.param == "asset state store" and not airflow_has_asset_state_store():
        pytest.skip(f"Airflow {airflow_version()} has no asset state store: the 'variable' case is this case here")
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox))  # for the test's own hook
    repo = sandbox.state.repository
    repo.clear()
    x = repo.add_folder("Collection X")
    y = repo.add_folder("Collection Y")
    refs = {
        "x": x.ref,
        "a": repo.add_asset("a", x.ref).ref,
        "b": repo.add_asset("b", repo.add_folder("Series", parent=x.ref).ref).ref,
        "c": repo.add_asset("c", y.ref).ref,
    }
    home, dags = tmp_path / "airflow-home", tmp_path / "dags"
    for folder in (home, dags):
        folder.mkdir()
    shutil.copy2(REPO / "tests" / "dags" / "change_watcher.py", dags)
    port = free_port()
    env = airflow_env(
        sandbox,
        home,
        dags,
        port,
        PRESERVICA_WATCH_COLLECTION=x.ref,
        PRESERVICA_WATCH_CURSOR_STORE="variable" if request.param == "variable" else "",
        PRESERVICA_WATCH_EVENT_TYPES="Modified" if request.param == "events" else "",
        PRESERVICA_LOCK_DIR=str(tmp_path),
    )
    deployment = Airflow(tmp_path, env, port)
    deployment.migrate()
    try:
        reporting(deployment, deployment.start)
        yield deployment, {**refs, "store": request.param}
    finally:
        deployment.stop()


def retitle(ref: str, title: str) -> None:
    hook = PreservicaHook()
    hook.entities.update_text(hook.entities.get(ref, "IO"), title=title)


def test_changes_start_exactly_one_run_each_and_survive_a_killed_triggerer(watched: Any, sandbox: Any) -> None:
    af, refs = watched
    reporting(af, lambda: check_the_watcher(af, refs, sandbox))


def check_the_watcher(af: Airflow, refs: dict[str, str], sandbox: Any) -> None:
    poll_route = EVENTS if refs["store"] == "events" else FEED  # what one poll asks

    def feed_requests() -> int:
        return int(sandbox.state.stats()["requests"].get(poll_route, 0))

    def finished_runs() -> list[dict[str, Any]]:
        return [r for r in af.runs(DAG_ID) if r["state"] in ("success", "failed")]

    af.wait(af.healthy, "the api-server and the scheduler")
    af.wait(lambda: af.dag_parsed(DAG_ID), "the DAG to be parsed")
    af.wait(lambda: feed_requests() >= 2, "the watcher's first polls")

    def other_requests() -> int:
        counts = sandbox.state.stats()["requests"]
        return sum(n for route, n in counts.items() if route != poll_route and "accesstoken" not in route)

    # Quiet: each poll is one feed request and nothing else is asked of Preservica; no run starts.
    others, before = other_requests(), feed_requests()
    af.wait(lambda: feed_requests() >= before + 3, "three quiet polls")
    assert other_requests() == others
    assert af.runs(DAG_ID) == []

    retitle(refs["a"], "a, retitled")
    retitle(refs["c"], "c, outside the collection")
    first = af.wait(finished_runs, "the run for the change")[0]
    assert first["run_type"] == "asset_triggered" and first["state"] == "success"
    assert af.xcom(DAG_ID, first["dag_run_id"], "changed") == [[refs["a"]]]

    # Let the cursor settle (settle_seconds=2, polls every second), then kill the triggerer outright.
    polls = feed_requests()
    af.wait(lambda: feed_requests() >= polls + 5, "five more polls")
    af.kill("triggerer")
    retitle(refs["b"], "b, retitled while the triggerer was down")
    af.start("triggerer")

    def second_run() -> list[dict[str, Any]]:
        runs = finished_runs()
        return runs if len(runs) >= 2 else []

    runs = af.wait(second_run, "the run for the change made while the triggerer was down")
    latest = max(runs, key=lambda r: r["run_after"])
    assert latest["state"] == "success"
    assert af.xcom(DAG_ID, latest["dag_run_id"], "changed") == [[refs["b"]]]  # b, and not a again
    polls = feed_requests()
    af.wait(lambda: feed_requests() >= polls + 5, "five more polls")
    assert len(af.runs(DAG_ID)) == 2
    if refs["store"] == "variable":  # the cursor really lived in the Variable
        assert "since" in af.api("GET", "/variables/preservica_test_change_cursor")["value"]
