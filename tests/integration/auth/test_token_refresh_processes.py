"""Renewal by refresh through the shared Variable: real Airflow tasks (dag.test on SQLite), several OS processes.

The cache entry is seeded with a real token pair from the sandbox (one login), its bookkeeping times moved
back so that the cache sees it due for renewal (or past its margin) while the sandbox still honours it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from airflow_provider_preservica.client.auth.cache import TokenCache
from airflow_provider_preservica.client.auth.token import AccessToken
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from benchmarks.fault_scenarios import login_as_if_due
from tests.support.airflow_db import delete_variable, set_variable, task_states, variable
from tests.support.sandbox import logins
from tests.support.token_race import TokenRace

KEY = "preservica_access_token__preservica_default"
REFRESH = "POST /api/accesstoken/refresh"
PROCESSES = 6

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _empty_cache_variable(airflow_db: None) -> None:
    delete_variable(KEY)
    delete_variable("preservica_login_lease__preservica_default")


def seed(left: float, *, with_refresh_token: bool = True) -> AccessToken:
    """Log in once and store the pair as if ``left`` seconds of its 900 s remained."""
    record = login_as_if_due(PreservicaHook().settings, left)
    if not with_refresh_token:
        record = dataclasses.replace(record, refresh_token=None)
    raw = record.to_json()
    if not with_refresh_token:  # exactly what the provider wrote before it refreshed tokens
        raw = json.dumps({k: v for k, v in json.loads(raw).items() if k != "refresh_token"})
    set_variable(KEY, raw)
    TokenCache.clear_memory()
    return record


def refreshes(server) -> int:
    return int(server.state.stats()["refreshes"].get("archivist", 0))


def refresh_requests(server) -> int:
    return int(server.state.stats()["requests"].get(REFRESH, 0))


def test_tasks_refresh_a_due_token_once_and_share_it(preservica_conn, run_dag):
    seeded = seed(left=250)  # due (less than 300 s of 900 s left), still usable
    started = time.time()

    dag_run = run_dag("token_sharing.py", "many_tasks_dag")

    assert set(task_states(dag_run).values()) == {"success"}
    assert logins(preservica_conn) == 1 and refreshes(preservica_conn) == 1 and refresh_requests(preservica_conn) == 1
    stored = AccessToken.from_json(variable(KEY))
    assert stored is not None and stored.value != seeded.value and stored.refresh_token
    assert stored.refresh_token != seeded.refresh_token and stored.issued_at >= round(started, 3) - 0.001
    assert stored.lifetime == pytest.approx(900, abs=0.01)  # a full new lifetime, from the refresh


def test_an_entry_written_before_refresh_existed_is_used_as_it_is(preservica_conn, run_dag):
    seeded = seed(left=800, with_refresh_token=False)

    dag_run = run_dag("token_sharing.py", "many_tasks_dag")

    assert set(task_states(dag_run).values()) == {"success"}
    assert logins(preservica_conn) == 1 and refresh_requests(preservica_conn) == 0  # the seed's login only
    assert AccessToken.from_json(variable(KEY)).value == seeded.value


def test_a_due_entry_without_a_refresh_token_is_renewed_by_one_login(preservica_conn, run_dag):
    seeded = seed(left=250, with_refresh_token=False)

    dag_run = run_dag("token_sharing.py", "many_tasks_dag")

    assert set(task_states(dag_run).values()) == {"success"}
    assert logins(preservica_conn) == 2 and refresh_requests(preservica_conn) == 0
    stored = AccessToken.from_json(variable(KEY))
    assert stored.value != seeded.value and stored.refresh_token  # the new entry can be refreshed next time


def test_the_refresh_token_is_only_in_the_encrypted_variable(preservica_conn, run_dag):
    seed(left=250)
    dag_run = run_dag("token_sharing.py", "many_tasks_dag")
    from airflow.models import Variable
    from airflow.models.xcom import XComModel as XCom
    from airflow.utils.session import create_session

    stored = AccessToken.from_json(variable(KEY))
    assert stored is not None and stored.refresh_token
    with create_session() as session:
        row = session.query(Variable).filter(Variable.key == KEY).one()
        assert row.is_encrypted and stored.refresh_token not in (row._val or "")
        xcoms = session.query(XCom).filter(XCom.dag_id == dag_run.dag_id, XCom.run_id == dag_run.run_id).all()
        assert xcoms and not any(stored.refresh_token in json.dumps(x.value, default=str) for x in xcoms)


@pytest.mark.multiprocess
def test_processes_on_six_hosts_needing_a_renewal_spend_the_refresh_token_once(preservica_conn, tmp_path: Path):
    """Six task processes, each with its own lock directory (six "hosts"), find the shared token past its
    margin (nobody may use it) within milliseconds of one another. Only the cross-host lease keeps them to
    one refresh: the lease holder refreshes, the others wait for its token. (A token still usable while due
    is raced by two hosts in the fault matrix, ``refresh_raced_by_two_hosts``.)
    """
    race = TokenRace(preservica_conn, tmp_path, PROCESSES, month=5)
    race.start(own_lock_dirs=True)
    race.wait_until_ready()
    seeded = seed(left=30)  # 30 s of 900 s: past the 60 s margin, still refreshable
    outputs = race.go()
    assert [code for code, _ in outputs] == [0] * PROCESSES, outputs[0][1][-3000:]
    assert logins(preservica_conn) == 1  # the seed's: no process logged in
    assert refreshes(preservica_conn) == 1 and refresh_requests(preservica_conn) == 1  # nobody lost a race
    stored = AccessToken.from_json(variable(KEY))
    assert stored is not None and stored.value != seeded.value and stored.fresh()
