"""Fault injection: status bursts with Retry-After, redirects, latency, dropped connections, expiry, revocation."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from preservica_sandbox import SandboxServer

from .conftest import login, post_faults, stats, token_for


def _details(server: SandboxServer, token: str, session: requests.Session | None = None) -> requests.Response:
    getter = session.get if session is not None else requests.get
    return getter(f"{server.base_url}/api/user/details", headers={"Preservica-Access-Token": token}, timeout=10)


def test_status_fault_with_retry_after_and_count(sandbox: SandboxServer) -> None:
    token = token_for(sandbox.base_url)
    [fault] = post_faults(
        sandbox.base_url,
        {"kind": "status", "route": "GET /api/user/details", "status": 429, "count": 2, "retry_after": 3},
    )
    assert fault["id"] and fault["count"] == 2
    for _ in range(2):
        response = _details(sandbox, token)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        assert response.json()["success"] is False and "sandbox fault" in response.json()["message"]
    assert _details(sandbox, token).status_code == 200
    assert requests.get(f"{sandbox.base_url}/_sandbox/faults", timeout=10).json() == []
    counted = stats(sandbox.base_url)
    assert counted["requests"]["GET /api/user/details"] == 3
    assert counted["faults_fired"] == {"status": 2}


def test_status_fault_defaults_and_method_filter(sandbox: SandboxServer) -> None:
    token = token_for(sandbox.base_url)
    post_faults(
        sandbox.base_url,
        [
            {"kind": "status", "route": "POST /api/*", "status": 503},
            {"kind": "status", "route": "/api/user/*", "status": 500},
        ],
    )
    failed = _details(sandbox, token)
    assert failed.status_code == 500 and "Retry-After" not in failed.headers
    unavailable = login(sandbox.base_url)
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "1"
    assert login(sandbox.base_url).status_code == 200


def test_injected_401_once(sandbox: SandboxServer) -> None:
    token = token_for(sandbox.base_url)
    post_faults(sandbox.base_url, {"kind": "status", "route": "/api/user/details", "status": 401})
    assert _details(sandbox, token).status_code == 401
    assert _details(sandbox, token).status_code == 200


def test_faults_never_apply_to_control_routes(sandbox: SandboxServer) -> None:
    post_faults(sandbox.base_url, {"kind": "status", "route": "*", "status": 500, "count": 5})
    assert requests.get(f"{sandbox.base_url}/_sandbox/stats", timeout=10).status_code == 200
    assert len(requests.get(f"{sandbox.base_url}/_sandbox/faults", timeout=10).json()) == 1
    assert requests.delete(f"{sandbox.base_url}/_sandbox/faults", timeout=10).json()["removed"] == 1
    assert login(sandbox.base_url).status_code == 200


def test_redirect_fault_answers_location_with_the_request_path(sandbox: SandboxServer) -> None:
    token = token_for(sandbox.base_url)
    [fault] = post_faults(
        sandbox.base_url,
        [
            {"kind": "redirect", "route": "GET /api/user/*", "location": "https://elsewhere.example:8443{path}"},
            {"kind": "redirect", "route": "POST /api/accesstoken/login", "status": 302, "location": "/moved"},
        ],
    )[:1]
    assert fault["status"] == 307 and fault["location"] == "https://elsewhere.example:8443{path}"
    response = requests.get(
        f"{sandbox.base_url}/api/user/details?a=1",
        headers={"Preservica-Access-Token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 307
    assert response.headers["Location"] == "https://elsewhere.example:8443/api/user/details?a=1"
    moved = requests.post(
        f"{sandbox.base_url}/api/accesstoken/login", data={"username": "x"}, allow_redirects=False, timeout=10
    )
    assert moved.status_code == 302 and moved.headers["Location"] == "/moved"
    assert _details(sandbox, token).status_code == 200  # count 1: then back to normal
    assert stats(sandbox.base_url)["faults_fired"] == {"redirect": 2}


def test_latency_fault(sandbox: SandboxServer) -> None:
    token = token_for(sandbox.base_url)
    [fault] = post_faults(
        sandbox.base_url, {"kind": "latency", "route": "GET /api/user/details", "seconds": 0.4, "count": None}
    )
    assert fault["count"] is None
    for _ in range(2):
        started = time.monotonic()
        assert _details(sandbox, token).status_code == 200
        assert time.monotonic() - started >= 0.4
    assert len(requests.get(f"{sandbox.base_url}/_sandbox/faults", timeout=10).json()) == 1
    requests.delete(f"{sandbox.base_url}/_sandbox/faults/{fault['id']}", timeout=10).raise_for_status()
    assert _details(sandbox, token).status_code == 200
    assert stats(sandbox.base_url)["faults_fired"] == {"latency": 2}  # the third call was not delayed


def test_drop_fault_is_a_connection_error(sandbox: SandboxServer, http: requests.Session) -> None:
    token = token_for(sandbox.base_url)
    assert _details(sandbox, token, http).status_code == 200  # a pooled keep-alive connection
    post_faults(sandbox.base_url, {"kind": "drop", "route": "GET /api/user/details", "count": 2})
    for session in (http, None):
        with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            _details(sandbox, token, session)
    assert _details(sandbox, token, http).status_code == 200
    assert stats(sandbox.base_url)["faults_fired"] == {"drop": 2}


def test_expire_tokens_fault(sandbox: SandboxServer) -> None:
    mine = token_for(sandbox.base_url)
    theirs = login(sandbox.base_url, "curator", "curator-password").json()["token"]
    [fault] = post_faults(sandbox.base_url, {"kind": "expire_tokens", "user": "archivist"})
    assert fault["applied"] == 1
    assert _details(sandbox, mine).status_code == 401
    assert _details(sandbox, theirs).status_code == 200
    post_faults(sandbox.base_url, {"kind": "expire_tokens"})
    assert _details(sandbox, theirs).status_code == 401
    assert _details(sandbox, token_for(sandbox.base_url)).status_code == 200


def test_revoke_token_fault_by_token_and_by_user(sandbox: SandboxServer) -> None:
    first, second = token_for(sandbox.base_url), token_for(sandbox.base_url)
    [fault] = post_faults(sandbox.base_url, {"kind": "revoke_token", "token": first})
    assert fault["applied"] == 1 and fault["token_prefix"] == first[:8] and first not in str(fault)
    revoked = _details(sandbox, first)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]
    assert _details(sandbox, second).status_code == 200
    post_faults(sandbox.base_url, {"kind": "revoke_token", "user": "archivist"})
    assert _details(sandbox, second).status_code == 401
    listed = requests.get(f"{sandbox.base_url}/_sandbox/tokens", timeout=10).json()
    assert all(entry["revoked"] for entry in listed)


def test_a_fault_with_after_lets_that_many_requests_through_first(sandbox: SandboxServer) -> None:
    token = token_for(sandbox.base_url)
    [fault] = post_faults(
        sandbox.base_url, {"kind": "status", "route": "GET /api/user/details", "status": 503, "after": 2}
    )
    assert fault["after"] == 2
    assert [_details(sandbox, token).status_code for _ in range(4)] == [200, 200, 503, 200]
    assert stats(sandbox.base_url)["faults_fired"] == {"status": 1}


def test_a_latency_fault_with_together_holds_requests_until_all_have_arrived(sandbox: SandboxServer) -> None:
    """Two clients' requests are in flight together however late the second one starts."""
    token = token_for(sandbox.base_url)
    post_faults(
        sandbox.base_url,
        {"kind": "latency", "route": "GET /api/user/details", "seconds": 60, "together": 2, "count": 2},
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(_details, sandbox, token)
        while stats(sandbox.base_url)["faults_fired"].get("latency", 0) < 1:  # the first one is held
            time.sleep(0.01)
        assert not first.done()
        assert _details(sandbox, token).status_code == 200  # the second arrives: both go on
        assert first.result(timeout=30).status_code == 200


def test_token_faults_with_a_route_act_at_the_matching_request(sandbox: SandboxServer) -> None:
    """A "mid-run" expiry lands at a known request, not whenever a test thread gets to post it."""
    token = token_for(sandbox.base_url)
    [fault] = post_faults(
        sandbox.base_url, {"kind": "expire_tokens", "user": "archivist", "route": "GET /api/user/*", "after": 1}
    )
    assert (fault["count"], fault["after"]) == (1, 1) and "applied" not in fault  # waiting, nothing expired yet
    assert _details(sandbox, token).status_code == 200  # let through
    expired = _details(sandbox, token)  # expired just before it was handled
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    assert requests.get(f"{sandbox.base_url}/_sandbox/faults", timeout=10).json() == []  # acted once, gone
    fresh = token_for(sandbox.base_url)
    assert _details(sandbox, fresh).status_code == 200
    assert stats(sandbox.base_url)["faults_fired"] == {"expire_tokens": 1}

    post_faults(sandbox.base_url, {"kind": "revoke_token", "user": "archivist", "route": "GET /api/user/details"})
    revoked = _details(sandbox, fresh)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "explode"},
        {"kind": "status", "status": 500, "after": -1},
        {"kind": "latency", "seconds": 1, "together": 1},
        {"kind": "expire_tokens", "after": "soon"},
        {"kind": "status", "status": 200},
        {"kind": "status", "status": 500, "count": 0},
        {"kind": "latency", "route": "/api/*"},
        {"kind": "revoke_token"},
        {"kind": "status", "status": 500, "route": "get me /api"},
        {"kind": "hostile_export", "variant": "sneaky"},
        {"kind": "hostile_export", "variant": "zip_bomb", "bytes": 5 * 1024**3},
        {"kind": "redirect", "route": "/api/*"},
        {"kind": "redirect", "status": 404, "location": "https://elsewhere.example"},
    ],
)
def test_invalid_faults_are_400(sandbox: SandboxServer, fault: dict) -> None:
    response = requests.post(f"{sandbox.base_url}/_sandbox/faults", json=fault, timeout=10)
    assert response.status_code == 400
    assert response.json()["success"] is False
