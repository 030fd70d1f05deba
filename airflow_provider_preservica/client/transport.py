"""Deprecated: the HTTP transport is ``airflow_provider_preservica.client.http`` now."""

from __future__ import annotations

import warnings
from typing import Any

from airflow_provider_preservica.client import http as _http


def __getattr__(name: str) -> Any:
    value = getattr(_http, name)  # AttributeError for a name the transport never had
    warnings.warn(
        f"{__name__}.{name} is deprecated; import it from airflow_provider_preservica.client.http",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
