"""The hook: a Preservica Connection -> settings -> one client with the shared token, and typed calls.

``Entity`` and ``EntityService`` are the types ``PreservicaHook(...).entities`` hands out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.client.entities import Entity, EntityService
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

__all__ = [
    "Entity",
    "EntityService",
    "PreservicaHook",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Entity": "..client.entities",
        "EntityService": "..client.entities",
        "PreservicaHook": ".preservica",
    },
)
