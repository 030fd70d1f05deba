"""Shared pieces of the export and structure tests: a small repository with stored bytes, and HTTP helpers."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import requests
from preservica_sandbox.repository import Generation, Repository

STATUS_NS = "{http://status.preservica.com}"
ENTITY_NS = "http://preservica.com/EntityAPI/v7.7"

LETTER = b"Dear Ada,\n" * 500
SCAN_V1 = bytes(range(256)) * 40
SCAN_V2 = bytes(reversed(range(256))) * 50
ACCESS = b"%PDF-1.4 access copy\n" * 20


@dataclass(frozen=True)
class Content:
    """Top (folder) > Series (folder) > Letter (asset, one file) and Scan (asset, two generations + access);
    Top > Seeded (asset without bytes)."""

    top: str
    series: str
    letter: str
    letter_co: str
    scan: str
    scan_co: str
    scan_access_co: str
    seeded: str


def build_content(repo: Repository) -> Content:
    top = repo.add_folder("Top folder", description="The top", security_tag="open")
    series = repo.add_folder("Series", parent=top.ref)
    letter = repo.add_asset("Letter", parent=series.ref, description="A letter")
    repo.add_identifier(letter.ref, "code", "L-1")
    repo.add_metadata(
        letter.ref,
        "http://purl.org/dc/elements/1.1/",
        '<dc:title xmlns:dc="http://purl.org/dc/elements/1.1/">Letter</dc:title>',
    )
    letter_co = repo.add_bitstream_file(letter.ref, io.BytesIO(LETTER), "letter.txt")
    scan = repo.add_asset("Scan", parent=series.ref, security_tag="closed")
    scan_co = repo.add_bitstream_file(scan.ref, io.BytesIO(SCAN_V1), "scan.tif")
    newer = repo.store_blob(io.BytesIO(SCAN_V2), "scan-v2.tif")
    tiff = {"PUID": "fmt/353", "FormatName": "Tagged Image File Format", "Priority": "1", "valid": "true"}
    repo.add_generation(scan_co.ref, Generation(format_group="image", formats=[tiff], bitstreams=[newer]))
    access_co = repo.add_bitstream_file(scan.ref, io.BytesIO(ACCESS), "scan.pdf", representation="Access")
    seeded = repo.add_asset("Seeded asset", parent=top.ref)
    return Content(top.ref, series.ref, letter.ref, letter_co.ref, scan.ref, scan_co.ref, access_co.ref, seeded.ref)


def export_action(ns: str = ENTITY_NS, **options: str) -> str:
    values = {
        "IncludeContent": "Content",
        "IncludeMetadata": "Metadata",
        "IncludedGenerations": "All",
        "IncludeParentHierarchy": "false",
        **options,
    }
    children = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return f'<ExportAction xmlns="{ns}">{children}</ExportAction>'


def start_export(
    base_url: str, auth: dict[str, str], ref: str, path: str = "structural-objects", **options: str
) -> str:
    response = requests.post(
        f"{base_url}/api/entity/{path}/{ref}/exports",
        data=export_action(**options),
        headers={**auth, "Content-Type": "application/xml;charset=UTF-8"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def progress(base_url: str, auth: dict[str, str], token: str) -> ET.Element:
    response = requests.get(f"{base_url}/api/entity/progress/{token}?includeErrors=true", headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    return ET.fromstring(response.content)


def wait_for(base_url: str, auth: dict[str, str], token: str, timeout: float = 60.0) -> tuple[list[str], ET.Element]:
    """Poll until a terminal status; returns every status seen (deduplicated, in order) and the last document."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        doc = progress(base_url, auth, token)
        status = doc.findtext(f"{STATUS_NS}Status") or ""
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("COMPLETED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
            return seen, doc
        time.sleep(0.02)


def content_url(base_url: str, token: str) -> str:
    return f"{base_url}/api/entity/actions/exports/{token}/content"
