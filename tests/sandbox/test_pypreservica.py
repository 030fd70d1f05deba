"""pyPreservica 4.2.2, unchanged, against the sandbox: the constructor's login, version and roles calls."""

from __future__ import annotations

import pyPreservica
import pytest
from preservica_sandbox import SandboxServer

from .conftest import ARCHIVIST, TOTP_SECRET, TWOFA, post_faults, stats


def _client(server: SandboxServer, username: str, password: str, **kwargs: object) -> pyPreservica.EntityAPI:
    return pyPreservica.EntityAPI(username=username, password=password, server=server.server, protocol="http", **kwargs)


def test_entity_api_constructs(sandbox: SandboxServer) -> None:
    client = _client(sandbox, *ARCHIVIST[:2], tenant="SANDBOX")
    assert client.version == "7.7.1"
    assert (client.major_version, client.minor_version, client.patch_version) == (7, 7, 1)
    assert client.entity_ns == "http://preservica.com/EntityAPI/v7.7"
    assert "ROLE_SDB_MANAGER_USER" in client.roles
    counted = stats(sandbox.base_url)
    assert counted["logins"] == {"archivist": 1}
    assert counted["requests"] == {
        "POST /api/accesstoken/login": 1,
        "GET /api/entity/versiondetails/version": 1,
        "GET /api/user/details": 1,
    }


def test_entity_api_learns_the_tenant_from_user_details(sandbox: SandboxServer) -> None:
    client = _client(sandbox, *ARCHIVIST[:2])
    assert client.tenant == "SANDBOX"


def test_entity_api_with_two_factor(sandbox: SandboxServer) -> None:
    client = _client(sandbox, *TWOFA[:2], tenant="SANDBOX", two_fa_secret_key=TOTP_SECRET)
    assert client.version == "7.7.1"
    counted = stats(sandbox.base_url)
    assert counted["logins"] == {TWOFA[0]: 1}
    assert counted["needs_2fa"] == {TWOFA[0]: 1}


def test_entity_api_two_factor_without_secret_fails(sandbox: SandboxServer) -> None:
    with pytest.raises(RuntimeError, match="2FA"):
        _client(sandbox, *TWOFA[:2], tenant="SANDBOX")


def test_entity_api_bad_password_fails_cleanly(sandbox: SandboxServer) -> None:
    with pytest.raises(RuntimeError, match="password based authentication"):
        _client(sandbox, ARCHIVIST[0], "wrong")


def test_pypreservica_logs_in_again_after_expiry(sandbox: SandboxServer) -> None:
    client = _client(sandbox, *ARCHIVIST[:2], tenant="SANDBOX")
    old_token = client.token
    post_faults(sandbox.base_url, {"kind": "expire_tokens"})
    assert "ROLE_SDB_MANAGER_USER" in client._find_user_roles_()
    assert client.token != old_token
    counted = stats(sandbox.base_url)
    assert counted["logins"] == {"archivist": 2}
    assert counted["requests"]["GET /api/user/details"] == 3  # constructor, 401, retry


def test_pypreservica_retries_transient_503(sandbox: SandboxServer) -> None:
    client = _client(sandbox, *ARCHIVIST[:2], tenant="SANDBOX")
    post_faults(
        sandbox.base_url,
        {"kind": "status", "route": "GET /api/user/details", "status": 503, "retry_after": 0, "count": 2},
    )
    assert "ROLE_SDB_MANAGER_USER" in client._find_user_roles_()
    assert stats(sandbox.base_url)["requests"]["GET /api/user/details"] == 4
