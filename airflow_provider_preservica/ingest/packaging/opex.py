"""OPEX 1.2 documents: the ``.opex`` sidecar of an asset and the manifest of a folder, and reading them back.

Element order follows the OPEX schema (``Transfer``, ``Properties``, ``DescriptiveMetadata``;
``Transfer`` = ``SourceID``, ``Manifest``, ``Fixities``; ``Properties`` = ``Title``, ``Description``,
``SecurityDescriptor``, ``Identifiers``). Every OPEX element is qualified with the ``opex`` prefix.

Asset sidecar ``<name>.opex`` (next to the file)::

    <opex:OPEXMetadata xmlns:opex="http://www.openpreservationexchange.org/opex/v1.2">
      <opex:Transfer>
        <opex:SourceID>…</opex:SourceID>
        <opex:Fixities><opex:Fixity type="SHA-256" value="…"/></opex:Fixities>
      </opex:Transfer>
      <opex:Properties>
        <opex:Title>…</opex:Title> [<opex:Description>…</opex:Description>]
        <opex:SecurityDescriptor>…</opex:SecurityDescriptor>
        [<opex:Identifiers><opex:Identifier type="…">…</opex:Identifier></opex:Identifiers>]
      </opex:Properties>
      [<opex:DescriptiveMetadata>fragments, each in its own namespace</opex:DescriptiveMetadata>]
    </opex:OPEXMetadata>

Folder manifest ``<folder>/<folder>.opex``: the same, with ``Transfer/Manifest`` listing the folder's
*direct* children only — ``Files/File[@type="content"|"metadata"][@size]`` (each file and its sidecar) and
``Folders/Folder`` (sub-folder names) — and no ``Fixities`` (those are in the sidecars).
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from airflow_provider_preservica.files.bounded_xml import parse
from airflow_provider_preservica.files.fixity import FixityRecord

OPEX_NS = "http://www.openpreservationexchange.org/opex/v1.2"
OPEX_SUFFIX = ".opex"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_Q = f"{{{OPEX_NS}}}"

# A process-wide, harmless registration: serialise our namespace with its customary prefix.
ET.register_namespace("opex", OPEX_NS)


@dataclass(frozen=True, slots=True)  # one per file: no per-instance dict
class ManifestFile:
    """One ``Manifest/Files/File`` entry: a name in the folder, its type and size."""

    name: str
    type: Literal["content", "metadata"]
    size: int


@dataclass(frozen=True, slots=True)  # one per file: no per-instance dict
class OpexProperties:
    """What both document kinds share."""

    source_id: str
    title: str
    security_tag: str
    description: str | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    descriptive_metadata: tuple[ET.Element, ...] = field(default=(), repr=False)


def _sub(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, _Q + name, attrs)
    if text is not None:
        element.text = text
    return element


def _document(
    props: OpexProperties,
    fixities: Sequence[FixityRecord] = (),
    files: Sequence[ManifestFile] | None = None,
    folders: Sequence[str] | None = None,
) -> bytes:
    if not props.security_tag:
        raise ValueError("an OPEX document needs an explicit security tag")
    root = ET.Element(_Q + "OPEXMetadata")
    transfer = _sub(root, "Transfer")
    _sub(transfer, "SourceID", props.source_id)
    if files is not None or folders is not None:
        manifest = _sub(transfer, "Manifest")
        if files:
            files_el = _sub(manifest, "Files")
            for item in files:
                _sub(files_el, "File", item.name, type=item.type, size=str(item.size))
        if folders:
            folders_el = _sub(manifest, "Folders")
            for name in folders:
                _sub(folders_el, "Folder", name)
    if fixities:
        fixities_el = _sub(transfer, "Fixities")
        for record in fixities:
            _sub(fixities_el, "Fixity", type=record.algorithm, value=record.value)
    properties = _sub(root, "Properties")
    _sub(properties, "Title", props.title)
    if props.description:
        _sub(properties, "Description", props.description)
    _sub(properties, "SecurityDescriptor", props.security_tag)
    if props.identifiers:
        identifiers = _sub(properties, "Identifiers")
        for kind, value in props.identifiers:
            _sub(identifiers, "Identifier", value, type=kind)
    descriptive = _sub(root, "DescriptiveMetadata") if props.descriptive_metadata else None
    ET.indent(root, space="  ")
    if descriptive is not None:
        # Added after indenting: the fragments' own whitespace is content and stays as given.
        descriptive.text = "\n    "
        for index, fragment in enumerate(props.descriptive_metadata):
            element = copy.deepcopy(fragment)
            last = index == len(props.descriptive_metadata) - 1
            element.tail = "\n  " if last else "\n    "
            descriptive.append(element)
    return XML_DECLARATION + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"


def asset_sidecar(props: OpexProperties, fixities: Sequence[FixityRecord]) -> bytes:
    """The ``<file>.opex`` sidecar of one asset (UTF-8 bytes)."""
    if not fixities:
        raise ValueError("an asset sidecar needs at least one fixity value")
    if props.descriptive_metadata or not props.security_tag:
        return _document(props, fixities=fixities)
    return _plain_sidecar(props, fixities)


# The same bytes ``_document`` gives a sidecar without descriptive metadata, written as text: a package of
# 10,000 files spent most of its packaging time building and serialising element trees. ElementTree's escaping.
_CDATA = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTRIB = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"}
)


def _leaf(indent: str, name: str, text: str, attrs: str = "") -> str:
    if not text:
        return f"{indent}<opex:{name}{attrs} />"
    return f"{indent}<opex:{name}{attrs}>{text.translate(_CDATA)}</opex:{name}>"


def _plain_sidecar(props: OpexProperties, fixities: Sequence[FixityRecord]) -> bytes:
    lines = [
        f'<opex:OPEXMetadata xmlns:opex="{OPEX_NS}">',
        "  <opex:Transfer>",
        _leaf("    ", "SourceID", props.source_id),
        "    <opex:Fixities>",
    ]
    lines += (
        f'      <opex:Fixity type="{r.algorithm.translate(_ATTRIB)}" value="{r.value.translate(_ATTRIB)}" />'
        for r in fixities
    )
    lines += ["    </opex:Fixities>", "  </opex:Transfer>", "  <opex:Properties>", _leaf("    ", "Title", props.title)]
    if props.description:
        lines.append(_leaf("    ", "Description", props.description))
    lines.append(_leaf("    ", "SecurityDescriptor", props.security_tag))
    if props.identifiers:
        lines.append("    <opex:Identifiers>")
        lines += (
            _leaf("      ", "Identifier", value, f' type="{kind.translate(_ATTRIB)}"')
            for kind, value in props.identifiers
        )
        lines.append("    </opex:Identifiers>")
    lines += ["  </opex:Properties>", "</opex:OPEXMetadata>", ""]
    return XML_DECLARATION + "\n".join(lines).encode("utf-8")


def folder_manifest(props: OpexProperties, files: Sequence[ManifestFile], folders: Sequence[str]) -> bytes:
    """The ``<folder>/<folder>.opex`` manifest listing the folder's direct children (UTF-8 bytes)."""
    return _document(props, files=files, folders=folders)


def sidecar_name(file_name: str) -> str:
    return file_name + OPEX_SUFFIX


def manifest_name(folder_name: str) -> str:
    return folder_name + OPEX_SUFFIX


# --- reading back ------------------------------------------------------------------------------------


@dataclass
class OpexDocument:
    """An ``.opex`` document read back (any OPEX 1.x namespace)."""

    namespace: str
    source_id: str | None = None
    title: str | None = None
    description: str | None = None
    security_descriptor: str | None = None
    fixities: list[FixityRecord] = field(default_factory=list)
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    manifest_files: list[ManifestFile] | None = None
    manifest_folders: list[str] | None = None
    descriptive_metadata: list[ET.Element] = field(default_factory=list)


def read_opex(data: bytes) -> OpexDocument:
    """Parse an ``.opex`` document; raises ``ValueError`` if it is not OPEX."""
    try:
        root = parse(data)  # no DTD: DocumentRefused, a ValueError
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    if not (
        root.tag.startswith("{http://www.openpreservationexchange.org/opex/") and root.tag.endswith("}OPEXMetadata")
    ):
        raise ValueError(f"root element is {root.tag}, not OPEXMetadata in an OPEX namespace")
    ns = root.tag[1:].split("}", 1)[0]
    q = f"{{{ns}}}"

    def text(path: str) -> str | None:
        element = root.find(_qualify(path, q))
        return element.text if element is not None else None

    doc = OpexDocument(namespace=ns)
    doc.source_id = text("Transfer/SourceID")
    doc.title = text("Properties/Title")
    doc.description = text("Properties/Description")
    doc.security_descriptor = text("Properties/SecurityDescriptor")
    doc.fixities = [
        FixityRecord(e.get("type", ""), e.get("value", ""))
        for e in root.iterfind(_qualify("Transfer/Fixities/Fixity", q))
    ]
    doc.identifiers = [
        (e.get("type", ""), e.text or "") for e in root.iterfind(_qualify("Properties/Identifiers/Identifier", q))
    ]
    manifest = root.find(_qualify("Transfer/Manifest", q))
    if manifest is not None:
        doc.manifest_files = [
            ManifestFile(e.text or "", e.get("type", "content"), int(e.get("size", "-1")))  # type: ignore[arg-type]
            for e in manifest.iterfind(_qualify("Files/File", q))
        ]
        doc.manifest_folders = [e.text or "" for e in manifest.iterfind(_qualify("Folders/Folder", q))]
    descriptive = root.find(q + "DescriptiveMetadata")
    if descriptive is not None:
        doc.descriptive_metadata = list(descriptive)
    return doc


def _qualify(path: str, q: str) -> str:
    return "/".join(q + part for part in path.split("/"))
