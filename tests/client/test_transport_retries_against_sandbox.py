"""The transport's retry rules (``client/retries.py``, urllib3's ``Retry``) on both of its paths, against the sandbox.

Every transport here is given a recorder for ``sleep``: the waits are checked, and nothing waits on the wall
clock. ``test_hook_against_sandbox.py`` has the rest (bursts through the hook, ``Retry-After``, the 401
recovery, a POST not repeated after a 502, timeouts, unreachable hosts).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import pytest

from airflow_provider_preservica.client.auth.login import LOGIN_PATH, PasswordLogin
from airflow_provider_preservica.client.http import HttpTransport
from airflow_provider_preservica.exceptions import PreservicaConnectionError, PreservicaLoginRejectedError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.accounts import WRONG_PASSWORD
from tests.support.sandbox import inject, logins

DETAILS = "/api/user/details"
CREATE = "/api/entity/structural-objects"
# The direct urllib3 path, and the requests session (a streamed response always takes it).
PATHS = {"direct": {}, "session": {"stream": True}}


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def transport(preservica_conn, waits) -> Iterator[HttpTransport]:
    transport = HttpTransport(preservica_conn.base_url, max_retries=3, sleep=waits.append)
    yield transport
    transport.close()


def requests_to(server, route: str) -> int:
    return int(server.state.stats()["requests"].get(route, 0))


@pytest.mark.parametrize("path", PATHS)
def test_a_lasting_502_is_tried_max_retries_times_more_then_returned(preservica_conn, transport, waits, path):
    inject(preservica_conn, kind="status", route=f"GET {DETAILS}", status=502, count=None)
    response = transport.request("GET", DETAILS, **PATHS[path])
    assert response.status_code == 502
    assert requests_to(preservica_conn, f"GET {DETAILS}") == 4  # the first and max_retries=3 more
    assert len(waits) == 3 and all(0 < wait <= transport.max_retry_wait for wait in waits)


@pytest.mark.parametrize("path", PATHS)
def test_retry_after_is_honoured_on_both_paths_and_capped(preservica_conn, transport, waits, path):
    transport.max_retry_wait = 5.0
    inject(preservica_conn, kind="status", route=f"GET {DETAILS}", status=503, count=1, retry_after=3)
    inject(preservica_conn, kind="status", route=f"GET {DETAILS}", status=429, count=1, retry_after=30)
    response = transport.request("GET", DETAILS, **PATHS[path])
    assert response.status_code == 401  # no token sent: the point is the waits before it
    assert waits == [3.0, 5.0]


def test_a_post_refused_with_429_or_503_is_sent_again(preservica_conn, transport, waits, caplog):
    """The server refused it before acting on it: safe to repeat even a POST that creates something."""
    caplog.set_level(logging.WARNING, logger="airflow_provider_preservica")
    inject(preservica_conn, kind="status", route=f"POST {CREATE}", status=503, count=1, retry_after=0)
    inject(preservica_conn, kind="status", route=f"POST {CREATE}", status=429, count=1, retry_after=0)
    assert transport.request("POST", CREATE, data="<x/>").status_code == 401
    assert requests_to(preservica_conn, f"POST {CREATE}") == 3
    assert waits == [0.0, 0.0]
    logged = [r.getMessage() for r in caplog.records]
    assert any("answered 503 to POST" in m and "(attempt 2 of 4)" in m for m in logged), logged


@pytest.mark.parametrize("status", [502, 504])
def test_a_post_is_not_sent_again_after_a_gateway_error(preservica_conn, transport, waits, status):
    inject(preservica_conn, kind="status", route=f"POST {CREATE}", status=status, count=1)
    assert transport.request("POST", CREATE, data="<x/>").status_code == status
    assert requests_to(preservica_conn, f"POST {CREATE}") == 1 and waits == []


def test_a_dropped_connection_is_retried_for_a_get_but_not_for_a_post(preservica_conn, transport, waits):
    inject(preservica_conn, kind="drop", route=f"GET {DETAILS}", count=1)
    assert transport.request("GET", DETAILS).status_code == 401
    assert len(waits) == 1
    inject(preservica_conn, kind="drop", route=f"POST {CREATE}", count=1)
    with pytest.raises(PreservicaConnectionError, match=f"POST .*{CREATE}") as error:
        transport.request("POST", CREATE, data="<x/>")
    assert "attempts" not in str(error.value)
    assert len(waits) == 1  # no wait: the POST was not sent again


def test_the_login_is_repeated_after_a_502_but_a_refused_login_never(preservica_conn, transport, waits):
    settings = PreservicaHook().settings
    inject(preservica_conn, kind="status", route=f"POST {LOGIN_PATH}", status=502, count=1)
    assert PasswordLogin(settings, transport)().value
    assert requests_to(preservica_conn, f"POST {LOGIN_PATH}") == 2 and logins(preservica_conn) == 1
    assert len(waits) == 1

    wrong = dataclasses.replace(settings, password=WRONG_PASSWORD)
    with pytest.raises(PreservicaLoginRejectedError):
        PasswordLogin(wrong, transport)()
    assert requests_to(preservica_conn, f"POST {LOGIN_PATH}") == 3  # one more, not retried: accounts lock
    assert len(waits) == 1


def test_a_refused_connection_is_retried_and_the_error_counts_the_attempts(waits):
    transport = HttpTransport("http://127.0.0.1:9", max_retries=2, sleep=waits.append)
    with pytest.raises(PreservicaConnectionError, match=r"refused.* after 3 attempts"):
        transport.request("POST", CREATE, data="<x/>")  # never sent: safe to repeat, even a POST
    assert len(waits) == 2


def test_a_host_name_that_does_not_resolve_is_not_retried(waits):
    transport = HttpTransport("http://no-such-host.invalid", max_retries=3, sleep=waits.append)
    with pytest.raises(PreservicaConnectionError, match="cannot resolve host name") as error:
        transport.request("GET", DETAILS)
    assert waits == [] and "attempts" not in str(error.value)


@pytest.fixture
def session_transport(preservica_conn, waits) -> Iterator[HttpTransport]:
    """Everything through the ``requests`` session, which reads a body after urllib3's retries are done."""
    transport = HttpTransport(preservica_conn.base_url, max_retries=3, sleep=waits.append, direct=False)
    yield transport
    transport.close()


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "session"])
def test_an_answer_cut_off_mid_body_is_retried_for_a_get(
    preservica_conn, transport, session_transport, waits, caplog, direct
):
    caplog.set_level(logging.WARNING, logger="airflow_provider_preservica")
    inject(preservica_conn, kind="drop_after_bytes", route=f"GET {DETAILS}", bytes=5, count=1)
    response = (transport if direct else session_transport).request("GET", DETAILS)
    assert response.status_code == 401 and response.json()
    assert requests_to(preservica_conn, f"GET {DETAILS}") == 2 and len(waits) == 1
    logged = [r.getMessage() for r in caplog.records]
    assert any(f"GET {DETAILS}: connection to" in m and "(attempt 2 of 4)" in m for m in logged), logged


def test_on_the_session_path_a_body_cut_off_every_time_ends_the_retries(preservica_conn, session_transport, waits):
    """The cut shares the budget with the other retries: a 502 first, then three cut bodies make four attempts."""
    inject(preservica_conn, kind="status", route=f"GET {DETAILS}", status=502, count=1)
    inject(preservica_conn, kind="drop_after_bytes", route=f"GET {DETAILS}", bytes=5, count=None)
    with pytest.raises(PreservicaConnectionError, match=r"IncompleteRead.* after 4 attempts"):
        session_transport.request("GET", DETAILS)
    assert requests_to(preservica_conn, f"GET {DETAILS}") == 4 and len(waits) == 3


def test_on_the_session_path_a_post_cut_off_mid_body_is_not_sent_again(preservica_conn, session_transport, waits):
    inject(preservica_conn, kind="drop_after_bytes", route=f"POST {CREATE}", bytes=5, count=1)
    with pytest.raises(PreservicaConnectionError, match=f"POST .*{CREATE}") as error:
        session_transport.request("POST", CREATE, data="<x/>")
    assert "attempts" not in str(error.value)
    assert requests_to(preservica_conn, f"POST {CREATE}") == 1 and waits == []
