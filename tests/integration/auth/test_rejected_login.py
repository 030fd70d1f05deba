"""A refused login ends the task at once: no Airflow retries, so the account sees one failed login, not four.

Every operator, the sensor and the trigger, in real Airflow (``dag.test()``) with ``retries=3`` against the
sandbox, whose login counters say how many logins it refused. Server faults keep their retries.
"""

from __future__ import annotations

import json

import pytest

from tests.support.accounts import ARCHIVIST, TWO_FA_USER, WRONG_PASSWORD
from tests.support.airflow_db import task_states
from tests.support.sandbox import MAPS_FOLDER, connection_json, inject

pytestmark = pytest.mark.integration

REJECTED = "Preservica rejected the login of archivist"
ASSET = "b0000000-0000-4000-8000-000000000001"  # "closed" in the small repository


def _failed_logins(server, user: str = "archivist") -> int:
    return int(server.state.stats()["login_failures"].get(user, 0))


def _inputs(tmp_path):
    """What each task reads before it logs in: a batch folder for the ingest, a sheet for the metadata."""
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / "scan.tif").write_bytes(b"scan" * 100)
    rows = "".join(f"a0000000-0000-4000-8000-{row:012d},Title {row}\n" for row in range(1, 21))  # read by 8 threads
    (tmp_path / "corrections.csv").write_text(f"reference,title\n{rows}", encoding="utf-8")
    (tmp_path / "tags.csv").write_text(f"reference,security_tag\n{ASSET},open\n", encoding="utf-8")
    return {"dir": str(tmp_path), "ref": MAPS_FOLDER, "token": "a-progress-token"}


def _use(monkeypatch, server, **connection) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(server, **connection))


def _the_task(dag_run):
    return dag_run.get_task_instance("task")


@pytest.mark.parametrize("dag", ["search_dag", "ingest_dag", "export_dag", "metadata_dag", "sensor_dag"])
def test_a_wrong_password_fails_the_task_after_one_login(small_repository, monkeypatch, run_dag, tmp_path, dag, capfd):
    connection = json.loads(connection_json(small_repository))
    connection["password"] = WRONG_PASSWORD
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", json.dumps(connection))

    dag_run = run_dag("rejected_login_dags.py", dag, run_conf=_inputs(tmp_path))

    assert task_states(dag_run) == {"task[-1]": "failed"}
    assert _the_task(dag_run).try_number == 1  # FAILED at the first try, never UP_FOR_RETRY
    assert _failed_logins(small_repository) == 1
    output = "".join(capfd.readouterr())
    assert REJECTED in output and "Check the Connection's login, password and tenant extra" in output
    assert WRONG_PASSWORD not in output


def test_a_rejected_2fa_code_fails_the_task_after_one_attempt(small_repository, monkeypatch, run_dag, tmp_path, capfd):
    _use(monkeypatch, small_repository, user=TWO_FA_USER, two_fa_secret="GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")

    dag_run = run_dag("rejected_login_dags.py", "search_dag", run_conf=_inputs(tmp_path))

    assert task_states(dag_run) == {"task[-1]": "failed"}
    assert _the_task(dag_run).try_number == 1
    assert _failed_logins(small_repository, TWO_FA_USER.name) == 1
    assert "Preservica rejected the 2FA code for guarded" in "".join(capfd.readouterr())


@pytest.mark.parametrize(
    ("dag", "trigger"),
    [
        ("export_deferred_dag", "PreservicaProgressTrigger"),
        ("metadata_deferred_dag", "PreservicaProgressTokensTrigger"),
    ],
)
def test_a_login_refused_to_the_trigger_fails_the_deferred_task_without_retries(
    small_repository, monkeypatch, run_dag, tmp_path, capfd, dag, trigger
):
    """The password changes while the task waits in the triggerer: the trigger's login is refused."""
    from preservica_sandbox import SandboxUser

    from airflow_provider_preservica.triggers import progress

    _use(monkeypatch, small_repository)
    small_repository.state.update_config({"export_seconds": 0.5, "entity_action_seconds": 0.5})
    trigger_class = getattr(progress, trigger)
    run = trigger_class.run

    async def password_changed_meanwhile(self):
        small_repository.state.add_user(SandboxUser(name=ARCHIVIST.name, password="N3w-passw0rd-1", tenant="SANDBOX"))
        small_repository.state.revoke_tokens(user=ARCHIVIST.name)
        async for event in run(self):
            yield event

    monkeypatch.setattr(trigger_class, "run", password_changed_meanwhile)
    try:
        dag_run = run_dag("rejected_login_dags.py", dag, run_conf=_inputs(tmp_path))
    finally:
        small_repository.state.add_user(ARCHIVIST)

    assert task_states(dag_run) == {"task[-1]": "failed"}
    assert _the_task(dag_run).try_number == 1
    assert small_repository.state.stats()["logins"].get("archivist") == 1  # the task's own, before it deferred
    assert _failed_logins(small_repository) == 1  # the trigger's
    assert REJECTED in "".join(capfd.readouterr())


def test_a_server_fault_at_login_keeps_its_retries(small_repository, monkeypatch, run_dag, tmp_path):
    _use(monkeypatch, small_repository, max_retries=0)
    inject(small_repository, kind="status", route="POST /api/accesstoken/login", status=503, count=1)

    dag_run = run_dag("rejected_login_dags.py", "search_dag", run_conf=_inputs(tmp_path))

    assert task_states(dag_run) == {"task[-1]": "success"}
    assert _the_task(dag_run).try_number == 2  # the first try failed on the 503, the retry logged in
    assert _failed_logins(small_repository) == 0
