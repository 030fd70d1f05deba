"""Package processing after upload: OPEX ingest, fixity, SourceID skips, bad packages, faults, monitors."""

from __future__ import annotations

import hashlib
import io
import json
import time
import xml.etree.ElementTree as ET
import zipfile
from typing import Any

import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository
from pyPreservica import MonitorAPI, WorkflowAPI

from tests.support.ingest_helpers import (
    SOURCE_BUCKET,
    OpexPackage,
    messages_of,
    monitor_of,
    opex_document,
    put_package,
    s3_client,
    wait_for,
)

from .conftest import ARCHIVIST, login

XIP = "http://preservica.com/XIP/v7.7"
MONITOR_KEYS = {
    "mappedId", "name", "status", "started", "completed", "category", "subcategory", "progressText",
    "percentComplete", "filesPending", "size", "filesProcessed", "warnings", "errors", "canRetry",
}  # fmt: skip
MESSAGE_KEYS = {
    "workflowInstanceId", "monitorName", "path", "date", "status", "displayMessage", "workflowName",
    "mappedMonitorId", "message", "mappedId",
}  # fmt: skip


@pytest.fixture
def fast(sandbox: SandboxServer) -> SandboxServer:
    sandbox.state.update_config({"ingest_seconds": 0.2})
    return sandbox


@pytest.fixture
def parent(repository: Repository) -> str:
    return repository.add_folder("Accessions").ref


@pytest.fixture
def client(fast: SandboxServer, auth: dict[str, str]) -> Any:
    return s3_client(fast.base_url, auth["Preservica-Access-Token"])


def _search(server: SandboxServer, auth: dict[str, str], fields: list[dict[str, Any]]) -> list[str]:
    q = json.dumps({"q": "%", "fields": fields})
    response = requests.post(f"{server.base_url}/api/content/search", data={"q": q, "max": -1}, headers=auth)
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["value"]["objectIds"]
    return ids


def test_opex_upload_is_ingested_and_searchable(
    fast: SandboxServer, auth: dict[str, str], client: Any, parent: str
) -> None:
    package = OpexPackage(security="closed").add("report.pdf", b"%PDF report", "SRC-R", "Annual report")
    package.add("photo.jpg", b"\xff\xd8 photo", "SRC-P")
    token = put_package(client, package.zip(), parent, key="nightly.zip")
    outcome = wait_for(fast.base_url, token, auth)
    assert outcome.status == "COMPLETED" and outcome.errors == [] and outcome.warnings == []
    assert outcome.seen[0] in ("PENDING", "ACTIVE") and "ACTIVE" in outcome.seen

    repo = fast.state.repository
    (batch,) = [repo.require(r) for r in repo.children(parent)]
    assert (batch.kind, batch.title, batch.source_id) == ("SO", "Batch", "BATCH-1")
    assets = {repo.require(r).title: repo.require(r) for r in repo.children(batch.ref)}
    report = assets["Annual report"]
    assert (report.security_tag, report.source_id) == ("closed", "SRC-R")
    assert {(i.type, i.value) for i in report.identifiers} == {("SourceID", "SRC-R"), ("catalogue", "CAT/report.pdf")}
    assert report.metadata[0].schema == "http://purl.org/dc/elements/1.1/"
    (rep,) = report.representations
    content = repo.require(rep.content_objects[0], "CO")
    (bitstream,) = content.generations[0].bitstreams
    assert (bitstream.filename, bitstream.size) == ("report.pdf", 11)
    assert bitstream.fixities["SHA256"] == hashlib.sha256(b"%PDF report").hexdigest()
    blob = repo.blob_path(bitstream)
    assert blob is not None and blob.read_bytes() == b"%PDF report"

    entity = requests.get(f"{fast.base_url}/api/entity/information-objects/{report.ref}", headers=auth, timeout=10)
    assert entity.status_code == 200
    assert ET.fromstring(entity.content).findtext(f".//{{{XIP}}}Title") == "Annual report"
    by_id = requests.get(
        f"{fast.base_url}/api/entity/entities/by-identifier",
        params={"type": "SourceID", "value": "SRC-P"},
        headers=auth,
        timeout=10,
    )
    assert by_id.status_code == 200 and assets["photo.jpg"].ref in by_id.text
    found = _search(fast, auth, [{"name": "xip.parent_hierarchy", "values": [parent]}])
    assert sorted(found) == sorted([f"sdb:SO|{batch.ref}", *(f"sdb:IO|{a.ref}" for a in assets.values())])

    monitor = monitor_of(fast.base_url, token, auth)
    assert set(monitor) == MONITOR_KEYS
    assert monitor["name"] == "nightly.zip" and monitor["status"] == "Succeeded"
    assert (monitor["category"], monitor["subcategory"]) == ("Ingest", "OPEX")
    assert (monitor["filesProcessed"], monitor["filesPending"], monitor["errors"]) == (3, 0, 0)
    messages = messages_of(fast.base_url, token, auth)
    assert all(set(m) >= MESSAGE_KEYS for m in messages)
    done = [m for m in messages if m["message"] == "monitor.info.successful.ingest.with.opex"]
    assert {(m["path"], m["entityRef"], m["sourceId"]) for m in done} == {
        ("batch/report.pdf", report.ref, "SRC-R"),
        ("batch/photo.jpg", assets["photo.jpg"].ref, "SRC-P"),
    }
    assert {m["workflowName"] for m in messages} == {"Basic Ingest"}


def test_fixity_mismatch_fails_that_asset(fast: SandboxServer, auth: dict[str, str], client: Any, parent: str) -> None:
    blob_dir = fast.state.repository.blob_dir
    existing = {p.name for p in blob_dir.iterdir()}
    package = OpexPackage().add("good.txt", b"good").add("bad.txt", b"bad")
    package.bad_fixity.add("bad.txt")
    token = put_package(client, package.zip(), parent)
    outcome = wait_for(fast.base_url, token, auth)
    assert outcome.status == "FINISHED_MIXED_OUTCOME"
    assert len(outcome.errors) == 1 and "batch/bad.txt: SHA-256 fixity mismatch" in outcome.errors[0]
    titles = {e.title for e in fast.state.repository.entities(["IO"])}
    assert titles == {"good.txt"}
    assert monitor_of(fast.base_url, token, auth)["status"] == "Failed"
    errors = messages_of(fast.base_url, token, auth, status="Error")
    assert [(m["path"], m["message"].split("|")[0]) for m in errors] == [
        ("batch/bad.txt", "monitor.error.fixity.mismatch")
    ]

    only_bad = OpexPackage(top="again", top_source_id="AGAIN").add("bad2.txt", b"x")
    only_bad.bad_fixity.add("bad2.txt")
    assert wait_for(fast.base_url, put_package(client, only_bad.zip(), parent), auth).status == "FAILED"
    blobs = {b.location for e in fast.state.repository.entities(["CO"]) for g in e.generations for b in g.bitstreams}
    assert len(blobs) == 1  # the failed assets left no bytes behind
    assert {p.name for p in blob_dir.iterdir()} - existing == blobs


def test_reingest_skips_existing_source_ids(
    fast: SandboxServer, auth: dict[str, str], client: Any, parent: str
) -> None:
    first = OpexPackage().add("a.txt", b"a").add("b.txt", b"b")
    assert wait_for(fast.base_url, put_package(client, first.zip(), parent), auth).status == "COMPLETED"
    before = fast.state.repository.counts()
    again = OpexPackage().add("a.txt", b"a").add("b.txt", b"b").add("c.txt", b"c")
    token = put_package(client, again.zip(), parent)
    outcome = wait_for(fast.base_url, token, auth)
    assert outcome.status == "COMPLETED" and len(outcome.warnings) == 2
    after = fast.state.repository.counts()
    assert (after["folders"], after["assets"]) == (before["folders"], before["assets"] + 1)
    messages = messages_of(fast.base_url, token, auth)
    kinds = [(m["status"], m["message"]) for m in messages]
    assert ("Info", 'monitor.info.directory.skip|{"matchText":"Source ID BATCH-1"}') in kinds
    assert ("Warning", 'monitor.warning.file.skip|{"matchText":"Source ID SRC-a.txt"}') in kinds
    assert monitor_of(fast.base_url, token, auth)["warnings"] == 2


@pytest.mark.parametrize(
    "case",
    ["illegal-name", "malformed-sidecar", "no-parent", "unknown-parent", "not-a-zip", "missing-from-manifest"],
)
def test_bad_packages_fail_with_messages(
    fast: SandboxServer, auth: dict[str, str], client: Any, parent: str, case: str
) -> None:
    package = OpexPackage().add("ok.txt", b"ok")
    target: str | None = parent
    expected = "FAILED"
    if case == "illegal-name":
        package.extra["batch/bad:name.txt"] = b"x"
        package.extra["batch/pipe|too.txt"] = b"x"
        needle = "bad:name.txt"
    elif case == "malformed-sidecar":
        package.extra["batch/ok2.txt"] = b"ok"
        package.extra["batch/ok2.txt.opex"] = b"<opex:OPEXMetadata><unclosed>"
        needle = "batch/ok2.txt.opex: malformed XML"
    elif case == "no-parent":
        target = None
        needle = "x-amz-meta-structuralobjectreference"
    elif case == "unknown-parent":
        target = "00000000-0000-4000-8000-000000000000"
        needle = "does not exist"
    elif case == "missing-from-manifest":
        needle = "listed in the manifest"
        expected = "FINISHED_MIXED_OUTCOME"
    else:
        needle = "not a readable zip"
    data = package.zip() if case != "not-a-zip" else b"plain bytes"
    if case == "missing-from-manifest":
        data = _with_manifest_listing(package, "ghost.txt")
    outcome = wait_for(fast.base_url, put_package(client, data, target), auth)
    assert outcome.status == expected
    assert any(needle in e for e in outcome.errors), outcome.errors
    if expected == "FAILED":
        assert fast.state.repository.counts()["assets"] == 0
    if case == "illegal-name":
        assert "pipe|too.txt" in outcome.errors[0]  # every offending name is listed


def _with_manifest_listing(package: OpexPackage, ghost: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package.zip())) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            if info.filename == "batch/batch.opex":
                files = [("ok.txt", "content", 2), ("ok.txt.opex", "metadata", None), (ghost, "content", 5)]
                target.writestr(info.filename, opex_document("BATCH-1", "Batch", files=files))
            else:
                target.writestr(info.filename, source.read(info))
    return buffer.getvalue()


def test_ingest_faults(fast: SandboxServer, auth: dict[str, str], client: Any, parent: str) -> None:
    url = f"{fast.base_url}/_sandbox/ingest-faults"
    assert requests.post(url, json={"outcome": "EXPLODE"}, timeout=10).status_code == 400
    added = requests.post(
        url,
        json=[
            {"outcome": "FAILED", "message": "disk full on the ingest server"},
            {"outcome": "FINISHED_MIXED_OUTCOME", "name": "mixed-*"},
        ],
        timeout=10,
    ).json()
    assert [f["id"] for f in added] == [1, 2]
    failed = wait_for(fast.base_url, put_package(client, OpexPackage().add("a.txt", b"a").zip(), parent), auth)
    assert failed.status == "FAILED" and failed.errors == ["disk full on the ingest server"]
    assert fast.state.repository.counts()["assets"] == 0
    package = OpexPackage(top="m").add("x.txt", b"x").add("y.txt", b"y")
    mixed = wait_for(fast.base_url, put_package(client, package.zip(), parent, key="mixed-1.zip"), auth)
    assert mixed.status == "FINISHED_MIXED_OUTCOME" and "sandbox fault" in mixed.errors[0]
    assert fast.state.repository.counts()["assets"] == 1
    assert requests.get(url, timeout=10).json() == []

    requests.post(url, json={"outcome": "STUCK"}, timeout=10)
    token = put_package(client, OpexPackage(top="s").add("s.txt", b"s").zip(), parent)
    cancel_url = f"{fast.base_url}/api/entity/progress/{token}/status"
    deadline = time.monotonic() + 60
    while "ACTIVE" not in requests.get(f"{fast.base_url}/api/entity/progress/{token}", headers=auth).text:
        assert time.monotonic() < deadline, "the stuck ingest never became ACTIVE"
        time.sleep(0.02)
    assert requests.put(cancel_url, data="Cancelled", headers=auth, timeout=10).status_code == 200
    assert wait_for(fast.base_url, token, auth).status == "CANCELLED"
    assert requests.put(cancel_url, data="Cancelled", headers=auth, timeout=10).status_code == 409


def test_reset_stops_running_ingests(fast: SandboxServer, auth: dict[str, str], client: Any, parent: str) -> None:
    fast.state.update_config({"ingest_seconds": 3600})  # a reset that waited for it would time out
    token = put_package(client, OpexPackage().add("slow.txt", b"s").zip(), parent)
    job = fast.state.ingest.job(token)
    assert job is not None and job.thread is not None
    assert requests.post(f"{fast.base_url}/_sandbox/reset", timeout=30).status_code == 200
    assert not job.thread.is_alive()
    assert job.progress.status == "ABORTED"
    fresh = {"Preservica-Access-Token": login(fast.base_url).json()["token"]}
    assert requests.get(f"{fast.base_url}/api/entity/progress/{token}", headers=fresh).status_code == 404
    assert fast.state.repository.counts()["assets"] == 0


def test_progress_and_monitor_lookups(fast: SandboxServer, auth: dict[str, str], client: Any, parent: str) -> None:
    token = put_package(client, OpexPackage().add("a.txt", b"a").add("b.txt", b"b").zip(), parent, key="k.zip")
    wait_for(fast.base_url, token, auth)
    for prefix in ("/api/entity", "/api/entity/v7.7", "/api/processmonitor"):
        response = requests.get(f"{fast.base_url}{prefix}/progress/{token}", headers=auth, timeout=10)
        root = ET.fromstring(response.content)
        assert root.tag == "{http://status.preservica.com}ProgressResponse"
        assert root.findtext("{http://status.preservica.com}Status") == "COMPLETED"
        assert root.findtext("{http://status.preservica.com}MonitorId") == token.replace("-", "")
        assert root.find("{http://status.preservica.com}Errors") is None  # only with includeErrors=true
    assert requests.get(f"{fast.base_url}/api/entity/progress/nope", headers=auth).status_code == 404
    other = {"Preservica-Access-Token": login(fast.base_url, "curator", "curator-password").json()["token"]}
    assert requests.get(f"{fast.base_url}/api/entity/progress/{token}", headers=other).status_code == 404

    monitors_url = f"{fast.base_url}/api/processmonitor/monitors"
    by_name = requests.get(monitors_url, params={"name": "k.zip", "category": "Ingest,Export"}, headers=auth).json()
    assert [m["mappedId"] for m in by_name["value"]["monitors"]] == [token.replace("-", "")]
    running = requests.get(monitors_url, params={"status": "Running,Pending"}, headers=auth).json()
    assert running["value"]["monitors"] == []
    assert requests.get(monitors_url, headers=other).json()["value"]["monitors"] == []
    single = requests.get(f"{monitors_url}/{token.replace('-', '')}", headers=auth).json()["value"]["monitor"]
    assert single["name"] == "k.zip"
    series = requests.get(f"{monitors_url}/{token.replace('-', '')}/timeseries", headers=auth).json()
    assert [p["status"] for p in series["value"]["timeseries"]] == ["Pending", "Running", "Succeeded"]

    first = requests.get(
        f"{fast.base_url}/api/processmonitor/messages",
        params={"monitor": token.replace("-", ""), "max": "2"},
        headers=auth,
    ).json()["value"]
    assert first["paging"]["totalResults"] == 3 and len(first["messages"]) == 2 and "previous" not in first["paging"]
    second = requests.get(first["paging"]["next"], headers=auth).json()["value"]  # an absolute URL
    assert len(second["messages"]) == 1 and "next" not in second["paging"] and "previous" in second["paging"]

    monitor_api = MonitorAPI(username=ARCHIVIST[0], password=ARCHIVIST[1], server=fast.server, protocol="http")
    (listed,) = list(monitor_api.monitors())
    assert listed["MonitorId"] == token.replace("-", "")
    assert len(list(monitor_api.messages(listed["MonitorId"]))) == 3


def test_pax_asset_folder(fast: SandboxServer, auth: dict[str, str], client: Any, parent: str) -> None:
    master, access = b"master tiff", b"access jpg"
    sidecar = opex_document(
        "PAX-1",
        "Complex asset",
        fixities={"SHA-1": hashlib.sha1(master).hexdigest()},
    ).replace(b'<opex:Fixity type="SHA-1"', b'<opex:Fixity path="Representation_Preservation/co1/m.tif" type="SHA-1"')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("top/item.pax/Representation_Preservation/co1/m.tif", master)
        archive.writestr("top/item.pax/Representation_Access/a.jpg", access)
        archive.writestr("top/item.pax.opex", sidecar)
    token = put_package(client, buffer.getvalue(), parent)
    assert wait_for(fast.base_url, token, auth).status == "COMPLETED"
    (asset,) = fast.state.repository.entities(["IO"])
    assert (asset.title, asset.source_id) == ("Complex asset", "PAX-1")
    assert [(r.type, len(r.content_objects)) for r in asset.representations] == [("Access", 1), ("Preservation", 1)]
    (done,) = [m for m in messages_of(fast.base_url, token, auth) if m["message"].startswith("monitor.info.successful")]
    assert done["path"] == "top/item.pax" and done["entityRef"] == asset.ref


def test_incremental_opex_workflow_over_the_source_bucket(
    fast: SandboxServer, auth: dict[str, str], client: Any, parent: str
) -> None:
    container = "opex/run-42"
    content = b"incremental"
    sidecar = opex_document("INC-1", "Incremental", fixities={"SHA-256": hashlib.sha256(content).hexdigest()})
    client.put_object(Bucket=SOURCE_BUCKET, Key=f"{container}/Series/file.txt", Body=content)
    client.put_object(Bucket=SOURCE_BUCKET, Key=f"{container}/Series/file.txt.opex", Body=sidecar)
    client.put_object(Bucket=SOURCE_BUCKET, Key=f"{container}/run-42.opex", Body=opex_document(folders=["Series"]))
    assert fast.state.ingest.jobs() == []  # the source bucket does not ingest on upload

    workflow = WorkflowAPI(username=ARCHIVIST[0], password=ARCHIVIST[1], server=fast.server, protocol="http")
    (context,) = [c for c in workflow.get_workflow_contexts_by_type("Ingest") if "Incremental" in c.workflow_name]
    workflow.start_workflow_instance(context, OpexContainerDirectory=container, StructuralObjectReference=parent)
    monitors_url = f"{fast.base_url}/api/processmonitor/monitors"
    deadline = time.monotonic() + 60
    while True:
        (monitor,) = requests.get(monitors_url, params={"name": container}, headers=auth).json()["value"]["monitors"]
        if monitor["status"] in ("Succeeded", "Failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert monitor["status"] == "Succeeded", messages_of(fast.base_url, monitor["mappedId"], auth)
    (asset,) = fast.state.repository.entities(["IO"])
    series = fast.state.repository.require(asset.parent or "")
    assert (asset.title, series.title, series.parent) == ("Incremental", "Series", parent)
    messages = messages_of(fast.base_url, monitor["mappedId"], auth)
    assert {m["workflowName"] for m in messages} == {"Ingest OPEX (Incremental)"}
    assert {m["monitorName"] for m in messages} == {container}
