"""Deprecated: the redirect rule is ``airflow_provider_preservica.client.redirects`` now (issue 21: only
``client/`` speaks HTTP).

Every public name this module had still works, and warns with a ``DeprecationWarning`` when it is imported
from here.
"""

from __future__ import annotations

import warnings
from typing import Any

from airflow_provider_preservica.client import redirects as _redirects

_NEW_HOME = "airflow_provider_preservica.client.redirects"
_MOVED = frozenset({"DEFAULT_PORTS", "origin_of", "origin_text", "refuse_off_origin_redirect"})


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"{__name__}.{name} is deprecated; import it from {_NEW_HOME}", DeprecationWarning, stacklevel=2)
    return getattr(_redirects, name)


def __dir__() -> list[str]:
    return sorted(_MOVED)
