"""No password, 2FA seed, access token or refresh token appears anywhere in what the whole test session logged,
nor reaches another origin when a server redirects there."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airflow_provider_preservica.exceptions import PreservicaRedirectError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from benchmarks.other_origin import OtherOrigin
from tests.conftest import (
    AIRFLOW_HOME,
    ARCHIVIST,
    ISSUED_TOKENS,
    SECRETS,
    SESSION_LOG,
    TWO_FA_USER,
    connection_json,
    inject,
    remember_tokens,
)


def _everything_logged() -> str:
    parts = [SESSION_LOG.read_text(encoding="utf-8", errors="replace")]
    for file in Path(AIRFLOW_HOME, "logs").rglob("*"):
        if file.is_file():
            parts.append(file.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def _leaked(text: str) -> list[str]:
    return sorted({secret[:4] + "..." for secret in [*SECRETS, *ISSUED_TOKENS] if secret in text})


@pytest.mark.last
def test_refused_redirects_leak_nothing_there_or_in_their_errors(sandbox, monkeypatch, caplog):
    """Login, 2FA and a REST call redirected to another origin: nothing reaches it, and each error - logged
    here as a failed task's would be, traceback included - names the origin without a secret. The audit
    below reads these logs too."""
    caplog.set_level(logging.DEBUG)
    with OtherOrigin() as elsewhere:
        location = elsewhere.base_url + "{path}"
        errors = []
        cases = ((ARCHIVIST, "POST /api/accesstoken/login"), (TWO_FA_USER, "POST /api/accesstoken/complete-2fa"))
        for user, route in cases:
            monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox, user, cache_mode="memory"))
            inject(sandbox, kind="redirect", route=route, status=307, location=location)
            with pytest.raises(PreservicaRedirectError) as error:
                PreservicaHook().get_conn().user_details()
            errors.append(error.value)
        monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox, cache_mode="memory"))
        client = PreservicaHook().get_conn()
        client.user_details()  # logged in: the next call carries a token
        inject(sandbox, kind="redirect", route="GET /api/user/details", status=302, location=location, count=None)
        with pytest.raises(PreservicaRedirectError) as error:
            client.user_details()
        errors.append(error.value)
        for failure in errors:
            logging.getLogger("audit").error("Task failed: %s", failure, exc_info=failure)
        remember_tokens(sandbox)
        assert elsewhere.received == [], elsewhere.credentials()

    logged = _everything_logged()
    assert logged.count(f"with a redirect to another origin, {elsewhere.base_url}") >= 3
    assert not _leaked(logged), f"secrets found in the session's logs: {_leaked(logged)}"


@pytest.mark.last
def test_no_secret_in_any_captured_log(preservica_conn, token_clock, caplog):
    caplog.set_level(logging.DEBUG)
    preservica_conn.state.update_config({"token_lifetime": 6})
    client = PreservicaHook().get_conn()
    client.server_version()  # at least one login in this test's own capture
    token_clock.advance(4.2)  # due for renewal: the next call refreshes, so a refresh is in the capture too
    client.server_version()
    logging.getLogger("audit").info("audit marker")
    remember_tokens(preservica_conn)  # access and refresh tokens alike

    logged = _everything_logged()

    assert "Logged in to Preservica as archivist" in logged, "the session log does not capture the provider's logs"
    assert "Renewed the Preservica token of archivist" in logged, "no refresh was logged, so none was audited"
    assert ISSUED_TOKENS, "no token was issued, so the audit would prove nothing"
    leaked = _leaked(logged)
    assert not leaked, f"secrets found in the session's logs: {leaked}"
