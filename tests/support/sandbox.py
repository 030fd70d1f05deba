"""The sandbox as the tests talk to it: Connections, login counts, faults, seeded data, issued tokens."""

from __future__ import annotations

import json

from preservica_sandbox import SandboxServer, SandboxUser

from tests.support import REPO
from tests.support.accounts import ARCHIVIST

SEARCH_REPOSITORY = REPO / "tests" / "data" / "search_repository.json"
MAPS_FOLDER = "a0000000-0000-4000-8000-000000000001"
#: Every token (and refresh token) a sandbox of this session issued: the leak audit searches for all of them.
ISSUED_TOKENS: set[str] = set()


def remember_tokens(server: SandboxServer) -> None:
    """Keep every token (and refresh token) the sandbox issued, so the leak test can search for all of them."""
    with server.state.lock:
        ISSUED_TOKENS.update(server.state._tokens.keys())
        ISSUED_TOKENS.update(record.refresh_token for record in server.state._tokens.values())


def connection_json(server: SandboxServer, user: SandboxUser = ARCHIVIST, **extra: object) -> str:
    extras: dict[str, object] = {"tenant": user.tenant}
    if user.totp_secret:
        extras["two_fa_secret"] = user.totp_secret
    extras.update(extra)
    return json.dumps(
        {
            "conn_type": "preservica",
            "host": server.base_url,
            "login": user.name,
            "password": user.password,
            "extra": extras,
        }
    )


def logins(server: SandboxServer, user: str = "archivist") -> int:
    return int(server.state.stats()["logins"].get(user, 0))


def inject(server: SandboxServer, **fault: object) -> None:
    """Post a fault to the sandbox's control surface, exactly as the README documents it."""
    import requests

    response = requests.post(f"{server.base_url}/_sandbox/faults", json=fault, timeout=10)
    response.raise_for_status()
