"""PreservicaHook and its client against the real sandbox, in plain Python (no Airflow task)."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_preservica.exceptions import (
    InsecureTransportError,
    PreservicaAuthError,
    PreservicaConfigError,
    PreservicaConnectionError,
    PreservicaHTTPError,
    PreservicaTokenRejectedError,
)
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.accounts import ARCHIVIST, TWO_FA_USER, WRONG_PASSWORD
from tests.support.sandbox import connection_json, inject, logins


def test_token_and_client_reach_the_account(preservica_conn):
    hook = PreservicaHook()
    assert len(hook.get_token()) >= 16
    client = hook.get_conn()
    assert client.server_version() == "7.7.1"
    assert client.user_details()["roles"]
    assert logins(preservica_conn) == 1


def test_conn_id_alias_and_get_hook(preservica_conn, monkeypatch):
    from airflow.sdk import Connection

    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_PROD", connection_json(preservica_conn))
    assert PreservicaHook(conn_id="preservica_prod").settings.cache_name == "preservica_prod"
    hook = Connection.get("preservica_prod").get_hook()
    assert isinstance(hook, PreservicaHook) and hook.preservica_conn_id == "preservica_prod"


def test_outside_a_task_the_cache_falls_back_to_memory_and_says_so(preservica_conn, caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_preservica")
    from airflow_provider_preservica.client.auth import cache

    cache._fallback_announced.clear()
    first, second = PreservicaHook(), PreservicaHook()
    assert first.get_token() == second.get_token()
    assert logins(preservica_conn) == 1
    notes = [r.message for r in caplog.records if "memory only" in r.message]
    assert len(notes) == 1


def test_wrong_password_fails_clearly_without_the_password(sandbox, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRESERVICA_DEFAULT",
        connection_json(sandbox).replace(ARCHIVIST.password, WRONG_PASSWORD),
    )
    with pytest.raises(PreservicaAuthError) as error:
        PreservicaHook().get_token()
    message = str(error.value)
    assert "archivist" in message and "rejected" in message and "password" in message
    assert WRONG_PASSWORD not in message and ARCHIVIST.password not in message
    assert sandbox.state.stats()["login_failures"]["archivist"] == 1  # no retry storm on a bad password


def test_two_factor_login(sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox, TWO_FA_USER))
    hook = PreservicaHook()
    assert hook.get_conn().user_details()
    assert logins(sandbox, "guarded") == 1


def test_two_factor_account_without_secret_says_what_to_add(sandbox, monkeypatch):
    conn = connection_json(sandbox, TWO_FA_USER).replace(TWO_FA_USER.totp_secret or "", "")
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", conn)
    with pytest.raises(PreservicaAuthError, match="two_fa_secret"):
        PreservicaHook().get_token()


def test_two_factor_wrong_seed_is_rejected(sandbox, monkeypatch):
    conn = connection_json(sandbox, TWO_FA_USER, two_fa_secret="KRSXG5CTMVRXEZLU")
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", conn)
    with pytest.raises(PreservicaAuthError, match="2FA code"):
        PreservicaHook().get_token()


def test_a_401_on_a_valid_token_is_recovered_with_one_login(preservica_conn):
    client = PreservicaHook().get_conn()
    client.server_version()
    inject(preservica_conn, kind="status", route="GET /api/user/details", status=401, count=1)
    assert client.user_details()
    assert logins(preservica_conn) == 2


def test_401_on_a_fresh_token_fails_clearly_and_does_not_loop(preservica_conn):
    client = PreservicaHook().get_conn()
    inject(preservica_conn, kind="status", route="GET /api/user/details", status=401, count=50)
    with pytest.raises(PreservicaTokenRejectedError, match="freshly issued token"):
        client.user_details()
    assert logins(preservica_conn) == 2
    assert preservica_conn.state.stats()["requests"]["GET /api/user/details"] == 2


def test_all_tokens_expired_at_once_costs_one_login(preservica_conn):
    client = PreservicaHook().get_conn()
    client.server_version()
    inject(preservica_conn, kind="expire_tokens")
    for _ in range(5):
        client.server_version()
    assert logins(preservica_conn) == 2


def test_bursts_of_5xx_and_429_are_retried(preservica_conn):
    client = PreservicaHook().get_conn()
    client.transport.max_retry_wait = 0.05  # keep the test quick; Retry-After itself is checked below
    inject(preservica_conn, kind="status", route="GET /api/user/details", status=503, count=2)
    inject(preservica_conn, kind="status", route="GET /api/entity/versiondetails/version", status=429, count=1)
    assert client.user_details() and client.server_version()
    stats = preservica_conn.state.stats()["requests"]
    assert stats["GET /api/user/details"] == 3 and stats["GET /api/entity/versiondetails/version"] == 2


def test_a_500_is_reported_with_the_servers_message(preservica_conn):
    client = PreservicaHook().get_conn()
    inject(preservica_conn, kind="status", route="GET /api/user/details", status=500, count=1)
    with pytest.raises(PreservicaHTTPError) as error:
        client.user_details()
    assert error.value.status == 500 and "sandbox fault" in str(error.value)


def test_a_dropped_connection_is_retried_for_reads(preservica_conn):
    client = PreservicaHook().get_conn()
    client.transport.backoff_base = 0.01
    inject(preservica_conn, kind="drop", route="GET /api/user/details", count=1)
    assert client.user_details()


def test_latency_beyond_the_timeout_is_a_clear_error(preservica_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(preservica_conn, timeout=1, max_retries=0))
    client = PreservicaHook().get_conn()
    client.server_version()
    inject(preservica_conn, kind="latency", route="GET /api/user/details", seconds=3, count=1)
    with pytest.raises(PreservicaConnectionError, match="did not answer within 1 s"):
        client.user_details()


def test_unreachable_and_unknown_hosts_say_so(sandbox, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRESERVICA_DEFAULT",
        '{"conn_type": "preservica", "host": "http://127.0.0.1:9", "login": "a", "password": "b-secret-pw",'
        ' "extra": {"max_retries": 1}}',
    )
    with pytest.raises(PreservicaConnectionError, match="refused"):
        PreservicaHook().get_token()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRESERVICA_DEFAULT",
        '{"conn_type": "preservica", "host": "no-such-host.invalid", "login": "a", "password": "b-secret-pw"}',
    )
    with pytest.raises(PreservicaConnectionError, match=r"cannot resolve host name 'no-such-host\.invalid'"):
        PreservicaHook().get_token()


def test_http_to_a_network_host_is_refused_unless_allowed(sandbox, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRESERVICA_DEFAULT",
        '{"conn_type": "preservica", "host": "http://preservica.example.org", "login": "a", "password": "b-pw-1234"}',
    )
    with pytest.raises(InsecureTransportError, match="plain http"):
        PreservicaHook().get_token()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRESERVICA_DEFAULT",
        '{"conn_type": "preservica", "host": "http://preservica.example.org", "login": "a", "password": "b-pw-1234",'
        ' "extra": {"allow_http": true}}',
    )
    assert PreservicaHook().settings.base_url == "http://preservica.example.org"


def test_missing_connection_explains_every_way_to_define_it(sandbox):
    with pytest.raises(PreservicaConfigError) as error:
        PreservicaHook("preservica_nowhere").get_token()
    message = str(error.value)
    assert "AIRFLOW_CONN_PRESERVICA_NOWHERE" in message and "Admin > Connections" in message and "ini" in message


@pytest.mark.parametrize("style", ["config.ini", "credentials.properties"])
@pytest.mark.parametrize("via", ["argument", "environment"])
def test_ini_fallback_when_the_connection_does_not_exist(sandbox, tmp_path, monkeypatch, style, via):
    path = tmp_path / style
    if style == "config.ini":
        path.write_text(
            f"[DEFAULT]\nURL = {sandbox.base_url}/api/accesstoken/login\nUsername = {ARCHIVIST.name}\n"
            f"Password = {ARCHIVIST.password}\nTenant = {ARCHIVIST.tenant}\n"
        )
    else:
        path.write_text(
            f"[credentials]\nusername={ARCHIVIST.name}\npassword={ARCHIVIST.password}\n"
            f"tenant={ARCHIVIST.tenant}\nserver={sandbox.base_url}\n"
        )
    if via == "environment":
        monkeypatch.setenv("PRESERVICA_INI", str(path))
        hook = PreservicaHook("preservica_legacy")
    else:
        hook = PreservicaHook("preservica_legacy", ini_path=path)
    assert hook.get_conn().server_version() == "7.7.1"
    assert hook.settings.source == f"ini file {path}"


def test_test_connection_reports_success_and_each_failure(sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox))
    ok, message = PreservicaHook().test_connection()
    assert ok and "Preservica 7.7.1" in message and "archivist" in message

    monkeypatch.setenv(
        "AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox).replace(ARCHIVIST.password, "nope-nope-nope")
    )
    ok, message = PreservicaHook().test_connection()
    assert not ok and message.startswith("Login failed") and "nope-nope-nope" not in message

    ok, message = PreservicaHook("preservica_absent").test_connection()
    assert not ok and message.startswith("Configuration")


def test_retry_after_is_honoured(preservica_conn):
    from airflow_provider_preservica.client.http import HttpTransport

    waits: list[float] = []
    transport = HttpTransport(preservica_conn.base_url, sleep=waits.append)
    inject(preservica_conn, kind="status", route="GET /api/user/details", status=429, count=2, retry_after=7)
    response = transport.request("GET", "/api/user/details")
    assert response.status_code == 401  # no token sent: the point is the two waits before it
    assert waits == [7.0, 7.0]


def test_non_idempotent_post_is_not_repeated_after_a_502(preservica_conn):
    from airflow_provider_preservica.client.http import HttpTransport

    waits: list[float] = []
    transport = HttpTransport(preservica_conn.base_url, sleep=waits.append)
    inject(preservica_conn, kind="status", route="POST /api/entity/structural-objects", status=502, count=3)
    assert transport.request("POST", "/api/entity/structural-objects", data="<x/>").status_code == 502
    assert waits == []
    assert preservica_conn.state.stats()["requests"]["POST /api/entity/structural-objects"] == 1


def test_short_lived_tokens_are_renewed_before_they_expire(preservica_conn, token_clock):
    preservica_conn.state.update_config({"token_lifetime": 6})
    client = PreservicaHook().get_conn()
    client.user_details()
    token_clock.advance(4.3)  # less than a third of the 6 s lifetime left: due for renewal, not yet expired
    client.user_details()
    assert logins(preservica_conn) == 1  # renewed with the refresh token, not the password
    assert preservica_conn.state.stats()["refreshes"] == {"archivist": 1}
    assert preservica_conn.state.stats()["requests"]["GET /api/user/details"] == 2  # no request met a 401
