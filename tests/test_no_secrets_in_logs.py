"""No password, 2FA seed, access token or refresh token appears anywhere in what the whole test run logged,
nor reaches another origin when a server redirects there.

The run is every pytest session in ``RUN_ROOT``: ``make test`` runs its tiers as two sessions side by side,
then this file in a third one, which reads the logs and issued tokens that the other two left there."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from airflow_provider_preservica.exceptions import PreservicaRedirectError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from benchmarks.other_origin import OtherOrigin
from tests.support.accounts import ARCHIVIST, SECRETS, TWO_FA_USER
from tests.support.sandbox import ISSUED_TOKENS, connection_json, inject, remember_tokens
from tests.support.session import ISSUED_TOKENS_FILE, RUN_ROOT, SESSION_LOG


def _sessions(root: Path = RUN_ROOT) -> list[Path]:
    """The folder of every pytest session of this run (this one included)."""
    return sorted(path.parent for path in root.glob("*/session.log"))


def _everything_logged(root: Path = RUN_ROOT) -> str:
    """Every session's log and its Airflow task logs."""
    parts = []
    for session in _sessions(root):
        parts.append((session / "session.log").read_text(encoding="utf-8", errors="replace"))
        for file in sorted((session / "airflow-home" / "logs").rglob("*")):
            if file.is_file():
                parts.append(file.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def _issued_tokens(root: Path = RUN_ROOT) -> set[str]:
    """The tokens issued in this session and in the sessions of the run that have ended."""
    tokens = set(ISSUED_TOKENS)
    for session in _sessions(root):
        file = session / ISSUED_TOKENS_FILE
        if file.exists():
            tokens.update(file.read_text(encoding="utf-8").split())
    return tokens


def _leaked(text: str, root: Path = RUN_ROOT) -> list[str]:
    return sorted({secret[:4] + "..." for secret in [*SECRETS, *_issued_tokens(root)] if secret in text})


def test_the_audit_reads_the_other_sessions_of_the_run(tmp_path: Path) -> None:
    """A token issued in one session and logged by another (``make test`` runs its tiers side by side) is found,
    in a session log or in an Airflow task log."""
    for name, token in (("session-a", "tok-from-a-0001"), ("session-b", "tok-from-b-0002")):
        (tmp_path / name / "airflow-home" / "logs").mkdir(parents=True)
        (tmp_path / name / "session.log").write_text("nothing to see\n", encoding="utf-8")
        (tmp_path / name / ISSUED_TOKENS_FILE).write_text(f"{token}\n", encoding="utf-8")
    (tmp_path / "session-a" / "session.log").write_text("header tok-from-b-0002\n", encoding="utf-8")
    (tmp_path / "session-b" / "airflow-home" / "logs" / "task.log").write_text("tok-from-a-0001\n", encoding="utf-8")

    found = {token for token in _issued_tokens(tmp_path) if token in _everything_logged(tmp_path)}
    assert found == {"tok-from-a-0001", "tok-from-b-0002"}
    assert SESSION_LOG.parent in _sessions()  # this session is part of its own run


def test_the_audit_sees_every_session_that_make_started() -> None:
    """``make test`` says how many sessions its run has (``PRESERVICA_TEST_SESSIONS``, this one included): a
    session whose logs landed elsewhere would otherwise go unaudited without a word."""
    expected = os.environ.get("PRESERVICA_TEST_SESSIONS")
    if expected is None:
        pytest.skip("a run of one session (plain pytest): there is no other session to find")
    assert len(_sessions()) == int(expected), f"sessions in {RUN_ROOT}: {[s.name for s in _sessions()]}"


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
