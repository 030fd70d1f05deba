"""Export: start an export of a folder or asset, then stream the zip to disk with resume and checks.

Downloads go to a temporary name next to the destination and are renamed only when every byte has
arrived (and the caller's checks passed). A dropped connection resumes with ``Range`` from the last
byte written, so a many-gigabyte export survives a flaky network; memory stays at one chunk, and the page
cache at a few windows (``filewrite.DropBehindWriter``). The bytes are on disk (``fsync``) before the rename.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import requests

from airflow_provider_preservica.client.entities import PATHS
from airflow_provider_preservica.client.filewrite import DropBehindWriter, sync_directory
from airflow_provider_preservica.client.namespaces import Namespaces
from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.client.transfer_progress import ProgressLogger
from airflow_provider_preservica.exceptions import PreservicaConfigError, PreservicaConnectionError, PreservicaError

log = logging.getLogger(__name__)

# 1 MiB: measured best. 4 MiB reads made the sandbox (and any server) stall while a chunk was hashed and
# written (177 MiB/s against curl's 682); 256 KiB cost more per byte (415 against 620).
# ``iter_content`` (requests over urllib3 2.x's public ``read``; one new ``bytes`` per chunk) rather than reading
# into one reused buffer through the private ``raw._fp.readinto``: the read itself costs ~115-150 ms of CPU per
# GiB instead of ~90-100, i.e. 3-5 % more client CPU for a whole download (which hashes and writes every byte),
# and ``benchmarks/export.py`` (512 MiB, runs alternated) gives the same MiB/s either way within its run-to-run
# noise (measured with urllib3 2.8, requests 2.34, 2 shared CPUs).
CHUNK = 1024 * 1024
INCLUDE_CONTENT = ("Content", "NoContent")
INCLUDE_METADATA = ("Metadata", "NoMetadata", "MetadataWithEvents")
GENERATIONS = ("LatestActive", "AllActive", "All")


@dataclass(frozen=True)
class ExportOptions:
    include_content: str = "Content"
    include_metadata: str = "Metadata"
    generations: str = "All"
    parent_hierarchy: bool = True

    def __post_init__(self) -> None:
        for value, allowed, name in (
            (self.include_content, INCLUDE_CONTENT, "include_content"),
            (self.include_metadata, INCLUDE_METADATA, "include_metadata"),
            (self.generations, GENERATIONS, "generations"),
        ):
            if value not in allowed:
                raise PreservicaConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")

    def to_xml(self, ns: Namespaces) -> bytes:
        root = ET.Element(f"{{{ns.entity}}}ExportAction")
        ET.SubElement(root, f"{{{ns.entity}}}IncludeContent").text = self.include_content
        ET.SubElement(root, f"{{{ns.entity}}}IncludeMetadata").text = self.include_metadata
        ET.SubElement(root, f"{{{ns.entity}}}IncludedGenerations").text = self.generations
        ET.SubElement(root, f"{{{ns.entity}}}IncludeParentHierarchy").text = str(self.parent_hierarchy).lower()
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def start_export(client: PreservicaClient, ns: Namespaces, ref: str, entity_type: str, options: ExportOptions) -> str:
    """Ask Preservica to export ``ref``; returns the progress token (202 + plain text)."""
    if entity_type not in ("SO", "IO"):
        raise PreservicaConfigError(f"only folders (SO) and assets (IO) can be exported, not {entity_type!r}")
    response = client.request(
        "POST",
        f"/api/entity/{PATHS[entity_type]}/{ref}/exports",
        data=options.to_xml(ns),
        headers={"Content-Type": "application/xml;charset=UTF-8", "Accept": "text/plain;charset=UTF-8"},
        expected=(200, 202),
    )
    token = response.text.strip()
    if not token:
        raise PreservicaError(f"Preservica accepted the export of {ref} but returned no progress token")
    return token


@dataclass(frozen=True)
class Download:
    path: str
    bytes: int
    sha256: str
    seconds: float
    resumes: int


def _total_from(response: requests.Response, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None else None


def download_to(
    client: PreservicaClient,
    path: str,
    destination: str | os.PathLike[str],
    *,
    max_resumes: int = 5,
    log_interval: float = 10.0,
) -> Download:
    """Stream ``path`` to ``destination`` (renamed into place when complete); resume after drops."""
    final = Path(destination).expanduser()
    temporary = final.with_name(f".{final.name}.partial")
    digest = hashlib.sha256()
    written = 0
    total: int | None = None
    resumes = 0
    started = time.monotonic()
    progress: ProgressLogger | None = None
    try:
        with temporary.open("wb") as handle:
            writer = DropBehindWriter(handle)
            while True:
                headers = {"Range": f"bytes={written}-"} if written else {}
                try:
                    response = client.request("GET", path, headers=headers, stream=True, expected=(200, 206))
                    if written and response.status_code != 206:
                        raise PreservicaError(f"{path}: the server ignored the Range request; cannot resume safely")
                    if total is None:
                        total = _total_from(response, written)
                        progress = ProgressLogger(total or 0, f"Downloading {final.name}", log_interval)
                    # urllib3's errors arrive as requests' ChunkedEncodingError / ConnectionError: resumed below.
                    for chunk in response.iter_content(CHUNK):
                        writer.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
                    response.close()
                except (
                    requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ConnectionError,
                    PreservicaConnectionError,
                ) as exc:
                    if resumes >= max_resumes:
                        raise PreservicaConnectionError(
                            f"download of {path} broke off {resumes + 1} times; last at byte {written:,}: {exc}"
                        ) from None
                    resumes += 1
                    log.warning(
                        "Download of %s broke off at byte %s (%s); resuming",
                        final.name,
                        f"{written:,}",
                        type(exc).__name__,
                    )
                    continue
                if total is not None and written < total:
                    if resumes >= max_resumes:
                        raise PreservicaConnectionError(f"download of {path} ended at {written:,} of {total:,} bytes")
                    resumes += 1
                    log.warning(
                        "Download of %s ended early at byte %s of %s; resuming",
                        final.name,
                        f"{written:,}",
                        f"{total:,}",
                    )
                    continue
                break
            if total is not None and written != total:
                raise PreservicaError(f"download of {path} has {written:,} bytes, the server announced {total:,}")
            writer.finish()
        os.replace(temporary, final)
        sync_directory(final.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - started
    log.info(
        "Downloaded %s: %.1f MiB in %.1f s (%.1f MiB/s, %d resumes)",
        final.name,
        written / 1048576,
        seconds,
        written / 1048576 / max(seconds, 1e-9),
        resumes,
    )
    return Download(str(final), written, digest.hexdigest(), seconds, resumes)
