"""Every example DAG runs end to end with ``airflow dags test`` against the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SESSION_LOG, connection_json, logins

pytestmark = pytest.mark.integration
AIRFLOW = str(Path(sys.executable).parent / "airflow")


@pytest.fixture(scope="module")
def example_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A separate Airflow home (SQLite) whose dags folder is ``example_dags/``, migrated once."""
    home = tmp_path_factory.mktemp("example-airflow-home")
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, cwd=REPO)
    return env


def airflow_dags_test(env: dict[str, str], dag_id: str) -> str:
    result = subprocess.run(
        [AIRFLOW, "dags", "test", dag_id], env=env, capture_output=True, text=True, cwd=REPO, timeout=300
    )
    output = result.stdout + result.stderr
    with SESSION_LOG.open("a", encoding="utf-8") as log:
        log.write(output)
    assert result.returncode == 0, output[-3000:]
    assert "state=success" in output, output[-3000:]
    return output


def test_token_check_example(preservica_conn, example_home):
    env = dict(example_home, AIRFLOW_CONN_PRESERVICA_DEFAULT=connection_json(preservica_conn))
    output = airflow_dags_test(env, "preservica_token_check")
    assert "8 parallel probes reached Preservica ['7.7.1'] as archivist" in output
    assert logins(preservica_conn) == 1


def test_search_report_example(small_repository, example_home, tmp_path):
    env = dict(
        example_home,
        AIRFLOW_CONN_PRESERVICA_DEFAULT=connection_json(small_repository),
        AIRFLOW_VAR_PRESERVICA_REPORT_DIR=str(tmp_path),
        AIRFLOW_VAR_PRESERVICA_REPORT_COLLECTION="a0000000-0000-4000-8000-000000000001",
    )
    airflow_dags_test(env, "preservica_search_report")
    reports = list(tmp_path.glob("open-assets-*.csv"))
    assert len(reports) == 1
    lines = reports[0].read_text().splitlines()
    assert lines[0] == "xip.reference,xip.title,xip.security_descriptor,xip.parent_ref,xip.created"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "b0000000-0000-4000-8000-000000000003",
        "b0000000-0000-4000-8000-000000000002",
    ]


def test_nightly_ingest_example(quick_ingest_sandbox, example_home, tmp_path):
    import datetime

    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    landing = tmp_path / "landing" / today
    landing.mkdir(parents=True)
    for index in range(3):
        (landing / f"letter-{index}.pdf").write_bytes(f"%PDF-1.4 letter {index}".encode() * 50)
    env = dict(
        example_home,
        AIRFLOW_CONN_PRESERVICA_DEFAULT=connection_json(quick_ingest_sandbox),
        AIRFLOW_VAR_PRESERVICA_LANDING_DIR=str(tmp_path / "landing"),
        AIRFLOW_VAR_PRESERVICA_REPORTS_DIR=str(tmp_path / "reports"),
    )
    output = airflow_dags_test(env, "preservica_nightly_ingest")
    assert "Ingest COMPLETED: 3 assets created, 0 already present" in output
    assert (tmp_path / "reports" / f"ingest-{today}.json").exists()
    output = airflow_dags_test(env, "preservica_nightly_ingest")  # the next night, same files
    assert "Ingest NOTHING_TO_INGEST: 0 assets created, 3 already present" in output


@pytest.fixture
def quick_ingest_sandbox(sandbox):
    sandbox.state.update_config({"ingest_seconds": 0.3})
    return sandbox
