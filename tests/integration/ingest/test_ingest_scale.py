"""A delivery of thousands of files: the client's requests grow with pages, not files (issue 20).

Counts, never times: the sandbox counts every request by route, and a ``latency`` fault on every API call
makes the run behave like a tenant across a network without any assertion depending on it.
"""

from __future__ import annotations

import math

import pytest

from tests.support.operators import api_requests, make_accession
from tests.support.sandbox import MAPS_FOLDER, inject

pytestmark = pytest.mark.integration

FILES = 2000
PAGE = 100  # the smallest page the ingest reads (the skip check's search); the Process Monitor's is 1000


def _ingest(batch, **kwargs):
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    operator = PreservicaIngestOperator(
        task_id="ingest",
        source=str(batch),
        parent_ref=MAPS_FOLDER,
        security_tag="open",
        poll_interval=0.2,
        deferrable=False,
        **kwargs,
    )
    return operator.execute({"ti": FakeTaskInstance()})


@pytest.fixture
def slow_tenant(small_repository):
    small_repository.state.update_config({"ingest_seconds": 0.5})
    for route in ("GET /api/entity/*", "POST /api/content/*", "GET /api/processmonitor/*"):
        inject(small_repository, kind="latency", route=route, seconds=0.002, count=None)
    return small_repository


def test_a_delivery_of_thousands_costs_two_requests_a_file_with_skip_check_and_fixity(slow_tenant, tmp_path):
    batch = make_accession(tmp_path, FILES)

    report = _ingest(batch)

    assert report["created_count"] == FILES and report["verified"] == FILES and report["errors"] == []
    pages = math.ceil(FILES / PAGE)
    assert api_requests(slow_tenant) <= 2 * FILES + 3 * pages + 20


def test_verify_ingest_checks_every_file_with_pages_only(slow_tenant, tmp_path):
    """``verify="ingest"``: Preservica's own fixity check at ingest, then the SourceFixity identifiers of
    every file below the target from the search pages; no request per file anywhere."""
    batch = make_accession(tmp_path, FILES)

    report = _ingest(batch, verify="ingest")

    assert report["created_count"] == FILES and report["verified"] == FILES and report["errors"] == []
    requests = slow_tenant.state.stats()["requests"]
    assert not any(route.startswith("GET /api/entity/information-objects/") for route in requests)
    assert api_requests(slow_tenant) <= 3 * math.ceil(FILES / PAGE) + 20


def test_a_rerun_of_a_delivery_already_ingested_costs_pages_only(slow_tenant, tmp_path):
    batch = make_accession(tmp_path, FILES)
    _ingest(batch, verify=False)
    before = api_requests(slow_tenant)

    report = _ingest(batch, batch_id="second-run")

    assert report["state"] == "NOTHING_TO_INGEST" and report["skipped_existing"] == FILES
    assert api_requests(slow_tenant) - before <= 3 * math.ceil(FILES / PAGE) + 10


def test_verification_finds_a_stored_checksum_that_differs_wherever_the_file_sits(small_repository, tmp_path):
    """The two-GET path reads the original generation's first bitstream; another shape takes the full walk."""
    import time

    from airflow.exceptions import TaskDeferred

    from airflow_provider_preservica.client.progress import read_progress
    from airflow_provider_preservica.client.search import SearchQuery
    from airflow_provider_preservica.compat import AirflowFailException
    from airflow_provider_preservica.hooks.preservica import PreservicaHook
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from tests.support.operators import FakeTaskInstance

    small_repository.state.update_config({"ingest_seconds": 0.2})
    batch = make_accession(tmp_path, 6)
    context = {"ti": FakeTaskInstance()}
    common = {"task_id": "ingest", "source": str(batch), "parent_ref": MAPS_FOLDER, "security_tag": "open"}
    with pytest.raises(TaskDeferred):
        PreservicaIngestOperator(**common, deferrable=True).execute(context)
    hook = PreservicaHook()
    while not read_progress(hook.get_conn(), context["ti"].xcoms["progress_token"]).finished:
        time.sleep(0.05)  # waits on a condition, asserts nothing about time
    # Bit rot after ingest, in an asset whose original generation lists another file first.
    [hit] = PreservicaHook().search(SearchQuery(text="item-00001.txt", filters={"xip.document_type": "IO"}))
    asset = small_repository.state.repository.require(hit.reference)
    content_object = small_repository.state.repository.require(asset.representations[0].content_objects[0])
    generation = content_object.generations[0]
    rotten = type(generation.bitstreams[0])(
        "item-00001.txt", 1, {k: "0" * len(v) for k, v in generation.bitstreams[0].fixities.items()}
    )
    generation.bitstreams[:] = [type(rotten)("thumbnail.png", 1, {}), rotten]

    with pytest.raises(AirflowFailException) as failure:
        PreservicaIngestOperator(**common, deferrable=False, poll_interval=0.2).execute(context)

    assert f"item-00001.txt ({hit.reference}): SHA-256 {'0' * 64} in Preservica" in str(failure.value)


class _TaskInstance:
    """What a deferred operator reads back: its own XComs."""

    dag_id, task_id, run_id, map_index = "nightly_ingest", "ingest", "scheduled__2026-12-07", -1

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str) -> object:
        return self.xcoms.get(key)


@pytest.mark.parametrize("same_worker", [True, False], ids=["resumed-here", "resumed-on-another-worker"])
def test_a_deferred_delivery_keeps_its_xcoms_small_and_still_verifies_every_file(
    small_repository, tmp_path, same_worker
):
    import json
    import time

    from airflow.exceptions import TaskDeferred

    from airflow_provider_preservica.client.progress import read_progress
    from airflow_provider_preservica.hooks.preservica import PreservicaHook
    from airflow_provider_preservica.operators.ingest import REPORT_STATE_KEY, PreservicaIngestOperator

    small_repository.state.update_config({"ingest_seconds": 0.2})
    files = 1500
    batch = make_accession(tmp_path, files)
    work = tmp_path / "work"
    work.mkdir()
    ti = _TaskInstance()
    operator = PreservicaIngestOperator(
        task_id="ingest",
        source=str(batch),
        parent_ref=MAPS_FOLDER,
        security_tag="open",
        deferrable=True,
        work_dir=str(work),
    )
    with pytest.raises(TaskDeferred):
        operator.execute({"ti": ti})
    state = ti.xcoms[REPORT_STATE_KEY]
    assert len(json.dumps(state)) < 10_000
    token = ti.xcoms["progress_token"]
    while not read_progress(PreservicaHook().get_conn(), token).finished:
        time.sleep(0.05)  # waits on a condition, asserts nothing about time
    if not same_worker:
        for spilled in work.glob("preservica-ingest-state-*"):
            spilled.unlink()

    report = operator.execute_complete({"ti": ti}, {"status": "finished", "progress_token": token})

    assert report["created_count"] == files and report["verified"] == files and report["errors"] == []
    assert report["skipped_existing"] == 0 and len(json.dumps(report)) < 10_000
    assert list(work.iterdir()) == []  # nothing left beside the packages


@pytest.mark.parametrize(
    ("lag", "verify"),
    [(1, "stored"), (50, "stored"), (50, "ingest")],
    ids=["index-catches-up", "index-still-behind", "index-still-behind-verify-ingest"],
)
def test_assets_the_search_index_has_not_caught_up_with_are_not_called_missing(
    small_repository, tmp_path, monkeypatch, lag, verify
):
    """Without the Process Monitor, created assets are found by search, which trails the ingest; with
    ``verify="ingest"``, what the search does not list yet has its stored fixity read instead."""
    from airflow_provider_preservica.ingest import runner

    monkeypatch.setattr(runner, "INDEX_WAITS", (0.0, 0.0))  # the lag is counted in searches, not seconds
    small_repository.state.update_config({"ingest_seconds": 0.2, "index_lag_searches": lag})
    inject(small_repository, kind="status", route="GET /api/processmonitor/monitors", status=404, count=None)
    files = 250
    batch = make_accession(tmp_path, files)

    report = _ingest(batch, verify=verify)

    assert report["created_count"] == files and report["verified"] == files and report["errors"] == []
    by_identifier = small_repository.state.stats()["requests"].get("GET /api/entity/entities/by-identifier", 0)
    assert by_identifier == (0 if lag == 1 else files)  # per-asset reads only for what the index still lacks
    requests = small_repository.state.stats()["requests"]
    read_back = sum(n for route, n in requests.items() if "/representations/" in route)
    assert read_back == files  # "ingest": the search listed none of them yet, so each was read back
