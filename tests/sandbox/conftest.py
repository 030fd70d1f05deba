"""One sandbox per test session; every test starts from reset counters, tokens, faults and config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from preservica_sandbox import SandboxServer, SandboxUser
from preservica_sandbox.entity_actions import DEFAULT_ACTION_SECONDS, DEFAULT_SECURITY_TAGS
from preservica_sandbox.repository import Repository

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ARCHIVIST = ("archivist", "archivist-password", "SANDBOX")
TWOFA = ("twofa.user@example.org", "twofa-password", "SANDBOX")
CURATOR = ("curator", "curator-password", "OTHER")
MANAGER = ("records.manager", "manager-password", "SANDBOX")  # approves deletions
CLERK = ("clerk", "clerk-password", "SANDBOX")  # same tenant, no manager role


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    users = [
        SandboxUser(*ARCHIVIST),
        SandboxUser(*TWOFA, totp_secret=TOTP_SECRET),
        SandboxUser(*CURATOR, roles=["ROLE_SDB_ACCESS_USER"]),
        SandboxUser(*MANAGER),
        SandboxUser(*CLERK, roles=["ROLE_SDB_ACCESS_USER"]),
    ]
    with SandboxServer(port=0, users=users) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    sandbox_server.state.update_config(
        {
            "token_lifetime": 900,
            "version": "7.7.1",
            "ingest_seconds": 1,
            "entity_action_seconds": DEFAULT_ACTION_SECONDS,
            "security_tags": list(DEFAULT_SECURITY_TAGS),
        }
    )
    sandbox_server.state.reset()
    return sandbox_server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def login(base_url: str, username: str = ARCHIVIST[0], password: str = ARCHIVIST[1], **extra: str) -> requests.Response:
    return requests.post(
        f"{base_url}/api/accesstoken/login",
        data={"username": username, "password": password, **extra},
        timeout=10,
    )


def token_for(base_url: str) -> str:
    response = login(base_url)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def stats(base_url: str) -> dict:
    response = requests.get(f"{base_url}/_sandbox/stats", timeout=10)
    response.raise_for_status()
    return response.json()


def post_faults(base_url: str, body: object) -> list[dict]:
    response = requests.post(f"{base_url}/_sandbox/faults", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def repository(sandbox: SandboxServer) -> Repository:
    """The session sandbox's repository, emptied (``reset`` keeps it, so tests start it afresh)."""
    sandbox.state.repository.clear()
    return sandbox.state.repository


@pytest.fixture
def auth(sandbox: SandboxServer) -> dict[str, str]:
    """Headers with a fresh access token for the default account."""
    return {"Preservica-Access-Token": token_for(sandbox.base_url)}
