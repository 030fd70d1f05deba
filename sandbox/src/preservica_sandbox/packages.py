"""Reading submitted packages: the file tree (a zip, or objects under a prefix) and the XML inside it.

The sandbox is the receiving side of the wire, so nothing here uses the provider's ``packaging``
module: OPEX sidecars/manifests and XIP ``metadata.xml`` are parsed from scratch, by local element
names (any OPEX version ``…/opex/v1.0``-``v1.2``, any XIP ``…/XIP/v6.x``/``v7.x``).

- ``PackageTree``: relative POSIX paths of files and directories, sizes, and ``open``. ``ZipTree`` reads a
  zip; ``FileTree`` maps paths to files on disk. Unsafe member names (absolute, ``..``) raise
  ``PackageError``.
- ``parse_opex``: an ``OPEXMetadata`` document -> ``OpexDocument``.
- ``parse_xip``: a ``metadata.xml`` -> ``XipPackage`` (plain records, no repository objects).
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree as ET

from .errors import SandboxHTTPError
from .xml_bodies import parse_with_prefixes, serialize_fragment

OPEX_NS_PREFIX = "http://www.openpreservationexchange.org/opex/"
XIP_NS_PREFIX = "http://preservica.com/XIP/"
OPEX_SUFFIX = ".opex"
#: Any of these in a name fails the whole OPEX ingest (Preservica community guide).
ILLEGAL_NAME_CHARACTERS = frozenset(':<>|"*\\')
#: Fixity names as OPEX (``SHA-256``) or XIP (``SHA256``) write them -> the repository's names.
FIXITY_NAMES = {
    "MD5": "MD5",
    "SHA1": "SHA1",
    "SHA-1": "SHA1",
    "SHA256": "SHA256",
    "SHA-256": "SHA256",
    "SHA512": "SHA512",
    "SHA-512": "SHA512",
}


class PackageError(ValueError):
    """The package as a whole cannot be ingested; the message says why (and names the path)."""


def fixity_name(algorithm: str) -> str | None:
    return FIXITY_NAMES.get(algorithm.strip().upper())


def silently_skipped(name: str) -> bool:
    """Preservica's OPEX ingest skips, without a word, files whose names have ``?`` or non-ASCII characters."""
    return "?" in name or not name.isascii()


# --------------------------------------------------------------------------- trees
def normalize_member(name: str) -> str:
    """``a/b/c`` for a safe relative member name; ``PackageError`` for absolute or ``..`` paths."""
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise PackageError(f"unsafe path in package: {name!r} is absolute")
    parts = [p for p in cleaned.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PackageError(f"unsafe path in package: {name!r} leaves the package")
    return "/".join(parts)


class PackageTree:
    """Files and directories of a package by relative path (``""`` is the package root)."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}  # path -> size
        self.dirs: set[str] = {""}

    def _add_file(self, path: str, size: int) -> None:
        self.files[path] = size
        parent = posixpath.dirname(path)
        while parent and parent not in self.dirs:
            self.dirs.add(parent)
            parent = posixpath.dirname(parent)

    def _add_dir(self, path: str) -> None:
        while path and path not in self.dirs:
            self.dirs.add(path)
            path = posixpath.dirname(path)

    def children(self, directory: str) -> tuple[list[str], list[str]]:
        """``(sub-directories, files)`` directly inside ``directory``, sorted."""
        prefix = f"{directory}/" if directory else ""
        subdirs = sorted(d for d in self.dirs if d and posixpath.dirname(d) == directory)
        files = sorted(f for f in self.files if f.startswith(prefix) and posixpath.dirname(f) == directory)
        return subdirs, files

    def open(self, path: str) -> BinaryIO:
        raise NotImplementedError

    def read(self, path: str, limit: int = 16 * 1024 * 1024) -> bytes:
        if self.files.get(path, 0) > limit:
            raise PackageError(f"{path}: XML document larger than {limit} bytes")
        with self.open(path) as handle:
            return handle.read()

    def close(self) -> None:
        pass


class ZipTree(PackageTree):
    """A zip file, by path or as an open seekable binary stream (closed with the tree)."""

    def __init__(self, source: Path | BinaryIO) -> None:
        super().__init__()
        self._stream = None if isinstance(source, Path) else source
        try:
            self._zip = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as exc:
            if self._stream is not None:
                self._stream.close()
            raise PackageError(f"the package is not a readable zip file ({exc})") from None
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            name = normalize_member(info.filename)
            if not name:
                continue
            if info.is_dir():
                self._add_dir(name)
            else:
                self._members[name] = info
                self._add_file(name, info.file_size)

    def open(self, path: str) -> BinaryIO:
        return self._zip.open(self._members[path])  # type: ignore[return-value]

    def close(self) -> None:
        self._zip.close()
        if self._stream is not None:
            self._stream.close()


OpenFn = Callable[[str], BinaryIO]


class FileTree(PackageTree):
    """A tree whose files are opened by a callable (objects under a prefix of a bucket)."""

    def __init__(self, files: Mapping[str, tuple[int, Path | None]], opener: OpenFn | None = None) -> None:
        super().__init__()
        self._paths: dict[str, Path | None] = {}
        self._opener = opener
        for name, (size, local) in files.items():
            path = normalize_member(name)
            if not path:
                continue
            if name.endswith("/") and size == 0:  # a "folder" object
                self._add_dir(path)
                continue
            self._paths[path] = local
            self._add_file(path, size)

    def open(self, path: str) -> BinaryIO:
        if self._opener is not None:
            return self._opener(path)
        local = self._paths[path]
        if local is None:
            raise PackageError(f"{path}: no bytes")
        return open(local, "rb")


# --------------------------------------------------------------------------- XML helpers
def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _namespace(tag: object) -> str:
    text = str(tag)
    return text[1:].split("}", 1)[0] if text.startswith("{") else ""


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element: ET.Element | None, name: str) -> str | None:
    found = _child(element, name)
    if found is None:
        return None
    return (found.text or "").strip()


def parse_xml(data: bytes, path: str) -> tuple[ET.Element, dict[str, str]]:
    """Root element and declared prefixes; ``PackageError`` naming ``path`` if malformed or a DOCTYPE."""
    try:
        return parse_with_prefixes(data)
    except SandboxHTTPError as exc:
        raise PackageError(f"{path}: malformed XML ({exc.message})") from None


# --------------------------------------------------------------------------- OPEX
@dataclass
class OpexFixity:
    algorithm: str  # as written, e.g. "SHA-256"
    value: str
    path: str | None = None


@dataclass
class ManifestEntry:
    name: str
    type: str  # content | metadata
    size: int | None


@dataclass
class OpexDocument:
    source_id: str | None = None
    title: str | None = None
    description: str | None = None
    security_tag: str | None = None
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    fixities: list[OpexFixity] = field(default_factory=list)
    manifest_files: list[ManifestEntry] | None = None
    manifest_folders: list[str] | None = None
    original_filename: str | None = None
    fragments: list[tuple[str, str]] = field(default_factory=list)  # (schema, xml)


def parse_opex(data: bytes, path: str) -> OpexDocument:
    root, prefixes = parse_xml(data, path)
    if _local(root.tag) != "OPEXMetadata" or not _namespace(root.tag).startswith(OPEX_NS_PREFIX):
        raise PackageError(f"{path}: not an OPEX document (root {_local(root.tag)!r} in {_namespace(root.tag)!r})")
    doc = OpexDocument()
    transfer = _child(root, "Transfer")
    if transfer is not None:
        doc.source_id = _text(transfer, "SourceID") or None
        doc.original_filename = _text(transfer, "OriginalFilename") or None
        manifest = _child(transfer, "Manifest")
        if manifest is not None:
            doc.manifest_files = []
            doc.manifest_folders = []
            for files in _children(manifest, "Files"):
                for item in _children(files, "File"):
                    size_text = item.get("size")
                    try:
                        size = int(size_text) if size_text else None
                    except ValueError:
                        raise PackageError(f"{path}: File size {size_text!r} is not a number") from None
                    doc.manifest_files.append(ManifestEntry((item.text or "").strip(), item.get("type", ""), size))
            for folders in _children(manifest, "Folders"):
                doc.manifest_folders.extend((f.text or "").strip() for f in _children(folders, "Folder"))
        for fixities in _children(transfer, "Fixities"):
            for item in _children(fixities, "Fixity"):
                algorithm, value = item.get("type"), item.get("value")
                if not algorithm or not value:
                    raise PackageError(f"{path}: a Fixity needs type and value attributes")
                doc.fixities.append(OpexFixity(algorithm, value.strip().lower(), item.get("path")))
    properties = _child(root, "Properties")
    if properties is not None:
        doc.title = _text(properties, "Title") or None
        doc.description = _text(properties, "Description") or None
        doc.security_tag = _text(properties, "SecurityDescriptor") or None
        for identifiers in _children(properties, "Identifiers"):
            for item in _children(identifiers, "Identifier"):
                value = (item.text or "").strip()
                if value:
                    doc.identifiers.append((item.get("type") or "code", value))
    descriptive = _child(root, "DescriptiveMetadata")
    if descriptive is not None:
        for fragment in descriptive:
            schema = _namespace(fragment.tag)
            if not schema:
                raise PackageError(f"{path}: descriptive metadata <{_local(fragment.tag)}> has no namespace")
            doc.fragments.append((schema, serialize_fragment(fragment, prefixes)))
    return doc


# --------------------------------------------------------------------------- XIP
@dataclass
class XipEntity:
    kind: str  # SO | IO | CO
    ref: str
    title: str
    description: str
    security_tag: str
    custom_type: str | None
    parent: str | None


@dataclass
class XipRepresentation:
    asset: str
    name: str
    type: str
    content_objects: list[str]


@dataclass
class XipBitstream:
    filename: str
    size: int | None
    location: str  # PhysicalLocation, e.g. "p1"
    fixities: list[tuple[str, str]]  # (algorithm as written, value)


@dataclass
class XipGeneration:
    content_object: str
    original: bool
    active: bool
    label: str
    effective_date: str | None
    bitstreams: list[str]  # "p1/doc.txt"


@dataclass
class XipPackage:
    base: str  # directory of metadata.xml inside the package
    version: str
    folders: list[XipEntity] = field(default_factory=list)
    assets: list[XipEntity] = field(default_factory=list)
    content_objects: dict[str, XipEntity] = field(default_factory=dict)
    representations: list[XipRepresentation] = field(default_factory=list)
    generations: list[XipGeneration] = field(default_factory=list)
    bitstreams: list[XipBitstream] = field(default_factory=list)
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)  # (entity, type, value)
    metadata: list[tuple[str, str, str]] = field(default_factory=list)  # (entity, schema, xml)

    def bitstream_for(self, reference: str) -> XipBitstream | None:
        """The ``Bitstream`` a generation names as ``<PhysicalLocation>/<Filename>`` (or a bare filename)."""
        location, _, filename = reference.rpartition("/")
        for bitstream in self.bitstreams:
            if bitstream.filename == filename and (not location or bitstream.location == location):
                return bitstream
        return None

    def content_path(self, bitstream: XipBitstream, tree: PackageTree) -> str | None:
        """Where the bytes of ``bitstream`` are in the package (pyPreservica: ``content/<location>/<file>``)."""
        base = f"{self.base}/" if self.base else ""
        candidates = [
            f"{base}content/{bitstream.location}/{bitstream.filename}",
            f"{base}content/{bitstream.filename}",
            f"{base}{bitstream.location}/{bitstream.filename}",
            f"{base}{bitstream.filename}",
        ]
        for candidate in candidates:
            normalized = posixpath.normpath(candidate) if candidate else candidate
            if normalized in tree.files:
                return normalized
        return None


def is_xip(data: bytes) -> bool:
    head = data[:4096]
    return b"preservica.com/XIP/" in head and b"XIP" in head


def _entity(element: ET.Element, kind: str, path: str) -> XipEntity:
    ref = _text(element, "Ref")
    if not ref:
        raise PackageError(f"{path}: a {_local(element.tag)} has no Ref")
    return XipEntity(
        kind=kind,
        ref=ref,
        title=_text(element, "Title") or "",
        description=_text(element, "Description") or "",
        security_tag=_text(element, "SecurityTag") or "open",
        custom_type=_text(element, "CustomType") or None,
        parent=_text(element, "Parent") or None,
    )


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.strip().lower() == "true"


def parse_xip(data: bytes, path: str) -> XipPackage:
    root, prefixes = parse_xml(data, path)
    namespace = _namespace(root.tag)
    if _local(root.tag) != "XIP" or not namespace.startswith(XIP_NS_PREFIX):
        raise PackageError(f"{path}: not an XIP document (root {_local(root.tag)!r} in {namespace!r})")
    package = XipPackage(base=posixpath.dirname(path), version=namespace[len(XIP_NS_PREFIX) :])
    for element in root:
        name = _local(element.tag)
        if name == "StructuralObject":
            package.folders.append(_entity(element, "SO", path))
        elif name == "InformationObject":
            package.assets.append(_entity(element, "IO", path))
        elif name == "ContentObject":
            entity = _entity(element, "CO", path)
            package.content_objects[entity.ref] = entity
        elif name == "Representation":
            cos = _child(element, "ContentObjects")
            package.representations.append(
                XipRepresentation(
                    asset=_text(element, "InformationObject") or "",
                    name=_text(element, "Name") or _text(element, "Type") or "Preservation",
                    type=_text(element, "Type") or "Preservation",
                    content_objects=[(c.text or "").strip() for c in _children(cos, "ContentObject")] if cos else [],
                )
            )
        elif name == "Generation":
            streams = _child(element, "Bitstreams")
            package.generations.append(
                XipGeneration(
                    content_object=_text(element, "ContentObject") or "",
                    original=_flag(element.get("original"), True),
                    active=_flag(element.get("active"), True),
                    label=_text(element, "Label") or "",
                    effective_date=_text(element, "EffectiveDate") or None,
                    bitstreams=[(b.text or "").strip() for b in _children(streams, "Bitstream")] if streams else [],
                )
            )
        elif name == "Bitstream":
            fixities: list[tuple[str, str]] = []
            for group in _children(element, "Fixities"):
                for fixity in _children(group, "Fixity"):
                    algorithm, value = _text(fixity, "FixityAlgorithmRef"), _text(fixity, "FixityValue")
                    if algorithm and value:
                        fixities.append((algorithm, value.lower()))
            size_text = _text(element, "FileSize")
            try:
                size = int(size_text) if size_text else None
            except ValueError:
                raise PackageError(f"{path}: FileSize {size_text!r} is not a number") from None
            package.bitstreams.append(
                XipBitstream(
                    filename=_text(element, "Filename") or "",
                    size=size,
                    location=_text(element, "PhysicalLocation") or "",
                    fixities=fixities,
                )
            )
        elif name == "Identifier":
            owner, id_type, value = _text(element, "Entity"), _text(element, "Type"), _text(element, "Value")
            if owner and id_type and value:
                package.identifiers.append((owner, id_type, value))
        elif name == "Metadata":
            owner = _text(element, "Entity")
            content = _child(element, "Content")
            documents = list(content) if content is not None else []
            if owner and documents:
                document = documents[0]
                schema = element.get("schemaUri") or _namespace(document.tag)
                package.metadata.append((owner, schema, serialize_fragment(document, prefixes)))
    if not package.assets and not package.folders:
        raise PackageError(f"{path}: the XIP document describes no InformationObject or StructuralObject")
    return package


def find_xip_documents(tree: PackageTree) -> list[str]:
    """Paths of ``metadata.xml`` files that are XIP documents."""
    found: list[str] = []
    for path in sorted(tree.files):
        if posixpath.basename(path).lower() == "metadata.xml" and tree.files[path] < 64 * 1024 * 1024:
            with tree.open(path) as handle:
                head = handle.read(4096)
            if is_xip(head):
                found.append(path)
    return found


def has_opex(names: Iterable[str]) -> bool:
    return any(name.lower().endswith(OPEX_SUFFIX) for name in names)
