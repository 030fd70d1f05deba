"""Moved to :mod:`airflow_provider_preservica.transport` (the auth layer uses it too; it sits below both)."""

from __future__ import annotations

import warnings
from typing import Any

from airflow_provider_preservica import transport as _transport


def __getattr__(name: str) -> Any:
    warnings.warn(
        "airflow_provider_preservica.client.transport is deprecated; import from airflow_provider_preservica.transport",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(_transport, name)
