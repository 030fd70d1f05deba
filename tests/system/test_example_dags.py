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
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests
from preservica_sandbox import SandboxServer

from airflow_provider_preservica.ingest.packaging import uuid_source_ids
from tests.support.accounts import ARCHIVIST, PROD_USER, TEST_USER
from tests.support.airflow_db import delete_variable, variable
from tests.support.example_dags import run_example, states
from tests.support.hitl import needs_hitl_in_dag_test
from tests.support.sandbox import MAPS_FOLDER, connection_json, logins, remember_tokens

pytestmark = pytest.mark.integration

DAY = "2026-11-25"
LOGICAL_DATE = pendulum.datetime(2026, 11, 25, 1, 30, tz="UTC")
# SourceIDs derive from the day: a test on another day does not find the assets of an earlier test.
FAILING_DAY = "2026-11-26"


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


def test_nightly_ingest_files_the_delivery_and_reports_every_file(examples, nightly, quick_ingests):
    landing, reports = nightly["landing"], nightly["reports"]
    # Another pipeline's asset elsewhere carries the SourceID one of tonight's files will have: no reason to skip it.
    repository = quick_ingests.state.repository
    elsewhere = repository.add_folder("Another pipeline's folder")
    decoy = repository.add_asset(
        "Not tonight's minutes",
        elsewhere.ref,
        identifiers=[("SourceID", uuid_source_ids(DAY)("minutes-1921.pdf", False))],
    )
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
    assert len(created_refs) == 3 and "" not in created_refs and decoy.ref not in created_refs
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

    # A changed file redelivered under the same day (same SourceID, other content) is a conflict: quarantined with
    # the reason, never skipped as "already in Preservica", and Preservica's asset is left as it was.
    changed = b"%PDF-1.4 minutes, corrected " * 300
    deliver(landing / DAY, {"minutes-1921.pdf": changed, "letters/reply.pdf": DELIVERY["letters/reply.pdf"]})
    dag_run = run_example(examples, "preservica_nightly_ingest", logical_date=LOGICAL_DATE)

    assert (states(dag_run)["ingest"], states(dag_run)["file_and_report"]) == ("skipped", "success")
    rows = read_csv(reports / f"ingest-{DAY}.csv")
    minutes_ref = next(ref for ref in created_refs if repository.get(ref).title.startswith("minutes"))
    assert rows["minutes-1921.pdf"]["outcome"] == "quarantined"
    assert rows["minutes-1921.pdf"]["detail"].startswith(f"conflict: SourceID held by asset {minutes_ref} below")
    assert "with other content" in rows["minutes-1921.pdf"]["detail"]
    assert (rows["letters/reply.pdf"]["outcome"], rows["letters/reply.pdf"]["ref"]) == (
        "skipped",
        next(ref for ref in created_refs if repository.get(ref).title.startswith("reply")),
    )
    assert files_below(landing / "quarantine" / "conflict" / DAY) == {"minutes-1921.pdf": changed}


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


# -- metadata corrections to the nightly ingest's folder -----------------------------------------------------
CORRECTIONS_DAY = "2026-11-27"  # assets of their own: the corrections change them
OAI_DC, DC = "http://www.openarchives.org/OAI/2.0/oai_dc/", "http://purl.org/dc/elements/1.1/"
DUBLIN_CORE = (
    f'<oai_dc:dc xmlns:oai_dc="{OAI_DC}" xmlns:dc="{DC}">'
    "<dc:title>Minutes of the parish council, 3 March 1921</dc:title><dc:creator>Parish council</dc:creator>"
    "<dc:date>1921-03-03</dc:date><dc:type>Text</dc:type></oai_dc:dc>"
)
CORRECTIONS = {  # delivered file -> sheet columns for its asset, which the sheet names by SourceID
    "minutes-1921.pdf": {
        "title": "Minutes of the parish council, 3 March 1921",
        "identifier:catalogue": "PC/1/1921/3",
        "metadata": DUBLIN_CORE,
        "security_tag": "open",  # ingested closed
    },
    "letters/to-the-mayor.pdf": {
        "title": "Letter to the mayor concerning the bridge",
        "identifier:catalogue": "PC/2/14",
    },
    "letters/reply.pdf": {
        "description": "The mayor's reply: repairs in the spring.",
        "identifier:catalogue": "PC/2/15",
    },
}
SHEET_COLUMNS = ["identifier_type", "identifier_value", "title", "description", "identifier:catalogue"]
SHEET_COLUMNS += ["security_tag", "metadata"]
APPLY = {"apply": True}


@pytest.fixture
def corrections_sheet(nightly, tmp_path, monkeypatch) -> Path:
    sheet = tmp_path / "corrections" / "corrections.csv"
    sheet.parent.mkdir()
    monkeypatch.setenv("AIRFLOW_VAR_PRESERVICA_CORRECTIONS_SHEET", str(sheet))
    return sheet


def write_sheet(sheet: Path, rows: list[dict[str, str]]) -> None:
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, SHEET_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def outcomes(report: Path) -> list[str]:
    with report.open(encoding="utf-8", newline="") as handle:
        return [row["outcome"] for row in csv.DictReader(handle)]


def as_seen(entities: Any, ref: str) -> dict[str, Any]:
    """What a user sees of an asset through the Entity API: text, tag, place, identifiers, fragments."""
    entity = entities.get(ref, "IO")
    dublin_core = [entities.metadata_document(f.url) for f in entity.fragments if f.schema == OAI_DC]
    return {
        "title": entity.title,
        "description": entity.description,
        "security_tag": entity.security_tag,
        "parent": entity.parent_ref,
        "identifiers": sorted((i.type, i.value) for i in entities.identifiers(ref, "IO")),
        "dublin_core": [
            {element.tag.split("}", 1)[1]: element.text for element in ET.fromstring(document)}
            for document in dublin_core
        ],
    }


def test_metadata_corrections_dry_run_changes_nothing_apply_does_and_a_rerun_finds_nothing_left(
    examples, nightly, corrections_sheet, capfd
):
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    shutil.move(nightly["landing"] / DAY, nightly["landing"] / CORRECTIONS_DAY)
    run_example(examples, "preservica_nightly_ingest", logical_date=LOGICAL_DATE.add(days=2))
    ingested = read_csv(nightly["reports"] / f"ingest-{CORRECTIONS_DAY}.csv")
    assert {ingested[name]["outcome"] for name in GOOD} == {"created"}
    # The cataloguer's sheet names each asset by the SourceID the ingest report lists, not by its ref.
    write_sheet(
        corrections_sheet,
        [
            {"identifier_type": "SourceID", "identifier_value": ingested[name]["source_id"], **columns}
            for name, columns in CORRECTIONS.items()
        ],
    )
    entities = PreservicaHook("preservica_default").entities
    refs = {name: ingested[name]["ref"] for name in CORRECTIONS}
    before = {name: as_seen(entities, ref) for name, ref in refs.items()}
    assert before["minutes-1921.pdf"]["title"] == "minutes-1921.pdf"
    assert before["minutes-1921.pdf"]["security_tag"] == "closed"
    dry_report = corrections_sheet.with_name("corrections.dry-run.csv")
    apply_report = corrections_sheet.with_name("corrections.report.csv")
    capfd.readouterr()

    # 1. A dry run only: the report says what would change; Preservica is exactly as it was.
    dag_run = run_example(
        examples, "preservica_metadata_corrections", logical_date=LOGICAL_DATE, run_conf={"apply": False}
    )
    assert states(dag_run) == {
        "find_assets": "success",
        "dry_run": "success",
        "apply_requested": "success",
        "apply": "skipped",
        "summary": "success",
    }
    assert {name: as_seen(entities, ref) for name, ref in refs.items()} == before
    assert outcomes(dry_report) == ["would change"] * 3
    assert not apply_report.exists()
    out = capfd.readouterr().out
    assert "Corrections dry run: 3 rows: 3 would change; report " in out
    assert "Corrections not applied: the run was started with apply=false" in out
    for name in CORRECTIONS:
        assert f"-> IO {CORRECTIONS_DAY}/{name} ({refs[name]})" in out  # find_assets located every row

    # 2. Dry run, then apply: the assets are what the sheet says, nothing else moved. (``apply`` is given
    # again: in one process, Airflow 3.3's process_params() leaves a run's conf in the DAG's Param objects.)
    dag_run = run_example(examples, "preservica_metadata_corrections", logical_date=LOGICAL_DATE, run_conf=APPLY)
    assert set(states(dag_run).values()) == {"success"}
    after = {name: as_seen(entities, ref) for name, ref in refs.items()}
    source_ids = {name: ("SourceID", ingested[name]["source_id"]) for name in CORRECTIONS}
    assert all(source_ids[name] in before[name]["identifiers"] for name in CORRECTIONS)
    ingest_ids = {name: before[name]["identifiers"] for name in CORRECTIONS}  # SourceID and SourceFixity
    assert after == {
        "minutes-1921.pdf": {
            **before["minutes-1921.pdf"],
            "title": "Minutes of the parish council, 3 March 1921",
            "security_tag": "open",
            "identifiers": sorted([*ingest_ids["minutes-1921.pdf"], ("catalogue", "PC/1/1921/3")]),
            "dublin_core": [
                {
                    "title": "Minutes of the parish council, 3 March 1921",
                    "creator": "Parish council",
                    "date": "1921-03-03",
                    "type": "Text",
                }
            ],
        },
        "letters/to-the-mayor.pdf": {
            **before["letters/to-the-mayor.pdf"],
            "title": "Letter to the mayor concerning the bridge",
            "identifiers": sorted([*ingest_ids["letters/to-the-mayor.pdf"], ("catalogue", "PC/2/14")]),
        },
        "letters/reply.pdf": {
            **before["letters/reply.pdf"],
            "description": "The mayor's reply: repairs in the spring.",
            "identifiers": sorted([*ingest_ids["letters/reply.pdf"], ("catalogue", "PC/2/15")]),
        },
    }
    assert (outcomes(dry_report), outcomes(apply_report)) == (["would change"] * 3, ["changed"] * 3)
    assert "Corrections applied: 3 rows: 3 changed; report " in capfd.readouterr().out

    # 3. The same sheet again: every row unchanged, in the dry run and in the apply; nothing is written.
    dag_run = run_example(examples, "preservica_metadata_corrections", logical_date=LOGICAL_DATE, run_conf=APPLY)
    assert set(states(dag_run).values()) == {"success"}
    assert (outcomes(dry_report), outcomes(apply_report)) == (["unchanged"] * 3, ["unchanged"] * 3)
    assert {name: as_seen(entities, ref) for name, ref in refs.items()} == after
    assert "Corrections applied: 3 rows: 3 unchanged; report " in capfd.readouterr().out


def test_metadata_corrections_refuse_a_sheet_naming_anything_outside_the_nightly_folder(
    examples, preservica_conn, tmp_path, monkeypatch, capfd
):
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    entities = PreservicaHook("preservica_default").entities
    entities.ensure_folder(
        "pipeline", "nightly-ingest-2026", title="Nightly ingest 2026", parent_ref=None, security_tag="closed"
    )
    elsewhere, _ = entities.ensure_folder(
        "catalogue", "OTHER/1", title="Another collection", parent_ref=None, security_tag="open"
    )
    sheet = tmp_path / "corrections.csv"
    write_sheet(
        sheet,
        [
            {"identifier_type": "catalogue", "identifier_value": "OTHER/1", "title": "Not this one"},
            {"identifier_type": "SourceID", "identifier_value": "no-such-source-id", "title": "Nor this"},
        ],
    )
    monkeypatch.setenv("AIRFLOW_VAR_PRESERVICA_CORRECTIONS_SHEET", str(sheet))
    dag_run = run_example(examples, "preservica_metadata_corrections", logical_date=LOGICAL_DATE, run_conf=APPLY)

    assert states(dag_run) == {
        "find_assets": "failed",
        "dry_run": "upstream_failed",
        "apply_requested": "upstream_failed",
        "apply": "upstream_failed",
        "summary": "upstream_failed",
    }
    captured = capfd.readouterr()
    assert f"2 rows of {sheet} name nothing in 'Nightly ingest 2026'" in captured.out + captured.err
    assert f"row 2 (catalogue=OTHER/1): only entities outside the folder have it ({elsewhere.ref})" in (
        captured.out + captured.err
    )
    assert "row 3 (SourceID=no-such-source-id): no entity has this identifier" in captured.out + captured.err
    assert entities.get(elsewhere.ref, "SO").title == "Another collection"
    assert not list(tmp_path.glob("corrections.*.csv"))  # no dry run, no apply


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


# -- workflows and deletion ----------------------------------------------------------------------------------
def test_opex_incremental_workflow_example_ingests_the_container(examples, small_repository):
    import hashlib as _hashlib

    from tests.support.ingest_helpers import SOURCE_BUCKET, opex_document, s3_client

    small_repository.state.update_config({"ingest_seconds": 0.3})
    token = requests.post(
        f"{small_repository.base_url}/api/accesstoken/login",
        data={"username": ARCHIVIST.name, "password": ARCHIVIST.password, "tenant": ARCHIVIST.tenant},
        timeout=10,
    ).json()["token"]
    s3 = s3_client(small_repository.base_url, token)
    container, content = "opex/accession-41", b"minutes of the 1851 meeting"
    sidecar = opex_document("ACC-41-1", "Minutes, 1851", fixities={"SHA-256": _hashlib.sha256(content).hexdigest()})
    s3.put_object(Bucket=SOURCE_BUCKET, Key=f"{container}/Minutes/minutes.txt", Body=content)
    s3.put_object(Bucket=SOURCE_BUCKET, Key=f"{container}/Minutes/minutes.txt.opex", Body=sidecar)
    s3.put_object(Bucket=SOURCE_BUCKET, Key=f"{container}/accession-41.opex", Body=opex_document(folders=["Minutes"]))

    dag_run = run_example(
        examples, "preservica_opex_incremental_workflow", run_conf={"container": container, "parent": MAPS_FOLDER}
    )

    assert states(dag_run) == {"ingest_container": "success"}
    result = dag_run.get_task_instance("ingest_container").xcom_pull(task_ids="ingest_container")
    assert (result["context_name"], result["state"]) == ("Ingest OPEX (Incremental)", "Completed")
    titles = {e.title: e for e in small_repository.state.repository.entities()}
    assert titles["Minutes"].parent == MAPS_FOLDER and titles["Minutes, 1851"].parent == titles["Minutes"].ref


@needs_hitl_in_dag_test
def test_weeding_example_deletes_what_was_approved_and_nothing_else(examples, small_repository, monkeypatch):
    from tests.support.accounts import MANAGER
    from tests.support.hitl import Respondent

    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_MANAGER", connection_json(small_repository, MANAGER))
    repo = small_repository.state.repository
    estate, plan = "a0000000-0000-4000-8000-000000000002", "c0000000-0000-4000-8000-000000000001"
    before = {e.ref for e in repo.entities()}
    with Respondent("preservica_weeding", "approve", "Approve") as respondent:
        dag_run = run_example(examples, "preservica_weeding", run_conf={"refs": estate, "reason": "duplicate scan"})
    assert respondent.error is None and respondent.answered.is_set()
    assert states(dag_run) == {"manifest": "success", "approve": "success", "delete": "success"}
    assert before - {e.ref for e in repo.entities()} == {estate, plan}
    [request] = requests.get(f"{small_repository.base_url}/_sandbox/deletions", timeout=10).json()
    assert request["comment"].startswith("duplicate scan (Airflow DAG preservica_weeding, run ")
    assert (request["user"], request["approver"]) == (ARCHIVIST.name, MANAGER.name)
