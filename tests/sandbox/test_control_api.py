"""The /_sandbox control surface: stats, reset, config, token listing."""

from __future__ import annotations

import requests
from preservica_sandbox import SandboxServer

from .conftest import login, stats, token_for


def test_stats_count_logins_and_requests_by_route_template(sandbox: SandboxServer) -> None:
    before = sandbox.state.clock()
    token = token_for(sandbox.base_url)
    token_for(sandbox.base_url)
    login(sandbox.base_url, password="wrong")
    headers = {"Preservica-Access-Token": token}
    for _ in range(3):
        requests.get(f"{sandbox.base_url}/api/user/details", headers=headers, timeout=10)
    requests.get(f"{sandbox.base_url}/api/entity/v7.7/versiondetails/version", headers=headers, timeout=10)
    requests.get(f"{sandbox.base_url}/no/such/path", timeout=10)
    requests.get(f"{sandbox.base_url}/_sandbox/config", timeout=10)
    counted = stats(sandbox.base_url)
    assert counted["logins"] == {"archivist": 2}
    assert counted["login_failures"] == {"archivist": 1}
    assert counted["refreshes"] == {}
    assert len(counted["login_times"]["archivist"]) == 2
    assert all(before <= t <= sandbox.state.clock() for t in counted["login_times"]["archivist"])
    assert counted["requests"] == {
        "POST /api/accesstoken/login": 3,
        "GET /api/user/details": 3,
        "GET /api/entity/{api_version}/versiondetails/version": 1,
        "GET <unmatched>": 1,
    }
    assert counted["active_tokens"] == 2
    assert counted["token_lifetime"] == 900


def test_reset_clears_counters_tokens_and_faults_but_keeps_users_and_config(sandbox: SandboxServer) -> None:
    sandbox.state.update_config({"token_lifetime": 600})
    token = token_for(sandbox.base_url)
    requests.post(
        f"{sandbox.base_url}/_sandbox/faults",
        json={"kind": "status", "route": "/x", "status": 500},
        timeout=10,
    )
    assert requests.post(f"{sandbox.base_url}/_sandbox/reset", timeout=10).status_code == 200
    counted = stats(sandbox.base_url)
    assert counted["logins"] == {} and counted["requests"] == {} and counted["active_tokens"] == 0
    assert requests.get(f"{sandbox.base_url}/_sandbox/faults", timeout=10).json() == []
    old = requests.get(f"{sandbox.base_url}/api/user/details", headers={"Preservica-Access-Token": token}, timeout=10)
    assert old.status_code == 401
    assert login(sandbox.base_url).json()["validFor"] == 10


def test_config_changes_lifetime_of_later_tokens(sandbox: SandboxServer) -> None:
    url = f"{sandbox.base_url}/_sandbox/config"
    config = requests.get(url, timeout=10).json()
    assert (config["token_lifetime"], config["version"], config["ingest_seconds"]) == (900, "7.7.1", 1)
    changed = requests.post(url, json={"token_lifetime": 45}, timeout=10)
    assert changed.status_code == 200 and changed.json()["token_lifetime"] == 45
    assert login(sandbox.base_url).json()["validFor"] == 0.75
    assert requests.post(url, json={"token_lifetime": -1}, timeout=10).status_code == 400
    assert requests.post(url, json={"colour": "blue"}, timeout=10).status_code == 400
    assert requests.post(url, json={"version": "eight"}, timeout=10).status_code == 400


def test_token_listing_never_shows_full_tokens(sandbox: SandboxServer) -> None:
    token = token_for(sandbox.base_url)
    login(sandbox.base_url, "curator", "curator-password")
    response = requests.get(f"{sandbox.base_url}/_sandbox/tokens", params={"user": "archivist"}, timeout=10)
    listed = response.json()
    assert len(listed) == 1
    assert listed[0]["token_prefix"] == token[:8]
    assert listed[0]["user"] == "archivist" and listed[0]["revoked"] is False
    assert listed[0]["expires_at"] > sandbox.state.clock()
    everything = requests.get(f"{sandbox.base_url}/_sandbox/tokens", timeout=10)
    assert len(everything.json()) == 2
    assert token not in everything.text
