"""The shared token cache inside real Airflow tasks (dag.test on SQLite) against the sandbox."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_preservica.client.auth.cache import TokenCache
from airflow_provider_preservica.client.auth.token import AccessToken
from tests.support.accounts import PROD_USER, TEST_USER
from tests.support.airflow_db import delete_variable, set_variable, task_states, variable
from tests.support.sandbox import connection_json, logins

KEY = "preservica_access_token__preservica_default"

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _empty_cache_variable(airflow_db: None) -> None:
    for key in (KEY, "preservica_access_token__preservica_prod", "preservica_access_token__preservica_test"):
        delete_variable(key)


def issued_during(record: dict, started: float) -> bool:
    """The record holds a full-lifetime (900 s) token from a login after ``started``: no wall-clock margin."""
    issued, expires = record["issued_at"], record["expires_at"]
    return issued >= round(started, 3) - 0.001 and expires - issued == pytest.approx(900, abs=0.01)


def test_many_tasks_share_one_login(preservica_conn, run_dag):
    started = time.time()
    dag_run = run_dag("token_sharing.py", "many_tasks_dag")

    states = task_states(dag_run)
    assert len(states) == 12 and set(states.values()) == {"success"}, states
    assert logins(preservica_conn) == 1
    assert preservica_conn.state.stats()["requests"]["GET /api/user/details"] == 12
    record = json.loads(variable(KEY) or "{}")
    assert issued_during(record, started)
    assert set(record) >= {"token", "expires_at", "issued_at", "fingerprint"}
    assert "password" not in json.dumps(record).lower()


def test_tasks_reuse_the_variable_written_by_another_process(preservica_conn, run_dag):
    run_dag("token_sharing.py", "many_tasks_dag")
    TokenCache.clear_memory()  # as if the next run came from a different worker process

    run_dag("token_sharing.py", "many_tasks_dag")

    assert logins(preservica_conn) == 1


def test_expired_cache_entry_leads_to_exactly_one_new_login(preservica_conn, run_dag):
    run_dag("token_sharing.py", "many_tasks_dag")
    record = json.loads(variable(KEY) or "{}")
    record["expires_at"] = time.time() - 5
    set_variable(KEY, json.dumps(record))
    TokenCache.clear_memory()
    started = time.time()

    dag_run = run_dag("token_sharing.py", "many_tasks_dag")

    assert set(task_states(dag_run).values()) == {"success"}
    assert logins(preservica_conn) == 2
    assert issued_during(json.loads(variable(KEY) or "{}"), started)


@pytest.mark.parametrize(
    "corrupt",
    ["not json at all", '{"version": 1, "token": 42}', "[]", json.dumps({"version": 99, "token": "x"})],
)
def test_corrupt_cache_entry_is_survived_and_overwritten(preservica_conn, run_dag, corrupt):
    set_variable(KEY, corrupt)

    dag_run = run_dag("token_sharing.py", "many_tasks_dag")

    assert set(task_states(dag_run).values()) == {"success"}
    assert logins(preservica_conn) == 1
    assert AccessToken.from_json(variable(KEY)) is not None


def test_foreign_account_entry_is_not_used(preservica_conn, run_dag):
    foreign = AccessToken(
        value="someone-elses-token", expires_at=time.time() + 800, issued_at=time.time(), fingerprint="0" * 32
    )
    set_variable(KEY, foreign.to_json())

    dag_run = run_dag("token_sharing.py", "many_tasks_dag")

    assert set(task_states(dag_run).values()) == {"success"}
    assert logins(preservica_conn) == 1
    assert AccessToken.from_json(variable(KEY)).value != "someone-elses-token"


def test_token_revoked_mid_run_costs_one_login_and_no_failure(preservica_conn, run_dag, monkeypatch):
    monkeypatch.setenv("PRESERVICA_SANDBOX_URL", preservica_conn.base_url)

    dag_run = run_dag("token_sharing.py", "revoked_mid_run_dag")

    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    assert logins(preservica_conn) == 2
    assert preservica_conn.state.stats()["requests"]["GET /api/entity/versiondetails/version"] == 1 + 1 + 4


def test_two_connections_keep_separate_caches(sandbox, run_dag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_PROD", connection_json(sandbox, PROD_USER))
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_TEST", connection_json(sandbox, TEST_USER))

    dag_run = run_dag("token_sharing.py", "two_environments_dag")

    assert set(task_states(dag_run).values()) == {"success"}
    assert logins(sandbox, "prod-robot") == 1 and logins(sandbox, "test-robot") == 1
    prod = AccessToken.from_json(variable("preservica_access_token__preservica_prod"))
    test = AccessToken.from_json(variable("preservica_access_token__preservica_test"))
    assert prod and test and prod.value != test.value and prod.fingerprint != test.fingerprint
    tenants = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in dag_run.get_task_instances()}
    assert tenants == {"prod_env": "PROD", "test_env": "TEST"}


def test_memory_mode_writes_no_variable(sandbox, run_dag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox, token_cache="memory"))

    dag_run = run_dag("token_sharing.py", "many_tasks_dag")

    assert set(task_states(dag_run).values()) == {"success"}
    assert variable(KEY) is None
    assert logins(sandbox) == 1  # dag.test runs every task in this one process


def test_cache_variable_is_encrypted_at_rest(preservica_conn, run_dag):
    run_dag("token_sharing.py", "many_tasks_dag")
    from airflow.models import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(Variable).filter(Variable.key == KEY).one()
        assert row.is_encrypted
        token = AccessToken.from_json(row.val)
        assert token is not None and token.value not in (row._val or "")
