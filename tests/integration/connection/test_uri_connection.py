"""A Connection written as a URI works like its JSON form: every extra arrives as a string there."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest

from tests.support.accounts import ARCHIVIST
from tests.support.airflow_db import task_states

pytestmark = pytest.mark.integration


def uri(server, **extras: str) -> str:
    """``preservica://login:password@host:port/?...``: the host of a URI has no scheme of its own."""
    where = urlsplit(server.base_url)
    query = "&".join(f"{k}={quote(v)}" for k, v in {"tenant": ARCHIVIST.tenant, **extras}.items())
    return f"preservica://{quote(ARCHIVIST.name)}:{quote(ARCHIVIST.password)}@{where.hostname}:{where.port}/?{query}"


def test_a_uri_connection_with_allow_http_reaches_an_http_server(small_repository, monkeypatch, run_dag, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", uri(small_repository, allow_http="true"))
    out = tmp_path / "report.csv"
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": str(out)})
    assert task_states(dag_run) == {"report[-1]": "success"}
    assert out.read_text(encoding="utf-8").count("\n") == 4


def test_every_extra_of_a_uri_connection_is_read_with_its_type(sandbox, monkeypatch):
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    extras = {
        "allow_http": "true",
        "verify_ssl": "false",
        "timeout": "12.5",
        "max_retries": "2",
        "cache_mode": "memory",
        "expiry_margin": "30",
        "login_lease": "false",
        "login_lease_delay": "0.25",
    }
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_URI", uri(sandbox, **extras))
    settings = PreservicaHook("preservica_uri").settings
    assert settings.base_url == sandbox.base_url
    assert (settings.verify, settings.timeout, settings.max_retries) == (False, 12.5, 2)
    assert (settings.token_cache, settings.expiry_margin) == ("memory", 30.0)
    assert (settings.login_lease, settings.login_lease_delay) == (False, 0.25)

    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_URI", uri(sandbox, allow_http="false", login_lease="true"))
    settings = PreservicaHook("preservica_uri").settings
    assert settings.base_url.startswith("https://") and settings.login_lease is True
