"""The sensors: wait in the worker for Preservica's background work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.sensors.progress import PreservicaProgressSensor

__all__ = [
    "PreservicaProgressSensor",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PreservicaProgressSensor": ".progress",
    },
)
