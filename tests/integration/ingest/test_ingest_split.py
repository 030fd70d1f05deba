"""A delivery split into several packages (issue 20): one report, one outcome, a retry re-sends nothing.

Real Airflow (``dag.test``) or the operator as a retry runs it, against the sandbox's S3 endpoint and ingest;
counts (uploads, ingest jobs, API requests), never times.
"""

from __future__ import annotations

import json
import math

import pytest
import requests

from airflow_provider_preservica.client.search import SearchQuery
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.airflow_db import task_states
from tests.support.operators import api_requests, make_accession, make_batch
from tests.support.sandbox import MAPS_FOLDER, inject

pytestmark = pytest.mark.integration

BATCH = "batch-2026-11-25"


@pytest.fixture
def quick_ingests(small_repository):
    small_repository.state.update_config({"ingest_seconds": 0.5})
    return small_repository


def _uploads(sandbox) -> int:
    return sum(n for k, n in sandbox.state.stats()["requests"].items() if k.startswith("PUT /api/s3"))


def _ingest_jobs(sandbox) -> list[dict]:
    return requests.get(f"{sandbox.base_url}/_sandbox/ingests", timeout=10).json()


def _assets() -> list:
    query = SearchQuery(text="scan", filters={"xip.document_type": "IO"}, fields=["xip.title"])
    return list(PreservicaHook().search(query))


def _folders_named(title: str) -> int:
    hits = PreservicaHook().search(SearchQuery(text=title, filters={"xip.document_type": "SO"}, fields=["xip.title"]))
    return sum(1 for h in hits if h.value("xip.title") == title)


@pytest.mark.parametrize(
    "dag", ["ingest_split_by_assets_dag", "ingest_split_by_assets_deferrable_dag", "ingest_split_by_bytes_dag"]
)
def test_a_split_delivery_is_ingested_verified_and_reported_once(quick_ingests, run_dag, tmp_path, dag):
    batch, contents = make_batch(tmp_path, files=9)  # 9 files of 32,000 bytes: three packages either way

    dag_run = run_dag("ingest_dags.py", dag, run_conf={"source": str(batch), "parent": MAPS_FOLDER, "tag": "open"})

    assert task_states(dag_run) == {"ingest[-1]": "success"}
    report = dag_run.get_task_instance("ingest").xcom_pull(task_ids="ingest")
    assert report["state"] == "COMPLETED" and report["errors"] == []
    assert report["package_count"] == 3 and [p["assets"] for p in report["packages"]] == [3, 3, 3]
    assert report["assets_sent"] == 9 and report["created_count"] == 9 and report["verified"] == 9
    assert {p["state"] for p in report["packages"]} == {"COMPLETED"}
    assert len(set(report["progress_tokens"])) == 3 and report["progress_token"] == report["progress_tokens"][0]
    tokens = dag_run.get_task_instance("ingest").xcom_pull(task_ids="ingest", key="progress_tokens")
    assert tokens == report["progress_tokens"]
    assert _uploads(quick_ingests) == 3 and len(_ingest_jobs(quick_ingests)) == 3
    # Every file once, all in the one folder named after the source: the packages share its SourceID.
    assert sorted(a.value("xip.title") for a in _assets()) == sorted(contents)
    assert _folders_named(BATCH) == 1 and _folders_named("letters") == 1


def test_a_retry_after_one_of_three_packages_adopts_it_and_sends_only_the_other_two(quick_ingests, tmp_path):
    from airflow_provider_preservica.compat import AirflowException
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    batch, contents = make_batch(tmp_path, files=9)
    context = {"ti": FakeTaskInstance()}
    operator = {
        "task_id": "ingest",
        "source": str(batch),
        "parent_ref": MAPS_FOLDER,
        "security_tag": "open",
        "poll_interval": 0.2,
        "deferrable": False,
        "max_package_assets": 3,
        "package_concurrency": 1,
    }
    # The first try: Preservica takes package 1, then every upload is refused (the worker as good as dies).
    inject(quick_ingests, kind="status", status=400, route="PUT /api/s3/buckets/*", after=1, count=None)
    with pytest.raises(AirflowException, match=r"1 of 3 package\(s\) sent.*a retry adopts the 1 package"):
        PreservicaIngestOperator(**operator).execute(context)
    assert "progress_token" not in context["ti"].xcoms  # nothing handed on: the task did not get that far
    assert len(_ingest_jobs(quick_ingests)) == 1
    requests.delete(f"{quick_ingests.base_url}/_sandbox/faults", timeout=10)
    uploads_before = _uploads(quick_ingests)

    report = PreservicaIngestOperator(**operator).execute(context)  # the retry

    assert _uploads(quick_ingests) - uploads_before == 2  # packages 2 and 3, never package 1 again
    assert len(_ingest_jobs(quick_ingests)) == 3
    assert report["adopted"] and report["state"] == "COMPLETED" and report["errors"] == []
    assert report["package_count"] == 3 and [p["index"] for p in report["packages"]] == [1, 2, 3]
    assert report["created_count"] == 9 and report["verified"] == 9 and report["skipped_existing"] == 0
    assert sorted(a.value("xip.title") for a in _assets()) == sorted(contents)  # every file once
    assert _folders_named(BATCH) == 1


def test_a_failed_package_fails_the_task_naming_it_and_the_report_keeps_the_others(
    quick_ingests, run_dag, tmp_path, capfd
):
    requests.post(
        f"{quick_ingests.base_url}/_sandbox/ingest-faults",
        json={"outcome": "FAILED", "count": 1, "name": "*-p002.zip", "message": "quarantined by the virus check"},
        timeout=10,
    )
    batch, _ = make_batch(tmp_path, files=9)

    dag_run = run_dag(
        "ingest_dags.py",
        "ingest_split_by_assets_dag",
        run_conf={"source": str(batch), "parent": MAPS_FOLDER, "tag": "open"},
    )

    assert task_states(dag_run) == {"ingest[-1]": "failed"}
    output = "".join(capfd.readouterr())
    failed = dag_run.get_task_instance("ingest").xcom_pull(task_ids="ingest", key="report")
    token = failed["packages"][1]["progress_token"]
    assert f"package 2 ({token}) ended FAILED" in output and "quarantined by the virus check" in output
    assert failed["state"] == "FAILED" and [p["state"] for p in failed["packages"]] == [
        "COMPLETED",
        "FAILED",
        "COMPLETED",
    ]
    assert failed["created_count"] == 6 and failed["verified"] == 6  # packages 1 and 3 are in, and checked
    assert len(_assets()) == 6


def test_a_split_delivery_still_costs_about_two_requests_a_file(small_repository, tmp_path):
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    small_repository.state.update_config({"ingest_seconds": 0.2})
    files, per_package = 600, 200
    batch = make_accession(tmp_path, files)

    report = PreservicaIngestOperator(
        task_id="ingest",
        source=str(batch),
        parent_ref=MAPS_FOLDER,
        security_tag="open",
        poll_interval=0.2,
        deferrable=False,
        max_package_assets=per_package,
    ).execute({"ti": FakeTaskInstance()})

    assert report["package_count"] == 3 and report["created_count"] == files and report["verified"] == files
    assert report["errors"] == [] and len(json.dumps(report)) < 10_000
    pages = math.ceil(files / 100)
    assert api_requests(small_repository) <= 2 * files + 3 * pages + 20 + 5 * report["package_count"]


def test_a_retry_after_a_deferred_split_delivery_adopts_every_package_and_uploads_nothing(quick_ingests, tmp_path):
    from airflow.exceptions import TaskDeferred

    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    batch, contents = make_batch(tmp_path, files=9)
    context = {"ti": FakeTaskInstance()}
    operator = {
        "task_id": "ingest",
        "source": str(batch),
        "parent_ref": MAPS_FOLDER,
        "security_tag": "open",
        "poll_interval": 0.2,
        "max_package_assets": 3,
    }
    with pytest.raises(TaskDeferred) as deferred:  # sends all three, defers, then the worker "dies"
        PreservicaIngestOperator(**operator, deferrable=True).execute(context)
    tokens = context["ti"].xcoms["progress_tokens"]
    assert deferred.value.trigger.serialize()[1]["progress_tokens"] == tokens and len(tokens) == 3
    uploads_before = _uploads(quick_ingests)

    report = PreservicaIngestOperator(**operator, deferrable=False).execute(context)  # the retry

    assert _uploads(quick_ingests) == uploads_before and len(_ingest_jobs(quick_ingests)) == 3
    assert report["adopted"] and report["progress_tokens"] == tokens and report["state"] == "COMPLETED"
    assert report["created_count"] == 9 and report["verified"] == 9 and report["errors"] == []
    assert sorted(a.value("xip.title") for a in _assets()) == sorted(contents)


def test_illegal_names_anywhere_in_a_split_delivery_are_all_listed_before_any_upload(quick_ingests, tmp_path):
    from airflow_provider_preservica.ingest.packaging import PackageValidationError
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    batch, _ = make_batch(tmp_path, files=9)
    (batch / "a:first.tif").write_bytes(b"x")  # in the first package
    (batch / "letters" / "z|last.tif").write_bytes(b"y")  # in the last

    operator = PreservicaIngestOperator(
        task_id="ingest", source=str(batch), parent_ref=MAPS_FOLDER, security_tag="open", max_package_assets=3
    )
    with pytest.raises(PackageValidationError) as refused:
        operator.execute({"ti": FakeTaskInstance()})

    assert "a:first.tif" in str(refused.value) and "z|last.tif" in str(refused.value)
    assert _uploads(quick_ingests) == 0
