"""Search: turn search hits into a CSV or JSON Lines report, one row at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.search.report import ReportSummary, format_for, write_report

__all__ = [
    "ReportSummary",
    "format_for",
    "write_report",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ReportSummary": ".report",
        "format_for": ".report",
        "write_report": ".report",
    },
)
