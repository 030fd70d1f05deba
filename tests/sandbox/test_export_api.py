"""Exports: the request, the job's progress, the zip it builds, the download (Range, faults) and pyPreservica."""

from __future__ import annotations

import hashlib
import io
import os
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyPreservica
import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository
from pyPreservica.opex import OpexAPI

from tests.support.export_helpers import (
    ACCESS,
    LETTER,
    SCAN_V1,
    SCAN_V2,
    STATUS_NS,
    Content,
    build_content,
    content_url,
    export_action,
    start_export,
    wait_for,
)

from .conftest import ARCHIVIST, CURATOR, login, post_faults

OPEX = "{http://www.openpreservationexchange.org/opex/v1.2}"
XIP = "{http://preservica.com/XIP/v7.7}"


@pytest.fixture
def fast_exports(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    sandbox.state.update_config({"export_seconds": 0.2, "export_pending_seconds": 0})
    yield sandbox
    sandbox.state.update_config({"export_seconds": 1, "export_pending_seconds": 0})


@pytest.fixture
def content(repository: Repository) -> Content:
    return build_content(repository)


def _download(base_url: str, auth: dict[str, str], token: str) -> bytes:
    response = requests.get(content_url(base_url, token), headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["accept-ranges"] == "bytes"
    return response.content


def _export(
    sandbox: SandboxServer, auth: dict[str, str], ref: str, path: str = "structural-objects", **options: str
) -> bytes:
    token = start_export(sandbox.base_url, auth, ref, path, **options)
    seen, _ = wait_for(sandbox.base_url, auth, token)
    assert seen[-1] == "COMPLETED", seen
    return _download(sandbox.base_url, auth, token)


# --------------------------------------------------------------------------- request validation
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("IncludeContent", "Everything"),
        ("IncludeMetadata", "Some"),
        ("IncludedGenerations", "Latest"),
        ("IncludeParentHierarchy", "yes"),
    ],
)
def test_unknown_option_values_are_400(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str], option: str, value: str
) -> None:
    response = requests.post(
        f"{fast_exports.base_url}/api/entity/structural-objects/{content.top}/exports",
        data=export_action(**{option: value}),
        headers=auth,
        timeout=10,
    )
    assert response.status_code == 400
    assert option in response.json()["message"] and value in response.json()["message"]
    assert fast_exports.state.exports.jobs() == []


@pytest.mark.parametrize(
    "body",
    ["", "<ExportAction><Bogus>1</Bogus></ExportAction>", "<DeletionAction/>", "<ExportAction>"],
)
def test_malformed_export_bodies_are_400(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str], body: str
) -> None:
    url = f"{fast_exports.base_url}/api/entity/structural-objects/{content.top}/exports"
    assert requests.post(url, data=body, headers=auth, timeout=10).status_code == 400


def test_unknown_ref_and_type_mismatch_are_404(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str]
) -> None:
    base = f"{fast_exports.base_url}/api/entity"
    cases = [
        f"{base}/structural-objects/00000000-0000-0000-0000-000000000000/exports",
        f"{base}/information-objects/{content.top}/exports",  # a folder named as an asset
        f"{base}/structural-objects/{content.letter}/exports",  # an asset named as a folder
        f"{base}/content-objects/{content.letter_co}/exports",
        f"{base}/structural-objects/not-a-uuid/exports",
    ]
    for url in cases:
        response = requests.post(url, data=export_action(), headers=auth, timeout=10)
        assert response.status_code == 404, url
        assert response.json()["success"] is False
    assert requests.post(cases[0], data=export_action(), timeout=10).status_code == 401


def test_option_values_are_matched_without_case(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str]
) -> None:
    token = start_export(fast_exports.base_url, auth, content.letter, "information-objects", IncludeContent="nocontent")
    job = fast_exports.state.exports.job(token)
    assert job is not None and job.options.include_content == "NoContent"


# --------------------------------------------------------------------------- progress and 409
def test_progress_reaches_completed_and_409_before(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str]
) -> None:
    fast_exports.state.update_config({"export_seconds": 0.6})
    token = start_export(fast_exports.base_url, auth, content.top)
    early = requests.get(content_url(fast_exports.base_url, token), headers=auth, timeout=10)
    assert early.status_code == 409
    assert early.json()["status"] == "ACTIVE" and "not COMPLETED" in early.json()["message"]
    seen, doc = wait_for(fast_exports.base_url, auth, token)
    assert seen == ["ACTIVE", "COMPLETED"]
    assert doc.findtext(f"{STATUS_NS}PercentComplete") == "100"
    assert _download(fast_exports.base_url, auth, token)[:4] == b"PK\x03\x04"


def test_pending_phase_is_configurable(fast_exports: SandboxServer, content: Content, auth: dict[str, str]) -> None:
    fast_exports.state.update_config({"export_pending_seconds": 0.3, "export_seconds": 0.5})
    token = start_export(fast_exports.base_url, auth, content.letter, "information-objects")
    seen, _ = wait_for(fast_exports.base_url, auth, token)
    assert seen == ["PENDING", "ACTIVE", "COMPLETED"]
    config = requests.get(f"{fast_exports.base_url}/_sandbox/config", timeout=10).json()
    assert config["export_pending_seconds"] == 0.3 and config["export_seconds"] == 0.5
    bad = requests.post(f"{fast_exports.base_url}/_sandbox/config", json={"export_seconds": -1}, timeout=10)
    assert bad.status_code == 400


def test_unknown_token_and_other_tenant_are_404(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str]
) -> None:
    missing = requests.get(content_url(fast_exports.base_url, "no-such-token"), headers=auth, timeout=10)
    assert missing.status_code == 404
    token = start_export(fast_exports.base_url, auth, content.letter, "information-objects")
    wait_for(fast_exports.base_url, auth, token)
    other = login(fast_exports.base_url, CURATOR[0], CURATOR[1]).json()["token"]
    foreign = requests.get(
        content_url(fast_exports.base_url, token), headers={"Preservica-Access-Token": other}, timeout=10
    )
    assert foreign.status_code == 404


def test_cancel_ends_cancelled_and_content_is_409(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str]
) -> None:
    fast_exports.state.update_config({"export_seconds": 5})
    token = start_export(fast_exports.base_url, auth, content.top)
    cancel = requests.put(
        f"{fast_exports.base_url}/api/entity/progress/{token}/status", data="Cancelled", headers=auth, timeout=10
    )
    assert cancel.status_code == 200, cancel.text
    seen, _ = wait_for(fast_exports.base_url, auth, token)
    assert seen[-1] == "CANCELLED"
    gone = requests.get(content_url(fast_exports.base_url, token), headers=auth, timeout=10)
    assert gone.status_code == 409 and gone.json()["status"] == "CANCELLED"
    assert not list(fast_exports.state.exports.directory.glob(f"{token}*"))


# --------------------------------------------------------------------------- the zip
def _xml(data: bytes) -> ET.Element:
    return ET.fromstring(data)


def test_folder_export_layout_sidecars_and_fixities(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str]
) -> None:
    data = _export(fast_exports, auth, content.top)
    outer = zipfile.ZipFile(io.BytesIO(data))
    assert outer.testzip() is None
    top, series = content.top, content.series
    names = set(outer.namelist())
    assert {
        f"{top}/",
        f"{top}/{top}.opex",
        f"{top}/{series}/",
        f"{top}/{series}/{series}.opex",
        f"{top}/{series}/{content.letter}.pax.zip",
        f"{top}/{series}/{content.letter}.pax.zip.opex",
        f"{top}/{series}/{content.scan}.pax.zip",
        f"{top}/{series}/{content.scan}.pax.zip.opex",
        f"{top}/{content.seeded}.pax.zip",
        f"{top}/{content.seeded}.pax.zip.opex",
    } == names

    # Folder sidecar: SourceID, manifest of the next level, properties.
    folder = _xml(outer.read(f"{top}/{top}.opex"))
    assert folder.findtext(f"{OPEX}Transfer/{OPEX}SourceID") == top
    assert [f.text for f in folder.iterfind(f".//{OPEX}Folders/{OPEX}Folder")] == [series]
    files = {f.text: f.get("type") for f in folder.iterfind(f".//{OPEX}Files/{OPEX}File")}
    assert files == {f"{content.seeded}.pax.zip": "content", f"{content.seeded}.pax.zip.opex": "metadata"}
    assert folder.findtext(f"{OPEX}Properties/{OPEX}Title") == "Top folder"

    # Every asset sidecar declares the SHA-256 of its PAX zip, and the PAX holds an XIP and 4-level files.
    for asset in (content.letter, content.scan, content.seeded):
        prefix = f"{top}/{series}/" if asset != content.seeded else f"{top}/"
        pax_bytes = outer.read(f"{prefix}{asset}.pax.zip")
        sidecar = _xml(outer.read(f"{prefix}{asset}.pax.zip.opex"))
        assert sidecar.findtext(f"{OPEX}Transfer/{OPEX}SourceID") == asset
        fixity = sidecar.find(f"{OPEX}Transfer/{OPEX}Fixities/{OPEX}Fixity")
        assert fixity is not None and fixity.get("type") == "SHA-256"
        assert fixity.get("value") == hashlib.sha256(pax_bytes).hexdigest()
        pax = zipfile.ZipFile(io.BytesIO(pax_bytes))
        assert pax.testzip() is None
        xips = [n for n in pax.namelist() if n.endswith(".xip")]
        assert xips == [f"{asset}.xip"]
        files_in_pax = [n for n in pax.namelist() if not n.endswith(".xip")]
        assert files_in_pax and all(len(n.split("/")) == 4 for n in files_in_pax)
        # The XIP declares every file with its size and fixities, located where it is.
        xip = _xml(pax.read(xips[0]))
        declared = {
            f"{b.findtext(f'{XIP}PhysicalLocation')}/{b.findtext(f'{XIP}Filename')}": b
            for b in xip.iterfind(f"{XIP}Bitstream")
        }
        assert set(declared) == set(files_in_pax)
        for name, element in declared.items():
            body = pax.read(name)
            assert int(element.findtext(f"{XIP}FileSize") or -1) == len(body)
            fixities = {
                f.findtext(f"{XIP}FixityAlgorithmRef"): f.findtext(f"{XIP}FixityValue")
                for f in element.iter(f"{XIP}Fixity")
            }
            assert fixities["SHA256"] == hashlib.sha256(body).hexdigest()
            assert fixities["MD5"] == hashlib.md5(body).hexdigest()

    letter_pax = zipfile.ZipFile(io.BytesIO(outer.read(f"{top}/{series}/{content.letter}.pax.zip")))
    assert letter_pax.read(f"Representation_Preservation/{content.letter_co}/Generation_1/letter.txt") == LETTER
    letter_sidecar = _xml(outer.read(f"{top}/{series}/{content.letter}.pax.zip.opex"))
    assert letter_sidecar.findtext(f"{OPEX}Properties/{OPEX}Description") == "A letter"
    assert letter_sidecar.find(f"{OPEX}Properties/{OPEX}Identifiers/{OPEX}Identifier[@type='code']") is not None
    assert letter_sidecar.find(f"{OPEX}DescriptiveMetadata/{{http://purl.org/dc/elements/1.1/}}title") is not None

    scan_pax = zipfile.ZipFile(io.BytesIO(outer.read(f"{top}/{series}/{content.scan}.pax.zip")))
    scan = {n: scan_pax.read(n) for n in scan_pax.namelist() if not n.endswith(".xip")}
    assert scan == {
        f"Representation_Preservation/{content.scan_co}/Generation_1/scan.tif": SCAN_V1,
        f"Representation_Preservation/{content.scan_co}/Generation_2/scan-v2.tif": SCAN_V2,
        f"Representation_Access/{content.scan_access_co}/Generation_1/scan.pdf": ACCESS,
    }

    # The seeded asset has no bytes: one deterministic placeholder file.
    seeded_pax = zipfile.ZipFile(io.BytesIO(outer.read(f"{top}/{content.seeded}.pax.zip")))
    (placeholder,) = [n for n in seeded_pax.namelist() if not n.endswith(".xip")]
    assert placeholder.startswith("Representation_Preservation/") and placeholder.endswith(
        f"/Generation_1/{content.seeded}.txt"
    )
    assert seeded_pax.read(placeholder).startswith(
        f"Preservica sandbox placeholder for asset {content.seeded}".encode()
    )


def test_generation_metadata_and_hierarchy_options(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str]
) -> None:
    latest = _export(
        fast_exports,
        auth,
        content.scan,
        "information-objects",
        IncludedGenerations="LatestActive",
        IncludeMetadata="NoMetadata",
        IncludeParentHierarchy="true",
    )
    outer = zipfile.ZipFile(io.BytesIO(latest))
    prefix = f"{content.top}/{content.series}/"
    assert f"{content.top}/{content.top}.opex" in outer.namelist()
    series_opex = _xml(outer.read(f"{prefix}{content.series}.opex"))
    assert [f.text for f in series_opex.iterfind(f".//{OPEX}File")] == [
        f"{content.scan}.pax.zip",
        f"{content.scan}.pax.zip.opex",
    ]
    pax = zipfile.ZipFile(io.BytesIO(outer.read(f"{prefix}{content.scan}.pax.zip")))
    files = sorted(n for n in pax.namelist() if not n.endswith(".xip"))
    assert files == [
        f"Representation_Access/{content.scan_access_co}/Generation_1/scan.pdf",
        f"Representation_Preservation/{content.scan_co}/Generation_2/scan-v2.tif",
    ]

    bare = _export(fast_exports, auth, content.letter, "information-objects", IncludeContent="NoContent")
    outer = zipfile.ZipFile(io.BytesIO(bare))
    assert sorted(outer.namelist()) == [f"{content.letter}.pax.zip", f"{content.letter}.pax.zip.opex"]
    pax = zipfile.ZipFile(io.BytesIO(outer.read(f"{content.letter}.pax.zip")))
    assert pax.namelist() == [f"{content.letter}.xip"]

    events = _export(fast_exports, auth, content.letter, "information-objects", IncludeMetadata="MetadataWithEvents")
    outer = zipfile.ZipFile(io.BytesIO(events))
    pax = zipfile.ZipFile(io.BytesIO(outer.read(f"{content.letter}.pax.zip")))
    xip = _xml(pax.read(f"{content.letter}.xip"))
    assert xip.find(f"{XIP}EventAction/{XIP}Event[@type='Ingest']") is not None
    assert xip.find(f"{XIP}Identifier/{XIP}Value") is not None


def test_exports_are_deterministic(fast_exports: SandboxServer, content: Content, auth: dict[str, str]) -> None:
    assert _export(fast_exports, auth, content.top) == _export(fast_exports, auth, content.top)


# --------------------------------------------------------------------------- Range and faults
def test_range_requests(fast_exports: SandboxServer, content: Content, auth: dict[str, str]) -> None:
    token = start_export(fast_exports.base_url, auth, content.top)
    wait_for(fast_exports.base_url, auth, token)
    whole = _download(fast_exports.base_url, auth, token)
    size = len(whole)
    url = content_url(fast_exports.base_url, token)
    for header, start, end in [
        (f"bytes=100-{size - 1}", 100, size - 1),
        ("bytes=100-", 100, size - 1),
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=-50", size - 50, size - 1),
        (f"bytes=5-{size + 1000}", 5, size - 1),
    ]:
        response = requests.get(url, headers={**auth, "Range": header}, timeout=10)
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert response.headers["content-length"] == str(end - start + 1)
        assert response.content == whole[start : end + 1]
    for header in (f"bytes={size}-", "bytes=50-10", "bytes=-0"):
        response = requests.get(url, headers={**auth, "Range": header}, timeout=10)
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{size}"
    ignored = requests.get(url, headers={**auth, "Range": "bytes=0-1,5-6"}, timeout=10)
    assert ignored.status_code == 200 and ignored.content == whole
    head = requests.head(url, headers=auth, timeout=10)
    assert head.status_code == 200 and head.headers["content-length"] == str(size) and head.content == b""


def test_drop_after_bytes_then_resume_with_range(
    fast_exports: SandboxServer, content: Content, auth: dict[str, str]
) -> None:
    token = start_export(fast_exports.base_url, auth, content.top)
    wait_for(fast_exports.base_url, auth, token)
    url = content_url(fast_exports.base_url, token)
    expected = _download(fast_exports.base_url, auth, token)
    post_faults(
        fast_exports.base_url,
        {"kind": "drop_after_bytes", "route": "GET /api/entity/actions/exports/*/content", "bytes": 5000},
    )
    received = bytearray()
    broken = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)
    with pytest.raises(broken), requests.get(url, headers=auth, stream=True, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(expected))
        for chunk in response.iter_content(1000):
            received += chunk
    assert len(received) == 5000  # exactly the bytes before the drop (1000-byte reads lose nothing)
    assert bytes(received) == expected[: len(received)]
    resumed = requests.get(url, headers={**auth, "Range": f"bytes={len(received)}-"}, timeout=10)
    assert resumed.status_code == 206
    assert bytes(received) + resumed.content == expected
    assert requests.get(f"{fast_exports.base_url}/_sandbox/faults", timeout=10).json() == []
    assert (
        requests.get(f"{fast_exports.base_url}/_sandbox/stats", timeout=10).json()["faults_fired"]["drop_after_bytes"]
        == 1
    )


def test_fail_export_fault(fast_exports: SandboxServer, content: Content, auth: dict[str, str]) -> None:
    fault = post_faults(fast_exports.base_url, {"kind": "fail_export", "message": "Export workflow exploded"})[0]
    assert fault["kind"] == "fail_export" and fault["ref"] == "*" and fault["count"] == 1
    token = start_export(fast_exports.base_url, auth, content.top)
    seen, doc = wait_for(fast_exports.base_url, auth, token)
    assert seen[-1] == "FAILED" and set(seen) <= {"ACTIVE", "FAILED"}
    assert [e.text for e in doc.iter(f"{STATUS_NS}Error")] == ["Export workflow exploded"]
    failed = requests.get(content_url(fast_exports.base_url, token), headers=auth, timeout=10)
    assert failed.status_code == 409
    assert failed.json()["status"] == "FAILED" and failed.json()["errors"] == ["Export workflow exploded"]
    assert not list(fast_exports.state.exports.directory.glob(f"{token}*"))
    # Used up: the next export works. A ref glob only fails matching exports.
    post_faults(fast_exports.base_url, {"kind": "fail_export", "ref": content.scan})
    ok = start_export(fast_exports.base_url, auth, content.letter, "information-objects")
    assert wait_for(fast_exports.base_url, auth, ok)[0][-1] == "COMPLETED"
    doomed = start_export(fast_exports.base_url, auth, content.scan, "information-objects")
    assert wait_for(fast_exports.base_url, auth, doomed)[0][-1] == "FAILED"


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "drop_after_bytes", "route": "/x"},
        {"kind": "drop_after_bytes", "bytes": -1},
        {"kind": "fail_export", "message": 3},
        {"kind": "fail_export", "ref": ""},
    ],
)
def test_invalid_export_faults_are_400(sandbox: SandboxServer, fault: dict) -> None:
    assert requests.post(f"{sandbox.base_url}/_sandbox/faults", json=fault, timeout=10).status_code == 400


def test_reset_deletes_export_files(fast_exports: SandboxServer, content: Content, auth: dict[str, str]) -> None:
    token = start_export(fast_exports.base_url, auth, content.letter, "information-objects")
    wait_for(fast_exports.base_url, auth, token)
    listed = requests.get(f"{fast_exports.base_url}/_sandbox/exports", timeout=10).json()
    assert [(j["token"], j["status"], j["ref"]) for j in listed] == [(token, "COMPLETED", content.letter)]
    path = Path(listed[0]["path"])
    assert path.exists() and path.stat().st_size == listed[0]["size"]
    fast_exports.state.reset()
    assert not path.exists() and fast_exports.state.exports.jobs() == []


# --------------------------------------------------------------------------- pyPreservica, unchanged
@pytest.fixture
def entity_api(sandbox: SandboxServer) -> pyPreservica.EntityAPI:
    return pyPreservica.EntityAPI(
        username=ARCHIVIST[0], password=ARCHIVIST[1], tenant=ARCHIVIST[2], server=sandbox.server, protocol="http"
    )


def test_pypreservica_export_opex(
    fast_exports: SandboxServer,
    content: Content,
    entity_api: pyPreservica.EntityAPI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = entity_api.folder(content.top)
    zip_name = entity_api.export_opex(folder, IncludeContent="Content", IncludedGenerations="All")
    assert os.path.exists(zip_name) and zipfile.is_zipfile(zip_name)
    opex = OpexAPI(zip_name)
    found = {m.source: m for m in opex.properties()}
    assert set(found) == {content.letter, content.scan, content.seeded}
    letter = found[content.letter]
    assert (letter.title, letter.description, letter.SecurityDescriptor) == ("Letter", "A letter", "open")
    assert found[content.scan].SecurityDescriptor == "closed"
    (bitstream,) = list(opex.bitstream(letter))
    assert bitstream["Bitstream"] == "letter.txt" and bitstream["Representation"] == "Representation_Preservation"
    assert opex.bitstream_bytes(letter, bitstream) == LETTER
    assert (opex.xip_metadata(letter) or b"").startswith(b"<?xml")
    assert len(list(opex.bitstream(found[content.scan]))) == 3


def test_pypreservica_export_start_and_download(
    fast_exports: SandboxServer,
    content: Content,
    entity_api: pyPreservica.EntityAPI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    asset = entity_api.asset(content.letter)
    pid = entity_api.export_opex_async(asset, IncludeParentHierarchy="false")
    seen, _ = wait_for(fast_exports.base_url, {"Preservica-Access-Token": entity_api.token}, pid)
    assert seen[-1] == "COMPLETED" and entity_api.get_async_progress(pid) == "COMPLETED"
    name = entity_api.download_opex(pid)
    with zipfile.ZipFile(name) as archive:
        assert sorted(archive.namelist()) == [f"{content.letter}.pax.zip", f"{content.letter}.pax.zip.opex"]
