"""Where a change watcher keeps its cursor, so that a restarted triggerer carries on where it stopped.

- Airflow 3.3+: the **asset state store** of the asset the watcher feeds (the triggerer hands every
  ``BaseEventTrigger`` an ``asset_state_store``), key ``preservica_changes_cursor``. It lives and dies
  with the asset; ``airflow state-store`` and the REST API show it.
- Airflow 3.1/3.2 (no asset state store): an Airflow **Variable**, named after the watcher's
  connection and filters (``preservica_changes_cursor__<conn>__<digest>``) unless ``cursor_variable=``
  names one. On 3.3 an empty asset state falls back to that Variable once, so an upgrade keeps its place.
- Outside Airflow (plain Python, unit tests): process memory, said once in the log.

Values are the JSON of ``FeedCursor.to_json()``; an unreadable value counts as no cursor (the watcher
then starts from its ``since=``), never as a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Protocol

from asgiref.sync import sync_to_async

from airflow_provider_preservica.changes.window import FeedCursor
from airflow_provider_preservica.client.auth.stores import task_sdk_available

log = logging.getLogger(__name__)

STATE_KEY = "preservica_changes_cursor"


class CursorStore(Protocol):
    name: str

    async def load(self) -> FeedCursor | None: ...

    async def save(self, cursor: FeedCursor) -> None: ...


def default_variable_key(conn_id: str, collection: str | None, entity_types: Any, event_types: Any = None) -> str:
    filters = [collection, entity_types] if event_types is None else [collection, entity_types, event_types]
    digest = hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:12]
    return f"{STATE_KEY}__{conn_id}__{digest}"


class MemoryCursorStore:
    """Process memory, shared by every store of the same key (tests, plain Python)."""

    name = "memory"
    _values: dict[str, Any] = {}

    def __init__(self, key: str) -> None:
        self.key = key

    async def load(self) -> FeedCursor | None:
        return FeedCursor.from_json(self._values.get(self.key))

    async def save(self, cursor: FeedCursor) -> None:
        self._values[self.key] = cursor.to_json()


def _read_variable(key: str) -> Any:
    from airflow.sdk import Variable

    try:
        raw = Variable.get(key, default=None)
    except Exception as exc:  # the API server may be briefly unreachable: no cursor is safe (start over)
        log.warning("Could not read Variable %s (%s); the change watcher starts from since=", key, type(exc).__name__)
        return None
    try:
        return json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def _write_variable(key: str, value: dict[str, Any]) -> None:
    from airflow.sdk import Variable

    Variable.set(key, json.dumps(value), description="Preservica change watcher cursor (managed by the trigger)")


class VariableCursorStore:
    """An Airflow Variable per watcher (Airflow 3.1 and 3.2). Reads and writes run in a worker thread
    started by asgiref, as the progress trigger's polls do (3.1's comms need that)."""

    name = "variable"

    def __init__(self, key: str) -> None:
        self.key = key

    async def load(self) -> FeedCursor | None:
        return FeedCursor.from_json(await sync_to_async(_read_variable, thread_sensitive=False)(self.key))

    async def save(self, cursor: FeedCursor) -> None:
        await sync_to_async(_write_variable, thread_sensitive=False)(self.key, cursor.to_json())


class AssetStateCursorStore:
    """The asset state store the triggerer gives a watcher (Airflow 3.3+)."""

    name = "asset state store"

    def __init__(self, accessors: Any, fallback: CursorStore | None = None) -> None:
        self.accessors = accessors
        self.fallback = fallback

    def _accessor(self) -> Any:
        try:
            return self.accessors._single_accessor()
        except ValueError:
            # One trigger feeding several assets: keep the cursor on the first by name, always the same.
            by_name = getattr(self.accessors, "_by_name", {})
            return by_name[sorted(by_name)[0]]

    async def load(self) -> FeedCursor | None:
        cursor = FeedCursor.from_json(await self._accessor().aget(STATE_KEY))
        if cursor is None and self.fallback is not None:
            cursor = await self.fallback.load()
        return cursor

    async def save(self, cursor: FeedCursor) -> None:
        await self._accessor().aset(STATE_KEY, cursor.to_json())


def choose_store(asset_state_store: Any, variable_key: str, forced: str | None = None) -> CursorStore:
    """The asset state store where the triggerer offers one, else a Variable, else memory."""
    sdk = task_sdk_available()
    if forced == "memory" or (not sdk and forced is None):
        if forced is None:
            log.warning("No Airflow task SDK here: the change watcher keeps its cursor in memory only")
        return MemoryCursorStore(variable_key)
    variable = VariableCursorStore(variable_key)
    if forced == "variable" or asset_state_store is None:
        return variable
    return AssetStateCursorStore(asset_state_store, fallback=variable)
