"""Where a shared token record lives: an Airflow Variable, or this process's memory.

A store holds one JSON string per key. The Variable store works wherever the Task SDK can reach the
API server (tasks, ``dag.test()``, triggers); elsewhere (the API server running ``test_connection``,
the CLI, plain Python) it reports itself unavailable and the cache keeps the token in memory.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Protocol

from airflow_provider_preservica.exceptions import TokenStoreUnavailable

log = logging.getLogger(__name__)


class TokenStore(Protocol):
    name: str

    def read(self, key: str) -> str | None: ...

    def write(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryTokenStore:
    """Process-wide store: shared by every hook in one process (e.g. all triggers of a triggerer)."""

    name = "memory"
    _values: dict[str, str] = {}
    _lock = threading.Lock()

    def read(self, key: str) -> str | None:
        with self._lock:
            return self._values.get(key)

    def write(self, key: str, value: str) -> None:
        with self._lock:
            self._values[key] = value

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)


def task_sdk_available() -> bool:
    """True inside a task or trigger runner, where ``airflow.sdk.Variable`` can read and write."""
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


class VariableTokenStore:
    """Airflow Variable store. Values are JSON strings under keys containing ``token`` (masked)."""

    name = "variable"

    def __init__(self, description: str = "Preservica access token cache (managed by PreservicaHook)") -> None:
        self.description = description

    def _require_sdk(self) -> None:
        if not task_sdk_available():
            raise TokenStoreUnavailable("not running inside an Airflow task or trigger")

    def read(self, key: str) -> str | None:
        self._require_sdk()
        from airflow.sdk import Variable

        try:
            value = Variable.get(key, default=None)
        except Exception as exc:  # the API server may be briefly unreachable; treat as a miss
            log.warning("Could not read Variable %s (%s); treating the token cache as empty", key, type(exc).__name__)
            return None
        return value if isinstance(value, str) else None

    def write(self, key: str, value: str) -> None:
        self._require_sdk()
        from airflow.sdk import Variable

        shadow = f"AIRFLOW_VAR_{key.upper()}"
        if shadow in os.environ:
            log.warning(
                "Environment variable %s shadows the token cache Variable %s; tokens will not be shared. "
                "Remove it or use token_cache=memory.",
                shadow,
                key,
            )
        Variable.set(key, value, description=self.description)

    def delete(self, key: str) -> None:
        self._require_sdk()
        from airflow.sdk import Variable

        Variable.delete(key)
