"""Accept a ready-made zip (an XIP v6 SIP from pyPreservica or SIP Creator, or a zipped OPEX) as it is.

``inspect_zip_package`` tells which kind a zip is, checks that it opens and that every member's CRC is
right (a truncated or corrupt copy is caught before upload), refuses unsafe member names, and returns
its size and SHA-256 for the ingest report. It never modifies the zip.

* XIP: a ``metadata.xml`` whose root is ``XIP`` in a ``http://preservica.com/XIP/…`` namespace (v6) or the
  legacy ``http://www.tessella.com/XIP/v4`` (XIP v5 SIPs from SIP Creator).
* OPEX: one or more ``.opex`` members, each ``OPEXMetadata`` in an OPEX namespace.
* Both, or neither: refused (``PackageFormatError``): build a plain folder with ``build_opex_package``
  so that it gets fixity and an explicit security tag.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from airflow_provider_preservica.exceptions import PackageFormatError
from airflow_provider_preservica.files.bounded_xml import DocumentRefused, parse, read_capped
from airflow_provider_preservica.files.fixity import hash_file
from airflow_provider_preservica.ingest.packaging.opex import OPEX_SUFFIX, read_opex

XIP_NAMESPACE_PREFIXES = ("http://preservica.com/XIP/", "http://www.tessella.com/XIP/")
MAX_XML_MEMBER = 64 << 20  # metadata documents larger than this are not parsed (they are not metadata)

PackageKind = Literal["XIP", "OPEX"]


@dataclass
class ZipPackageInfo:
    """What ``inspect_zip_package`` found; JSON-serialisable through ``to_dict()``."""

    path: str
    kind: PackageKind
    size: int
    sha256: str
    entries: int
    uncompressed_bytes: int
    top_level: list[str]
    xip_namespace: str | None = None
    opex_documents: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def inspect_zip_package(path: str | os.PathLike[str], *, verify_crc: bool = True) -> ZipPackageInfo:
    """Identify and check a ready-made package zip; every problem found is listed in one error."""
    zip_path = Path(path)
    if not zip_path.is_file():
        raise PackageFormatError(f"{zip_path} is not a file")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackageFormatError(f"{zip_path} does not open as a zip ({exc}); is the copy complete?") from None
    problems: list[str] = []
    warnings: list[str] = []
    with archive:
        infos = archive.infolist()
        if not infos:
            raise PackageFormatError(f"{zip_path} is an empty zip")
        problems.extend(
            f"unsafe member name {i.filename!r} (absolute or with '..')" for i in infos if _unsafe(i.filename)
        )
        if verify_crc:
            try:
                bad = archive.testzip()
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                bad = None
                problems.append(f"the zip cannot be read to its end ({exc}); is the copy complete?")
            if bad is not None:
                problems.append(f"member {bad!r} is corrupt (CRC mismatch)")
        xip_namespace: str | None = None
        opex_count = 0
        opex_without_tag = 0
        for info in infos:
            name = info.filename
            base = name.rsplit("/", 1)[-1]
            if info.is_dir() or info.file_size > MAX_XML_MEMBER:
                continue
            if base == "metadata.xml":
                try:
                    root = parse(read_capped(archive, info, MAX_XML_MEMBER, "XML metadata document"))
                except DocumentRefused as exc:  # a DTD (entities are never expanded) or more bytes than declared
                    problems.append(f"{name}: {exc}")
                    continue
                except (ET.ParseError, zipfile.BadZipFile, OSError) as exc:
                    problems.append(f"{name}: not well-formed XML ({exc})")
                    continue
                namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
                if namespace.startswith(XIP_NAMESPACE_PREFIXES) and root.tag.endswith("}XIP"):
                    xip_namespace = namespace
            elif base.lower().endswith(OPEX_SUFFIX):
                opex_count += 1
                try:
                    document = read_opex(archive.read(info))
                except (ValueError, zipfile.BadZipFile, OSError) as exc:
                    problems.append(f"{name}: {exc}")
                    continue
                if not document.security_descriptor:
                    opex_without_tag += 1
        if xip_namespace and opex_count:
            problems.append("the zip holds both an XIP metadata.xml and .opex documents; it must be one or the other")
        elif not xip_namespace and not opex_count:
            problems.append(
                "neither an XIP metadata.xml nor any .opex document found; build an OPEX package from the folder "
                "with build_opex_package (it adds fixity and an explicit security tag)"
            )
        if opex_without_tag:
            warnings.append(
                f"{opex_without_tag} .opex document(s) have no SecurityDescriptor: Preservica will apply 'open'"
            )
        if problems:
            raise PackageFormatError(f"{zip_path} is not an ingestible package", problems)
        top_level = sorted({i.filename.split("/", 1)[0] for i in infos})
        uncompressed = sum(i.file_size for i in infos)
    return ZipPackageInfo(
        path=str(zip_path),
        kind="XIP" if xip_namespace else "OPEX",
        size=zip_path.stat().st_size,
        sha256=hash_file(zip_path).value("SHA-256"),
        entries=len(infos),
        uncompressed_bytes=uncompressed,
        top_level=top_level,
        xip_namespace=xip_namespace,
        opex_documents=opex_count,
        warnings=warnings,
    )
