"""PreservicaIngestOperator in real Airflow (dag.test) against the sandbox's S3 endpoint and ingest."""

from __future__ import annotations

import hashlib
import re

import pytest

from airflow_provider_preservica.client.search import SearchQuery
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.airflow_db import task_states
from tests.support.operators import make_batch
from tests.support.sandbox import MAPS_FOLDER

pytestmark = pytest.mark.integration


def _report(dag_run):
    return dag_run.get_task_instance("ingest").xcom_pull(task_ids="ingest")


@pytest.fixture
def quick_ingests(small_repository):
    small_repository.state.update_config({"ingest_seconds": 0.5})
    return small_repository


@pytest.mark.parametrize("dag", ["ingest_polling_dag", "ingest_deferrable_dag"])
def test_ingest_builds_uploads_waits_and_reports(quick_ingests, run_dag, tmp_path, dag):
    batch, contents = make_batch(tmp_path)
    dag_run = run_dag("ingest_dags.py", dag, run_conf={"source": str(batch), "parent": MAPS_FOLDER, "tag": "closed"})

    assert task_states(dag_run) == {"ingest[-1]": "success"}
    report = _report(dag_run)
    assert report["state"] == "COMPLETED" and report["assets_sent"] == 3 and report["created_count"] == 3
    ti = dag_run.get_task_instance("ingest")
    link = ti.xcom_pull(task_ids="ingest", key="_link_PreservicaEntityLink")
    assert link == f"{quick_ingests.base_url}/explorer/explorer.html#properties:SO_{MAPS_FOLDER}"
    assert report["progress_token"] and report["errors"] == [] and report["verified"] == 3
    hits = list(
        PreservicaHook().search(
            SearchQuery(
                text="scan", filters={"xip.document_type": "IO"}, fields=["xip.title", "xip.security_descriptor"]
            )
        )
    )
    assert sorted(h.value("xip.title") for h in hits) == sorted(contents)
    assert {h.value("xip.security_descriptor") for h in hits} == {"closed"}


def test_a_folder_in_object_storage_is_ingested_and_a_rerun_skips_it(quick_ingests, run_dag, tmp_path):
    batch, contents = make_batch(tmp_path / "bucket")
    conf = {"source": f"file://{batch}", "parent": MAPS_FOLDER, "tag": "open"}

    first = _report(run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf))
    second = _report(run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf))

    assert first["created_count"] == len(contents) and first["verified"] == len(contents)
    assert second["state"] == "NOTHING_TO_INGEST" and second["skipped_existing"] == len(contents)


def test_a_second_run_skips_what_is_already_ingested(quick_ingests, run_dag, tmp_path):
    batch, _ = make_batch(tmp_path)
    conf = {"source": str(batch), "parent": MAPS_FOLDER, "tag": "open"}
    run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf)
    (batch / "scan-new.tif").write_bytes(b"a new scan" * 100)

    dag_run = run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf)

    report = _report(dag_run)
    assert task_states(dag_run) == {"ingest[-1]": "success"}
    assert report["skipped_existing"] == 3 and report["assets_sent"] == 1 and report["created_count"] == 1
    assets = list(PreservicaHook().search(SearchQuery(text="scan", filters={"xip.document_type": "IO"})))
    assert len(assets) == 4  # nothing ingested twice


def test_nothing_to_ingest_uploads_nothing(quick_ingests, run_dag, tmp_path):
    batch, _ = make_batch(tmp_path)
    conf = {"source": str(batch), "parent": MAPS_FOLDER, "tag": "open"}
    run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf)
    puts_before = sum(n for k, n in quick_ingests.state.stats()["requests"].items() if k.startswith("PUT /api/s3"))

    dag_run = run_dag("ingest_dags.py", "ingest_polling_dag", run_conf=conf)

    assert task_states(dag_run) == {"ingest[-1]": "success"}
    assert _report(dag_run)["state"] == "NOTHING_TO_INGEST"
    puts_after = sum(n for k, n in quick_ingests.state.stats()["requests"].items() if k.startswith("PUT /api/s3"))
    assert puts_after == puts_before


@pytest.mark.parametrize(
    ("outcome", "state"), [("FAILED", "FAILED"), ("FINISHED_MIXED_OUTCOME", "FINISHED_MIXED_OUTCOME")]
)
def test_failed_and_mixed_ingests_fail_the_task_with_the_servers_messages(
    quick_ingests, run_dag, tmp_path, capfd, outcome, state
):
    import requests

    requests.post(
        f"{quick_ingests.base_url}/_sandbox/ingest-faults",
        json={"outcome": outcome, "count": 1, "message": "virus found in scan-001.tif"},
        timeout=10,
    )
    batch, _ = make_batch(tmp_path)
    dag_run = run_dag(
        "ingest_dags.py", "ingest_polling_dag", run_conf={"source": str(batch), "parent": MAPS_FOLDER, "tag": "open"}
    )
    assert task_states(dag_run) == {"ingest[-1]": "failed"}
    assert f"ended {state}" in "".join(capfd.readouterr())


def test_missing_security_tag_is_refused_before_upload(quick_ingests, run_dag, tmp_path, capfd):
    batch, _ = make_batch(tmp_path)
    dag_run = run_dag(
        "ingest_dags.py", "ingest_polling_dag", run_conf={"source": str(batch), "parent": MAPS_FOLDER, "tag": ""}
    )
    assert task_states(dag_run) == {"ingest[-1]": "failed"}
    assert not any(k.startswith("PUT /api/s3") for k in quick_ingests.state.stats()["requests"])


def test_illegal_names_are_all_listed_before_upload(quick_ingests, run_dag, tmp_path, capfd):
    batch, _ = make_batch(tmp_path)
    (batch / "bad:name.tif").write_bytes(b"x")
    (batch / "letters" / "worse|name.tif").write_bytes(b"y")
    dag_run = run_dag(
        "ingest_dags.py", "ingest_polling_dag", run_conf={"source": str(batch), "parent": MAPS_FOLDER, "tag": "open"}
    )
    assert task_states(dag_run) == {"ingest[-1]": "failed"}
    output = "".join(capfd.readouterr())
    assert "bad:name.tif" in output and "worse|name.tif" in output
    assert not any(k.startswith("PUT /api/s3") for k in quick_ingests.state.stats()["requests"])


def test_ingest_then_deferrable_sensor(quick_ingests, run_dag, tmp_path):
    batch, _ = make_batch(tmp_path)
    dag_run = run_dag(
        "ingest_dags.py",
        "ingest_then_sensor_dag",
        run_conf={"source": str(batch), "parent": MAPS_FOLDER, "tag": "open"},
    )
    assert task_states(dag_run) == {"ingest[-1]": "success", "wait[-1]": "success"}


def test_a_retry_adopts_the_ingest_the_first_try_started(quick_ingests, tmp_path):
    from airflow.exceptions import TaskDeferred

    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    quick_ingests.state.update_config({"ingest_seconds": 1})
    batch, _ = make_batch(tmp_path)
    context = {"ti": FakeTaskInstance()}
    common = {
        "task_id": "ingest",
        "source": str(batch),
        "parent_ref": MAPS_FOLDER,
        "security_tag": "open",
        "poll_interval": 0.2,
        "deferrable": False,
    }
    first_try = PreservicaIngestOperator(**{**common, "deferrable": True})  # uploads, defers, then "dies"
    with pytest.raises(TaskDeferred):
        first_try.execute(context)
    token = context["ti"].xcoms["progress_token"]

    report = PreservicaIngestOperator(**common).execute(context)  # the retry

    assert report["progress_token"] == token and report["adopted"] and report["state"] == "COMPLETED"
    # The retry knows what the first try created (from the Process Monitor) and verifies its fixity.
    assert report["created_count"] == 3 and report["verified"] == 3 and report["errors"] == []
    uploads = {k: n for k, n in quick_ingests.state.stats()["requests"].items() if k.startswith("PUT /api/s3")}
    assert sum(uploads.values()) == 1, uploads
    assets = list(PreservicaHook().search(SearchQuery(text="scan", filters={"xip.document_type": "IO"})))
    assert len(assets) == 3


def _tampered_package(batch, out, victim):
    """An OPEX zip whose ``victim`` file no longer matches the fixity its sidecar declares."""
    import zipfile

    from airflow_provider_preservica.ingest.packaging import build_opex_package

    manifest = build_opex_package(batch, out, security_tag="open", package_name=batch.name)
    tampered = out / "tampered.zip"
    with zipfile.ZipFile(manifest.package_path) as original, zipfile.ZipFile(tampered, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            copy.writestr(item, b"bit rot" + data[7:] if item.filename.endswith(victim) else data)
    return tampered


def test_a_fixity_mismatch_fails_the_task_naming_the_asset(quick_ingests, tmp_path):
    from airflow_provider_preservica.compat import AirflowFailException
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    batch, _ = make_batch(tmp_path)
    package = _tampered_package(batch, tmp_path / "out", "scan-001.tif")
    operator = PreservicaIngestOperator(
        task_id="ingest", source=str(package), parent_ref=MAPS_FOLDER, poll_interval=0.2, deferrable=False
    )

    with pytest.raises(AirflowFailException, match=r"ended (FAILED|FINISHED_MIXED_OUTCOME)") as failure:
        operator.execute({"ti": FakeTaskInstance()})

    assert "letters/scan-001.tif: SHA-256 fixity mismatch" in str(failure.value)


def test_an_unknown_or_wrong_parent_fails_before_upload(quick_ingests, tmp_path):
    from airflow_provider_preservica.compat import AirflowFailException
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    batch, _ = make_batch(tmp_path)
    asset = next(iter(PreservicaHook().search(SearchQuery(text="%", filters={"xip.document_type": "IO"}))))
    for parent, message in (
        ("ffffffff-0000-4000-8000-00000000000f", "no SO entity with reference"),
        (asset.reference, f"'{asset.reference}' is an asset (IO), not a folder (SO); give the reference of a folder"),
    ):
        operator = PreservicaIngestOperator(task_id="ingest", source=str(batch), parent_ref=parent, security_tag="open")
        with pytest.raises(AirflowFailException, match=re.escape(message)) as failure:
            operator.execute({"ti": FakeTaskInstance()})
        assert "entity_type" not in str(failure.value)  # the export's advice has no place here
    assert not any(k.startswith("PUT /api/s3") for k in quick_ingests.state.stats()["requests"])


def _promise_other_bytes(monkeypatch, victim):
    """``victim``'s sidecar promises other bytes than the package holds.

    As a file rewritten in place between hashing and zipping would (a staged hard link can be: ``stage="copy"``
    is the advice for sources that may change). An ingest's package is hashed while it is zipped, so there the
    promise is made wrong instead, at that one point, as the sandbox's counted faults are, never by timing.
    """
    from airflow_provider_preservica.files.fixity import FixityRecord
    from airflow_provider_preservica.ingest.packaging import straight

    real_sidecar = straight.asset_sidecar

    def sidecar_of_other_bytes(props, fixities):
        if props.title == victim:
            other = hashlib.sha256(b"bit rot").hexdigest()
            fixities = tuple(FixityRecord(r.algorithm, other) for r in fixities)
        return real_sidecar(props, fixities)

    monkeypatch.setattr(straight, "asset_sidecar", sidecar_of_other_bytes)


@pytest.mark.parametrize("verify", ["stored", "ingest"])
def test_a_file_whose_bytes_do_not_match_its_promised_fixity_fails_the_ingest_in_both_verify_modes(
    quick_ingests, tmp_path, monkeypatch, verify
):
    """Preservica checks each file against its sidecar's fixity at ingest and fails that asset (reference:
    users-and-peers §4.1); either verify mode then fails the task naming the file, and checks the rest."""
    from airflow_provider_preservica.compat import AirflowFailException
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    batch, _ = make_batch(tmp_path, files=5)
    _promise_other_bytes(monkeypatch, "scan-001.tif")
    ti = FakeTaskInstance()
    operator = PreservicaIngestOperator(
        task_id="ingest",
        source=str(batch),
        parent_ref=MAPS_FOLDER,
        security_tag="open",
        poll_interval=0.2,
        deferrable=False,
        verify=verify,
    )

    with pytest.raises(AirflowFailException, match=r"ended (FAILED|FINISHED_MIXED_OUTCOME)") as failure:
        operator.execute({"ti": ti})

    assert "letters/scan-001.tif: SHA-256 fixity mismatch" in str(failure.value)
    report = ti.xcoms["report"]
    assert report["created_count"] == 4 and report["verified"] == 4  # the others: in, and checked
    titles = {h.value("xip.title") for h in PreservicaHook().search(SearchQuery(text="scan", fields=["xip.title"]))}
    assert "scan-001.tif" not in titles and "scan-000.tif" in titles


@pytest.mark.parametrize("verify", ["stored", "ingest"])
def test_a_source_changed_between_tries_fails_the_retry_in_both_verify_modes(quick_ingests, tmp_path, verify):
    """The retry promises what the source holds now; the asset holds what the first try sent."""
    from airflow.exceptions import TaskDeferred

    from airflow_provider_preservica.compat import AirflowFailException
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    batch, _ = make_batch(tmp_path)
    context = {"ti": FakeTaskInstance()}
    common = {
        "task_id": "ingest",
        "source": str(batch),
        "parent_ref": MAPS_FOLDER,
        "security_tag": "open",
        "poll_interval": 0.2,
        "verify": verify,
    }
    with pytest.raises(TaskDeferred):
        PreservicaIngestOperator(**common, deferrable=True).execute(context)  # uploads, defers, then "dies"
    changed = batch / "scan-000.tif"
    changed.write_bytes(b"edited" + changed.read_bytes()[6:])
    now = hashlib.sha256(changed.read_bytes()).hexdigest()

    with pytest.raises(AirflowFailException) as failure:
        PreservicaIngestOperator(**common, deferrable=False).execute(context)  # the retry adopts the ingest

    shown = {"stored": rf"SHA-256 [0-9a-f]{{64}} in Preservica, {now} sent", "ingest": rf"SHA-256:{now} sent"}
    assert re.search(rf"scan-000\.tif \([0-9a-f-]+\): .*{shown[verify]}", str(failure.value)), str(failure.value)


def test_verify_is_stored_ingest_true_or_false():
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator

    for verify in ("stored", "ingest", True, False):
        PreservicaIngestOperator(task_id="ingest", source="x", parent_ref=MAPS_FOLDER, verify=verify)
    with pytest.raises(ValueError, match="verify must be 'stored', 'ingest', True or False, not 'bitstreams'"):
        PreservicaIngestOperator(task_id="ingest", source="x", parent_ref=MAPS_FOLDER, verify="bitstreams")
