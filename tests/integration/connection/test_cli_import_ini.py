"""``airflow-preservica import-ini``: a legacy ini file becomes a working Connection in one line."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from airflow_provider_preservica.cli import main
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support import REPO
from tests.support.accounts import ARCHIVIST
from tests.support.sandbox import logins

pytestmark = pytest.mark.integration


def _write_ini(path, style, base_url):
    if style == "config.ini":
        path.write_text(
            f"[DEFAULT]\nURL = {base_url}/api/accesstoken/login\nHost = {base_url.split('//')[1]}\n"
            f"Username = {ARCHIVIST.name}\nPassword = {ARCHIVIST.password}\nTenant = {ARCHIVIST.tenant}\n"
        )
    else:
        path.write_text(
            f"[credentials]\nusername={ARCHIVIST.name}\npassword={ARCHIVIST.password}\n"
            f"tenant={ARCHIVIST.tenant}\nserver={base_url}\n"
        )


@pytest.mark.parametrize("style", ["config.ini", "credentials.properties"])
def test_import_writes_a_connection_to_the_metadata_db(airflow_db, sandbox, tmp_path, capsys, style):
    from airflow.models import Connection
    from airflow.utils.session import create_session

    path = tmp_path / style
    _write_ini(path, style, sandbox.base_url)
    conn_id = f"preservica_imported_{style.split('.')[0]}"

    assert main(["import-ini", str(path), "--conn-id", conn_id]) == 0
    assert ARCHIVIST.password not in capsys.readouterr().out
    assert main(["import-ini", str(path), "--conn-id", conn_id]) == 1  # never overwrites silently
    assert "--overwrite" in capsys.readouterr().err
    assert main(["import-ini", str(path), "--conn-id", conn_id, "--overwrite"]) == 0

    with create_session() as session:
        stored = session.query(Connection).filter(Connection.conn_id == conn_id).one()
        assert (stored.conn_type, stored.login, stored.password) == ("preservica", ARCHIVIST.name, ARCHIVIST.password)
        assert stored.extra_dejson == {"tenant": ARCHIVIST.tenant}
        uri = stored.get_uri()

    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = uri  # what a worker would see, via the URI form
    try:
        assert PreservicaHook(conn_id).get_conn().server_version() == "7.7.1"
    finally:
        del os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]
    assert logins(sandbox) == 1


def test_print_gives_an_export_line_that_works(sandbox, tmp_path, monkeypatch):
    path = tmp_path / "config.ini"
    _write_ini(path, "config.ini", sandbox.base_url)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_provider_preservica.cli",
            "import-ini",
            str(path),
            "--conn-id",
            "preservica_test",
            "--print",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert "keep it out of shell history" in result.stderr
    name, _, value = result.stdout.strip().removeprefix("export ").partition("=")
    assert name == "AIRFLOW_CONN_PRESERVICA_TEST"
    monkeypatch.setenv(name, shlex.split(value)[0])
    assert json.loads(os.environ[name])["conn_type"] == "preservica"
    assert PreservicaHook("preservica_test").get_conn().user_details()


def test_bad_ini_is_reported_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "config.ini"
    path.write_text("[DEFAULT]\nUsername = someone\n")
    assert main(["import-ini", str(path), "--conn-id", "x"]) == 2
    err = capsys.readouterr().err
    assert "lacks URL/Host, Password" in err and "Traceback" not in err


def test_plain_http_network_host_needs_allow_http(tmp_path, capsys):
    path = tmp_path / "config.ini"
    path.write_text("[DEFAULT]\nURL = http://preservica.lan/api/accesstoken/login\nUsername = u\nPassword = p-12345\n")
    assert main(["import-ini", str(path), "--conn-id", "lan", "--print"]) == 2
    assert "allow_http" in capsys.readouterr().err
    assert main(["import-ini", str(path), "--conn-id", "lan", "--print", "--allow-http"]) == 0
    assert '"allow_http": true' in capsys.readouterr().out
