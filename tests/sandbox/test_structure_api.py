"""The asset structure walk, bitstream content (Range) and /api/content/download — over HTTP and via pyPreservica."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pyPreservica
import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository

from tests.support.export_helpers import ACCESS, ENTITY_NS, LETTER, SCAN_V1, SCAN_V2, Content, build_content

from .conftest import ARCHIVIST

E = f"{{{ENTITY_NS}}}"
XIP = "{http://preservica.com/XIP/v7.7}"


@pytest.fixture
def content(repository: Repository) -> Content:
    return build_content(repository)


@pytest.fixture
def entity_api(sandbox: SandboxServer) -> pyPreservica.EntityAPI:
    return pyPreservica.EntityAPI(
        username=ARCHIVIST[0], password=ARCHIVIST[1], tenant=ARCHIVIST[2], server=sandbox.server, protocol="http"
    )


def _get(url: str, auth: dict[str, str]) -> ET.Element:
    response = requests.get(url, headers=auth, timeout=10)
    assert response.status_code == 200, (url, response.text)
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.content)


def test_walk_over_http(sandbox: SandboxServer, content: Content, auth: dict[str, str]) -> None:
    base = f"{sandbox.base_url}/api/entity"
    reps = _get(f"{base}/information-objects/{content.scan}/representations", auth)
    listed = {
        (r.get("type"), r.get("name")): r.text or "" for r in reps.iterfind(f"{E}Representations/{E}Representation")
    }
    assert listed == {
        ("Preservation", "Preservation"): f"{base}/information-objects/{content.scan}/representations/Preservation/1",
        ("Access", "Access"): f"{base}/information-objects/{content.scan}/representations/Access/1",
    }
    rep = _get(listed[("Preservation", "Preservation")], auth)
    assert rep.findtext(f"{XIP}Representation/{XIP}Type") == "Preservation"
    assert [c.text for c in rep.iterfind(f"{XIP}Representation/{XIP}ContentObjects/{XIP}ContentObject")] == [
        content.scan_co
    ]
    gens = _get(f"{base}/content-objects/{content.scan_co}/generations", auth)
    generations = [(g.get("active"), g.text or "") for g in gens.iterfind(f"{E}Generations/{E}Generation")]
    assert generations == [
        ("false", f"{base}/content-objects/{content.scan_co}/generations/1"),
        ("true", f"{base}/content-objects/{content.scan_co}/generations/2"),
    ]
    gen = _get(generations[1][1], auth)
    element = gen.find(f"{XIP}Generation")
    assert element is not None and (element.get("original"), element.get("active")) == ("false", "true")
    (bitstream_link,) = gen.iterfind(f"{E}Bitstreams/{E}Bitstream")
    assert bitstream_link.get("filename") == "scan-v2.tif"
    bitstream = _get(bitstream_link.text or "", auth)
    assert bitstream.findtext(f"{XIP}Bitstream/{XIP}Filename") == "scan-v2.tif"
    assert bitstream.findtext(f"{XIP}Bitstream/{XIP}FileSize") == str(len(SCAN_V2))
    fixities = {f[0].text: f[1].text for f in bitstream.iter(f"{XIP}Fixity")}
    assert fixities["SHA256"] == hashlib.sha256(SCAN_V2).hexdigest()
    content_link = bitstream.findtext(f"{E}AdditionalInformation/{E}Content")
    assert content_link == f"{bitstream_link.text}/content"
    body = requests.get(content_link, headers=auth, timeout=10)
    assert body.status_code == 200 and body.content == SCAN_V2
    assert body.headers["content-length"] == str(len(SCAN_V2)) and body.headers["accept-ranges"] == "bytes"
    part = requests.get(content_link, headers={**auth, "Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206 and part.content == SCAN_V2[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(SCAN_V2)}"
    assert (
        requests.get(content_link, headers={**auth, "Range": f"bytes={len(SCAN_V2)}-"}, timeout=10).status_code == 416
    )


def test_versioned_prefix_keeps_links_and_namespace(
    sandbox: SandboxServer, content: Content, auth: dict[str, str]
) -> None:
    base = f"{sandbox.base_url}/api/entity/v7.2"
    reps = _get(f"{base}/information-objects/{content.letter}/representations", auth)
    (link,) = reps.iterfind(
        "{http://preservica.com/EntityAPI/v7.2}Representations/{http://preservica.com/EntityAPI/v7.2}Representation"
    )
    assert (link.text or "").startswith(f"{base}/information-objects/")


@pytest.mark.parametrize(
    "suffix",
    [
        "information-objects/{missing}/representations",
        "information-objects/{top}/representations",
        "information-objects/{letter}/representations/Access/1",
        "information-objects/{letter}/representations/Preservation/2",
        "information-objects/{letter}/representations/Derived/1",
        "content-objects/{missing}/generations",
        "content-objects/{letter}/generations",
        "content-objects/{letter_co}/generations/2",
        "content-objects/{letter_co}/generations/1/bitstreams/2",
        "content-objects/{letter_co}/generations/1/bitstreams/2/content",
    ],
)
def test_structure_404s(sandbox: SandboxServer, content: Content, auth: dict[str, str], suffix: str) -> None:
    path = suffix.format(
        missing="00000000-0000-0000-0000-000000000000",
        top=content.top,
        letter=content.letter,
        letter_co=content.letter_co,
    )
    response = requests.get(f"{sandbox.base_url}/api/entity/{path}", headers=auth, timeout=10)
    assert response.status_code == 404, path
    assert response.json()["success"] is False


def test_content_download(sandbox: SandboxServer, content: Content, auth: dict[str, str]) -> None:
    url = f"{sandbox.base_url}/api/content/download"
    access = requests.get(url, params={"id": f"sdb:IO|{content.scan}"}, headers=auth, timeout=10)
    assert access.status_code == 200 and access.content == ACCESS  # the access copy wins
    letter = requests.get(
        url, params={"id": f"sdb:IO|{content.letter}"}, headers={**auth, "Range": "bytes=-5"}, timeout=10
    )
    assert letter.status_code == 206 and letter.content == LETTER[-5:]
    seeded = requests.get(url, params={"id": f"sdb:IO|{content.seeded}"}, headers=auth, timeout=10)
    assert seeded.status_code == 200 and seeded.content.startswith(b"Preservica sandbox placeholder")
    assert requests.get(url, params={"id": f"sdb:CO|{content.scan_co}"}, headers=auth, timeout=10).content == SCAN_V2
    missing = requests.get(url, params={"id": "sdb:IO|00000000-0000-0000-0000-000000000000"}, headers=auth, timeout=10)
    assert missing.status_code == 404
    assert requests.get(url, params={"id": f"sdb:SO|{content.top}"}, headers=auth, timeout=10).status_code == 400
    assert requests.get(url, params={"id": "nonsense"}, headers=auth, timeout=10).status_code == 400


def test_pypreservica_walk_and_bitstream_content(
    sandbox: SandboxServer, content: Content, entity_api: pyPreservica.EntityAPI, tmp_path: Path
) -> None:
    asset = entity_api.asset(content.scan)
    representations = entity_api.representations(asset)
    assert {(r.rep_type, r.name) for r in representations} == {
        (pyPreservica.RepresentationType.Preservation, "Preservation"),
        (pyPreservica.RepresentationType.Access, "Access"),
    }
    preservation = next(r for r in representations if r.rep_type == pyPreservica.RepresentationType.Preservation)
    (co,) = entity_api.content_objects(preservation)
    assert co.reference == content.scan_co
    generations = entity_api.generations(co)
    assert [(g.original, g.active) for g in generations] == [(True, False), (False, True)]
    assert generations[1].format_group == "image"
    assert generations[1].formats == [
        {
            "Valid": "true",
            "PUID": "fmt/353",
            "Priority": "1",
            "IdentificationMethod": None,
            "FormatName": "Tagged Image File Format",
            "FormatVersion": None,
        }
    ]
    first = generations[0].bitstreams[0]
    assert (first.filename, first.length, first.co_ref, first.gen_index, first.bs_index) == (
        "scan.tif",
        len(SCAN_V1),
        content.scan_co,
        1,
        1,
    )
    assert first.fixity["SHA256"] == hashlib.sha256(SCAN_V1).hexdigest()
    target = tmp_path / "scan.tif"
    assert entity_api.bitstream_content(first, str(target)) == len(SCAN_V1)
    assert target.read_bytes() == SCAN_V1
    assert entity_api.bitstream_bytes(first, start_byte=10, end_byte=19).read() == SCAN_V1[10:20]
    assert {b.filename for b in entity_api.bitstreams_for_asset(asset)} == {"scan-v2.tif", "scan.pdf"}
    copy = tmp_path / "access.pdf"
    assert entity_api.download(asset, str(copy)) == str(copy) and copy.read_bytes() == ACCESS
