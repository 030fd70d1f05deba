"""The dry-run manifest of a deletion: every folder and asset that would go, with titles and sizes.

A manifest is plain JSON (it travels through XCom and is shown to the person who approves):
``{"host", "targets": [entry], "entities": [entry], "folders", "assets", "bytes", "fingerprint"}`` where an
entry is ``{"ref", "type", "title", "parent", "bytes", "target"}`` (``target``: the requested ref it goes
with). ``fingerprint`` is a SHA-256 over the entries, so two manifests of an unchanged repository compare
equal, and :func:`differences` says in words what changed between the approved one and a fresh one.

Cost: one request per requested ref, one per page of children of each folder below, and, with sizes,
one walk of each asset's preservation bitstreams (a few requests per asset): ``max_entities`` bounds it,
and a deletion larger than that is refused rather than shown incompletely.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from airflow_provider_preservica.client.entities import EntityService
from airflow_provider_preservica.exceptions import ManifestTooLargeError, PreservicaConfigError

DEFAULT_MAX_ENTITIES = 10_000
COMPARED = ("ref", "type", "title", "parent", "bytes")


def _entry(ref: str, kind: str, title: str, parent: str | None, target: str) -> dict[str, Any]:
    return {"ref": ref, "type": kind, "title": title, "parent": parent, "bytes": None, "target": target}


def build_manifest(
    entities: EntityService,
    refs: Iterable[str],
    *,
    host: str,
    include_sizes: bool = True,
    max_entities: int = DEFAULT_MAX_ENTITIES,
) -> dict[str, Any]:
    """What deleting ``refs`` (folders with everything below them, and assets) would remove."""
    wanted = list(dict.fromkeys(r.strip() for r in refs if r and r.strip()))
    if not wanted:
        raise PreservicaConfigError("nothing to delete: give at least one folder or asset reference")
    targets = [entities.get(ref) for ref in wanted]
    found: dict[str, dict[str, Any]] = {}
    for target in targets:
        if target.ref in found:
            continue  # below another target: it goes with that one
        found[target.ref] = _entry(target.ref, target.entity_type, target.title, target.parent_ref, target.ref)
        folders = [target.ref] if target.entity_type == "SO" else []
        while folders:
            folder = folders.pop()
            for child in entities.children(folder):
                if child.entity_type not in ("SO", "IO"):
                    continue
                previous = found.get(child.ref)
                found[child.ref] = _entry(child.ref, child.entity_type, child.title, folder, target.ref)
                if previous is not None and previous["ref"] in wanted:
                    continue  # a target found below another target: already walked or about to be
                if child.entity_type == "SO":
                    folders.append(child.ref)
                if len(found) > max_entities:
                    raise ManifestTooLargeError(
                        f"deleting {', '.join(wanted)} would remove more than {max_entities} folders and assets; "
                        "delete smaller parts, or raise max_entities if that is really meant"
                    )
    for entry in found.values():  # each goes with the topmost requested folder above it
        top = entry["ref"]
        while found[top]["parent"] in found:
            top = found[top]["parent"]
        entry["target"] = top
    top_refs = [ref for ref in wanted if found[ref]["target"] == ref]
    if include_sizes:
        for entry in found.values():
            if entry["type"] == "IO":
                entry["bytes"] = sum(b.size for b in entities.bitstreams(entry["ref"]))
    listed = sorted(found.values(), key=lambda e: (e["target"], e["type"] != "SO", e["ref"]))
    return {
        "host": host,
        "targets": [found[ref] for ref in top_refs],
        "entities": listed,
        "folders": sum(1 for e in listed if e["type"] == "SO"),
        "assets": sum(1 for e in listed if e["type"] == "IO"),
        "bytes": sum(e["bytes"] or 0 for e in listed),
        "include_sizes": include_sizes,
        "fingerprint": fingerprint(listed),
    }


def fingerprint(entries: Iterable[dict[str, Any]]) -> str:
    canonical = sorted(tuple(str(e.get(k)) for k in COMPARED) for e in entries)
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def differences(approved: dict[str, Any], current: dict[str, Any], limit: int = 20) -> list[str]:
    """What changed between the approved manifest and the repository now, one line per change."""
    before = {e["ref"]: e for e in approved.get("entities", [])}
    after = {e["ref"]: e for e in current.get("entities", [])}
    lines: list[str] = []
    for ref in sorted(before.keys() - after.keys()):
        lines.append(f"gone since the approval: {before[ref]['type']} {ref} {before[ref]['title']!r}")
    for ref in sorted(after.keys() - before.keys()):
        e = after[ref]
        lines.append(f"new since the approval: {e['type']} {ref} {e['title']!r} in folder {e['parent']}")
    for ref in sorted(before.keys() & after.keys()):
        for key in COMPARED[1:]:
            if before[ref].get(key) != after[ref].get(key):
                lines.append(f"{key} of {ref} changed: {before[ref].get(key)!r} -> {after[ref].get(key)!r}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def markdown(manifest: dict[str, Any], limit: int = 200) -> str:
    """The manifest as the approver sees it (Markdown: the approval form renders it)."""
    size = f", {manifest['bytes']:,} bytes" if manifest.get("include_sizes") else ""
    lines = [
        f"**Deleting from {manifest['host']}: {manifest['folders']} folder(s) and {manifest['assets']} "
        f"asset(s){size}.** This cannot be undone.",
        "",
        "Requested: " + ", ".join(f"`{t['ref']}` {t['title']!r}" for t in manifest["targets"]),
        "",
        "| type | reference | title | parent | bytes |",
        "|---|---|---|---|---|",
    ]
    for entry in manifest["entities"][:limit]:
        title = str(entry["title"]).replace("|", "\\|")
        size_text = "" if entry["bytes"] is None else f"{entry['bytes']:,}"
        lines.append(f"| {entry['type']} | `{entry['ref']}` | {title} | `{entry['parent'] or ''}` | {size_text} |")
    if len(manifest["entities"]) > limit:
        lines.append(f"| | ... {len(manifest['entities']) - limit} more | | | |")
    lines += ["", f"Manifest fingerprint `{manifest['fingerprint'][:16]}`"]
    return "\n".join(lines)
