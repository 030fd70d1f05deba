"""Deletion with a human in the loop: a dry-run manifest, an Airflow approval, then Preservica's two steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.deletion.manifest import build_manifest, markdown
    from airflow_provider_preservica.deletion.runner import DeletionReport, DeletionRunner

__all__ = [
    "DeletionReport",
    "DeletionRunner",
    "build_manifest",
    "markdown",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DeletionReport": ".runner",
        "DeletionRunner": ".runner",
        "build_manifest": ".manifest",
        "markdown": ".manifest",
    },
)
