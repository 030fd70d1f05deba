"""No password, 2FA seed, access token or refresh token appears anywhere in what the whole test session logged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.conftest import AIRFLOW_HOME, ISSUED_TOKENS, SECRETS, SESSION_LOG, remember_tokens


def _everything_logged() -> str:
    parts = [SESSION_LOG.read_text(encoding="utf-8", errors="replace")]
    for file in Path(AIRFLOW_HOME, "logs").rglob("*"):
        if file.is_file():
            parts.append(file.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


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
    leaked = sorted({secret[:4] + "..." for secret in [*SECRETS, *ISSUED_TOKENS] if secret in logged})
    assert not leaked, f"secrets found in the session's logs: {leaked}"
