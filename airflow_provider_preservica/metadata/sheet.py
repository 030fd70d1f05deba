"""Read a corrections sheet (CSV or JSON Lines) into ``RowChange``s, checking every row before anything runs.

CSV: one row per entity, a header naming the columns below; an empty cell leaves that property as it is.
JSON Lines: one object per line with the same keys; ``null`` or a missing key leaves it as it is, and
``"identifiers": {"type": "value" | null}`` sets (or with ``null`` removes) identifiers.

=====================  ==================================================================================
``reference``          the entity's reference (UUID); or, instead, ``identifier_type`` + ``identifier_value``
``entity_type``        ``SO`` (folder) or ``IO`` (asset); looked up when left out
``title``              new title
``description``        new description
``security_tag``       new security tag (one this account may use); Preservica applies it in the background
``parent``             reference of the folder to move the entity into (``@root@``: a folder to the top)
``identifier:<type>``  the value the identifier of that type should have (added, or the old one updated)
``metadata[:label]``   a descriptive metadata fragment, inline XML with a namespace on its root element
``metadata_file[:l]``  the same from a file, relative to the sheet's folder (and inside it: see below)
``metadata_mode``      ``replace`` (default: exactly one fragment of that schema, this one) or ``add``
=====================  ==================================================================================

Fragments are untrusted input (see :mod:`airflow_provider_preservica.files.fragments`): a DTD is refused, each
fragment is capped at ``max_fragment_bytes``, and ``metadata_file`` must lie inside ``metadata_root`` (by
default the sheet's folder; absolute paths, ``..`` and symlinks may not leave it). Each such row is a
problem named with its fix, found before anything is written.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_provider_preservica.client.entities import parse_fragment
from airflow_provider_preservica.exceptions import PreservicaConfigError, PreservicaError
from airflow_provider_preservica.files.fragments import (
    DEFAULT_MAX_FRAGMENT_BYTES,
    check_size,
    contained_file,
    contained_url,
    read_capped,
)
from airflow_provider_preservica.files.storage import is_url, object_path
from airflow_provider_preservica.metadata.model import ROOT, FragmentChange, RowChange
from airflow_provider_preservica.metadata.sheetfile import SheetError, decoded, open_text, read_text

PLAIN_COLUMNS = (
    "reference",
    "entity_type",
    "identifier_type",
    "identifier_value",
    "title",
    "description",
    "security_tag",
    "parent",
    "metadata_mode",
)
PREFIXED_COLUMNS = ("identifier:", "metadata:", "metadata_file:")
FRAGMENT_COLUMNS = ("metadata", "metadata_file")
ENTITY_TYPES = {"SO": "SO", "IO": "IO", "FOLDER": "SO", "ASSET": "IO"}
MODES = ("replace", "add")
REF_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class RowProblem:
    row: int
    locator: str
    message: str


@dataclass
class Sheet:
    source: str
    changes: list[RowChange] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.changes) + len(self.problems)

    def __iter__(self) -> Iterator[RowChange | RowProblem]:
        """Changes and problems together, in sheet order."""
        rows: list[RowChange | RowProblem] = [*self.changes, *self.problems]
        return iter(sorted(rows, key=lambda item: item.row))


class SheetStream:
    """A sheet read row by row as it is iterated (each iteration reads it again): memory does not grow with
    its length. Yields ``RowChange``s and ``RowProblem``s in sheet order; a sheet that cannot be read at all
    raises ``SheetError`` (the header is checked when the stream is made, see :func:`stream_sheet`)."""

    def __init__(self, source: str, sheet_format: str, files: _FragmentFiles) -> None:
        self.source = source
        self.sheet_format = sheet_format
        self._files = files

    def __iter__(self) -> Iterator[RowChange | RowProblem]:
        with open_text(self.source) as handle:
            records = (
                _csv_records(handle, self.source) if self.sheet_format == "csv" else _jsonl_records(handle, self.source)
            )
            any_rows = False
            for item in _rows(decoded(records, self.source), self._files):
                any_rows = True
                yield item
        if not any_rows:
            raise SheetError(f"metadata sheet {self.source!r} has no rows")

    def check_header(self) -> None:
        """Raise ``SheetError`` now if the sheet is missing, unreadable or its columns are wrong."""
        with open_text(self.source) as handle:
            if self.sheet_format == "csv":
                next(iter(decoded(_csv_records(handle, self.source), self.source)), None)


class _RowInvalid(PreservicaError):
    """One row is wrong; caught below and reported with the row (never leaves this module)."""


def known_column(name: str) -> bool:
    return name in PLAIN_COLUMNS or name in FRAGMENT_COLUMNS or any(name.startswith(p) for p in PREFIXED_COLUMNS)


def _check_columns(names: Iterable[str], where: str) -> None:
    unknown = [n for n in names if not known_column(n)]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name.lower(), [*PLAIN_COLUMNS, *FRAGMENT_COLUMNS], n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise SheetError(
        f"{where}: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(hints)}. Known columns: "
        f"{', '.join(PLAIN_COLUMNS)}, identifier:<type>, metadata[:label], metadata_file[:label]"
    )


class _FragmentFiles:
    """Reads ``metadata_file`` cells relative to the sheet's folder (local or object storage), inside ``root``.

    ``root``: the folder that files may come from (default: the sheet's folder); ``max_bytes``: the cap on
    one fragment, inline or from a file.
    """

    def __init__(
        self, source: str, root: str | os.PathLike[str] | None = None, max_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES
    ) -> None:
        if max_bytes < 1:
            raise SheetError("max_fragment_bytes must be at least 1")
        self.source = source
        self.max_bytes = max_bytes
        self.remote = is_url(source)
        self.base = source.rsplit("/", 1)[0] if self.remote else str(Path(source).expanduser().parent)
        self.root = os.fspath(root) if root is not None else self.base

    def read(self, name: str) -> str:
        target: Any = name
        try:
            if self.remote or is_url(self.root) or is_url(name):
                target = object_path(contained_url(name, self.base, self.root))
            else:
                target = contained_file(name, Path(self.base), Path(self.root))
            data = read_capped(target, self.max_bytes, f"metadata file {name!r}")
            return data.decode("utf-8-sig")
        except PreservicaConfigError as exc:
            raise _RowInvalid(str(exc)) from None
        except FileNotFoundError:
            raise _RowInvalid(f"metadata file {name!r} does not exist (looked for {target})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _RowInvalid(f"cannot read metadata file {name!r}: {exc}") from None

    def inline(self, document: str, column: str) -> str:
        try:
            check_size(document, self.max_bytes, f"the fragment in {column}")
        except PreservicaConfigError as exc:
            raise _RowInvalid(str(exc)) from None
        return document


def _text(value: Any, column: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise _RowInvalid(f"{column} must be text, not {type(value).__name__}")
    text = str(value).strip() if not isinstance(value, str) else value
    return text


def _ref(value: str, column: str) -> str:
    value = value.strip()
    if not REF_PATTERN.match(value):
        raise _RowInvalid(
            f"{column} {value!r} is not a Preservica reference (a UUID such as 8a7f1c52-0b7e-4f0e-9d2c-1e6b5a4c3d21)"
        )
    return value.lower()


def _fragment(document: str, mode: str, source: str) -> FragmentChange:
    try:
        root = parse_fragment(document)
    except PreservicaConfigError as exc:
        raise _RowInvalid(f"{source}: {exc}") from None
    return FragmentChange(document.strip(), root.tag[1:].split("}", 1)[0], mode, source)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _row_change(row: int, values: Mapping[str, Any], files: _FragmentFiles) -> RowChange:
    """``values``: column -> cell; empty strings already dropped for CSV. Raises ``_RowInvalid``."""
    ref_text = _text(values.get("reference"), "reference")
    id_type = _text(values.get("identifier_type"), "identifier_type")
    id_value = _text(values.get("identifier_value"), "identifier_value")
    ref = _ref(ref_text, "reference") if ref_text else None
    lookup: tuple[str, str] | None = None
    if ref and (id_type or id_value):
        raise _RowInvalid("give reference or identifier_type/identifier_value, not both")
    if not ref:
        if not id_type or not id_value:
            raise _RowInvalid("name the entity: a reference, or an identifier_type and identifier_value")
        lookup = (id_type.strip(), id_value.strip())
    kind_text = _text(values.get("entity_type"), "entity_type")
    entity_type = None
    if kind_text:
        entity_type = ENTITY_TYPES.get(kind_text.strip().upper())
        if entity_type is None:
            raise _RowInvalid(f"entity_type {kind_text!r} is not SO (folder) or IO (asset)")
    parent_text = _text(values.get("parent"), "parent")
    parent = None
    if parent_text:
        parent = ROOT if parent_text.strip().lower() == ROOT else _ref(parent_text, "parent")
        if parent == ROOT and entity_type == "IO":
            raise _RowInvalid("an asset cannot be moved to the root (@root@); give a folder reference as parent")
    tag = _text(values.get("security_tag"), "security_tag")
    if tag is not None:
        tag = tag.strip()
        if not tag:
            raise _RowInvalid("security_tag cannot be empty")
    mode = (_text(values.get("metadata_mode"), "metadata_mode") or "replace").strip().lower()
    if mode not in MODES:
        raise _RowInvalid(f"metadata_mode {mode!r} is not 'replace' or 'add'")

    # Preservica hands values back without surrounding white space: compare (and write) them that way.
    identifiers: dict[str, str | None] = {}
    for column, value in values.items():
        if column.startswith("identifier:"):
            text = _text(value, column)
            identifiers[column.split(":", 1)[1].strip()] = None if text is None else text.strip()
    for id_kind, id_val in _as_mapping(values.get("identifiers")).items():
        identifiers[str(id_kind).strip()] = None if id_val is None else str(id_val).strip()
    if any(v == "" for v in identifiers.values()):
        raise _RowInvalid("an identifier value cannot be empty (JSON Lines: null removes an identifier type)")
    if "" in identifiers:
        raise _RowInvalid("an identifier column needs a type after the colon, e.g. identifier:catalogue")

    fragments: list[FragmentChange] = []
    for column, value in values.items():
        base = column.split(":", 1)[0]
        if base not in FRAGMENT_COLUMNS:
            continue
        for item in _as_list(value):
            if isinstance(item, dict):
                item_mode = str(item.get("mode", mode)).lower()
                if item_mode not in MODES:
                    raise _RowInvalid(f"{column} mode {item_mode!r} is not 'replace' or 'add'")
                if "file" in item:
                    fragments.append(_fragment(files.read(str(item["file"])), item_mode, str(item["file"])))
                else:
                    fragments.append(_fragment(files.inline(str(item.get("xml", "")), column), item_mode, column))
            elif base == "metadata_file":
                fragments.append(_fragment(files.read(str(item).strip()), mode, str(item).strip()))
            else:
                fragments.append(_fragment(files.inline(str(item), column), mode, column))
    replaced = [f.schema for f in fragments if f.mode == "replace"]
    twice = sorted({s for s in replaced if replaced.count(s) > 1})
    if twice:
        raise _RowInvalid(
            f"two fragments of schema {twice[0]} in replace mode: only one can be the fragment of that schema; "
            "use metadata_mode=add to keep several"
        )

    change = RowChange(
        row=row,
        ref=ref,
        lookup=lookup,
        entity_type=entity_type,
        title=_text(values.get("title"), "title"),
        description=_text(values.get("description"), "description"),
        security_tag=tag,
        parent=parent,
        identifiers=identifiers,
        fragments=tuple(fragments),
    )
    if not any((change.title is not None, change.description is not None, tag, parent, identifiers, fragments)):
        raise _RowInvalid(
            "the row changes nothing: fill at least one of title, description, security_tag, parent, "
            "identifier:<type>, metadata"
        )
    return change


def _as_mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _RowInvalid('identifiers must be an object such as {"catalogue": "MS-1"}')
    return value


def _locator(values: Mapping[str, Any]) -> str:
    ref = values.get("reference")
    if ref:
        return str(ref)
    if values.get("identifier_type") or values.get("identifier_value"):
        return f"{values.get('identifier_type') or '?'}={values.get('identifier_value') or '?'}"
    return ""


def _csv_records(lines: Iterable[str], source: str) -> Iterable[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(lines)
    header = [(name or "").strip() for name in (reader.fieldnames or [])]
    if not any(header):
        raise SheetError(f"metadata sheet {source!r} is empty: the first line must name the columns")
    if len(set(header)) != len(header):
        raise SheetError(f"{source}, line 1: a column appears twice in the header")
    _check_columns(header, f"{source}, line 1")
    reader.fieldnames = header
    for number, record in enumerate(reader, start=2):
        if None in record:
            raise SheetError(f"{source}, row {number}: more cells than the header has columns")
        cells = {k: v for k, v in record.items() if v is not None and v.strip() != ""}
        if cells:
            yield number, cells


def _jsonl_records(lines: Iterable[str], source: str) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SheetError(f"{source}, line {number}: not JSON ({exc.msg}); one JSON object per line") from None
        if not isinstance(record, dict):
            raise SheetError(f"{source}, line {number}: expected a JSON object, not {type(record).__name__}")
        _check_columns([k for k in record if k != "identifiers"], f"{source}, line {number}")
        yield number, record


def _checked_records(records: Iterable[Mapping[str, Any]], source: str) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, record in enumerate(records, start=1):
        _check_columns([k for k in record if k != "identifiers"], f"{source}, row {number}")
        yield number, dict(record)


def sheet_from_records(
    records: Iterable[Mapping[str, Any]],
    source: str = "rows given in code",
    *,
    metadata_root: str | os.PathLike[str] | None = None,
    max_fragment_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES,
) -> Sheet:
    """A sheet from Python mappings with the JSON Lines keys (``None`` leaves a property as it is).

    ``metadata_file`` values are relative to the working directory and must lie inside ``metadata_root``
    (default: the working directory).
    """
    files = _FragmentFiles(str(Path.cwd() / "rows"), metadata_root, max_fragment_bytes)
    return _collect(_checked_records(records, source), source, files)


def parse_sheet(
    text: str,
    source: str,
    sheet_format: str | None = None,
    *,
    metadata_root: str | os.PathLike[str] | None = None,
    max_fragment_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES,
) -> Sheet:
    """Rows of ``text``; bad rows become ``problems`` (every one of them, not just the first).

    ``metadata_root``: the folder ``metadata_file`` cells may read from (default: the sheet's folder);
    ``max_fragment_bytes``: the largest fragment accepted, inline or from a file.
    """
    fmt = _format(source, sheet_format)
    if fmt == "csv":
        records = _csv_records(io.StringIO(text, newline=""), source)
    else:
        records = _jsonl_records(text.splitlines(), source)
    return _collect(records, source, _FragmentFiles(source, metadata_root, max_fragment_bytes))


def _format(source: str, sheet_format: str | None) -> str:
    fmt = (sheet_format or ("jsonl" if PurePosixPath(source).suffix.lower() in JSON_SUFFIXES else "csv")).lower()
    if fmt not in ("csv", "jsonl"):
        raise SheetError(f"sheet format {sheet_format!r} is not 'csv' or 'jsonl'")
    return fmt


def _rows(records: Iterable[tuple[int, dict[str, Any]]], files: _FragmentFiles) -> Iterator[RowChange | RowProblem]:
    for number, values in records:
        try:
            yield _row_change(number, values, files)
        except _RowInvalid as exc:
            yield RowProblem(number, _locator(values), str(exc))


def _collect(records: Iterable[tuple[int, dict[str, Any]]], source: str, files: _FragmentFiles) -> Sheet:
    sheet = Sheet(source)
    for item in _rows(records, files):
        if isinstance(item, RowProblem):
            sheet.problems.append(item)
        else:
            sheet.changes.append(item)
    if not sheet.rows:
        raise SheetError(f"metadata sheet {source!r} has no rows")
    return sheet


def read_sheet(
    source: str,
    sheet_format: str | None = None,
    *,
    metadata_root: str | os.PathLike[str] | None = None,
    max_fragment_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES,
) -> Sheet:
    """Read and check the sheet at ``source`` (a local path or an ``ObjectStoragePath`` URL).

    ``metadata_root`` and ``max_fragment_bytes``: see :func:`parse_sheet`.
    """
    return parse_sheet(
        read_text(str(source)),
        str(source),
        sheet_format,
        metadata_root=metadata_root,
        max_fragment_bytes=max_fragment_bytes,
    )


def stream_sheet(
    source: str,
    sheet_format: str | None = None,
    *,
    metadata_root: str | os.PathLike[str] | None = None,
    max_fragment_bytes: int = DEFAULT_MAX_FRAGMENT_BYTES,
) -> SheetStream:
    """Like :func:`read_sheet`, but the rows are read (and checked) one by one as the stream is iterated,
    so a sheet of any length runs in flat memory. A missing sheet or a bad header raises ``SheetError`` here;
    a row-level fault is a ``RowProblem`` as with ``read_sheet``; a broken file raises it while iterating."""
    stream = SheetStream(
        str(source), _format(str(source), sheet_format), _FragmentFiles(str(source), metadata_root, max_fragment_bytes)
    )
    stream.check_header()
    return stream
