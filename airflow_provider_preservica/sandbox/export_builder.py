"""Building OPEX export zips on disk: the ``ExportAction`` options, a snapshot of what to export, the writer.

An export is taken in two steps so the repository lock is held only briefly: ``snapshot`` copies what
is needed (titles, refs, metadata, bitstream file paths) into plain frozen records, then
``write_export`` streams the zip to disk from those records and the blob files, in constant memory
(1 MiB copy buffer; PAX zips are written straight into the outer zip, never to a temporary file).

Layout of the export zip (OPEX 1.2, what pyPreservica's ``OpexAPI`` reads)::

    <ancestor-ref>/                           only with IncludeParentHierarchy=true, root first
      <ancestor-ref>.opex                     folder sidecar; its manifest lists just the next level
      <folder-ref>/                           the exported folder (or the exported asset's parent)
        <folder-ref>.opex                     Transfer/SourceID, Manifest (Files with size, Folders),
                                              Properties (Title, Description, SecurityDescriptor,
                                              Identifiers), DescriptiveMetadata
        <sub-folder-ref>/ ...                 every folder below, the same way
        <asset-ref>.pax.zip                   one PAX per asset (stored, not compressed again)
        <asset-ref>.pax.zip.opex              Transfer/SourceID = asset ref and
                                              Transfer/Fixities/Fixity[@type="SHA-256"][@value] of the
                                              .pax.zip itself; Properties; DescriptiveMetadata

An exported asset without the parent hierarchy sits at the top: ``<asset-ref>.pax.zip`` and its sidecar.
Names are entity references, as Preservica's own exports use them (titles are in the sidecars).

Inside each ``<asset-ref>.pax.zip``: ``<asset-ref>.xip`` (XIP in the server version's namespace:
InformationObject, Representation, ContentObject, Generation, Bitstream — with ``PhysicalLocation`` and
every stored ``Fixity`` — then Identifier and Metadata, then EventAction) and the files at exactly four
levels, ``Representation_<Type>[_<n>]/<co-ref>/Generation_<g>/<filename>``.

Options: ``IncludeContent`` ``NoContent`` leaves files and the Representation/ContentObject/Generation/
Bitstream records out (the PAX holds only the XIP). ``IncludeMetadata`` ``NoMetadata`` leaves identifiers
and descriptive metadata out (title, description and security tag stay: they are properties);
``MetadataWithEvents`` adds one synthetic ``EventAction`` (the entity's creation) per asset, since the
sandbox keeps no event history. ``IncludedGenerations``: ``LatestActive`` the last active generation of
each content object, ``AllActive`` every active one, ``All`` every one. Values are matched without regard
to case; anything else is a 400.

Placeholders: an asset with no stored bitstream bytes (every seeded asset) is exported with one
deterministic placeholder file, ``Representation_Preservation/<uuid5(asset ref)>/Generation_1/<asset-ref>.txt``
holding ``Preservica sandbox placeholder for asset <ref>\\nTitle: <title>\\n`` (UTF-8), declared in the XIP
with its size and fixities like any other bitstream, so exports of seeded data still carry content that
can be verified. ``GET /api/content/download`` serves the same bytes. Bitstreams recorded without bytes are
left out of the export.

Zips are deterministic: entries in repository order, timestamps from each entity's ``modified`` time,
fixed permissions, DEFLATE for XML and STORED for content.
"""

from __future__ import annotations

import hashlib
import typing
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .entity_xml import XML_DECLARATION, child_text, local, parse_body
from .errors import SandboxHTTPError
from .repository import FIXITY_ALGORITHMS, IO, SO, Entity, Repository

OPEX_NS = "http://www.openpreservationexchange.org/opex/v1.2"
PLACEHOLDER_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4b7a-9a57-2c2f3f0e4d11")
COPY_CHUNK = 1 << 20
_FILE_MODE = 0o644 << 16
_DIR_MODE = (0o755 << 16) | 0x10

OPTION_VALUES: dict[str, tuple[str, ...]] = {
    "IncludeContent": ("Content", "NoContent"),
    "IncludeMetadata": ("Metadata", "NoMetadata", "MetadataWithEvents"),
    "IncludedGenerations": ("LatestActive", "AllActive", "All"),
    "IncludeParentHierarchy": ("true", "false"),
}


class ExportCancelled(Exception):
    """Raised inside ``write_export`` when the job is asked to stop."""


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class ExportOptions:
    """The four ``ExportAction`` settings; defaults are pyPreservica's (``All`` generations)."""

    include_content: str = "Content"
    include_metadata: str = "Metadata"
    included_generations: str = "All"
    include_parent_hierarchy: bool = True

    @property
    def content(self) -> bool:
        return self.include_content == "Content"

    @property
    def metadata(self) -> bool:
        return self.include_metadata != "NoMetadata"

    @property
    def events(self) -> bool:
        return self.include_metadata == "MetadataWithEvents"

    def to_json(self) -> dict[str, Any]:
        return {
            "IncludeContent": self.include_content,
            "IncludeMetadata": self.include_metadata,
            "IncludedGenerations": self.included_generations,
            "IncludeParentHierarchy": self.include_parent_hierarchy,
        }


def _canonical(name: str, value: str) -> str:
    for allowed in OPTION_VALUES[name]:
        if value.casefold() == allowed.casefold():
            return allowed
    raise SandboxHTTPError(
        400, f"{name} must be one of {', '.join(OPTION_VALUES[name])}, not {value!r}", extra={"option": name}
    )


def parse_export_action(body: bytes) -> ExportOptions:
    """The options of an ``ExportAction`` body (any namespace); 400 for anything unknown or malformed.

    Elements left out take the defaults of ``ExportOptions``.
    """
    if not body.strip():
        raise SandboxHTTPError(400, "an export needs an ExportAction XML body")
    root = parse_body(body)
    if local(root.tag) != "ExportAction":
        raise SandboxHTTPError(400, f"expected an ExportAction, not {local(root.tag)}")
    unknown = [local(child.tag) for child in root if local(child.tag) not in OPTION_VALUES]
    if unknown:
        raise SandboxHTTPError(400, f"unknown ExportAction elements: {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name in OPTION_VALUES:
        text = child_text(root, name)
        if text is not None:
            values[name] = _canonical(name, text)
    defaults = ExportOptions()
    return ExportOptions(
        include_content=values.get("IncludeContent", defaults.include_content),
        include_metadata=values.get("IncludeMetadata", defaults.include_metadata),
        included_generations=values.get("IncludedGenerations", defaults.included_generations),
        include_parent_hierarchy=values.get(
            "IncludeParentHierarchy", "true" if defaults.include_parent_hierarchy else "false"
        )
        == "true",
    )


# --------------------------------------------------------------------------- snapshot records
@dataclass(frozen=True)
class BlobSnap:
    """One bitstream to export: bytes from ``path`` (a blob file) or ``data`` (a placeholder)."""

    filename: str
    size: int
    fixities: tuple[tuple[str, str], ...]
    path: Path | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class GenerationSnap:
    index: int
    original: bool
    active: bool
    format_group: str | None
    effective_date: str | None
    formats: tuple[tuple[tuple[str, str], ...], ...]
    bitstreams: tuple[BlobSnap, ...]


@dataclass(frozen=True)
class ContentObjectSnap:
    ref: str
    title: str
    description: str
    security_tag: str
    custom_type: str | None
    generations: tuple[GenerationSnap, ...]


@dataclass(frozen=True)
class RepresentationSnap:
    type: str
    name: str
    directory: str
    content_objects: tuple[ContentObjectSnap, ...]


@dataclass(frozen=True)
class NodeSnap:
    """A folder (with ``children``) or an asset (with ``representations``)."""

    ref: str
    kind: str
    title: str
    description: str
    security_tag: str
    parent: str | None
    custom_type: str | None
    created: str
    modified: str
    identifiers: tuple[tuple[str, str, str], ...]  # (api id, type, value)
    metadata: tuple[tuple[str, str, str], ...]  # (fragment ref, schema, xml)
    representations: tuple[RepresentationSnap, ...] = ()
    children: tuple[NodeSnap, ...] = ()


@dataclass(frozen=True)
class ExportPlan:
    """What to write: ``ancestors`` (root first; empty without the parent hierarchy) and the ``target``."""

    target: NodeSnap
    ancestors: tuple[NodeSnap, ...]
    options: ExportOptions
    xip_ns: str
    total_bytes: int
    assets: int
    folders: int


@dataclass(frozen=True)
class Placeholder:
    co_ref: str
    filename: str
    data: bytes

    def blob(self) -> BlobSnap:
        fixities = tuple(sorted((alg, hashlib.new(py, self.data).hexdigest()) for alg, py in FIXITY_ALGORITHMS.items()))
        return BlobSnap(self.filename, len(self.data), fixities, data=self.data)


def placeholder(asset: Entity) -> Placeholder:
    """The deterministic stand-in content of an asset with no stored bytes (see the module docstring)."""
    text = f"Preservica sandbox placeholder for asset {asset.ref}\nTitle: {asset.title}\n"
    return Placeholder(str(uuid.uuid5(PLACEHOLDER_NAMESPACE, asset.ref)), f"{asset.ref}.txt", text.encode("utf-8"))


def _selected(generations: list[Any], which: str) -> list[tuple[int, Any]]:
    numbered = list(enumerate(generations, start=1))
    if which == "All":
        return numbered
    active = [(i, g) for i, g in numbered if g.active]
    return active if which == "AllActive" else active[-1:]


def _safe_name(name: str) -> str:
    cleaned = name.replace("/", "_").replace("\\", "_").strip()
    return cleaned if cleaned not in ("", ".", "..") else "bitstream"


def has_stored_bytes(repo: Repository, asset: Entity) -> bool:
    """Whether any bitstream of any content object of ``asset`` has its bytes on disk."""
    for rep in asset.representations:
        for co_ref in rep.content_objects:
            co = repo.get(co_ref)
            for generation in co.generations if co is not None else []:
                if any(b.location is not None for b in generation.bitstreams):
                    return True
    return False


def _snap_asset(repo: Repository, asset: Entity, options: ExportOptions) -> tuple[NodeSnap, int]:
    representations: list[RepresentationSnap] = []
    total = 0
    if options.content:
        seen: dict[str, int] = {}
        for rep in asset.representations:
            seen[rep.type] = seen.get(rep.type, 0) + 1
            directory = f"Representation_{rep.type}" + (f"_{seen[rep.type]}" if seen[rep.type] > 1 else "")
            cos: list[ContentObjectSnap] = []
            for co_ref in rep.content_objects:
                co = repo.get(co_ref)
                if co is None:
                    continue
                generations: list[GenerationSnap] = []
                for index, generation in _selected(co.generations, options.included_generations):
                    blobs: list[BlobSnap] = []
                    names: set[str] = set()
                    for bitstream in generation.bitstreams:
                        path = repo.blob_path(bitstream)
                        if path is None:
                            continue
                        name = _safe_name(bitstream.filename)
                        stem, dot, suffix = name.rpartition(".")
                        n = 1
                        while name in names:
                            n += 1
                            name = f"{stem}_{n}.{suffix}" if dot else f"{suffix}_{n}"
                        names.add(name)
                        blobs.append(BlobSnap(name, bitstream.size, tuple(sorted(bitstream.fixities.items())), path))
                        total += bitstream.size
                    if blobs:
                        generations.append(
                            GenerationSnap(
                                index,
                                generation.original,
                                generation.active,
                                generation.format_group,
                                generation.effective_date,
                                tuple(tuple(sorted(f.items())) for f in generation.formats),
                                tuple(blobs),
                            )
                        )
                if generations:
                    cos.append(
                        ContentObjectSnap(
                            co.ref, co.title, co.description, co.security_tag, co.custom_type, tuple(generations)
                        )
                    )
            if cos:
                representations.append(RepresentationSnap(rep.type, rep.name, directory, tuple(cos)))
        if not representations and not has_stored_bytes(repo, asset):
            stand_in = placeholder(asset)
            blob = stand_in.blob()
            total += blob.size
            generation = GenerationSnap(1, True, True, None, asset.created, (), (blob,))
            co_snap = ContentObjectSnap(
                stand_in.co_ref, asset.title, "Sandbox placeholder content", asset.security_tag, None, (generation,)
            )
            representations.append(
                RepresentationSnap("Preservation", "Preservation", "Representation_Preservation", (co_snap,))
            )
    return _node(asset, options, representations=tuple(representations)), total


def _node(entity: Entity, options: ExportOptions, **extra: Any) -> NodeSnap:
    return NodeSnap(
        ref=entity.ref,
        kind=entity.kind,
        title=entity.title,
        description=entity.description,
        security_tag=entity.security_tag,
        parent=entity.parent,
        custom_type=entity.custom_type,
        created=entity.created,
        modified=entity.modified,
        identifiers=tuple((i.api_id, i.type, i.value) for i in entity.identifiers) if options.metadata else (),
        metadata=tuple((m.ref, m.schema, m.xml) for m in entity.metadata) if options.metadata else (),
        **extra,
    )


def snapshot(repo: Repository, ref: str, kind: str, options: ExportOptions, xip_ns: str) -> ExportPlan:
    """Copy what an export of ``ref`` needs, under the repository lock. ``EntityNotFound`` if it is gone."""
    with repo.lock:
        target = repo.require(ref, kind)
        counts = {"bytes": 0, "assets": 0, "folders": 0}

        def build(entity: Entity) -> NodeSnap:
            if entity.kind == IO:
                node, size = _snap_asset(repo, entity, options)
                counts["bytes"] += size
                counts["assets"] += 1
                return node
            counts["folders"] += 1
            children = tuple(build(repo.require(child)) for child in repo.children(entity.ref))
            return _node(entity, options, children=children)

        root = build(target)
        ancestors: tuple[NodeSnap, ...] = ()
        if options.include_parent_hierarchy:
            ancestors = tuple(_node(repo.require(a, SO), options) for a in repo.ancestors(target.ref))
            counts["folders"] += len(ancestors)
        return ExportPlan(root, ancestors, options, xip_ns, counts["bytes"], counts["assets"], counts["folders"])


# --------------------------------------------------------------------------- XML
def _el(tag: str, text: str | None) -> str:
    return f"<{tag}>{escape(text)}</{tag}>" if text else ""


def _opex_properties(node: NodeSnap) -> str:
    parts = ["<opex:Properties>", _el("opex:Title", node.title), _el("opex:Description", node.description)]
    parts.append(_el("opex:SecurityDescriptor", node.security_tag))
    if node.identifiers:
        parts.append("<opex:Identifiers>")
        for _api, id_type, value in node.identifiers:
            parts.append(f"<opex:Identifier type={quoteattr(id_type)}>{escape(value)}</opex:Identifier>")
        parts.append("</opex:Identifiers>")
    parts.append("</opex:Properties>")
    if node.metadata:
        parts.append("<opex:DescriptiveMetadata>" + "".join(xml for _r, _s, xml in node.metadata))
        parts.append("</opex:DescriptiveMetadata>")
    return "".join(parts)


def _opex_open() -> str:
    return f"{XML_DECLARATION}<opex:OPEXMetadata xmlns:opex={quoteattr(OPEX_NS)}>"


def asset_sidecar(node: NodeSnap, pax_sha256: str) -> str:
    return (
        _opex_open()
        + "<opex:Transfer>"
        + _el("opex:SourceID", node.ref)
        + f'<opex:Fixities><opex:Fixity type="SHA-256" value="{pax_sha256}"/></opex:Fixities>'
        + "</opex:Transfer>"
        + _opex_properties(node)
        + "</opex:OPEXMetadata>"
    )


def folder_sidecar(node: NodeSnap, files: list[tuple[str, str, int | None]], folders: list[str]) -> str:
    """``files``: (name, ``content``|``metadata``, size or None); ``folders``: directory names."""
    manifest = ["<opex:Manifest>"]
    if files:
        manifest.append("<opex:Files>")
        for name, file_type, size in files:
            size_attr = f' size="{size}"' if size is not None else ""
            manifest.append(f'<opex:File type="{file_type}"{size_attr}>{escape(name)}</opex:File>')
        manifest.append("</opex:Files>")
    if folders:
        manifest.append("<opex:Folders>" + "".join(_el("opex:Folder", f) for f in folders) + "</opex:Folders>")
    manifest.append("</opex:Manifest>")
    return (
        _opex_open()
        + "<opex:Transfer>"
        + _el("opex:SourceID", node.ref)
        + "".join(manifest)
        + "</opex:Transfer>"
        + _opex_properties(node)
        + "</opex:OPEXMetadata>"
    )


def generation_path(rep: RepresentationSnap, co: ContentObjectSnap, generation: GenerationSnap) -> str:
    return f"{rep.directory}/{co.ref}/Generation_{generation.index}"


def asset_xip(node: NodeSnap, options: ExportOptions, xip_ns: str) -> str:
    parts = [f"{XML_DECLARATION}<XIP xmlns={quoteattr(xip_ns)}>", "<InformationObject>", _el("Ref", node.ref)]
    parts += [_el("Title", node.title), _el("Description", node.description), _el("SecurityTag", node.security_tag)]
    parts += [_el("CustomType", node.custom_type), _el("Parent", node.parent), "</InformationObject>"]
    for rep in node.representations:
        parts += ["<Representation>", _el("InformationObject", node.ref), _el("Name", rep.name), _el("Type", rep.type)]
        parts.append("<ContentObjects>" + "".join(_el("ContentObject", co.ref) for co in rep.content_objects))
        parts.append("</ContentObjects></Representation>")
    for rep in node.representations:
        for co in rep.content_objects:
            parts += ["<ContentObject>", _el("Ref", co.ref), _el("Title", co.title), _el("Description", co.description)]
            parts += [_el("SecurityTag", co.security_tag), _el("CustomType", co.custom_type), _el("Parent", node.ref)]
            parts.append("</ContentObject>")
    for rep in node.representations:
        for co in rep.content_objects:
            for generation in co.generations:
                location = generation_path(rep, co, generation)
                parts.append(
                    f'<Generation original="{str(generation.original).lower()}" '
                    f'active="{str(generation.active).lower()}">'
                )
                parts += [_el("ContentObject", co.ref), _el("Label", f"Generation_{generation.index}")]
                parts += [_el("FormatGroup", generation.format_group), _el("EffectiveDate", generation.effective_date)]
                parts.append(
                    "<Bitstreams>"
                    + "".join(_el("Bitstream", f"{location}/{b.filename}") for b in generation.bitstreams)
                    + "</Bitstreams>"
                )
                if generation.formats:
                    parts.append("<Formats>")
                    for fmt in generation.formats:
                        values = dict(fmt)
                        valid = values.pop("valid", values.pop("Valid", "true"))
                        parts.append(f"<Format valid={quoteattr(str(valid).lower())}>")
                        for key in ("PUID", "Priority", "IdentificationMethod", "FormatName", "FormatVersion"):
                            value = values.get(key)
                            parts.append(_el(key, None if value is None else str(value)))
                        parts.append("</Format>")
                    parts.append("</Formats>")
                parts.append("</Generation>")
    for rep in node.representations:
        for co in rep.content_objects:
            for generation in co.generations:
                location = generation_path(rep, co, generation)
                for blob in generation.bitstreams:
                    parts += ["<Bitstream>", _el("Filename", blob.filename), f"<FileSize>{blob.size}</FileSize>"]
                    parts += [_el("PhysicalLocation", location), "<Fixities>"]
                    for algorithm, value in blob.fixities:
                        parts.append(
                            f"<Fixity>{_el('FixityAlgorithmRef', algorithm)}{_el('FixityValue', value)}</Fixity>"
                        )
                    parts.append("</Fixities></Bitstream>")
    for api_id, id_type, value in node.identifiers:
        parts += ["<Identifier>", _el("ApiId", api_id), _el("Type", id_type), _el("Value", value)]
        parts += [_el("Entity", node.ref), "</Identifier>"]
    for mref, schema, xml in node.metadata:
        parts.append(f"<Metadata schemaUri={quoteattr(schema)}>{_el('Ref', mref)}{_el('Entity', node.ref)}")
        parts.append(f"<Content>{xml}</Content></Metadata>")
    if options.events:
        event_ref = str(uuid.uuid5(PLACEHOLDER_NAMESPACE, f"event:{node.ref}"))
        parts.append('<EventAction commandType="AddInformationObject">')
        parts += ['<Event type="Ingest">', _el("Ref", event_ref), _el("Date", node.created), _el("User", "sandbox")]
        parts += ["</Event>", _el("Date", node.created), _el("Entity", node.ref), "</EventAction>"]
    parts.append("</XIP>")
    return "".join(parts)


# --------------------------------------------------------------------------- writing
def _date_time(timestamp: str) -> tuple[int, int, int, int, int, int]:
    """``2023-11-14T22:13:20.500Z`` -> a zip timestamp (1980-01-01 for anything unreadable or earlier)."""
    try:
        date, _, clock = timestamp.partition("T")
        year, month, day = (int(x) for x in date.split("-"))
        hour, minute, second = (int(float(x)) for x in clock.rstrip("Z").split(":"))
        if year < 1980:
            raise ValueError
        return year, month, day, hour, minute, min(second, 59)
    except ValueError:
        return 1980, 1, 1, 0, 0, 0


def _info(name: str, when: str, compress: int, size: int = 0) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_date_time(when))
    info.create_system = 3
    info.compress_type = compress
    info.external_attr = _DIR_MODE if name.endswith("/") else _FILE_MODE
    info.file_size = size
    return info


class _HashingWriter:
    """Counts and SHA-256-hashes what passes through to ``target`` (an unseekable stream for zipfile)."""

    def __init__(self, target: typing.IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.target.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def close(self) -> None:
        """The PAX zip closing must not close the outer zip's entry: that is closed by its own ``with``."""


@dataclass
class ExportResult:
    size: int
    assets: int
    folders: int
    files: int


Progress = Callable[[int], None]


class _Writer:
    def __init__(self, plan: ExportPlan, out: zipfile.ZipFile, report: Progress, stop: Callable[[], bool]) -> None:
        self.plan = plan
        self.out = out
        self.report = report
        self.stop = stop
        self.done = 0
        self.files = 0

    def _check(self) -> None:
        if self.stop():
            raise ExportCancelled("the export was cancelled")

    def text(self, name: str, when: str, body: str) -> None:
        self._check()
        self.out.writestr(_info(name, when, zipfile.ZIP_DEFLATED), body.encode("utf-8"))

    def directory(self, name: str, when: str) -> None:
        self.out.writestr(_info(name.rstrip("/") + "/", when, zipfile.ZIP_STORED), b"")

    def _copy(self, blob: BlobSnap, target: typing.IO[bytes]) -> None:
        if blob.data is not None:
            target.write(blob.data)
            self.done += len(blob.data)
            self.report(self.done)
            return
        assert blob.path is not None
        written = 0
        with open(blob.path, "rb") as source:
            while chunk := source.read(COPY_CHUNK):
                self._check()
                target.write(chunk)
                written += len(chunk)
                self.done += len(chunk)
                self.report(self.done)
        if written != blob.size:
            raise OSError(f"bitstream {blob.filename} has {written} bytes on disk, {blob.size} recorded")

    def asset(self, node: NodeSnap, directory: str) -> tuple[str, int]:
        """Write ``<ref>.pax.zip`` and its sidecar; returns the PAX name and size."""
        self._check()
        name = f"{node.ref}.pax.zip"
        xip = asset_xip(node, self.plan.options, self.plan.xip_ns).encode("utf-8")
        blobs = [
            (f"{generation_path(rep, co, g)}/{b.filename}", b)
            for rep in node.representations
            for co in rep.content_objects
            for g in co.generations
            for b in g.bitstreams
        ]
        bound = len(xip) + sum(b.size + 200 + 3 * len(path) for path, b in blobs) + 1024
        # file_size is an upper bound here (zipfile sets the real one): it decides whether ZIP64 is needed.
        entry = _info(directory + name, node.modified, zipfile.ZIP_STORED, bound)
        with self.out.open(entry, "w") as raw:
            hashing = _HashingWriter(raw)
            with zipfile.ZipFile(hashing, "w", allowZip64=True) as pax:
                pax.writestr(_info(f"{node.ref}.xip", node.modified, zipfile.ZIP_DEFLATED), xip)
                for path, blob in blobs:
                    with pax.open(_info(path, node.modified, zipfile.ZIP_STORED, blob.size), "w") as member:
                        self._copy(blob, member)
                    self.files += 1
        self.text(directory + name + ".opex", node.modified, asset_sidecar(node, hashing.digest.hexdigest()))
        return name, hashing.size

    def folder(self, node: NodeSnap, parent_dir: str, only_child: NodeSnap | None = None) -> None:
        """Write a folder, everything below it, then its sidecar (its manifest needs the PAX sizes)."""
        directory = f"{parent_dir}{node.ref}/"
        self.directory(directory, node.modified)
        files: list[tuple[str, str, int | None]] = []
        folders: list[str] = []
        children = (only_child,) if only_child is not None else node.children
        for child in children:
            if child.kind == IO:
                pax, size = self.asset(child, directory)
                files += [(pax, "content", size), (pax + ".opex", "metadata", None)]
            else:
                self.folder(child, directory)
                folders.append(child.ref)
        self.text(f"{directory}{node.ref}.opex", node.modified, folder_sidecar(node, files, folders))

    def run(self) -> None:
        plan = self.plan
        directory = ""
        chain = list(plan.ancestors)
        for index, ancestor in enumerate(chain):
            following = chain[index + 1] if index + 1 < len(chain) else plan.target
            if following.kind == IO:
                # The asset's parent folder: write it with just this asset.
                self.folder(ancestor, directory, only_child=following)
                return
            self._ancestor(ancestor, directory, following)
            directory += f"{ancestor.ref}/"
        if plan.target.kind == IO:
            self.asset(plan.target, directory)
        else:
            self.folder(plan.target, directory)

    def _ancestor(self, node: NodeSnap, directory: str, following: NodeSnap) -> None:
        here = f"{directory}{node.ref}/"
        self.directory(here, node.modified)
        self.text(f"{here}{node.ref}.opex", node.modified, folder_sidecar(node, [], [following.ref]))


def write_export(plan: ExportPlan, target: Path, report: Progress, stop: Callable[[], bool]) -> ExportResult:
    """Write the export zip of ``plan`` to ``target``; ``report(bytes_copied)`` as content is copied.

    Raises ``ExportCancelled`` when ``stop()`` turns true, ``OSError`` when a blob is missing or short.
    ``target`` is left half-written on error: callers write to a temporary name.
    """
    with open(target, "wb") as handle:
        with zipfile.ZipFile(handle, "w", allowZip64=True) as out:
            writer = _Writer(plan, out, report, stop)
            writer.run()
        handle.flush()
    return ExportResult(target.stat().st_size, plan.assets, plan.folders, writer.files)
