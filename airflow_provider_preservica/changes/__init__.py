"""Preservica changes as Airflow input: a cursor over the changed-entities feed that loses nothing.

``window`` reads one window of the feed (overlapping the last one, deduped, filtered to a collection
and entity types); ``cursor_store`` keeps the cursor durably (asset state store on Airflow 3.3, an
Airflow Variable before). The watcher trigger (``triggers.changes``) and the task-side operator
(``operators.changes``) both use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.changes.cursor_store import (
        AssetStateCursorStore,
        CursorStore,
        MemoryCursorStore,
        VariableCursorStore,
    )
    from airflow_provider_preservica.changes.events_window import read_event_window
    from airflow_provider_preservica.changes.window import ChangeBatch, FeedCursor, FeedFilter, read_window
    from airflow_provider_preservica.client.changes import parse_instant

__all__ = [
    "AssetStateCursorStore",
    "ChangeBatch",
    "CursorStore",
    "FeedCursor",
    "FeedFilter",
    "MemoryCursorStore",
    "VariableCursorStore",
    "parse_instant",
    "read_event_window",
    "read_window",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AssetStateCursorStore": ".cursor_store",
        "ChangeBatch": ".window",
        "CursorStore": ".cursor_store",
        "FeedCursor": ".window",
        "FeedFilter": ".window",
        "MemoryCursorStore": ".cursor_store",
        "VariableCursorStore": ".cursor_store",
        "parse_instant": "..client.changes",
        "read_event_window": ".events_window",
        "read_window": ".window",
    },
)
