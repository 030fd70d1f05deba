"""Token herd over many token lifetimes: 50 mapped tasks on two worker hosts, one password login, then refreshes.

The sandbox's tokens live ``TOKEN_LIFETIME`` seconds and the run lasts several of them. The shared cache
must log in once (the first herd of 16 tasks, on both hosts at once) and from then on renew the token with
its single-use refresh token, exactly one process anywhere spending each one.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from tests.distributed.dags.preservica_distributed import HERD_TASKS
from tests.support.deployment import SANDBOX_PASSWORD, SANDBOX_USER, WORKERS, Deployment

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]

TOKEN_LIFETIME = 20.0
#: A token is renewed once less than a third of its lifetime is left (``AccessToken.renew_at``).
RENEWED_AFTER = TOKEN_LIFETIME * 2 / 3
TOKEN_VARIABLE = "preservica_access_token__preservica_default"


def _shared_record(dist: Deployment) -> dict[str, object]:
    """The token cache Variable as the tasks left it, decrypted with the deployment's Fernet key."""
    from cryptography.fernet import Fernet

    rows = dist.query("SELECT val, is_encrypted FROM variable WHERE key = %s", (TOKEN_VARIABLE,))
    assert rows, "the tasks left no shared token"
    value, encrypted = rows[0]
    assert encrypted, "the token Variable is not encrypted at rest"
    fernet = Fernet(dist.components["scheduler"].env["AIRFLOW__CORE__FERNET_KEY"].encode())
    return dict(json.loads(fernet.decrypt(value.encode()).decode()))


def test_fifty_tasks_on_two_hosts_log_in_once_and_refresh_over_many_lifetimes(dist: Deployment) -> None:
    dist.sandbox("POST", "config", {"token_lifetime": TOKEN_LIFETIME})

    run_id = dist.trigger("preservica_token_herd")
    state = dist.wait_for_run("preservica_token_herd", run_id, timeout=480)

    tis = dist.task_instances("preservica_token_herd", run_id)
    not_clean = [(ti["map_index"], ti["state"], ti["try_number"]) for ti in tis if ti["state"] != "success"]
    assert state == "success" and len(tis) == HERD_TASKS and not_clean == []
    assert all(ti["try_number"] == 1 for ti in tis), "a task needed a retry"

    stats = dist.sandbox("GET", "stats")
    results = [dist.xcom("preservica_token_herd", run_id, "call_preservica", map_index=i) for i in range(HERD_TASKS)]
    hosts = Counter(str(r["host"]) for r in results)
    refreshed_on = Counter(str(r["host"]) for r in results for _ in range(int(r["refreshes_here"])))
    made = sum(int(r["calls"]) for r in results)
    first_login = min(stats["login_times"][SANDBOX_USER])
    ended = max(ti["end_date"] for ti in tis).timestamp()
    span = ended - first_login
    lifetimes = span / TOKEN_LIFETIME
    logins = int(stats["logins"].get(SANDBOX_USER, 0))
    refreshes = int(stats["refreshes"].get(SANDBOX_USER, 0))
    refresh_requests = int(stats["requests"].get("POST /api/accesstoken/refresh", 0))
    served = int(stats["requests"].get("GET /api/user/details", 0))
    print(
        f"\ntoken herd: {HERD_TASKS} tasks ({dict(hosts)}), {made} Preservica calls over {span:.0f} s = "
        f"{lifetimes:.1f} lifetimes of a {TOKEN_LIFETIME:.0f} s token: {logins} password login(s), "
        f"{refreshes} refreshes ({refresh_requests} requested; by host {dict(refreshed_on)}), "
        f"{len(not_clean)} failed tasks"
    )

    assert set(hosts) == set(WORKERS), "both worker hosts must take part"
    assert lifetimes >= 4, "the run must outlast several token lifetimes"
    assert logins == 1 and stats["login_failures"] == {}
    assert refreshes >= math.floor(lifetimes) - 1, "the token was not kept alive by refreshing"
    assert refreshes <= span / RENEWED_AFTER + 1, "tokens were renewed before they were due"
    assert refresh_requests == refreshes, "a spent refresh token was presented again (two renewers raced)"
    assert sum(refreshed_on.values()) == refreshes  # every refresh came from a task
    assert served == made, "a call met a 401 and was repeated: a token was used past its expiry"

    record = _shared_record(dist)
    secrets = [str(record["token"]), str(record["refresh_token"])]
    leaked = [
        str(path) for path in dist.home.rglob("*.log") if any(s in path.read_text(errors="replace") for s in secrets)
    ]
    assert leaked == [], "the shared token or its refresh token appears in a log"


def test_no_password_in_any_deployment_log(dist: Deployment) -> None:
    """Every log the deployment wrote so far (components and task logs) is free of the account's password."""
    leaked = [str(path) for path in dist.home.rglob("*.log") if SANDBOX_PASSWORD in path.read_text(errors="replace")]
    assert leaked == []
