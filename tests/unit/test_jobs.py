"""The in-flight job record (``jobs``): one shape for every kind of job, and records of earlier releases."""

from __future__ import annotations

import json

from airflow_provider_preservica.ingest.batches import BatchRegistry, InFlightIngest, InFlightStore, batch_key
from airflow_provider_preservica.jobs import InFlightJob, JobRegistry, JobStore, job_key
from tests.support.stores import DictStore


def test_a_record_round_trips_under_a_key_named_for_jobs() -> None:
    store = DictStore()
    registry = JobRegistry(store)
    record = InFlightJob("export", "export/dag/task/run/-1/ref", "token-1", "/out/maps.zip", 1.0, series="run#0")
    registry.save(record)

    assert list(store.values) == [job_key(record.batch)] and job_key(record.batch).startswith("preservica_job__")
    assert registry.load(record.batch) == record
    assert registry.load("another batch") is None
    registry.forget(record.batch)
    assert store.values == {}


def test_a_record_an_earlier_release_left_is_adopted_after_an_upgrade() -> None:
    """An ingest submitted by the release before ``jobs.py`` (its ``InFlightIngest`` JSON, under
    ``preservica_ingest__<hash>``) is found by the upgraded task's retry, claimed and then forgotten."""
    store = DictStore()
    batch = "nightly/ingest/scheduled__2026-11-25/-1"
    old = {
        "batch_id": batch,
        "progress_token": "t-1",
        "key": "abc-p001.zip",
        "package_sha256": None,
        "submitted_at": 1764000000.0,
        "assets_sent": 3,
        "package_bytes": 1200,
        "series": "scheduled__2026-11-25#0",
        "packages": [["abc-p001.zip", "t-1", None, None, 3, 1200, 1]],
        "complete": True,
    }
    store.write("preservica_ingest__" + batch_key(batch).split("__", 1)[1], json.dumps(old))

    registry = JobRegistry(store)
    record = registry.load(batch)

    assert record is not None
    assert (record.batch, record.token, record.key) == (batch, "t-1", "abc-p001.zip")
    assert (record.batch_id, record.progress_token) == (batch, "t-1")  # the old names still read
    assert record.sent_packages() == [["abc-p001.zip", "t-1", None, None, 3, 1200, 1]]
    registry.claim(record, "scheduled__2026-11-25#3")  # a cleared run adopts it: saved in the new format
    assert registry.load(batch) == InFlightJob(
        "", batch, "t-1", "abc-p001.zip", 1764000000.0, "scheduled__2026-11-25#3", None, 3, 1200, old["packages"]
    )
    registry.forget(batch)
    assert store.values == {}


def test_an_unreadable_record_is_ignored() -> None:
    store = DictStore()
    store.write(job_key("b"), "{not json")
    store.write(batch_key("b"), json.dumps({"batch_id": "b", "progress_token": "t", "key": "k", "colour": "red"}))
    assert JobRegistry(store).load("b") is None


def test_the_old_names_still_import_and_build_the_same_record() -> None:
    assert BatchRegistry is JobRegistry and InFlightStore is JobStore
    record = InFlightIngest("b", "t", "k", None, 2.0, series="s", assets_sent=1)
    assert record == InFlightJob("ingest", "b", "t", "k", 2.0, series="s", assets_sent=1)
    assert batch_key("b").startswith("preservica_ingest__")
