"""Ingest, then export, in one DAG run: every file comes back byte-identical with matching fixity."""

from __future__ import annotations

import hashlib
import os
import zipfile

import pytest

from tests.support.airflow_db import task_states

pytestmark = pytest.mark.integration


def _files_in_pax_zips(unpacked):
    """``{filename: bytes}`` of every content file inside every exported ``.pax.zip``."""
    found = {}
    for pax in unpacked.rglob("*.pax.zip"):
        with zipfile.ZipFile(pax) as archive:
            for name in archive.namelist():
                if name.startswith("Representation_Preservation/") and not name.endswith("/"):
                    found[name.rsplit("/", 1)[-1]] = archive.read(name)
    return found


def test_ingest_then_export_returns_identical_files(sandbox, monkeypatch, run_dag, tmp_path):
    from tests.support.sandbox import connection_json

    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox))
    sandbox.state.update_config({"ingest_seconds": 0.3, "export_seconds": 0.3})
    source = tmp_path / "deposit"
    (source / "sub").mkdir(parents=True)
    originals = {
        "report.pdf": os.urandom(300_000),
        "photo.tif": os.urandom(1_200_000),
        "notes.txt": "Übergabe - ünïcödé content\n".encode() * 100,
    }
    for index, (name, data) in enumerate(originals.items()):
        (source / ("sub" if index else "") / name).write_bytes(data)

    dag_run = run_dag(
        "round_trip.py",
        "round_trip_dag",
        run_conf={"source": str(source), "out": str(tmp_path / "export.zip"), "unpacked": str(tmp_path / "out")},
    )

    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    exported = _files_in_pax_zips(tmp_path / "out")
    assert {k: hashlib.sha256(v).hexdigest() for k, v in exported.items()} == {
        k: hashlib.sha256(v).hexdigest() for k, v in originals.items()
    }
    result = dag_run.get_task_instance("export").xcom_pull(task_ids="export")
    # Every ingested file was checked against the fixity Preservica recorded (XIP), and each PAX in transit.
    assert result["bitstreams_checked"] == len(originals)
    assert result["fixities_checked"] == 2 * len(originals)
