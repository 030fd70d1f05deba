"""PreservicaMetadataOperator in real Airflow (dag.test) against the sandbox: apply, defer, dry run, fail."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.support.airflow_db import task_states
from tests.support.operators import sheet_for
from tests.support.sandbox import inject

pytestmark = pytest.mark.integration

DC = "http://purl.org/dc/elements/1.1/"


def _xcom(dag_run):
    return dag_run.get_task_instance("corrections").xcom_pull(task_ids="corrections")


def _report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def repository(preservica_conn):
    preservica_conn.state.repository.seed(assets=40, random_seed=3)
    preservica_conn.state.update_config({"entity_action_seconds": 0.3})
    repo = preservica_conn.state.repository
    assets = sorted(repo.entities(("IO",)), key=lambda e: e.ref)[:20]
    folders = [f for f in repo.entities(("SO",)) if f.parent is not None]
    return preservica_conn, assets, folders


@pytest.mark.parametrize("dag", ["metadata_polling_dag", "metadata_deferrable_dag"])
def test_sheet_applied_with_waits_for_tags_and_moves(repository, run_dag, tmp_path, dag, capfd):
    server, assets, folders = repository
    sheet, rows = sheet_for(tmp_path, assets, folders)
    dag_run = run_dag("metadata_dags.py", dag, run_conf={"sheet": str(sheet)})

    assert task_states(dag_run) == {"corrections[-1]": "success"}
    result = _xcom(dag_run)
    report = tmp_path / "corrections.report.csv"
    assert result["changed"] == 20 and result["rows"] == 20 and result["report"] == str(report)
    assert [r["outcome"] for r in _report(report)] == ["changed"] * 20
    for row in rows:
        entity = server.state.repository.get(row["reference"])
        assert entity.title == row["title"] and entity.security_tag == row["security_tag"]
        assert entity.parent == (row["parent"] or entity.parent)
    output = "".join(capfd.readouterr())
    assert "Preservica metadata update from" in output and "changed" in output
    if dag == "metadata_deferrable_dag":
        assert "Waiting in the triggerer for 25 security tag changes and moves" in output


def test_dry_run_reports_and_changes_nothing(repository, run_dag, tmp_path):
    server, assets, folders = repository
    sheet, _ = sheet_for(tmp_path, assets, folders)
    version = server.state.repository.version
    dag_run = run_dag("metadata_dags.py", "metadata_dry_run_dag", run_conf={"sheet": str(sheet)})

    assert task_states(dag_run) == {"corrections[-1]": "success"}
    assert _xcom(dag_run)["would_change"] == 20
    assert server.state.repository.version == version
    report = _report(tmp_path / "corrections.dry-run.csv")
    assert report[0]["outcome"] == "would change" and "security tag" in report[0]["changes"]
    assert not (tmp_path / "corrections.report.csv").exists()


def test_bad_column_fails_before_any_request(repository, run_dag, tmp_path, capfd):
    server, assets, _ = repository
    sheet = tmp_path / "bad.csv"
    sheet.write_text(f"reference,titel\n{assets[0].ref},x\n", encoding="utf-8")
    dag_run = run_dag("metadata_dags.py", "metadata_polling_dag", run_conf={"sheet": str(sheet)})
    assert task_states(dag_run) == {"corrections[-1]": "failed"}
    assert "unknown column 'titel' (did you mean 'title'?)" in "".join(capfd.readouterr())
    assert server.state.stats()["requests"] == {}


def test_unknown_reference_fails_the_task_and_writes_nothing_unless_partial(repository, run_dag, tmp_path, capfd):
    server, assets, _ = repository
    sheet = tmp_path / "fix.csv"
    sheet.write_text(
        f"reference,title\n{assets[0].ref},Fixed\n00000000-0000-4000-8000-000000000000,Ghost\n", encoding="utf-8"
    )
    dag_run = run_dag("metadata_dags.py", "metadata_polling_dag", run_conf={"sheet": str(sheet)})
    assert task_states(dag_run) == {"corrections[-1]": "failed"}
    output = "".join(capfd.readouterr())
    assert "1 of 2 rows failed (first: row 3" in output and "Nothing was written" in output
    assert [r["outcome"] for r in _report(tmp_path / "fix.report.csv")] == ["not applied", "not found"]
    assert server.state.repository.get(assets[0].ref).title != "Fixed"

    dag_run = run_dag("metadata_dags.py", "metadata_partial_dag", run_conf={"sheet": str(sheet)})
    assert task_states(dag_run) == {"corrections[-1]": "success"}
    assert _xcom(dag_run)["changed"] == 1 and _xcom(dag_run)["not_found"] == 1
    assert server.state.repository.get(assets[0].ref).title == "Fixed"


def test_failed_background_change_fails_the_deferred_task_with_its_message(repository, run_dag, tmp_path, capfd):
    server, assets, folders = repository
    sheet, _ = sheet_for(tmp_path, assets[:3], folders)
    inject(server, kind="fail_entity_action", action="security_tag", ref=assets[1].ref, message="tag is under review")
    dag_run = run_dag("metadata_dags.py", "metadata_deferrable_dag", run_conf={"sheet": str(sheet)})
    assert task_states(dag_run) == {"corrections[-1]": "failed"}
    assert "tag is under review" in "".join(capfd.readouterr())
    report = _report(tmp_path / "corrections.report.csv")
    assert [r["outcome"] for r in report] == ["changed", "rejected", "changed"]
    assert "tag is under review" in report[1]["message"]


def test_dtd_and_files_outside_the_sheets_folder_fail_every_row_before_any_write(repository, run_dag, tmp_path, capfd):
    server, assets, _ = repository
    folder = tmp_path / "sheets"
    folder.mkdir()
    (tmp_path / "outside.xml").write_text(f'<dc xmlns="{DC}"><title>From outside</title></dc>', encoding="utf-8")
    entity = f'<!DOCTYPE dc [<!ENTITY x "Expanded">]><dc xmlns="{DC}"><title>&x;</title></dc>'
    sheet = folder / "fix.csv"
    sheet.write_text(
        "reference,title,metadata,metadata_file\n"
        f"{assets[0].ref},Fixed,,\n"
        f'{assets[1].ref},,"{entity.replace(chr(34), chr(34) * 2)}",\n'
        f"{assets[2].ref},,,../outside.xml\n",
        encoding="utf-8",
    )
    dag_run = run_dag("metadata_dags.py", "metadata_polling_dag", run_conf={"sheet": str(sheet)})
    assert task_states(dag_run) == {"corrections[-1]": "failed"}
    output = "".join(capfd.readouterr())
    assert "2 of 3 rows failed (first: row 3" in output and "Nothing was written" in output
    report = _report(folder / "fix.report.csv")
    assert [r["outcome"] for r in report] == ["not applied", "invalid", "invalid"]
    assert "remove the <!DOCTYPE" in report[1]["message"] and "metadata_root=" in report[2]["message"]
    assert not [route for route in server.state.stats()["requests"] if not route.startswith(("GET", "POST /api/acc"))]
    assert server.state.repository.get(assets[0].ref).title != "Fixed"

    sheet.write_text(f"reference,title,metadata_file\n{assets[2].ref},Fixed,../outside.xml\n", encoding="utf-8")
    conf = {"sheet": str(sheet), "metadata_root": str(tmp_path)}  # the user allows the folder above
    dag_run = run_dag("metadata_dags.py", "metadata_polling_dag", run_conf=conf)
    assert task_states(dag_run) == {"corrections[-1]": "success"}
    fragments = server.state.repository.get(assets[2].ref).metadata
    assert any("From outside" in f.xml for f in fragments if f.schema == DC)
