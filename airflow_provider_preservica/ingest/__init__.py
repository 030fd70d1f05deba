"""Ingest: stage a delivery, package it (``ingest.packaging``: OPEX building, offline), skip what
Preservica already holds, upload, wait, report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.ingest.existing import held_below
    from airflow_provider_preservica.ingest.report import IngestReport
    from airflow_provider_preservica.ingest.staging import (
        FileRecord,
        Holdings,
        LandingLayout,
        StagingManifest,
        file_delivery,
        record_ingested,
        stage_delivery,
        write_report,
    )

__all__ = [
    "FileRecord",
    "Holdings",
    "IngestReport",
    "LandingLayout",
    "StagingManifest",
    "file_delivery",
    "held_below",
    "record_ingested",
    "stage_delivery",
    "write_report",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "FileRecord": ".staging",
        "Holdings": ".staging",
        "IngestReport": ".report",
        "LandingLayout": ".staging",
        "StagingManifest": ".staging",
        "file_delivery": ".staging",
        "held_below": ".existing",
        "record_ingested": ".staging",
        "stage_delivery": ".staging",
        "write_report": ".staging",
    },
)
