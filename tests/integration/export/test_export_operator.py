"""PreservicaExportOperator in real Airflow (dag.test) against the sandbox: poll, defer, resume, fail."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from tests.support.airflow_db import task_states
from tests.support.operators import FakeTaskInstance
from tests.support.sandbox import MAPS_FOLDER, inject

pytestmark = pytest.mark.integration


def _xcom(dag_run):
    return dag_run.get_task_instance("export").xcom_pull(task_ids="export")


@pytest.fixture
def quick_exports(small_repository):
    small_repository.state.update_config({"export_seconds": 0.5})
    return small_repository


@pytest.mark.parametrize("dag", ["export_polling_dag", "export_deferrable_dag"])
def test_export_downloads_verifies_and_reports(quick_exports, run_dag, tmp_path, dag, caplog):
    caplog.set_level("INFO", logger="airflow_provider_preservica")
    out = tmp_path / "maps.zip"
    dag_run = run_dag("export_dags.py", dag, run_conf={"out": str(out), "ref": MAPS_FOLDER})

    assert task_states(dag_run) == {"export[-1]": "success"}
    result = _xcom(dag_run)
    assert result["bytes"] == out.stat().st_size
    assert result["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert result["bitstreams_checked"] == 4  # each asset's file, against the fixity in its XIP
    assert result["fixities_checked"] == 4 + 4  # and each asset's PAX zip, against its sidecar
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Verifying maps.zip")]
    assert any("file fixities (XIP)" in m and "(100%)" in m and "ETA now" in m for m in progress), progress
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        assert sum(name.endswith(".pax.zip") for name in archive.namelist()) == 4
    assert list(tmp_path.iterdir()) == [out]


def test_export_to_an_object_storage_url(quick_exports, run_dag, tmp_path):
    exports = tmp_path / "bucket" / "exports"
    exports.mkdir(parents=True)
    url = f"file://{exports}/maps.zip"
    dag_run = run_dag("export_dags.py", "export_polling_dag", run_conf={"out": url, "ref": MAPS_FOLDER})

    assert task_states(dag_run) == {"export[-1]": "success"}
    result = _xcom(dag_run)
    landed = exports / "maps.zip"
    assert result["path"] == url and result["sha256"] == hashlib.sha256(landed.read_bytes()).hexdigest()
    assert list(exports.iterdir()) == [landed]  # no partial or temporary file left beside it
    link = dag_run.get_task_instance("export").xcom_pull(task_ids="export", key="_link_PreservicaEntityLink")
    assert link.endswith(f"/explorer/explorer.html#properties:SO_{MAPS_FOLDER}")


def test_dropped_connection_mid_download_resumes_to_an_exact_file(quick_exports, run_dag, tmp_path):
    clean = tmp_path / "clean.zip"
    run_dag("export_dags.py", "export_polling_dag", run_conf={"out": str(clean), "ref": MAPS_FOLDER})
    inject(
        quick_exports, kind="drop_after_bytes", route="GET /api/entity/actions/exports/*/content", bytes=1000, count=2
    )
    resumed = tmp_path / "resumed.zip"
    dag_run = run_dag("export_dags.py", "export_polling_dag", run_conf={"out": str(resumed), "ref": MAPS_FOLDER})

    assert task_states(dag_run) == {"export[-1]": "success"}
    assert _xcom(dag_run)["resumes"] == 2
    assert resumed.read_bytes() == clean.read_bytes()


def test_failed_export_fails_the_task_with_the_message_and_no_file(quick_exports, run_dag, tmp_path, capfd):
    inject(quick_exports, kind="fail_export", message="Export workflow failed: disk quota", ref="*", count=1)
    out = tmp_path / "x.zip"
    dag_run = run_dag("export_dags.py", "export_polling_dag", run_conf={"out": str(out), "ref": MAPS_FOLDER})
    assert task_states(dag_run) == {"export[-1]": "failed"}
    assert "ended FAILED: Export workflow failed: disk quota" in "".join(capfd.readouterr())
    assert list(tmp_path.iterdir()) == []


def test_unknown_ref_fails_before_anything_starts(quick_exports, run_dag, tmp_path, capfd):
    out = tmp_path / "x.zip"
    dag_run = run_dag(
        "export_dags.py",
        "export_polling_dag",
        run_conf={"out": str(out), "ref": "ffffffff-0000-4000-8000-00000000000f"},
    )
    assert task_states(dag_run) == {"export[-1]": "failed"}
    output = "".join(capfd.readouterr())
    assert "no entity with reference 'ffffffff-0000-4000-8000-00000000000f'" in output
    assert "XCom not found" not in output  # the entity link has nothing to show, and says nothing
    assert list(tmp_path.iterdir()) == []


def test_export_into_folders_that_do_not_exist_yet(quick_exports, run_dag, tmp_path):
    out = tmp_path / "exports" / "2026-11-25" / "maps.zip"
    remote = tmp_path / "bucket" / "2026-11-25" / "maps.zip"
    dag_run = run_dag("export_dags.py", "export_polling_dag", run_conf={"out": str(out), "ref": MAPS_FOLDER})
    assert task_states(dag_run) == {"export[-1]": "success"}
    assert _xcom(dag_run)["bytes"] == out.stat().st_size
    dag_run = run_dag("export_dags.py", "export_polling_dag", run_conf={"out": f"file://{remote}", "ref": MAPS_FOLDER})
    assert task_states(dag_run) == {"export[-1]": "success"}
    assert _xcom(dag_run)["sha256"] == hashlib.sha256(remote.read_bytes()).hexdigest()


def test_a_deferred_export_keeps_its_entity_link(quick_exports, run_dag, tmp_path):
    dag_run = run_dag(
        "export_dags.py", "export_deferrable_dag", run_conf={"out": str(tmp_path / "m.zip"), "ref": MAPS_FOLDER}
    )
    assert task_states(dag_run) == {"export[-1]": "success"}
    link = dag_run.get_task_instance("export").xcom_pull(task_ids="export", key="_link_PreservicaEntityLink")
    assert link == f"{quick_exports.base_url}/explorer/explorer.html#properties:SO_{MAPS_FOLDER}"


def test_unzip_to_unpacks_the_verified_export(quick_exports, run_dag, tmp_path):
    out, unpacked = tmp_path / "maps.zip", tmp_path / "unpacked"
    dag_run = run_dag(
        "export_dags.py", "export_polling_dag", run_conf={"out": str(out), "ref": MAPS_FOLDER, "unzip": str(unpacked)}
    )
    assert task_states(dag_run) == {"export[-1]": "success"}
    assert len(list(unpacked.rglob("*.pax.zip"))) == 4


def test_a_folder_exported_as_an_asset_is_refused_with_the_fix(quick_exports, tmp_path):
    from airflow_provider_preservica.compat import AirflowFailException
    from airflow_provider_preservica.operators.export import PreservicaExportOperator

    operator = PreservicaExportOperator(
        task_id="export",
        entity_ref=MAPS_FOLDER,
        entity_type="IO",
        destination=str(tmp_path / "x.zip"),
        min_free_bytes=0,
    )
    with pytest.raises(AirflowFailException, match=r"is a folder \(SO\), not an asset \(IO\); set entity_type to 'SO'"):
        operator.execute({"ti": FakeTaskInstance()})
    assert list(tmp_path.iterdir()) == []


def test_a_retry_adopts_the_export_the_first_try_started(quick_exports, tmp_path):
    from airflow.exceptions import TaskDeferred

    from airflow_provider_preservica.operators.export import PreservicaExportOperator

    quick_exports.state.update_config({"export_seconds": 1})
    context = {"ti": FakeTaskInstance()}
    out = tmp_path / "maps.zip"
    common = {
        "task_id": "export",
        "entity_ref": MAPS_FOLDER,
        "destination": str(out),
        "min_free_bytes": 0,
        "poll_interval": 0.2,
        "deferrable": False,
    }
    first_try = PreservicaExportOperator(**{**common, "deferrable": True})  # submits, defers, then "dies"
    with pytest.raises(TaskDeferred):
        first_try.execute(context)
    token = context["ti"].xcoms["progress_token"]

    result = PreservicaExportOperator(**common).execute(context)  # the retry

    assert result["progress_token"] == token
    export_requests = {
        k: n
        for k, n in quick_exports.state.stats()["requests"].items()
        if k.startswith("POST ") and k.endswith("/exports")
    }
    assert sum(export_requests.values()) == 1, export_requests
    assert out.exists() and result["bytes"] == out.stat().st_size


def test_a_task_of_ones_own_exports_through_the_hook_alone(quick_exports, airflow_db, tmp_path):
    """The README's "long-running jobs" example: start, wait, download, look again; one token, no operator."""
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    hook = PreservicaHook("preservica_default")
    token = hook.start_export(MAPS_FOLDER, "SO")
    progress = hook.wait_for_progress(token, poll_interval=0.1, timeout=60, what="export")
    download = hook.download_export(token, tmp_path / "folder.zip")

    assert (progress.status, progress.succeeded) == ("COMPLETED", True)
    assert hook.progress(token).status == "COMPLETED"
    assert download.sha256 == hashlib.sha256((tmp_path / "folder.zip").read_bytes()).hexdigest()
    with zipfile.ZipFile(download.path) as archive:
        assert sum(name.endswith(".pax.zip") for name in archive.namelist()) == 4


def test_a_deferred_export_forgets_the_record_it_made_once_it_resumes(quick_exports, tmp_path):
    """The deferred path rebuilds the batch id from the context: it once took it from ``defer()``'s kwargs,
    which ``dag.test()`` drops, forgot the record of batch ``""`` and left the real one behind."""
    from airflow.exceptions import TaskDeferred

    from airflow_provider_preservica.hooks.preservica import PreservicaHook
    from airflow_provider_preservica.jobs import JobRegistry
    from airflow_provider_preservica.operators.export import PreservicaExportOperator

    class Resumable(FakeTaskInstance):
        def xcom_pull(self, task_ids: str, key: str) -> object:
            return self.xcoms.get(key)

    context = {"ti": Resumable()}
    common = {
        "task_id": "export",
        "entity_ref": MAPS_FOLDER,
        "destination": str(tmp_path / "m.zip"),
        "min_free_bytes": 0,
    }
    with pytest.raises(TaskDeferred):
        PreservicaExportOperator(**common, deferrable=True).execute(context)
    token = str(context["ti"].xcoms["progress_token"])
    batch = f"export/nightly_export/export/scheduled__2026-11-25/-1/{MAPS_FOLDER}"
    assert JobRegistry().load(batch) is not None  # recorded before the deferral: a retry would adopt it
    PreservicaHook("preservica_default").wait_for_progress(token, poll_interval=0.1, timeout=30, what="export")

    event = {"status": "finished", "progress_token": token, "remote_status": "COMPLETED"}
    result = PreservicaExportOperator(**common, deferrable=True).execute_complete(context, event)

    assert result["progress_token"] == token and (tmp_path / "m.zip").exists()
    assert JobRegistry().load(batch) is None
