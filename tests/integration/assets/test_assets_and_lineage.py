"""Asset events and OpenLineage of the Preservica operators, in real Airflow against the sandbox.

- Asset events: the DAGs of ``tests/dags/asset_dags.py`` run with ``dag.test()``; what each run emitted is read
  back from the metadata DB (the events Airflow recorded, with their extra and aliases).
- OpenLineage: ``airflow dags test`` in a subprocess with the OpenLineage provider's console transport, so the
  listener is configured as in a deployment and the events are read from its output.
- Without the OpenLineage provider (its import blocked), the operators run unchanged and report no lineage.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_preservica.assets import file_asset, preservica_host
from tests.support.airflow_db import load_dag, task_states
from tests.support.sandbox import MAPS_FOLDER, connection_json

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


@pytest.fixture
def assets_sandbox(small_repository, monkeypatch):
    small_repository.state.update_config({"ingest_seconds": 0.3, "export_seconds": 0.3, "entity_action_seconds": 0.2})
    monkeypatch.setenv("PRESERVICA_ASSETS_HOST", small_repository.base_url)  # read by tests/dags/asset_dags.py
    return small_repository


def run(attribute: str, **conf: Any) -> Any:
    return load_dag("asset_dags.py", attribute).test(run_conf=conf)


def emitted(dag_run: Any) -> list[dict[str, Any]]:
    """The asset events ``dag_run`` produced, as Airflow recorded them."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .where(AssetEvent.source_dag_id == dag_run.dag_id, AssetEvent.source_run_id == dag_run.run_id)
            .order_by(AssetEvent.id)
        )
        return [
            {
                "uri": e.asset.uri,
                "name": e.asset.name,
                "task": e.source_task_id,
                "extra": e.extra,
                "aliases": sorted(a.name for a in e.source_aliases),
            }
            for e in rows
        ]


def make_batch(root: Path, files: int = 3) -> Path:
    batch = root / "batch"
    batch.mkdir()
    for index in range(files):
        (batch / f"scan-{index:03d}.tif").write_bytes(hashlib.sha256(f"asset-{index}".encode()).digest() * 500)
    return batch


def test_an_ingest_emits_its_folder_with_what_it_created_and_nothing_when_nothing_is_new(
    assets_sandbox, airflow_db, tmp_path
):
    batch = make_batch(tmp_path)
    first = run("ingest_dag", source=str(batch))
    assert task_states(first) == {"ingest[-1]": "success"}
    report = first.get_task_instance("ingest").xcom_pull(task_ids="ingest")
    folder_uri = f"preservica://{preservica_host(assets_sandbox.base_url)}/{MAPS_FOLDER}"
    events = emitted(first)
    # The folder's own Asset outlet, and the same asset added to the alias outlet.
    assert [(e["uri"], e["aliases"]) for e in events] == [(folder_uri, []), (folder_uri, ["preservica_test_ingests"])]
    extra = events[0]["extra"]
    assert events[1]["extra"] == extra
    assert extra["ref"] == MAPS_FOLDER and extra["state"] == "COMPLETED"
    assert extra["created_count"] == 3 and sorted(extra["created_refs"]) == sorted(report["created_refs"])
    assert extra["skipped_existing"] == 0 and extra["assets_sent"] == 3 and extra["package_bytes"] > 0
    assert extra["fixity"]["algorithm"] == "SHA-256" and extra["fixity"]["verified"] == 3
    assert len(json.dumps(extra)) < 2000

    again = run("ingest_dag", source=str(batch))  # every SourceID is in Preservica now: nothing created
    assert task_states(again) == {"ingest[-1]": "success"}
    assert again.get_task_instance("ingest").xcom_pull(task_ids="ingest")["state"] == "NOTHING_TO_INGEST"
    assert emitted(again) == []


def test_an_export_emits_the_zip_with_its_size_and_checksum(assets_sandbox, airflow_db, tmp_path):
    out = tmp_path / "maps.zip"
    dag_run = run("export_dag", out=str(out))
    assert task_states(dag_run) == {"export[-1]": "success"}
    result = dag_run.get_task_instance("export").xcom_pull(task_ids="export")
    events = emitted(dag_run)
    assert [(e["name"], e["aliases"]) for e in events] == [
        ("maps_export", []),
        (file_asset(str(out)).uri, ["preservica_test_exports"]),
    ]
    extra = events[0]["extra"]
    assert extra["ref"] == MAPS_FOLDER and extra["entity_type"] == "SO" and extra["path"] == str(out)
    assert extra["bytes"] == out.stat().st_size == result["bytes"]
    assert extra["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert extra["files"] == result["files"] and extra["bitstreams_checked"] == 4


def test_a_search_report_emits_its_file_with_the_row_count(assets_sandbox, airflow_db, tmp_path):
    out = tmp_path / "report.csv"
    dag_run = run("search_dag", out=str(out), parent=MAPS_FOLDER)
    assert task_states(dag_run) == {"report[-1]": "success"}
    events = emitted(dag_run)
    assert [(e["name"], e["aliases"]) for e in events] == [
        ("open_assets_report", []),
        (file_asset(str(out)).uri, ["preservica_test_reports"]),
    ]
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert events[0]["extra"] == {
        "path": str(out),
        "format": "csv",
        "count": len(rows),
        "total_hits": len(rows),
        "parent_ref": MAPS_FOLDER,
    }


def test_corrections_emit_the_entities_changed_and_a_dry_run_or_a_second_pass_nothing(
    assets_sandbox, airflow_db, tmp_path
):
    sheet = tmp_path / "corrections.csv"
    changed = ["b0000000-0000-4000-8000-000000000002", "b0000000-0000-4000-8000-000000000003"]
    sheet.write_text(
        "reference,title\n" + "".join(f"{ref},Corrected title {i}\n" for i, ref in enumerate(changed)),
        encoding="utf-8",
    )
    dag_run = run("metadata_dag", sheet=str(sheet))
    assert task_states(dag_run) == {"preview[-1]": "success", "apply[-1]": "success"}
    events = emitted(dag_run)
    host = preservica_host(assets_sandbox.base_url)
    assert {e["task"] for e in events} == {"apply"}  # the dry run changed nothing: no event
    assert [(e["uri"], e["aliases"]) for e in events] == [
        ("x-preservica-test://corrections", []),
        *[(f"preservica://{host}/{ref}", ["preservica_test_corrections"]) for ref in changed],
    ]
    extra = events[0]["extra"]
    assert extra["rows"] == 2 and extra["changed"] == 2 and extra["unchanged"] == 0 and not extra["dry_run"]
    assert sorted(extra["changed_refs"]) == changed and extra["source"] == str(sheet)

    second = run("metadata_dag", sheet=str(sheet))  # already applied: nothing changes
    assert task_states(second) == {"preview[-1]": "success", "apply[-1]": "success"}
    assert emitted(second) == []


# -- OpenLineage ------------------------------------------------------------------------------------------------
def lineage_events(output: str) -> dict[str, dict[str, Any]]:
    """The COMPLETE events of each task, from the console transport's log lines."""
    events: dict[str, dict[str, Any]] = {}
    decoder = json.JSONDecoder()
    for line in output.splitlines():
        start = line.find('{"eventTime"')
        if start < 0:
            continue
        event, _ = decoder.raw_decode(line[start:])
        if event["eventType"] == "COMPLETE" and "." in event["job"]["name"]:
            events[event["job"]["name"].split(".", 1)[1]] = event
    return events


def datasets(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["namespace"], item["name"]) for item in items]


def test_openlineage_console_transport_reports_each_operators_inputs_and_outputs(
    small_repository, airflow_db, tmp_path
):
    pytest.importorskip("airflow.providers.openlineage")
    small_repository.state.update_config({"ingest_seconds": 0.3, "export_seconds": 0.3})
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("reference,title\nb0000000-0000-4000-8000-000000000003,Map of Bath (1850)\n", encoding="utf-8")
    conf = {
        "report": str(tmp_path / "report.csv"),
        "zip": str(tmp_path / "maps.zip"),
        "unzip": str(tmp_path / "maps"),
        "source": str(make_batch(tmp_path, files=2)),
        "sheet": str(sheet),
    }
    env = {
        **os.environ,
        "AIRFLOW_CONN_PRESERVICA_DEFAULT": connection_json(small_repository),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "console"}),
        # Emit from a thread of the task's process (the default forks a child per event): the same events,
        # but each one is on stdout before ``airflow dags test`` returns.
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "preservica-tests",
    }
    result = subprocess.run(
        [str(BIN / "airflow"), "dags", "test", "preservica_lineage", "-c", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    events = lineage_events(output)
    assert set(events) == {"search", "export", "ingest", "corrections"}, output[-3000:]
    preservica = f"preservica://{preservica_host(small_repository.base_url)}"

    search = events["search"]
    assert datasets(search["inputs"]) == [(preservica, MAPS_FOLDER)]
    assert datasets(search["outputs"]) == [("file", conf["report"])]
    assert search["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 4

    export = events["export"]
    assert datasets(export["inputs"]) == [(preservica, MAPS_FOLDER)]
    assert datasets(export["outputs"]) == [("file", conf["zip"]), ("file", conf["unzip"])]
    statistics = export["outputs"][0]["outputFacets"]["outputStatistics"]
    assert statistics["size"] == Path(conf["zip"]).stat().st_size and statistics["fileCount"] > 0

    ingest = events["ingest"]
    assert datasets(ingest["inputs"]) == [("file", conf["source"])]
    assert datasets(ingest["outputs"]) == [(preservica, MAPS_FOLDER)]
    assert ingest["outputs"][0]["outputFacets"]["outputStatistics"]["fileCount"] == 2

    corrections = events["corrections"]
    assert datasets(corrections["inputs"]) == [("file", conf["sheet"])]
    assert datasets(corrections["outputs"]) == [
        (preservica, "b0000000-0000-4000-8000-000000000003"),
        ("file", str(tmp_path / "sheet.report.csv")),
    ]


def test_without_the_openlineage_provider_the_operators_run_and_report_no_lineage(
    small_repository, run_dag, tmp_path, monkeypatch
):
    from airflow import plugins_manager

    from airflow_provider_preservica.operators.search import PreservicaSearchOperator

    plugins_manager.ensure_plugins_loaded()  # before the block: the rest of the session keeps its plugins
    for name in list(sys.modules):
        if name.startswith("airflow.providers.openlineage"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage", None)  # import -> ImportError

    out = tmp_path / "report.csv"
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": str(out)})
    assert task_states(dag_run) == {"report[-1]": "success"} and out.is_file()
    operator = PreservicaSearchOperator(task_id="r", output_path=str(out))
    operator._preservica_host = "eu.preservica.com"
    assert operator.get_openlineage_facets_on_complete(None) is None
