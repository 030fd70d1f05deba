"""The first step of an export: a snapshot, under the repository lock, of everything the zip will hold.

``snapshot`` copies what is needed (titles, refs, metadata, bitstream file paths) into plain frozen
records (``ExportPlan`` of ``NodeSnap`` …), so the lock is held only briefly; ``export_writer`` then
streams the zip from those records and the blob files. Generations are chosen by the options
(``export_options``); bitstreams recorded without bytes are left out; an asset with no stored bytes at
all gets its placeholder (``placeholders``). Names of files inside a generation are made safe and unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .entities import IO, SO, Entity
from .export_options import ExportOptions
from .placeholders import Placeholder, placeholder

if TYPE_CHECKING:
    from .repository import Repository


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


def placeholder_blob(stand_in: Placeholder) -> BlobSnap:
    """A placeholder as a bitstream to export (bytes in memory, fixities computed)."""
    return BlobSnap(stand_in.filename, len(stand_in.data), stand_in.fixities(), data=stand_in.data)


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
            blob = placeholder_blob(stand_in)
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
