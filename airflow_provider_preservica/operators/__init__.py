"""The operators: each validates its arguments, calls the hook or a feature package, and waits or defers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.operators.base import PreservicaBaseOperator
    from airflow_provider_preservica.operators.changes import PreservicaChangesOperator
    from airflow_provider_preservica.operators.deletion import (
        PreservicaDeleteOperator,
        PreservicaDeletionManifestOperator,
    )
    from airflow_provider_preservica.operators.export import PreservicaExportOperator
    from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
    from airflow_provider_preservica.operators.metadata import PreservicaMetadataOperator
    from airflow_provider_preservica.operators.search import PreservicaSearchOperator
    from airflow_provider_preservica.operators.workflow import PreservicaWorkflowOperator

__all__ = [
    "PreservicaBaseOperator",
    "PreservicaChangesOperator",
    "PreservicaDeleteOperator",
    "PreservicaDeletionManifestOperator",
    "PreservicaExportOperator",
    "PreservicaIngestOperator",
    "PreservicaMetadataOperator",
    "PreservicaSearchOperator",
    "PreservicaWorkflowOperator",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PreservicaBaseOperator": ".base",
        "PreservicaChangesOperator": ".changes",
        "PreservicaDeleteOperator": ".deletion",
        "PreservicaDeletionManifestOperator": ".deletion",
        "PreservicaExportOperator": ".export",
        "PreservicaIngestOperator": ".ingest",
        "PreservicaMetadataOperator": ".metadata",
        "PreservicaSearchOperator": ".search",
        "PreservicaWorkflowOperator": ".workflow",
    },
)
