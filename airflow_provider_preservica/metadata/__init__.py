"""Bulk, idempotent metadata updates: a sheet of wanted states -> a plan per entity -> writes -> a report.

``sheet`` reads and checks the rows (offline), ``plan`` compares each row with what Preservica holds and
lists the writes that are still needed, ``runner`` reads and writes in parallel with the shared token and
waits for Preservica's background work, ``report`` writes the per-row outcome CSV and the summary.
"""

from airflow_provider_preservica.metadata.model import FragmentChange, Outcome, RowChange, RowOutcome
from airflow_provider_preservica.metadata.runner import MetadataRun, MetadataUpdater
from airflow_provider_preservica.metadata.sheet import SheetError, read_sheet, stream_sheet

__all__ = [
    "FragmentChange",
    "MetadataRun",
    "MetadataUpdater",
    "Outcome",
    "RowChange",
    "RowOutcome",
    "SheetError",
    "read_sheet",
    "stream_sheet",
]
