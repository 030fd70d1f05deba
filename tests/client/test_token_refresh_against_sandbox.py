"""Token renewal with the refresh token, against the real sandbox, in plain Python (no Airflow task).

Outside a task the cache keeps its token in process memory, so these tests show the renewal rules and
the wire format (the sandbox refuses a refresh without the ``refreshToken`` form field or without the
access token header); ``tests/integration/auth/test_token_refresh_processes.py`` shows the shared Variable.
Tokens age by ``token_clock`` (shared by the sandbox and the cache), never by sleeping.
"""

from __future__ import annotations

import logging
import threading

import pytest

from airflow_provider_preservica.client.auth.cache import TokenCache
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.sandbox import inject, logins

REFRESH = "POST /api/accesstoken/refresh"
CALLS = "GET /api/user/details"


def stats(server) -> dict:
    return server.state.stats()


def refreshes(server) -> int:
    return int(stats(server)["refreshes"].get("archivist", 0))


def refresh_requests(server) -> int:
    return int(stats(server)["requests"].get(REFRESH, 0))


def test_a_run_over_several_token_lifetimes_logs_in_once_and_refreshes(preservica_conn, token_clock, caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_preservica")
    preservica_conn.state.update_config({"token_lifetime": 4})
    hook = PreservicaHook()
    client = hook.get_conn()
    calls = 0
    for _ in range(40):  # a call every 0.25 s for 10 s: two and a half lifetimes
        client.user_details()
        calls += 1
        token_clock.advance(0.25)

    assert logins(preservica_conn) == 1
    assert refreshes(preservica_conn) >= 2 and refresh_requests(preservica_conn) == refreshes(preservica_conn)
    assert (hook.token_cache.logins, hook.token_cache.refreshes) == (1, refreshes(preservica_conn))
    assert stats(preservica_conn)["requests"][CALLS] == calls  # no call met a 401: renewed before expiry
    assert any("Renewed the Preservica token of archivist" in r.message for r in caplog.records)


@pytest.mark.parametrize("status", [400, 401])
def test_a_rejected_refresh_token_costs_one_password_login(preservica_conn, token_clock, caplog, status):
    caplog.set_level(logging.INFO, logger="airflow_provider_preservica")
    preservica_conn.state.update_config({"token_lifetime": 6})
    client = PreservicaHook().get_conn()
    client.user_details()
    inject(preservica_conn, kind="status", route=REFRESH, status=status, count=1)
    token_clock.advance(4.3)  # due for renewal (less than a third of 6 s left), still valid

    assert client.user_details()
    client.user_details()

    assert logins(preservica_conn) == 2 and refreshes(preservica_conn) == 0
    assert refresh_requests(preservica_conn) == 1 and stats(preservica_conn)["faults_fired"] == {"status": 1}
    assert stats(preservica_conn)["requests"][CALLS] == 3
    said = [r.message for r in caplog.records if "rejected the refresh token" in r.message]
    assert len(said) == 1 and f"HTTP {status}" in said[0] and "logging in with the password instead" in said[0]


def test_a_revoked_token_cannot_be_refreshed_and_costs_one_login(preservica_conn, token_clock):
    preservica_conn.state.update_config({"token_lifetime": 6})
    client = PreservicaHook().get_conn()
    client.user_details()
    inject(preservica_conn, kind="revoke_token", user="archivist")
    token_clock.advance(4.3)

    assert client.user_details()

    assert logins(preservica_conn) == 2 and refreshes(preservica_conn) == 0 and refresh_requests(preservica_conn) == 1
    assert stats(preservica_conn)["requests"][CALLS] == 2  # the renewal came before the call: no 401


def test_a_refresh_token_expired_at_the_server_costs_one_login(preservica_conn, token_clock):
    """The server ended the token (and its refresh token) early; the cache only finds out when it refreshes."""
    preservica_conn.state.update_config({"token_lifetime": 6})
    client = PreservicaHook().get_conn()
    client.user_details()
    inject(preservica_conn, kind="expire_tokens", user="archivist")
    token_clock.advance(4.3)

    assert client.user_details()

    assert logins(preservica_conn) == 2 and refreshes(preservica_conn) == 0 and refresh_requests(preservica_conn) == 1


def test_a_token_left_to_expire_is_replaced_by_a_login_without_a_doomed_refresh(preservica_conn, token_clock):
    preservica_conn.state.update_config({"token_lifetime": 2})
    client = PreservicaHook().get_conn()
    client.user_details()
    token_clock.advance(2.2)  # expired: its refresh token died with it

    assert client.user_details()

    assert logins(preservica_conn) == 2 and refresh_requests(preservica_conn) == 0
    assert stats(preservica_conn)["requests"][CALLS] == 2


def test_threads_needing_a_renewal_at_once_refresh_exactly_once(preservica_conn, token_clock):
    preservica_conn.state.update_config({"token_lifetime": 6})
    PreservicaHook().get_token()
    token_clock.advance(4.6)  # past the margin (a quarter of 6 s): no thread may use it, each needs a renewed token
    start = threading.Barrier(8)
    tokens: list[str] = []

    def ask() -> None:
        start.wait()
        tokens.append(PreservicaHook().get_conn().user_details() and PreservicaHook().get_token())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert logins(preservica_conn) == 1 and refreshes(preservica_conn) == 1 and refresh_requests(preservica_conn) == 1
    TokenCache.clear_memory()
