"""The in-flight record's old home: it lives in :mod:`airflow_provider_preservica.jobs` now.

The names below keep working: ``InFlightStore`` is ``JobStore``, ``BatchRegistry`` is ``JobRegistry``,
``task_series`` is the same function, and ``InFlightIngest(batch_id, progress_token, key, ...)`` builds an
``InFlightJob`` of kind ``ingest``. ``batch_key`` is the Variable name these records had before
(``preservica_ingest__<hash>``), which ``JobRegistry`` still reads.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_preservica.jobs import LEGACY_PREFIX as PREFIX
from airflow_provider_preservica.jobs import InFlightJob, task_series
from airflow_provider_preservica.jobs import JobRegistry as BatchRegistry
from airflow_provider_preservica.jobs import JobStore as InFlightStore
from airflow_provider_preservica.jobs import legacy_key as batch_key

__all__ = ["PREFIX", "BatchRegistry", "InFlightIngest", "InFlightStore", "batch_key", "task_series"]


def InFlightIngest(
    batch_id: str,
    progress_token: str,
    key: str,
    package_sha256: str | None = None,
    submitted_at: float = 0.0,
    **fields: Any,
) -> InFlightJob:
    """An ``InFlightJob`` of kind ``ingest``, from the arguments of the record this module used to define."""
    return InFlightJob(
        fields.pop("kind", "ingest"),
        batch_id,
        progress_token,
        key,
        submitted_at=submitted_at,
        package_sha256=package_sha256,
        **fields,
    )
