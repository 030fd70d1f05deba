"""Deprecated: the HTTP transport is ``airflow_provider_preservica.client.http`` now (issue 21: only ``client/``
speaks HTTP).

Every public name this module had still works, and warns with a ``DeprecationWarning`` when it is imported
from here.
"""

from __future__ import annotations

import warnings
from typing import Any

from airflow_provider_preservica.client import http as _http

_NEW_HOME = "airflow_provider_preservica.client.http"
_MOVED = frozenset(
    {
        "HttpTransport",
        "IDEMPOTENT_METHODS",
        "REFUSED_BEFORE_PROCESSING",
        "RETRY_STATUSES",
        "USER_AGENT",
        "describe_connection_failure",
        "effective_verify",
        "guard_session",
        "parse_retry_after",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"{__name__}.{name} is deprecated; import it from {_NEW_HOME}", DeprecationWarning, stacklevel=2)
    return getattr(_http, name)


def __dir__() -> list[str]:
    return sorted(_MOVED)
