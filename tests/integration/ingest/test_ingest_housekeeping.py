"""What an ingest leaves behind and where its content lands: temp space, vanished files, folder layout, warnings.

Real operators against the sandbox; ``$TMPDIR`` points at a fresh folder per test.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import requests

from airflow_provider_preservica.compat import AirflowFailException
from airflow_provider_preservica.exceptions import PreservicaConfigError, PreservicaError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.ingest import runner as runner_module
from airflow_provider_preservica.ingest.packaging import PackageValidationError
from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
from tests.support.airflow_db import task_states
from tests.support.operators import FakeTaskInstance, make_batch
from tests.support.sandbox import MAPS_FOLDER, inject

pytestmark = pytest.mark.integration


@pytest.fixture
def quick_ingests(small_repository):
    small_repository.state.update_config({"ingest_seconds": 0.2})
    return small_repository


@pytest.fixture
def fresh_tmp(tmp_path, monkeypatch) -> Path:
    """``$TMPDIR`` (and Python's cached copy of it) is a new empty folder; the token locks live elsewhere."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    locks = tmp_path / "locks"
    locks.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("PRESERVICA_LOCK_DIR", str(locks))
    return folder


def left_behind(folder: Path) -> list[str]:
    # The sandbox runs in this process and keeps its own upload and blob folders in $TMPDIR: that is the
    # server's disk (Preservica's, in real life), not what the worker's ingest leaves behind.
    found = (p.relative_to(folder) for p in folder.rglob("*"))
    return sorted(str(p) for p in found if not p.parts[0].startswith("preservica-sandbox-"))


def ingest(source: Path, **kwargs) -> PreservicaIngestOperator:
    options = {"task_id": "ingest", "parent_ref": MAPS_FOLDER, "security_tag": "open", "poll_interval": 0.1}
    return PreservicaIngestOperator(source=str(source), **(options | {"deferrable": False} | kwargs))


def puts(server) -> int:
    return sum(n for k, n in server.state.stats()["requests"].items() if k.startswith("PUT /api/s3"))


# -- 19.2: packages and staging do not stay on the worker's disk ---------------------------------------------------
def test_a_successful_ingest_leaves_nothing_in_tmpdir_and_says_so(quick_ingests, fresh_tmp, tmp_path):
    batch, _ = make_batch(tmp_path / "sources")

    report = ingest(batch).execute({"ti": FakeTaskInstance()})

    assert report["state"] == "COMPLETED" and report["created_count"] == 3
    assert left_behind(fresh_tmp) == []
    assert report["package_kept"] is False


def test_a_failed_validation_leaves_nothing_in_tmpdir(quick_ingests, fresh_tmp, tmp_path):
    batch, _ = make_batch(tmp_path / "sources")
    (batch / "bad:name.tif").write_bytes(b"x")

    with pytest.raises(PackageValidationError, match=r"bad:name\.tif"):
        ingest(batch).execute({"ti": FakeTaskInstance()})

    assert left_behind(fresh_tmp) == []


def test_a_failed_upload_leaves_nothing_in_tmpdir(quick_ingests, fresh_tmp, tmp_path):
    batch, _ = make_batch(tmp_path / "sources")
    inject(quick_ingests, kind="status", route="PUT /api/s3/*", status=403, count=None)

    with pytest.raises(PreservicaError, match="403"):
        ingest(batch).execute({"ti": FakeTaskInstance()})

    assert puts(quick_ingests) >= 1  # it did get as far as the upload
    assert left_behind(fresh_tmp) == []


def test_a_failed_ingest_leaves_nothing_in_tmpdir(quick_ingests, fresh_tmp, tmp_path):
    fault = {"outcome": "FAILED", "count": 1}
    requests.post(f"{quick_ingests.base_url}/_sandbox/ingest-faults", json=fault, timeout=10)
    batch, _ = make_batch(tmp_path / "sources")

    with pytest.raises(AirflowFailException, match="ended FAILED"):
        ingest(batch).execute({"ti": FakeTaskInstance()})

    assert left_behind(fresh_tmp) == []


def test_a_deferred_ingest_leaves_nothing_in_tmpdir(quick_ingests, fresh_tmp, tmp_path, run_dag):
    batch, _ = make_batch(tmp_path / "sources")

    dag_run = run_dag(
        "ingest_dags.py", "ingest_deferrable_dag", run_conf={"source": str(batch), "parent": MAPS_FOLDER, "tag": "open"}
    )

    assert task_states(dag_run) == {"ingest[-1]": "success"}
    assert dag_run.get_task_instance("ingest").xcom_pull(task_ids="ingest")["created_count"] == 3
    assert left_behind(fresh_tmp) == []


def test_keep_package_keeps_it_and_the_report_says_where(quick_ingests, fresh_tmp, tmp_path, capfd):
    batch, _ = make_batch(tmp_path / "sources")
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    (work_dir / "notes.txt").write_text("the user's own file")

    kept = ingest(batch, keep_package=True, work_dir=str(work_dir)).execute({"ti": FakeTaskInstance()})
    removed = ingest(batch / "letters", work_dir=str(work_dir), task_id="again").execute({"ti": FakeTaskInstance()})

    assert kept["package_kept"] is True and Path(kept["package"]).is_file()
    assert Path(kept["package"]).parent.parent == work_dir and Path(kept["package"]).name == f"{batch.name}.zip"
    log = "".join(capfd.readouterr())
    assert f"package         : {kept['package']} (0.1 MiB, 3 assets), kept" in log
    assert removed["package_kept"] is False and not Path(removed["package"]).exists()
    # The user's work_dir: their file stays, the kept package stays, the other ingest's folder is gone.
    assert sorted(p.name for p in work_dir.iterdir()) == sorted(["notes.txt", Path(kept["package"]).parent.name])
    assert left_behind(fresh_tmp) == []


# -- 19.6: a file that disappears between the scan and the packaging -----------------------------------------------
@pytest.fixture
def vanishing(monkeypatch):
    """Delete ``victim`` after the ingest's scan, just before the package is built (a hook point, not timing)."""
    real = runner_module.build_opex_package
    victims: list[Path] = []

    def delete_then_build(*args, **kwargs):
        for victim in victims:
            victim.unlink(missing_ok=True)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner_module, "build_opex_package", delete_then_build)
    return victims


def test_a_file_gone_before_packaging_fails_the_ingest_naming_it(quick_ingests, fresh_tmp, tmp_path, vanishing):
    batch, _ = make_batch(tmp_path / "sources")
    vanishing.append(batch / "letters" / "scan-001.tif")

    with pytest.raises(AirflowFailException, match=r"letters/scan-001\.tif") as failure:
        ingest(batch).execute({"ti": FakeTaskInstance()})

    assert "allow_missing_files=True" in str(failure.value)
    assert puts(quick_ingests) == 0  # nothing uploaded
    assert left_behind(fresh_tmp) == []


def test_allowed_missing_files_are_listed_in_the_report(quick_ingests, tmp_path, vanishing, capfd):
    batch, _ = make_batch(tmp_path / "sources", files=4)
    vanishing.append(batch / "letters" / "scan-001.tif")

    report = ingest(batch, allow_missing_files=True).execute({"ti": FakeTaskInstance()})

    assert report["state"] == "COMPLETED" and report["created_count"] == 3
    assert report["missing_files"] == ["letters/scan-001.tif"] and report["missing_count"] == 1
    assert "missing         : letters/scan-001.tif" in "".join(capfd.readouterr())


# -- 19.8: where the source's content lands under parent_ref ---------------------------------------------------------
def children(parent: str) -> set[str]:
    return {child.title for child in PreservicaHook().entities.children(parent)}


@pytest.mark.parametrize(
    ("layout", "new_children"),
    [("source_folder", {"batch-2026-11-25"}), ("contents", {"scan-000.tif", "scan-002.tif", "letters"})],
)
def test_folder_layout_decides_what_parent_ref_gets(quick_ingests, tmp_path, layout, new_children):
    batch, _ = make_batch(tmp_path / "sources")
    before = children(MAPS_FOLDER)

    report = ingest(batch, folder_layout=layout).execute({"ti": FakeTaskInstance()})

    assert report["created_count"] == 3 and report["errors"] == []
    assert children(MAPS_FOLDER) - before == new_children
    if layout == "contents":  # sub-folders keep their content
        letters = next(c.ref for c in PreservicaHook().entities.children(MAPS_FOLDER) if c.title == "letters")
        assert children(letters) == {"scan-001.tif"}


def test_an_unknown_folder_layout_is_refused_with_the_choices(tmp_path):
    choices = r"folder_layout must be one of 'source_folder', 'contents', not 'flat'"
    with pytest.raises(PreservicaConfigError, match=choices):
        ingest(tmp_path, folder_layout="flat")


# -- 19.9: the zero-byte warning names the file ------------------------------------------------------------------------
def test_the_zero_byte_warning_names_the_file(quick_ingests, tmp_path):
    batch, _ = make_batch(tmp_path / "sources")
    (batch / "letters" / "blank.tif").write_bytes(b"")

    report = ingest(batch).execute({"ti": FakeTaskInstance()})

    assert [w for w in report["warnings"] if "0 bytes" in w] == [
        "letters/blank.tif: file is empty (0 bytes); it will be ingested as an empty asset -> check it is not a "
        "failed copy; remove it if it is"
    ]
