"""PreservicaSearchOperator in real Airflow (dag.test) against the sandbox."""

from __future__ import annotations

import json

import pytest

from airflow_provider_preservica.files.storage import atomic_output
from tests.support.airflow_db import task_states
from tests.support.sandbox import MAPS_FOLDER, inject

pytestmark = pytest.mark.integration


def test_csv_report_content_and_small_xcom(small_repository, run_dag, tmp_path):
    out = tmp_path / "not-open.csv"
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": str(out), "tag": "open"})

    assert task_states(dag_run) == {"report[-1]": "success"}
    assert out.read_text(encoding="utf-8") == (
        "xip.reference,xip.title,xip.security_descriptor,xip.parent_ref\n"
        "d0000000-0000-4000-8000-000000000001,Letter to a map maker,closed,a0000000-0000-4000-8000-000000000003\n"
        'b0000000-0000-4000-8000-000000000001,"Map of Avon, ""coloured""",closed,' + MAPS_FOLDER + "\n"
        "c0000000-0000-4000-8000-000000000001,Plan of Ham estate,public,a0000000-0000-4000-8000-000000000002\n"
    )
    summary = dag_run.get_task_instance("report").xcom_pull(task_ids="report")
    assert summary["count"] == 3 and summary["total_hits"] == 3 and summary["format"] == "csv"
    assert summary["first_refs"] == [
        "d0000000-0000-4000-8000-000000000001",
        "b0000000-0000-4000-8000-000000000001",
        "c0000000-0000-4000-8000-000000000001",
    ]
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_jsonl_report_and_templated_query(small_repository, run_dag, tmp_path):
    out = tmp_path / "maps.jsonl"
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": str(out), "query": "map", "tag": "x"})

    assert task_states(dag_run) == {"report[-1]": "success"}
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["xip.title"] for row in rows] == [
        "Letter to a map maker",
        'Map of Avon, "coloured"',
        "Map of Bath, 1850",
        "Map of Cornwall; with notes",
    ]
    assert set(rows[0]) == {"xip.reference", "xip.title", "xip.security_descriptor", "xip.parent_ref"}


def test_empty_result_writes_a_header_only_report(small_repository, run_dag, tmp_path):
    out = tmp_path / "empty.csv"
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": str(out), "query": "zzz-none"})
    assert task_states(dag_run) == {"report[-1]": "success"}
    assert out.read_text() == "xip.reference,xip.title,xip.security_descriptor,xip.parent_ref\n"


def test_fail_on_empty_fails_and_leaves_no_file(small_repository, run_dag, tmp_path):
    out = tmp_path / "empty.csv"
    dag_run = run_dag("search_report.py", "fail_on_empty_dag", run_conf={"out": str(out)})
    assert task_states(dag_run) == {"report[-1]": "failed"}
    assert list(tmp_path.iterdir()) == []


def test_a_server_fault_leaves_no_report_that_looks_complete(small_repository, run_dag, tmp_path):
    out = tmp_path / "report.csv"
    inject(small_repository, kind="status", route="POST /api/content/search", status=500, count=1)
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": str(out)})
    assert task_states(dag_run) == {"report[-1]": "failed"}
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination_fails_before_searching(small_repository, run_dag, tmp_path, capfd):
    (tmp_path / "reports").write_text("a file where the report folder should be")
    out = tmp_path / "reports" / "2026-11-25" / "r.csv"
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": str(out)})
    assert task_states(dag_run) == {"report[-1]": "failed"}
    assert small_repository.state.stats()["requests"].get("POST /api/content/search", 0) == 0
    message = f"output folder '{out.parent}' cannot be created: '{tmp_path / 'reports'}' is a file, not a folder"
    assert message in "".join(capfd.readouterr())


def test_missing_output_folders_are_created(small_repository, run_dag, tmp_path):
    """``.../{{ ds }}/report.csv`` on the first night: the day's folder does not exist yet."""
    out = tmp_path / "reports" / "2026-11-25" / "report.csv"
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": str(out)})
    assert task_states(dag_run) == {"report[-1]": "success"}
    assert out.read_text(encoding="utf-8").count("\n") == 4


def test_missing_folders_of_a_local_object_storage_url_are_created(small_repository, run_dag, tmp_path):
    out = tmp_path / "bucket" / "2026-11-25" / "report.csv"
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": f"file://{out}"})
    assert task_states(dag_run) == {"report[-1]": "success"}
    assert out.read_text(encoding="utf-8").count("\n") == 4


def test_an_output_folder_that_cannot_be_made_is_named(tmp_path):
    from airflow_provider_preservica.exceptions import PreservicaConfigError
    from airflow_provider_preservica.files.storage import check_writable

    (tmp_path / "day").write_text("not a folder")
    with pytest.raises(PreservicaConfigError, match=r"output folder '.*/day' is a file, not a folder"):
        check_writable(str(tmp_path / "day" / "report.csv"))
    too_long = tmp_path / ("x" * 300) / "report.csv"
    with pytest.raises(PreservicaConfigError, match=r"does not exist and cannot be created \(File name too long\)"):
        check_writable(str(too_long))


def test_atomic_output_removes_the_partial_file_when_writing_fails(tmp_path):
    target = tmp_path / "report.csv"
    with pytest.raises(RuntimeError), atomic_output(str(target)) as handle:
        handle.write("half a report")
        raise RuntimeError("connection lost on page 7")
    assert list(tmp_path.iterdir()) == []


def test_object_storage_destination(small_repository, run_dag, tmp_path):
    out = f"file://{tmp_path}/remote.csv"
    dag_run = run_dag("search_report.py", "search_report_dag", run_conf={"out": out})
    assert task_states(dag_run) == {"report[-1]": "success"}
    assert (tmp_path / "remote.csv").read_text().count("\n") == 4
