"""Connection settings: a Preservica Connection or a legacy ini file -> ``PreservicaSettings``.

The layer below ``client/``: it speaks no HTTP and holds no token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.connection.ini import read_ini
    from airflow_provider_preservica.connection.settings import PreservicaSettings
    from airflow_provider_preservica.connection.sources import settings_from_connection, settings_from_ini

__all__ = [
    "PreservicaSettings",
    "read_ini",
    "settings_from_connection",
    "settings_from_ini",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PreservicaSettings": ".settings",
        "read_ini": ".ini",
        "settings_from_connection": ".sources",
        "settings_from_ini": ".sources",
    },
)
