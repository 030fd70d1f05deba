"""The ``repository.jsonl`` form of entities: records to and from ``Entity``, and the file itself.

A record is a JSON object per entity (``ref``, ``type`` ``SO``/``IO``/``CO``, ``title``, ``parent`` ...;
see ``entity_to_record``). The file is a ``format`` header line, then one record per line; it is
written to a temporary name and renamed, so a crash never leaves half a file. Seed files use the
same records (``seed``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .entities import (
    KINDS,
    Bitstream,
    Entity,
    Generation,
    Identifier,
    MetadataFragment,
    RepositoryError,
    Representation,
    check_ref,
    iso_timestamp,
)

REPOSITORY_FILE = "repository.jsonl"
FORMAT_HEADER = {"format": "preservica-sandbox-repository", "version": 1}


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Entity records of a JSON-lines file (a ``format`` header line and blank lines are skipped)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise RepositoryError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(record, dict):
                raise RepositoryError(f"{path}:{number}: expected a JSON object")
            if "format" in record and "ref" not in record:
                continue
            yield record


def write_jsonl(directory: Path, records: Iterable[dict[str, Any]]) -> Path:
    """Write ``<directory>/repository.jsonl`` (header line, then ``records``) atomically; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".repository-", suffix=".tmp", dir=directory)
    target = directory / REPOSITORY_FILE
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(FORMAT_HEADER) + "\n")
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def entity_to_record(entity: Entity) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ref": entity.ref,
        "type": entity.kind,
        "title": entity.title,
        "description": entity.description,
        "security_tag": entity.security_tag,
        "parent": entity.parent,
        "created": entity.created,
        "modified": entity.modified,
    }
    if entity.source_id is not None:
        record["source_id"] = entity.source_id
    if entity.custom_type is not None:
        record["custom_type"] = entity.custom_type
    if entity.identifiers:
        record["identifiers"] = [{"api_id": i.api_id, "type": i.type, "value": i.value} for i in entity.identifiers]
    if entity.metadata:
        record["metadata"] = [{"ref": m.ref, "schema": m.schema, "xml": m.xml} for m in entity.metadata]
    if entity.representations:
        record["representations"] = [
            {"type": r.type, "name": r.name, "content_objects": list(r.content_objects)} for r in entity.representations
        ]
    if entity.generations:
        record["generations"] = [
            {
                "original": g.original,
                "active": g.active,
                "format_group": g.format_group,
                "effective_date": g.effective_date,
                "formats": g.formats,
                "bitstreams": [
                    {"filename": b.filename, "size": b.size, "fixities": b.fixities, "location": b.location}
                    for b in g.bitstreams
                ],
            }
            for g in entity.generations
        ]
    return record


def _text(record: dict[str, Any], key: str, default: str = "") -> str:
    value = record.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RepositoryError(f"{key} must be a string, not {type(value).__name__}")
    return value


def record_to_entity(record: dict[str, Any]) -> Entity:
    """An ``Entity`` from a record; missing ``ref`` gets a random UUID, missing ``created`` now."""
    if not isinstance(record, dict):
        raise RepositoryError("each entity record must be a JSON object")
    kind = str(record.get("type", "")).upper()
    if kind not in KINDS:
        raise RepositoryError(f"entity type must be one of {KINDS}, not {record.get('type')!r}")
    ref = check_ref(record["ref"]) if record.get("ref") else str(uuid.uuid4())
    parent = check_ref(record["parent"]) if record.get("parent") else None
    now = iso_timestamp(time.time())
    try:
        entity = Entity(
            ref=ref,
            kind=kind,
            title=_text(record, "title"),
            description=_text(record, "description"),
            security_tag=_text(record, "security_tag", "open") or "open",
            parent=parent,
            created=_text(record, "created") or now,
            modified=_text(record, "modified") or _text(record, "created") or now,
            source_id=record.get("source_id"),
            custom_type=record.get("custom_type"),
            identifiers=[
                Identifier(str(i.get("api_id") or uuid.uuid4().hex), str(i["type"]), str(i["value"]))
                for i in record.get("identifiers", [])
            ],
            metadata=[
                MetadataFragment(str(m.get("ref") or uuid.uuid4()), str(m["schema"]), str(m["xml"]))
                for m in record.get("metadata", [])
            ],
            representations=[
                Representation(str(r["type"]), str(r.get("name") or r["type"]), [str(c) for c in r["content_objects"]])
                for r in record.get("representations", [])
            ],
            generations=[
                Generation(
                    original=bool(g.get("original", True)),
                    active=bool(g.get("active", True)),
                    format_group=g.get("format_group"),
                    effective_date=g.get("effective_date"),
                    formats=list(g.get("formats", [])),
                    bitstreams=[
                        Bitstream(str(b["filename"]), int(b["size"]), dict(b.get("fixities", {})), b.get("location"))
                        for b in g.get("bitstreams", [])
                    ],
                )
                for g in record.get("generations", [])
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RepositoryError(f"bad entity record {ref}: {exc!r}") from None
    return entity
