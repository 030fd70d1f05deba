"""Helpers for the upload/ingest tests: hand-made OPEX packages, a boto3 client, progress polling.

The OPEX documents are written here by hand (not with the provider's ``packaging``) so that the
sandbox is tested against the wire format itself.
"""

from __future__ import annotations

import hashlib
import io
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config
import requests

OPEX_NS = "http://www.openpreservationexchange.org/opex/v1.2"
STATUS_NS = "http://status.preservica.com"
BUCKET = "sandbox.package.upload"
SOURCE_BUCKET = "com.preservica.sandbox.upload"
FINAL = {"COMPLETED", "FAILED", "FINISHED_MIXED_OUTCOME", "ABORTED", "CANCELLED"}


def s3_client(base_url: str, token: str, checksums: str = "when_required", verify: bool = True) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=f"{base_url}/api/s3/buckets",
        aws_access_key_id=token,
        aws_secret_access_key="NOT_USED",
        region_name="us-east-1",
        verify=verify,
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


def opex_document(
    source_id: str | None = None,
    title: str | None = None,
    *,
    security: str = "open",
    description: str | None = None,
    fixities: dict[str, str] | None = None,
    files: list[tuple[str, str, int | None]] | None = None,
    folders: list[str] | None = None,
    identifiers: dict[str, str] | None = None,
    metadata: str | None = None,
) -> bytes:
    """An ``OPEXMetadata`` sidecar or manifest; ``files`` are ``(name, type, size)``."""
    transfer = ""
    if source_id:
        transfer += f"<opex:SourceID>{source_id}</opex:SourceID>"
    if files is not None or folders is not None:
        listed = "".join(
            f'<opex:File type="{kind}"' + (f' size="{size}"' if size is not None else "") + f">{name}</opex:File>"
            for name, kind, size in files or []
        )
        subfolders = "".join(f"<opex:Folder>{name}</opex:Folder>" for name in folders or [])
        transfer += "<opex:Manifest>"
        transfer += f"<opex:Files>{listed}</opex:Files>" if listed else ""
        transfer += f"<opex:Folders>{subfolders}</opex:Folders>" if subfolders else ""
        transfer += "</opex:Manifest>"
    if fixities:
        transfer += "<opex:Fixities>" + "".join(
            f'<opex:Fixity type="{alg}" value="{value}"/>' for alg, value in fixities.items()
        )
        transfer += "</opex:Fixities>"
    props = f"<opex:Title>{title}</opex:Title>" if title else ""
    props += f"<opex:Description>{description}</opex:Description>" if description else ""
    props += f"<opex:SecurityDescriptor>{security}</opex:SecurityDescriptor>"
    if identifiers:
        props += "<opex:Identifiers>" + "".join(
            f'<opex:Identifier type="{t}">{v}</opex:Identifier>' for t, v in identifiers.items()
        )
        props += "</opex:Identifiers>"
    body = f"<opex:Transfer>{transfer}</opex:Transfer><opex:Properties>{props}</opex:Properties>"
    if metadata:
        body += f"<opex:DescriptiveMetadata>{metadata}</opex:DescriptiveMetadata>"
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><opex:OPEXMetadata xmlns:opex="{OPEX_NS}">{body}</opex:OPEXMetadata>'
    )
    return document.encode()


@dataclass
class OpexPackage:
    """A zipped OPEX package: one top folder with a manifest, files with sidecars (SHA-256 fixity)."""

    top: str = "batch"
    top_source_id: str = "BATCH-1"
    files: dict[str, bytes] = field(default_factory=dict)
    source_ids: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    security: str = "open"
    bad_fixity: set[str] = field(default_factory=set)
    extra: dict[str, bytes] = field(default_factory=dict)  # more members, added as they are

    def add(self, name: str, content: bytes, source_id: str | None = None, title: str | None = None) -> OpexPackage:
        self.files[name] = content
        self.source_ids[name] = source_id or f"SRC-{name}"
        if title:
            self.titles[name] = title
        return self

    def sidecar(self, name: str) -> bytes:
        content = self.files[name]
        digest = hashlib.sha256(content).hexdigest()
        if name in self.bad_fixity:
            digest = hashlib.sha256(content + b"tampered").hexdigest()
        return opex_document(
            self.source_ids[name],
            self.titles.get(name, name),
            security=self.security,
            fixities={"SHA-256": digest},
            identifiers={"catalogue": f"CAT/{name}"},
            metadata=f'<dc xmlns="http://purl.org/dc/elements/1.1/"><title>{name}</title></dc>',
        )

    def zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            listed: list[tuple[str, str, int | None]] = []
            for name, content in self.files.items():
                sidecar = self.sidecar(name)
                archive.writestr(f"{self.top}/{name}", content)
                archive.writestr(f"{self.top}/{name}.opex", sidecar)
                listed += [(name, "content", len(content)), (f"{name}.opex", "metadata", len(sidecar))]
            for name, content in self.extra.items():
                archive.writestr(name, content)
            manifest = opex_document(self.top_source_id, self.top.title(), files=listed)
            archive.writestr(f"{self.top}/{self.top}.opex", manifest)
        return buffer.getvalue()


def progress_xml(base_url: str, token: str, auth: dict[str, str]) -> ET.Element:
    response = requests.get(
        f"{base_url}/api/entity/progress/{token}", params={"includeErrors": "true"}, headers=auth, timeout=10
    )
    assert response.status_code == 200, response.text
    return ET.fromstring(response.content)


@dataclass
class Outcome:
    status: str
    seen: list[str]
    errors: list[str]
    warnings: list[str]


def wait_for(base_url: str, token: str, auth: dict[str, str], timeout: float = 60.0) -> Outcome:
    """Poll the progress token until it reaches a final state."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        root = progress_xml(base_url, token, auth)
        status = root.findtext(f"{{{STATUS_NS}}}Status") or ""
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in FINAL:
            errors = [e.text or "" for e in root.iter(f"{{{STATUS_NS}}}Error")]
            warnings = [w.text or "" for w in root.iter(f"{{{STATUS_NS}}}Warning")]
            return Outcome(status, seen, errors, warnings)
        assert time.monotonic() < deadline, f"progress {token} still {status} after {timeout} s"
        time.sleep(0.02)


def put_package(client: Any, data: bytes, parent: str | None, key: str = "package.zip") -> str:
    extra: dict[str, Any] = {"Metadata": {"structuralobjectreference": parent}} if parent else {}
    response = client.put_object(Bucket=BUCKET, Key=key, Body=data, **extra)
    token: str = response["ResponseMetadata"]["HTTPHeaders"]["preservica-progress-token"]
    return token


def monitor_of(base_url: str, token: str, auth: dict[str, str]) -> dict[str, Any]:
    response = requests.get(f"{base_url}/api/processmonitor/monitors", headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    wanted = token.replace("-", "")
    found = [m for m in response.json()["value"]["monitors"] if m["mappedId"] == wanted]
    assert len(found) == 1, response.json()
    monitor: dict[str, Any] = found[0]
    return monitor


def messages_of(base_url: str, token: str, auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = requests.get(
        f"{base_url}/api/processmonitor/messages",
        params={"monitor": token.replace("-", ""), "max": 1000, **params},
        headers=auth,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["value"]["messages"]
    return messages
