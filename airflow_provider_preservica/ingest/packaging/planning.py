"""The plan of a package: every entity's title, tag, SourceID, identifiers and metadata, checked before any
byte is written, and the documents derived from it (asset records, folder manifests) that both ways of
writing a package share (``builder``'s staged tree and ``straight``'s zip from the source)."""

from __future__ import annotations

import dataclasses
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from airflow_provider_preservica.files.fixity import FileFixity, FixityRecord
from airflow_provider_preservica.ingest.packaging.descriptive import EntityMetadata, MetadataResolver, check_fragments
from airflow_provider_preservica.ingest.packaging.model import AssetRecord, ValidationIssue
from airflow_provider_preservica.ingest.packaging.opex import (
    ManifestFile,
    OpexProperties,
    folder_manifest,
    sidecar_name,
)
from airflow_provider_preservica.ingest.packaging.source import SourceEntry
from airflow_provider_preservica.ingest.packaging.source_ids import SourceIdFunc
from airflow_provider_preservica.ingest.packaging.validation import display

#: ``progress(phase, done, total)`` with phase ``"stage"``, ``"hash"`` or ``"zip"``; done/total in bytes.
BuildProgress = Callable[[str, int, int], None]


@dataclass(slots=True)
class PlannedEntity:
    entry: SourceEntry
    props: OpexProperties

    @property
    def path(self) -> str:
        return self.entry.path


def missing_tag(path: str, is_folder: bool) -> ValidationIssue:
    what = "folder" if is_folder else "asset"
    return ValidationIssue(
        path=path or "<source root>",
        code="missing-security-tag",
        problem=f"no security tag for this {what}: Preservica would silently apply 'open'",
        fix="pass security_tag= (e.g. 'open' or 'closed', chosen deliberately) or give one in its metadata",
    )


def plan_entities(
    entries: list[SourceEntry],
    *,
    package_name: str,
    security_tag: str | None,
    resolver: MetadataResolver,
    source_id: SourceIdFunc,
) -> tuple[list[PlannedEntity], list[ValidationIssue]]:
    """Resolve title, tag, SourceID, identifiers and descriptive metadata of every entity."""
    planned: list[PlannedEntity] = []
    issues: list[ValidationIssue] = []
    seen_ids: dict[str, str] = {}
    for entry in entries:
        is_folder = entry.kind == "dir"
        shown = display(entry.path)
        try:
            meta = resolver.lookup(entry.path, is_folder)
        except Exception as exc:  # a user callback: report it with the path, together with the rest
            issues.append(
                ValidationIssue(
                    shown, "metadata-callback", f"the metadata callback failed: {exc!r}", "fix the callback"
                )
            )
            meta = EntityMetadata()
        tag = (meta.security_tag or security_tag or "").strip()
        if not tag:
            issues.append(missing_tag(shown, is_folder))
        sid = (meta.source_id or source_id(entry.path, is_folder) or "").strip()
        if not sid:
            issues.append(ValidationIssue(shown, "empty-source-id", "the SourceID is empty", "return a SourceID"))
        elif sid in seen_ids:
            issues.append(
                ValidationIssue(
                    shown,
                    "duplicate-source-id",
                    f"SourceID {sid!r} is also used by {seen_ids[sid] or '<source root>'!r}",
                    "SourceIDs must be unique: fix the source_id callback or the metadata",
                )
            )
        else:
            seen_ids[sid] = shown
        fragments, fragment_issues = check_fragments(shown, meta.descriptive_metadata)
        issues.extend(fragment_issues)
        for kind, value in meta.identifiers:
            if not kind.strip() or not value.strip():
                issues.append(
                    ValidationIssue(
                        shown, "bad-identifier", f"identifier {kind!r}={value!r} is blank", "give a type and a value"
                    )
                )
        default_title = package_name if not entry.path else entry.name
        props = OpexProperties(
            source_id=sid,
            title=meta.title or default_title,
            security_tag=tag,
            description=meta.description,
            identifiers=tuple(meta.identifiers),
            descriptive_metadata=tuple(fragments),
        )
        planned.append(PlannedEntity(entry, props))
    issues.extend(resolver.unmatched())
    return planned, issues


def with_content_ids(props: OpexProperties, records: tuple[FixityRecord, ...], kind: str | None) -> OpexProperties:
    """``props`` plus an identifier ``<algorithm>:<checksum>`` per algorithm (``fixity_identifier``), if asked."""
    if not kind:
        return props
    content_ids = tuple((kind, f"{r.algorithm}:{r.value}") for r in records)
    return dataclasses.replace(props, identifiers=props.identifiers + content_ids)


def asset_record(item: PlannedEntity, result: FileFixity) -> AssetRecord:
    props = item.props
    return AssetRecord(item.path, props.source_id, props.title, props.security_tag, result.size, result.records)


def folder_manifests(
    planned_folders: list[PlannedEntity],
    planned_files: list[PlannedEntity],
    sidecar_sizes: array[int],
    *,
    top_folder: bool,
) -> Iterator[tuple[PlannedEntity, bytes]]:
    """Every folder's manifest, deepest first, the top folder's last (none for it without ``top_folder``)."""
    children_files: dict[str, list[int]] = defaultdict(list)  # positions in planned_files
    children_dirs: dict[str, list[str]] = defaultdict(list)
    for index, item in enumerate(planned_files):
        children_files[item.entry.parent].append(index)
    for folder in planned_folders:
        if folder.path:
            children_dirs[folder.entry.parent].append(folder.entry.name)
    for folder in sorted(planned_folders, key=lambda e: (-e.entry.depth, e.path)):
        if not folder.path and not top_folder:
            continue  # no top folder in the package: its manifest would describe nothing
        manifest_files: list[ManifestFile] = []
        for index in sorted(children_files.pop(folder.path, []), key=lambda i: planned_files[i].entry.name):
            entry = planned_files[index].entry
            manifest_files.append(ManifestFile(entry.name, "content", entry.size))
            manifest_files.append(ManifestFile(sidecar_name(entry.name), "metadata", sidecar_sizes[index]))
        yield folder, folder_manifest(folder.props, manifest_files, sorted(children_dirs[folder.path]))
