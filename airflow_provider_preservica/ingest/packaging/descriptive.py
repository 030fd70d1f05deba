"""Per-entity metadata (title, description, security tag, SourceID, identifiers, descriptive XML).

It comes from a ``dict`` keyed by relative path, from a CSV file loaded into such a dict, or from a
callback ``(relative_path, is_folder) -> EntityMetadata | dict | None``. Anything not given falls back to
the builder's defaults (title = file or folder name, security tag = the batch's explicit tag,
SourceID = the deterministic default).

CSV columns (header row, UTF-8 with or without BOM, empty cell = not given): ``path`` (required,
relative to the source root, ``/`` separated, ``.`` or empty for the top folder), ``title``,
``description``, ``security_tag``, ``source_id``, ``identifier:<type>`` (one column per identifier type,
e.g. ``identifier:code``) and ``metadata_xml`` (path of an XML fragment file, relative to the CSV; several
separated by ``;``).

Fragments are untrusted input (see :mod:`airflow_provider_preservica.files.fragments`): one with a DTD is refused,
each is capped at ``max_fragment_bytes``, and ``metadata_xml`` files must lie inside the CSV's folder (or
``metadata_root``); absolute paths, ``..`` and symlinks that leave it are refused.
"""

from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from airflow_provider_preservica.exceptions import PackageValidationError, UnsafeInputError
from airflow_provider_preservica.files.fragments import (
    DEFAULT_MAX_FRAGMENT_BYTES,
    check_size,
    contained_file,
    parse_xml,
    read_capped,
)
from airflow_provider_preservica.ingest.packaging.model import ValidationIssue

OPEX_NAMESPACES = frozenset(f"http://www.openpreservationexchange.org/opex/v1.{minor}" for minor in range(3))

XmlFragment = str | bytes | ET.Element


@dataclass(frozen=True)
class EntityMetadata:
    """Metadata for one asset or folder; ``None`` / empty means "use the default"."""

    title: str | None = None
    description: str | None = None
    security_tag: str | None = None
    source_id: str | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    descriptive_metadata: tuple[XmlFragment, ...] = field(default=(), repr=False)

    @classmethod
    def coerce(cls, value: EntityMetadata | Mapping[str, Any] | None) -> EntityMetadata:
        """Accept an ``EntityMetadata``, a ``dict`` with the same keys, or ``None``.

        In a dict, ``identifiers`` may be a mapping ``{type: value}`` or a list of pairs, and
        ``descriptive_metadata`` one fragment or a list of them.
        """
        if value is None:
            return cls()
        if isinstance(value, EntityMetadata):
            return value
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"Unknown metadata key(s) {sorted(unknown)}; use {sorted(known)}")
        data = dict(value)
        identifiers = data.get("identifiers") or ()
        if isinstance(identifiers, Mapping):
            identifiers = identifiers.items()
        data["identifiers"] = tuple((str(t), str(v)) for t, v in identifiers)
        fragments = data.get("descriptive_metadata") or ()
        if isinstance(fragments, (str, bytes, ET.Element)):
            fragments = (fragments,)
        data["descriptive_metadata"] = tuple(fragments)
        for key in ("title", "description", "security_tag", "source_id"):
            if data.get(key) is not None:
                data[key] = str(data[key])
        return cls(**data)


MetadataCallback = Callable[[str, bool], "EntityMetadata | Mapping[str, Any] | None"]
MetadataSource = Mapping[str, "EntityMetadata | Mapping[str, Any]"] | MetadataCallback


def normalize_key(path: str) -> str:
    """``./a\\b/`` -> ``a/b``; ``.`` and ``""`` -> ``""`` (the top folder)."""
    key = path.replace("\\", "/").strip()
    while key.startswith("./"):
        key = key[2:]
    key = key.strip("/")
    return "" if key == "." else key


class MetadataResolver:
    """Looks metadata up for each entity and remembers which mapping keys matched nothing."""

    def __init__(self, source: MetadataSource | None) -> None:
        self._callback: MetadataCallback | None = None
        self._mapping: dict[str, EntityMetadata] = {}
        self._used: set[str] = set()
        if source is None:
            return
        if isinstance(source, Mapping):
            for key, value in source.items():
                self._mapping[normalize_key(key)] = EntityMetadata.coerce(value)
        elif callable(source):
            self._callback = source
        else:
            raise TypeError("metadata must be a mapping keyed by relative path or a callable")

    def lookup(self, path: str, is_folder: bool) -> EntityMetadata:
        if self._callback is not None:
            return EntityMetadata.coerce(self._callback(path, is_folder))
        if path in self._mapping:
            self._used.add(path)
            return self._mapping[path]
        return EntityMetadata()

    def unmatched(self) -> list[ValidationIssue]:
        """Mapping keys that matched no file or folder: a typo there could mean a wrong security tag."""
        return [
            ValidationIssue(
                path=key or "<source root>",
                code="metadata-unmatched",
                problem="metadata was given for this path but no such file or folder is in the package",
                fix="correct the path (relative to the source root, case-sensitive) or remove the entry",
            )
            for key in sorted(set(self._mapping) - self._used)
        ]


def parse_fragment(fragment: XmlFragment) -> ET.Element:
    """Parse one descriptive-metadata fragment; it must be well-formed and in a (non-OPEX) namespace.

    Raises ``ValueError``, or ``UnsafeInputError`` for a fragment with a DTD.
    """
    if isinstance(fragment, ET.Element):
        element = fragment
    else:
        text = fragment if isinstance(fragment, bytes) else fragment.encode("utf-8")
        try:
            element = parse_xml(text)
        except ET.ParseError as exc:
            raise ValueError(f"descriptive metadata is not well-formed XML ({exc})") from None
    tag = element.tag if isinstance(element.tag, str) else ""
    if not tag.startswith("{"):
        raise ValueError(
            f"descriptive metadata root <{tag}> has no namespace; Preservica needs one per fragment "
            '(e.g. <dc xmlns="http://purl.org/dc/elements/1.1/">)'
        )
    namespace = tag[1:].split("}", 1)[0]
    if namespace in OPEX_NAMESPACES:
        raise ValueError("descriptive metadata must be in a foreign namespace, not the OPEX one")
    return element


def check_fragments(
    path: str, fragments: Sequence[XmlFragment], max_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES
) -> tuple[list[ET.Element], list[ValidationIssue]]:
    parsed: list[ET.Element] = []
    issues: list[ValidationIssue] = []
    for index, fragment in enumerate(fragments, 1):
        try:
            if not isinstance(fragment, ET.Element):
                check_size(fragment, max_bytes, "it")
            parsed.append(parse_fragment(fragment))
        except UnsafeInputError as exc:
            issues.append(
                ValidationIssue(
                    path,
                    "unsafe-descriptive-metadata",
                    f"descriptive metadata fragment {index}: {exc.problem}",
                    exc.fix,
                )
            )
        except ValueError as exc:
            issues.append(
                ValidationIssue(
                    path=path,
                    code="bad-descriptive-metadata",
                    problem=f"descriptive metadata fragment {index}: {exc}",
                    fix="fix the XML fragment (well-formed, root element in its own namespace)",
                )
            )
    return parsed, issues


def load_metadata_csv(
    path: str | os.PathLike[str],
    *,
    metadata_root: str | os.PathLike[str] | None = None,
    max_fragment_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES,
) -> dict[str, EntityMetadata]:
    """Read a metadata CSV (see the module docstring) into a mapping keyed by relative path.

    Every problem (missing ``path`` column, duplicate rows, unreadable, malformed, oversized or DTD-carrying
    XML files, files outside ``metadata_root``, by default the CSV's folder) is reported at once in a
    ``PackageValidationError``.
    """
    csv_path = Path(path)
    issues: list[ValidationIssue] = []
    result: dict[str, EntityMetadata] = {}
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "path" not in columns:
            raise PackageValidationError(
                [
                    ValidationIssue(
                        path=str(csv_path),
                        code="metadata-csv",
                        problem=f"no 'path' column (columns: {columns})",
                        fix="add a header row whose first column is 'path'",
                    )
                ]
            )
        for line, raw in enumerate(reader, 2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str) or v is None}
            key = normalize_key(row.get("path", ""))
            where = f"{csv_path.name}:{line}"
            if key in result:
                issues.append(
                    ValidationIssue(where, "metadata-csv", f"second row for path {key!r}", "keep one row per path")
                )
                continue
            identifiers = tuple(
                (column.split(":", 1)[1].strip(), value)
                for column, value in row.items()
                if column.lower().startswith("identifier:") and value
            )
            fragments: list[XmlFragment] = []
            for ref in filter(None, (r.strip() for r in row.get("metadata_xml", "").split(";"))):
                try:
                    xml_path = contained_file(ref, csv_path.parent, Path(metadata_root or csv_path.parent))
                    fragments.append(read_capped(xml_path, max_fragment_bytes, f"metadata_xml {ref!r}"))
                except UnsafeInputError as exc:
                    issues.append(ValidationIssue(where, "unsafe-metadata-file", exc.problem, exc.fix))
                except OSError as exc:
                    issues.append(
                        ValidationIssue(
                            where,
                            "metadata-csv",
                            f"cannot read metadata_xml {ref!r}: {exc.strerror or exc}",
                            "check the path (relative to the CSV file)",
                        )
                    )
            _, fragment_issues = check_fragments(where, fragments, max_fragment_bytes)
            issues.extend(fragment_issues)
            result[key] = EntityMetadata(
                title=row.get("title") or None,
                description=row.get("description") or None,
                security_tag=row.get("security_tag") or None,
                source_id=row.get("source_id") or None,
                identifiers=identifiers,
                descriptive_metadata=tuple(fragments),
            )
    if issues:
        raise PackageValidationError(issues, f"The metadata CSV {csv_path} has {len(issues)} problem(s)")
    return result
