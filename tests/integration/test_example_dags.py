"""Every example DAG runs end to end in real Airflow (``dag.test()`` on SQLite) against the sandbox.

The DAG files are loaded from ``example_dags/`` exactly as they ship; only Connections and Variables
(environment variables) point them at the sandbox and at temporary folders. ``make demo`` runs the same
files with ``airflow dags test``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests

from airflow_provider_preservica.sandbox import SandboxServer
from tests.conftest import ARCHIVIST, MAPS_FOLDER, PROD_USER, TEST_USER, connection_json, logins, remember_tokens
from tests.integration.conftest import delete_variable, task_states, variable

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
DAY = "2026-11-25"
LOGICAL_DATE = pendulum.datetime(2026, 11, 25, 1, 30, tz="UTC")
# SourceIDs derive from the day: a test on another day does not find the assets of an earlier test.
FAILING_DAY = "2026-11-26"


@pytest.fixture(scope="module")
def examples(airflow_db: None) -> Any:
    """Every example DAG, loaded from ``example_dags/`` and serialised once (``dag.test()`` needs them in the DB).

    None may fail to import.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    bag = BundleDagBag(dag_folder=EXAMPLES, bundle_path=EXAMPLES, bundle_name="dags-folder")
    assert bag.import_errors == {}
    sync_bag_to_db(bag, "dags-folder", None)
    return bag


def run_example(examples: Any, dag_id: str, **kwargs: Any) -> Any:
    """Run the example DAG ``dag_id`` once with ``dag.test()``; returns the DagRun."""
    return examples.dags[dag_id].test(**kwargs)


def states(dag_run: Any) -> dict[str, str]:
    return {key.removesuffix("[-1]"): value for key, value in task_states(dag_run).items()}


def files_below(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


@pytest.fixture
def quick_ingests(sandbox):
    sandbox.state.update_config({"ingest_seconds": 0.3, "export_seconds": 0.3})
    return sandbox


# -- nightly ingest ------------------------------------------------------------------------------------------
DELIVERY = {
    "minutes-1921.pdf": b"%PDF-1.4 minutes " * 300,
    "letters/to-the-mayor.pdf": b"%PDF-1.4 letter " * 200,
    "letters/reply.pdf": b"%PDF-1.4 reply " * 250,
    "letters/draft: final?.pdf": b"%PDF-1.4 draft " * 10,  # ':' and '?' fail an OPEX ingest
}
GOOD = sorted(name for name in DELIVERY if ":" not in name)


@pytest.fixture
def nightly(quick_ingests, preservica_conn, tmp_path, monkeypatch) -> dict[str, Path]:
    paths = {"landing": tmp_path / "landing", "reports": tmp_path / "reports"}
    deliver(paths["landing"] / DAY, DELIVERY)
    monkeypatch.setenv("AIRFLOW_VAR_PRESERVICA_LANDING_DIR", str(paths["landing"]))
    monkeypatch.setenv("AIRFLOW_VAR_PRESERVICA_REPORTS_DIR", str(paths["reports"]))
    return paths


def deliver(folder: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)


def test_nightly_ingest_files_the_delivery_and_reports_every_file(examples, nightly):
    landing, reports = nightly["landing"], nightly["reports"]
    dag_run = run_example(examples, "preservica_nightly_ingest", logical_date=LOGICAL_DATE)

    assert states(dag_run) == {
        "stage": "success",
        "anything_to_ingest": "success",
        "target_folder": "success",
        "ingest": "success",
        "file_and_report": "success",
        "quarantine_on_failure": "skipped",
    }
    assert not (landing / DAY).exists()
    assert files_below(landing / "done" / DAY) == {name: DELIVERY[name] for name in GOOD}
    assert files_below(landing / "quarantine" / "illegal-name" / DAY) == {
        "letters/draft: final?.pdf": DELIVERY["letters/draft: final?.pdf"]
    }
    rows = read_csv(reports / f"ingest-{DAY}.csv")
    assert sorted(rows) == sorted(DELIVERY)
    for name in GOOD:
        assert rows[name]["outcome"] == "created"
        assert rows[name]["fixity_type"] == "SHA-256"
        assert rows[name]["fixity_value"] == hashlib.sha256(DELIVERY[name]).hexdigest()
    created_refs = {rows[name]["ref"] for name in GOOD}
    assert len(created_refs) == 3 and "" not in created_refs
    bad = rows["letters/draft: final?.pdf"]
    assert (bad["outcome"], bad["ref"]) == ("quarantined", "")
    assert bad["detail"].startswith("illegal-name: name contains ':' '?'")
    summary = (reports / f"ingest-{DAY}.txt").read_text()
    assert "4 files (3 created, 1 quarantined)" in summary
    assert "quarantined     : letters/draft: final?.pdf: illegal-name" in summary
    assert not list((landing / ".staging").rglob("*.pdf"))  # staged links are gone

    # The same files delivered again: nothing is uploaded, every file is reported with its existing ref.
    deliver(landing / DAY, {name: DELIVERY[name] for name in GOOD})
    dag_run = run_example(examples, "preservica_nightly_ingest", logical_date=LOGICAL_DATE)

    assert states(dag_run)["anything_to_ingest"] == "success"
    assert (states(dag_run)["ingest"], states(dag_run)["file_and_report"]) == ("skipped", "success")
    rows = read_csv(reports / f"ingest-{DAY}.csv")
    assert {name: (row["outcome"], row["ref"]) for name, row in rows.items()} == {
        name: ("skipped", ref) for name, ref in zip(GOOD, [rows[n]["ref"] for n in GOOD], strict=True)
    }
    assert {rows[name]["ref"] for name in GOOD} == created_refs
    assert files_below(landing / "done" / DAY) == {name: DELIVERY[name] for name in GOOD}  # no duplicates


def ingest_fault(server, **fault: object) -> None:
    response = requests.post(f"{server.base_url}/_sandbox/ingest-faults", json=fault, timeout=10)
    response.raise_for_status()


def test_failed_ingest_moves_the_delivery_to_quarantine_and_reports_why(examples, nightly, quick_ingests):
    landing, reports = nightly["landing"], nightly["reports"]
    shutil.move(landing / DAY, landing / FAILING_DAY)
    ingest_fault(quick_ingests, outcome="FAILED", count=1, message="Virus check failed")
    dag_run = run_example(examples, "preservica_nightly_ingest", logical_date=LOGICAL_DATE.add(days=1))

    assert states(dag_run) == {
        "stage": "success",
        "anything_to_ingest": "success",
        "target_folder": "success",
        "ingest": "failed",
        "file_and_report": "upstream_failed",
        "quarantine_on_failure": "success",
    }
    assert not (landing / FAILING_DAY).exists() and not (landing / "done").exists()
    assert files_below(landing / "quarantine" / "ingest-failed" / FAILING_DAY) == {
        name: DELIVERY[name] for name in GOOD
    }
    assert list(files_below(landing / "quarantine" / "illegal-name" / FAILING_DAY)) == ["letters/draft: final?.pdf"]
    rows = read_csv(reports / f"ingest-{FAILING_DAY}.csv")
    assert {row["outcome"] for row in rows.values()} == {"quarantined"}
    assert rows["minutes-1921.pdf"]["detail"].startswith("ingest-failed: Preservica ingest ")
    assert "ended FAILED: Virus check failed" in rows["minutes-1921.pdf"]["detail"]


def test_nothing_delivered_skips_the_run(examples, nightly):
    shutil.rmtree(nightly["landing"] / DAY)
    dag_run = run_example(examples, "preservica_nightly_ingest", logical_date=LOGICAL_DATE)
    assert str(dag_run.state) == "success"
    assert set(states(dag_run).values()) == {"skipped"}
    assert not nightly["reports"].exists()


# -- the others ----------------------------------------------------------------------------------------------
def test_token_check_example(examples, preservica_conn, capfd):
    dag_run = run_example(examples, "preservica_token_check")
    assert str(dag_run.state) == "success"
    assert "8 parallel probes reached Preservica ['7.7.1'] as archivist" in capfd.readouterr().out
    assert logins(preservica_conn) == 1


def test_search_report_example_writes_to_object_storage(examples, small_repository, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_PRESERVICA_REPORT_DIR", f"file://{tmp_path}/reports")
    monkeypatch.setenv("AIRFLOW_VAR_PRESERVICA_REPORT_COLLECTION", "a0000000-0000-4000-8000-000000000001")
    (tmp_path / "reports").mkdir()
    dag_run = run_example(examples, "preservica_search_report", logical_date=LOGICAL_DATE)

    assert str(dag_run.state) == "success"
    lines = (tmp_path / "reports" / f"open-assets-{DAY}.csv").read_text().splitlines()
    assert lines[0] == "xip.reference,xip.title,xip.security_descriptor,xip.parent_ref,xip.created"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "b0000000-0000-4000-8000-000000000003",
        "b0000000-0000-4000-8000-000000000002",
    ]
    assert logins(small_repository) == 1


def test_export_collection_example_exports_verifies_and_unpacks(examples, small_repository, tmp_path, capfd):
    small_repository.state.update_config({"export_seconds": 0.3})
    export_dir = tmp_path / "exports"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_VAR_PRESERVICA_EXPORT_DIR", str(export_dir))
        patch.setenv("AIRFLOW_VAR_PRESERVICA_EXPORT_COLLECTION", MAPS_FOLDER)
        dag_run = run_example(examples, "preservica_export_collection", logical_date=LOGICAL_DATE)

    assert states(dag_run) == {"plan": "success", "export": "success", "summary": "success"}
    archive = export_dir / DAY / f"collection-{MAPS_FOLDER}.zip"
    unpacked = export_dir / DAY / f"collection-{MAPS_FOLDER}"
    with zipfile.ZipFile(archive) as zipped:
        members = [name for name in zipped.namelist() if not name.endswith("/")]
    assert sorted(files_below(unpacked)) == sorted(members)
    assert sum(name.endswith(".pax.zip") for name in members) == 4
    out = capfd.readouterr().out
    assert f"Exported {archive}: {archive.stat().st_size:,} bytes, " in out
    assert "4 checked against their ingest fixity, 8 fixities checked in all" in out
    assert f"sha256 {hashlib.sha256(archive.read_bytes()).hexdigest()}; unpacked to {unpacked}" in out


def test_legacy_ini_example_reads_the_ini_file(examples, small_repository, tmp_path, capfd, monkeypatch):
    ini = tmp_path / "config.ini"
    ini.write_text(
        "[DEFAULT]\n"
        f"URL = {small_repository.base_url}/api/accesstoken/login\n"
        f"Username = {ARCHIVIST.name}\nPassword = {ARCHIVIST.password}\nTenant = {ARCHIVIST.tenant}\n"
    )
    monkeypatch.delenv("AIRFLOW_CONN_PRESERVICA_DEFAULT")
    monkeypatch.setenv("AIRFLOW_VAR_PRESERVICA_INI_PATH", str(ini))
    dag_run = run_example(examples, "preservica_legacy_ini")

    assert str(dag_run.state) == "success"
    out = capfd.readouterr().out
    assert f"({'ini file ' + str(ini)}): 2 top-level folders" in out
    assert logins(small_repository) == 1
    assert variable("preservica_access_token__preservica_legacy") is not None


# -- test, then production -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prod_server() -> Iterator[SandboxServer]:
    """A second Preservica: the production system (the session's sandbox plays test)."""
    server = SandboxServer(users=[PROD_USER], token_lifetime=900).start()
    yield server
    remember_tokens(server)
    server.stop()


@pytest.fixture
def two_systems(quick_ingests, prod_server, tmp_path, monkeypatch) -> dict[str, Any]:
    prod_server.state.reset()
    prod_server.state.update_config({"ingest_seconds": 0.3})
    landing = tmp_path / "promote"
    deliver(landing / DAY, {name: DELIVERY[name] for name in GOOD})
    monkeypatch.setenv("AIRFLOW_VAR_PRESERVICA_PROMOTE_LANDING_DIR", str(landing))
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_TEST", connection_json(quick_ingests, TEST_USER))
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_PROD", connection_json(prod_server, PROD_USER))
    for conn_id in ("preservica_test", "preservica_prod"):
        delete_variable(f"preservica_access_token__{conn_id}")
    return {"test": quick_ingests, "prod": prod_server, "landing": landing}


def test_multi_environment_ingests_into_test_then_prod_with_two_token_caches(examples, two_systems, capfd):
    dag_run = run_example(examples, "preservica_multi_environment", logical_date=LOGICAL_DATE)

    assert states(dag_run) == {
        "stage": "success",
        "test_folder": "success",
        "test_ingest": "success",
        "prod_folder": "success",
        "prod_ingest": "success",
        "file_and_summarise": "success",
        "quarantine_on_failure": "skipped",
    }
    out = capfd.readouterr().out
    assert "test (preservica_test): 3 created, 0 already present, 3 verified" in out
    assert "prod (preservica_prod): 3 created, 0 already present, 3 verified" in out
    test_token = json.loads(variable("preservica_access_token__preservica_test") or "{}")
    prod_token = json.loads(variable("preservica_access_token__preservica_prod") or "{}")
    assert test_token["token"] != prod_token["token"]
    assert (logins(two_systems["test"], TEST_USER.name), logins(two_systems["prod"], PROD_USER.name)) == (1, 1)
    landing = two_systems["landing"]
    assert sorted(files_below(landing / "done" / DAY)) == GOOD and not (landing / DAY).exists()


def test_multi_environment_never_reaches_prod_when_test_fails(examples, two_systems):
    landing = two_systems["landing"]
    shutil.move(landing / DAY, landing / FAILING_DAY)  # a day whose SourceIDs neither system holds yet
    ingest_fault(two_systems["test"], outcome="FAILED", count=1, message="Unsupported format")
    dag_run = run_example(examples, "preservica_multi_environment", logical_date=LOGICAL_DATE.add(days=1))

    assert states(dag_run)["test_ingest"] == "failed"
    assert (states(dag_run)["prod_folder"], states(dag_run)["prod_ingest"]) == ("upstream_failed", "upstream_failed")
    assert states(dag_run)["quarantine_on_failure"] == "success"
    assert two_systems["prod"].state.stats()["requests"] == {}
    assert variable("preservica_access_token__preservica_prod") is None
    assert sorted(files_below(landing / "quarantine" / "test-ingest-failed" / FAILING_DAY)) == GOOD
