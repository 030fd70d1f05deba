"""pyPreservica 4.2.2, unchanged, against the sandbox's ingest side: XIP packages, progress, workflows."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository
from pyPreservica import EntityAPI, UploadAPI, WorkflowAPI
from pyPreservica.uploadAPI import simple_asset_package

from .conftest import ARCHIVIST

WORKFLOW_NS = "{http://workflow.preservica.com}"
DC = "http://purl.org/dc/elements/1.1/"


def _kwargs(server: SandboxServer) -> dict[str, str]:
    return {"username": ARCHIVIST[0], "password": ARCHIVIST[1], "server": server.server, "protocol": "http"}


def _wait(entity: EntityAPI, token: str, timeout: float = 60.0) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        status = entity.get_async_progress(token)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status not in ("PENDING", "ACTIVE"):
            return seen
        assert time.monotonic() < deadline, f"{token} still {status}"
        time.sleep(0.02)


@pytest.fixture
def fast(sandbox: SandboxServer) -> SandboxServer:
    sandbox.state.update_config({"ingest_seconds": 0.2})
    return sandbox


def test_simple_asset_package_upload_and_async_progress(
    fast: SandboxServer, repository: Repository, tmp_path: Path
) -> None:
    folder = repository.add_folder("Deposits")
    preservation, access = tmp_path / "letter.tif", tmp_path / "letter.jpg"
    preservation.write_bytes(os.urandom(5000))
    access.write_bytes(b"jpeg bytes")
    package = simple_asset_package(
        preservation_file=str(preservation),
        access_file=str(access),
        parent_folder=folder.ref,
        export_folder=str(tmp_path),
        Title="Letter to the board",
        SecurityTag="closed",
        Identifiers={"code": "LTR-1"},
        Asset_Metadata={DC: f'<dc:dc xmlns:dc="{DC}"><dc:title>Letter</dc:title></dc:dc>'},
    )
    upload = UploadAPI(**_kwargs(fast))
    token = upload.upload_zip_package(package, folder=folder.ref)
    entity = EntityAPI(**_kwargs(fast))
    seen = _wait(entity, token)
    assert seen[-1] == "COMPLETED" and "ACTIVE" in seen

    ref = Path(package).stem  # pyPreservica names the zip after the asset it made
    asset = entity.asset(ref)
    assert (asset.title, asset.parent, asset.security_tag) == ("Letter to the board", folder.ref, "closed")
    assert entity.identifiers_for_entity(asset) == {("code", "LTR-1")}
    stored = repository.require(ref)
    representations = [(r.type, r.name) for r in stored.representations]
    assert representations == [("Preservation", "Preservation"), ("Access", "Access")]
    content = repository.require(stored.representations[0].content_objects[0], "CO")
    (bitstream,) = content.generations[0].bitstreams
    assert bitstream.filename == "letter.tif" and bitstream.size == 5000
    path = repository.blob_path(bitstream)
    assert path is not None and path.read_bytes() == preservation.read_bytes()
    assert stored.metadata[0].schema == DC

    monitors = requests.get(
        f"{fast.base_url}/api/processmonitor/monitors", headers={"Preservica-Access-Token": entity.token}, timeout=10
    ).json()["value"]["monitors"]
    assert [(m["subcategory"], m["status"], m["mappedId"]) for m in monitors] == [
        ("XIP", "Succeeded", token.replace("-", ""))
    ]

    again = upload.upload_zip_package(package, folder=folder.ref)  # same refs: Preservica refuses the asset
    assert _wait(entity, again)[-1] == "FAILED"
    response = requests.get(
        f"{fast.base_url}/api/entity/progress/{again}?includeErrors=true",
        headers={"Preservica-Access-Token": entity.token},
        timeout=10,
    )
    assert "already exists" in response.text

    headers = {"Preservica-Access-Token": entity.token}
    for progress_token, state in ((token, "Completed"), (again, "Failed")):
        progress = ET.fromstring(
            requests.get(f"{fast.base_url}/api/entity/progress/{progress_token}", headers=headers, timeout=10).content
        )
        instance_id = progress.findtext("{http://status.preservica.com}WorkflowInstanceId")
        instance = ET.fromstring(
            requests.get(f"{fast.base_url}/sdb/rest/workflow/instances/{instance_id}", headers=headers).content
        )
        assert instance.findtext(f"{WORKFLOW_NS}State") == state
        assert instance.findtext(f"{WORKFLOW_NS}ProgressToken") == progress_token
        assert instance.findtext(f"{WORKFLOW_NS}WorkflowContextName") == "Basic Ingest"


def test_upload_without_folder_uses_the_packages_parent(
    fast: SandboxServer, repository: Repository, tmp_path: Path
) -> None:
    folder = repository.add_folder("Declared parent")
    (tmp_path / "a.txt").write_text("a")
    package = simple_asset_package(str(tmp_path / "a.txt"), parent_folder=folder.ref, export_folder=str(tmp_path))
    token = UploadAPI(**_kwargs(fast)).upload_zip_package(package)
    entity = EntityAPI(**_kwargs(fast))
    assert _wait(entity, token)[-1] == "COMPLETED"
    assert entity.asset(Path(package).stem).parent == folder.ref


def test_workflow_api_contexts_instances_and_upload_mirroring(fast: SandboxServer, repository: Repository) -> None:
    workflow = WorkflowAPI(**_kwargs(fast))
    ingest = workflow.get_workflow_contexts_by_type("Ingest")
    assert {c.workflow_name for c in ingest} == {"Basic Ingest", "Ingest OPEX (Incremental)"}
    (access,) = workflow.get_workflow_contexts_by_type("Access")
    assert [c.workflow_name for c in workflow.get_workflow_contexts("com.preservica.core.workflow.ingest")] == [
        "Basic Ingest"
    ]

    fast.state.update_config({"ingest_seconds": 1})
    correlation = workflow.start_workflow_instance(access, Reference="abc")
    assert len(correlation) == 36
    pending = workflow.workflow_instance(1)  # pyPreservica parses an instance that has not started yet
    assert (pending.state, pending.workflow_context_name) == ("Pending", "Download Assets")
    deadline = time.monotonic() + 60
    while not list(workflow.workflow_instances("Completed", "Access")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (done,) = list(workflow.workflow_instances("Completed", "Access"))
    assert done.instance_id == 1 and done.workflow_context_id == access.workflow_id

    # pyPreservica 4.2.2's workflow_instance() calls datetime.datetime.strptime on Started, which its own
    # "from datetime import datetime" breaks; read the started instance over HTTP instead.
    headers = {"Preservica-Access-Token": workflow.token}
    root = ET.fromstring(
        requests.get(f"{fast.base_url}/sdb/rest/workflow/instances/1", headers=headers, timeout=10).content
    )
    assert root.findtext(f"{WORKFLOW_NS}State") == "Completed" and root.findtext(f"{WORKFLOW_NS}Finished")

    fast.state.update_config({"ingest_seconds": 30})
    workflow.start_workflow_instance(access)
    workflow.terminate_workflow_instance(2)
    deadline = time.monotonic() + 60
    while not list(workflow.workflow_instances("Aborted", "Access")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    unknown = requests.get(f"{fast.base_url}/sdb/rest/workflow/instances/99", headers=headers, timeout=10)
    assert unknown.status_code == 404
