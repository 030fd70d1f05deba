"""Turn search hits into a CSV or JSON Lines report, one row at a time."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from airflow_provider_preservica.client.search import SearchHit

ReportFormat = Literal["csv", "jsonl"]
MULTI_VALUE_SEPARATOR = "; "


def format_for(destination: str, explicit: str | None) -> ReportFormat:
    """The report format: given explicitly, or taken from the file extension (default CSV)."""
    choice = (explicit or "").lower().lstrip(".")
    if not choice:
        lowered = destination.lower()
        choice = "jsonl" if lowered.endswith((".jsonl", ".ndjson", ".json")) else "csv"
    if choice in ("json", "ndjson"):
        choice = "jsonl"
    if choice not in ("csv", "jsonl"):
        raise ValueError(f"report format must be 'csv' or 'jsonl', not {explicit!r}")
    return choice  # type: ignore[return-value]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return MULTI_VALUE_SEPARATOR.join(_cell(v) for v in value)
    return str(value)


@dataclass
class ReportSummary:
    rows: int = 0
    first_refs: list[str] = field(default_factory=list)
    refs_truncated: bool = False


def write_report(
    hits: Iterable[SearchHit], columns: list[str], handle: IO[str], report_format: ReportFormat, max_refs: int
) -> ReportSummary:
    """Stream ``hits`` into ``handle``; remember at most ``max_refs`` references for the XCom."""
    summary = ReportSummary()
    writer = csv.writer(handle, lineterminator="\n") if report_format == "csv" else None
    if writer is not None:
        writer.writerow(columns)
    for hit in hits:
        if writer is not None:
            writer.writerow([_cell(hit.value(name)) for name in columns])
        else:
            handle.write(json.dumps({name: hit.value(name) for name in columns}, ensure_ascii=False) + "\n")
        summary.rows += 1
        if len(summary.first_refs) < max_refs:
            summary.first_refs.append(hit.reference)
        else:
            summary.refs_truncated = True
    return summary
