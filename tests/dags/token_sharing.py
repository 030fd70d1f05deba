"""Test DAGs: many tasks sharing one Preservica token (run with dag.test against the sandbox)."""

from __future__ import annotations

import json
import os
import urllib.request

import pendulum
from airflow.sdk import dag, task

from airflow_provider_preservica.hooks.preservica import PreservicaHook

TASKS = 12


def _sandbox_control(path: str, body: object) -> None:
    """Inject a sandbox fault from inside a task (the test exports the sandbox URL)."""
    base = os.environ["PRESERVICA_SANDBOX_URL"]
    request = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).read()


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def preservica_many_tasks():
    @task
    def call_preservica(index: int) -> str:
        details = PreservicaHook().get_conn().user_details()
        return str(details.get("user") or details.get("userName"))

    call_preservica.expand(index=list(range(TASKS)))


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def preservica_revoked_mid_run():
    @task
    def before() -> str:
        return PreservicaHook().get_conn().server_version()

    @task
    def revoke_all_tokens() -> None:
        _sandbox_control("/_sandbox/faults", {"kind": "revoke_token", "user": "archivist"})

    @task
    def after(index: int) -> str:
        return PreservicaHook().get_conn().server_version()

    before() >> revoke_all_tokens() >> after.expand(index=list(range(4)))


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def preservica_two_environments():
    @task
    def on(conn_id: str) -> str:
        return str(PreservicaHook(conn_id=conn_id).get_conn().user_details().get("tenant"))

    on.override(task_id="test_env")("preservica_test") >> on.override(task_id="prod_env")("preservica_prod")


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def preservica_single_token():
    """One task that asks for a token once the test says go (used by the multi-process test)."""

    @task
    def token_when_told() -> int:
        import time

        go = os.environ["PRESERVICA_GO_FILE"]
        open(os.environ["PRESERVICA_READY_FILE"], "w").close()
        deadline = time.time() + 120
        while not os.path.exists(go) and time.time() < deadline:
            time.sleep(0.005)
        return len(PreservicaHook().get_token())

    token_when_told()


many_tasks_dag = preservica_many_tasks()
revoked_mid_run_dag = preservica_revoked_mid_run()
two_environments_dag = preservica_two_environments()
single_token_dag = preservica_single_token()
