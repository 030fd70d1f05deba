"""The outcome of a metadata run, for people: a CSV row per sheet row and a summary for the task log."""

from __future__ import annotations

from typing import Any

from airflow_provider_preservica.files.report_csv import ReportWriter
from airflow_provider_preservica.files.storage import atomic_output
from airflow_provider_preservica.metadata.model import Outcome
from airflow_provider_preservica.metadata.runner import MetadataRun

REPORT_COLUMNS = ("row", "entity", "reference", "outcome", "changes", "message")
SHOWN_PROBLEMS = 20
ORDER = (
    Outcome.CHANGED,
    Outcome.WOULD_CHANGE,
    Outcome.UNCHANGED,
    Outcome.PENDING,
    Outcome.NOT_APPLIED,
    Outcome.NOT_FOUND,
    Outcome.AMBIGUOUS,
    Outcome.INVALID,
    Outcome.REJECTED,
)


def write_report(run: MetadataRun, destination: str) -> None:
    """``destination``: a local path or an ``ObjectStoragePath`` URL; written whole or not at all.

    For a spreadsheet: cells that would run as formulas get a leading ``'`` (see ``report_csv``).
    """
    with atomic_output(destination, "w", newline="", encoding="utf-8") as handle:
        writer = ReportWriter(handle)
        writer.writerow(REPORT_COLUMNS)
        for o in run.iter_outcomes():  # row by row from the run's store: flat memory for any sheet
            writer.writerow([o.row, o.locator, o.ref, o.outcome.value, " | ".join(o.changes), o.message])


def summary(run: MetadataRun, report_path: str | None = None) -> str:
    counts = run.counts()
    mode = "dry run, nothing written" if run.dry_run else "applied"
    lines = [f"Preservica metadata update from {run.source}: {run.rows:,} rows, {mode}"]
    for outcome in ORDER:
        if counts.get(outcome):
            lines.append(f"  {outcome.value:<21}{counts[outcome]:>8,}")
    if run.held_back:
        lines.append(
            "  Nothing was written: some rows failed before any write. Fix them (see below), or set "
            "allow_partial=True to apply the good rows anyway."
        )
    failed = sum(n for outcome, n in counts.items() if outcome.failed)
    for o in run.first_failed(SHOWN_PROBLEMS):
        lines.append(f"  row {o.row} ({o.locator}): {o.outcome.value}: {o.message}")
    if failed > SHOWN_PROBLEMS:
        lines.append(f"  ... and {failed - SHOWN_PROBLEMS:,} more failed rows")
    changed = run.first_with(Outcome.WOULD_CHANGE if run.dry_run else Outcome.CHANGED, 5)
    for o in changed:
        lines.append(f"  row {o.row} ({o.ref}): {' | '.join(o.changes)}")
    if report_path:
        lines.append(f"  report: {report_path}")
    return "\n".join(lines)


def to_xcom(run: MetadataRun, report_path: str | None) -> dict[str, Any]:
    """Small whatever the sheet: counts by outcome, the report's path, the first failed rows."""
    counts = run.counts()
    return {
        "rows": run.rows,
        "dry_run": run.dry_run,
        **{o.value.replace(" ", "_"): counts.get(o, 0) for o in ORDER},
        "failed_rows": [o.row for o in run.first_failed(SHOWN_PROBLEMS)],
        "report": report_path,
    }
