"""Access Token API: login, user details on login, lifetimes, refresh, two-factor, shared secret."""

from __future__ import annotations

import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pyotp
import requests
from preservica_sandbox import SandboxServer

from tests.support.clock import FakeClock

from .conftest import ARCHIVIST, CURATOR, TOTP_SECRET, TWOFA, login, stats, token_for


def _details(server: SandboxServer, **headers: str) -> requests.Response:
    return requests.get(f"{server.base_url}/api/user/details", headers=headers, timeout=10)


def test_login_success_returns_preservica_token_json(sandbox: SandboxServer) -> None:
    response = login(sandbox.base_url, tenant="SANDBOX")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["user"] == ARCHIVIST[0]
    assert body["validFor"] == 15 and isinstance(body["validFor"], int)
    uuid.UUID(body["token"])
    uuid.UUID(body["refresh-token"])
    assert body["token"] != body["refresh-token"]
    assert "tenant" not in body and "roles" not in body


def test_login_with_user_details(sandbox: SandboxServer) -> None:
    body = login(sandbox.base_url, includeUserDetails="true").json()
    assert body["tenant"] == "SANDBOX"
    assert body["tenantValue"] == "SANDBOX"
    assert body["fullName"] and body["email"]
    assert "ROLE_SDB_MANAGER_USER" in body["roles"]


def test_bad_password_is_401_json_without_the_password(sandbox: SandboxServer) -> None:
    response = login(sandbox.base_url, password="not-the-password-xyz")
    assert response.status_code == 401
    body = response.json()
    assert body["success"] is False
    assert body["message"]
    assert "not-the-password-xyz" not in response.text
    assert "token" not in body


def test_unknown_user_and_wrong_tenant_are_401(sandbox: SandboxServer) -> None:
    assert login(sandbox.base_url, username="nobody").status_code == 401
    assert login(sandbox.base_url, tenant="OTHER").status_code == 401
    assert login(sandbox.base_url, *CURATOR[:2], tenant="OTHER").status_code == 200
    counted = stats(sandbox.base_url)
    assert counted["login_failures"] == {"nobody": 1, "archivist": 1}
    assert counted["logins"] == {"curator": 1}


def test_missing_fields_are_400_json(sandbox: SandboxServer) -> None:
    response = requests.post(f"{sandbox.base_url}/api/accesstoken/login", data={"username": "archivist"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert "password" in response.json()["message"]


def test_valid_for_is_a_float_for_short_lifetimes(sandbox: SandboxServer) -> None:
    sandbox.state.update_config({"token_lifetime": 30})
    assert login(sandbox.base_url).json()["validFor"] == 0.5
    sandbox.state.update_config({"token_lifetime": 120})
    valid_for = login(sandbox.base_url).json()["validFor"]
    assert valid_for == 2 and isinstance(valid_for, int)


def test_token_accepted_in_both_headers(sandbox: SandboxServer) -> None:
    token = token_for(sandbox.base_url)
    assert _details(sandbox, **{"Preservica-Access-Token": token}).status_code == 200
    assert _details(sandbox, Authorization=f"Bearer {token}").status_code == 200
    assert _details(sandbox, Authorization=f"Basic {token}").status_code == 401
    assert _details(sandbox).json() == {"success": False, "message": "Missing access token"}
    unknown = _details(sandbox, **{"Preservica-Access-Token": str(uuid.uuid4())})
    assert unknown.status_code == 401 and unknown.json()["success"] is False


def test_token_expires_after_its_lifetime(sandbox: SandboxServer, sandbox_clock: FakeClock) -> None:
    sandbox.state.update_config({"token_lifetime": 1})
    token = token_for(sandbox.base_url)
    sandbox_clock.advance(0.9)
    assert _details(sandbox, **{"Preservica-Access-Token": token}).status_code == 200
    sandbox_clock.advance(0.2)  # past its 1 s lifetime
    expired = _details(sandbox, **{"Preservica-Access-Token": token})
    assert expired.status_code == 401
    assert "expired" in expired.json()["message"]
    assert stats(sandbox.base_url)["active_tokens"] == 0


def test_refresh_is_single_use_and_counted(sandbox: SandboxServer) -> None:
    first = login(sandbox.base_url).json()
    headers = {"Preservica-Access-Token": first["token"]}
    url = f"{sandbox.base_url}/api/accesstoken/refresh"
    refreshed = requests.post(url, data={"refreshToken": first["refresh-token"]}, headers=headers, timeout=10)
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert body["success"] is True and body["token"] != first["token"]
    assert _details(sandbox, **{"Preservica-Access-Token": body["token"]}).status_code == 200
    assert _details(sandbox, **headers).status_code == 200  # the old token lives until it expires
    again = requests.post(url, data={"refreshToken": first["refresh-token"]}, headers=headers, timeout=10)
    assert again.status_code == 401 and again.json()["success"] is False
    counted = stats(sandbox.base_url)
    assert counted["refreshes"] == {"archivist": 1}
    assert counted["logins"] == {"archivist": 1}


def test_refresh_needs_an_access_token(sandbox: SandboxServer) -> None:
    first = login(sandbox.base_url).json()
    response = requests.post(
        f"{sandbox.base_url}/api/accesstoken/refresh",
        data={"refreshToken": first["refresh-token"]},
        timeout=10,
    )
    assert response.status_code == 401


def test_two_factor_login(sandbox: SandboxServer) -> None:
    first = login(sandbox.base_url, *TWOFA[:2])
    assert first.status_code == 401
    body = first.json()
    assert body["success"] is False and body["message"] == "needs.2fa"
    assert body["tenant"] == "SANDBOX" and "token" not in body
    assert stats(sandbox.base_url)["logins"] == {}
    form = {
        "username": TWOFA[0],
        "continuationToken": body["continuationToken"],
        "tenant": "SANDBOX",
        "twoFactorToken": pyotp.TOTP(TOTP_SECRET).now(),
    }
    done = requests.post(f"{sandbox.base_url}/api/accesstoken/complete-2fa", data=form, timeout=10)
    assert done.status_code == 200, done.text
    assert done.json()["success"] is True
    assert _details(sandbox, **{"Preservica-Access-Token": done.json()["token"]}).status_code == 200
    reused = requests.post(f"{sandbox.base_url}/api/accesstoken/complete-2fa", data=form, timeout=10)
    assert reused.status_code == 401 and reused.json()["success"] is False
    assert stats(sandbox.base_url)["logins"] == {TWOFA[0]: 1}


def test_two_factor_wrong_code_and_put(sandbox: SandboxServer) -> None:
    continuation = login(sandbox.base_url, *TWOFA[:2]).json()["continuationToken"]
    good = pyotp.TOTP(TOTP_SECRET).now()
    wrong = f"{(int(good) + 500000) % 1000000:06d}"
    form = {
        "username": TWOFA[0],
        "continuationToken": continuation,
        "tenant": "SANDBOX",
        "twoFactorToken": wrong,
    }
    refused = requests.post(f"{sandbox.base_url}/api/accesstoken/complete-2fa", data=form, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["success"] is False and "token" not in refused.json()
    continuation = login(sandbox.base_url, *TWOFA[:2]).json()["continuationToken"]
    form.update(continuationToken=continuation, twoFactorToken=good)
    accepted = requests.put(f"{sandbox.base_url}/api/accesstoken/complete-2fa", data=form, timeout=10)
    assert accepted.status_code == 200
    assert stats(sandbox.base_url)["login_failures"] == {TWOFA[0]: 1}


def test_two_factor_user_with_bad_password_gets_no_continuation(sandbox: SandboxServer) -> None:
    response = login(sandbox.base_url, TWOFA[0], "wrong")
    assert response.status_code == 401
    assert "continuationToken" not in response.json()


def test_acquire_external_shared_secret(sandbox: SandboxServer) -> None:
    timestamp = int(time.time())
    digest = hashlib.sha1(f"preservica-external-auth{timestamp}{ARCHIVIST[0]}{ARCHIVIST[1]}".encode())
    form = {"username": ARCHIVIST[0], "tenant": "SANDBOX", "timestamp": timestamp, "hash": digest.hexdigest()}
    url = f"{sandbox.base_url}/api/accesstoken/acquire-external"
    assert requests.post(url, data=form, timeout=10).status_code == 200
    form["hash"] = "0" * 40
    assert requests.post(url, data=form, timeout=10).status_code == 401


def test_parallel_logins_are_all_counted_and_distinct(sandbox: SandboxServer) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        tokens = list(pool.map(lambda _: token_for(sandbox.base_url), range(40)))
    assert len(set(tokens)) == 40
    counted = stats(sandbox.base_url)
    assert counted["logins"] == {"archivist": 40}
    assert counted["active_tokens"] == 40
