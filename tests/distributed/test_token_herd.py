"""Token herd: 50 mapped tasks on two worker hosts hit Preservica while the token expires mid-run."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.distributed.dags.preservica_distributed import HERD_CALLS, HERD_TASKS
from tests.distributed.deployment import SANDBOX_PASSWORD, SANDBOX_USER, WORKERS, Deployment
from tests.distributed.helpers import login_windows

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]

TOKEN_LIFETIME = 12.0
#: The cache stops handing out a token this long before it expires (``AccessToken.usable``).
USABLE_SECONDS = TOKEN_LIFETIME - min(60.0, TOKEN_LIFETIME / 4)


def test_fifty_tasks_on_two_hosts_share_one_login_per_token_lifetime(dist: Deployment) -> None:
    dist.sandbox("POST", "config", {"token_lifetime": TOKEN_LIFETIME})

    run_id = dist.trigger("preservica_token_herd")
    state = dist.wait_for_run("preservica_token_herd", run_id, timeout=420)

    tis = dist.task_instances("preservica_token_herd", run_id)
    not_clean = [(ti["map_index"], ti["state"], ti["try_number"]) for ti in tis if ti["state"] != "success"]
    assert state == "success" and len(tis) == HERD_TASKS and not_clean == []
    assert all(ti["try_number"] == 1 for ti in tis), "a task needed a retry"

    stats = dist.sandbox("GET", "stats")
    logins = sorted(stats["login_times"][SANDBOX_USER])
    started = min(ti["start_date"] for ti in tis).timestamp()
    ended = max(ti["end_date"] for ti in tis).timestamp()
    windows = login_windows(logins, USABLE_SECONDS)
    per_window = max(len(window) for window in windows)
    hosts = Counter(
        dist.xcom("preservica_token_herd", run_id, "call_preservica", map_index=i)["host"] for i in range(HERD_TASKS)
    )
    calls = stats["requests"].get("GET /api/user/details", 0)
    print(
        f"\ntoken herd: {HERD_TASKS} tasks ({dict(hosts)}), {calls} Preservica calls over {ended - started:.0f} s; "
        f"token lifetime {TOKEN_LIFETIME:.0f} s (usable {USABLE_SECONDS:.0f} s); {len(logins)} logins in "
        f"{len(windows)} token windows: {[len(w) for w in windows]} -> at most {per_window} login(s) per lifetime"
    )

    assert set(hosts) == set(WORKERS), "both worker hosts must take part"
    # A request may be repeated after a 401 (token expired in flight); none may be lost.
    assert calls >= HERD_TASKS * HERD_CALLS and stats["login_failures"] == {}
    assert ended - started > TOKEN_LIFETIME and len(windows) >= 2, "the token must expire during the run"
    assert per_window <= len(WORKERS)


def test_no_password_in_any_deployment_log(dist: Deployment) -> None:
    """Every log the deployment wrote so far (components and task logs) is free of the account's password."""
    leaked = [str(path) for path in dist.home.rglob("*.log") if SANDBOX_PASSWORD in path.read_text(errors="replace")]
    assert leaked == []
