"""``PreservicaChangesTrigger``: Preservica's change feed as an Airflow event source (``AssetWatcher``).

Every ``poll_interval`` seconds the trigger reads one window of ``updated-since`` (``changes.window``:
overlapping the previous window, deduped, filtered to a collection and entity types) and, when the
window holds anything, yields **one** ``TriggerEvent`` for the whole window:
``{"since", "until", "refs", "types", "deleted", "unresolved", "count", "truncated", "collection",
"entity_types", "event_types", "events"}`` (refs capped at ``max_refs``; ``count`` is exact). A quiet poll is
one request. With ``event_types`` the trigger reads Preservica's entity events of those types instead of the
changed-entities feed (``changes.events_window``): the same cursor, payload and guarantees.

At-least-once across triggerer restarts: the cursor is written durably (``changes.cursor_store``) only
for windows whose event was yielded at least ``settle_seconds`` earlier, judged at a later poll. A
yielded event sits in the triggerer's memory until its next sync (about a second) puts it in the
database; a triggerer killed in between would lose it, so the durable cursor lags until the event has
surely been persisted. A restarted watcher therefore reads again, and re-announces, at most the windows
of the last ``settle_seconds`` — never fewer. Quiet windows move the durable cursor at most every
``checkpoint_seconds`` (restarting re-reads a quiet stretch, which announces nothing).

Polls run the synchronous client in a worker thread (``in_worker_thread``), as the progress trigger does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_preservica.changes.cursor_store import CursorStore, choose_store, default_variable_key
from airflow_provider_preservica.changes.events_window import check_event_types, read_event_window
from airflow_provider_preservica.changes.window import (
    DEFAULT_FEED_PAGE,
    DEFAULT_LAG,
    DEFAULT_OVERLAP,
    ChangeBatch,
    FeedCursor,
    FeedFilter,
    check_entity_types,
    parse_instant,
    read_window,
)
from airflow_provider_preservica.exceptions import PreservicaConfigError, PreservicaError
from airflow_provider_preservica.hooks.preservica import PreservicaHook  # at import: run() must not block the loop
from airflow_provider_preservica.triggers.progress import in_worker_thread

CLASSPATH = "airflow_provider_preservica.triggers.changes.PreservicaChangesTrigger"


def change_payload(extra: Any) -> dict[str, Any]:
    """The watcher's payload from an asset event's ``extra``: Airflow stores a trigger's event there as
    ``{"from_trigger": true, "payload": {...}}``; a plain payload is returned as it is."""
    if not isinstance(extra, dict):
        return {}
    payload = extra.get("payload") if extra.get("from_trigger") else extra
    return dict(payload) if isinstance(payload, dict) else {}


class PreservicaChangesTrigger(BaseEventTrigger):
    """Watch a Preservica system (or one collection of it) for changed entities.

    :param preservica_conn_id: the Preservica Connection.
    :param collection: a folder ref: only that folder and everything below it (``None``: everything).
    :param entity_types: ``IO`` (assets), ``SO`` (folders), ``CO`` (content objects); default assets and folders.
    :param event_types: only changes made by Preservica events of these types (``Ingest``, ``Create``,
        ``Modified``, ``Moved``, ``SecurityChanged``, ``Deleted``); default ``None``: every change.
    :param poll_interval: seconds between polls.
    :param since: where a watcher without a stored cursor starts (ISO 8601; default: now).
    :param max_refs: most refs per list in an event (counts stay exact; ``truncated`` says so).
    :param overlap: seconds each window re-reads of the previous one (boundary safety, deduped).
    :param lag: seconds behind this clock a window ends (server clock skew and commit delay).
    :param settle_seconds: how long after an event the cursor may move past its window durably.
    :param checkpoint_seconds: how often a quiet watcher saves its cursor.
    :param cursor_variable: Variable key for the cursor on Airflow < 3.3 (default derived from the filters).
    :param cursor_store: ``None`` (asset state store, else Variable), ``"variable"`` or ``"memory"``.
    """

    def __init__(
        self,
        *,
        preservica_conn_id: str = "preservica_default",
        collection: str | None = None,
        entity_types: list[str] | tuple[str, ...] | None = ("IO", "SO"),
        event_types: list[str] | tuple[str, ...] | None = None,
        poll_interval: float = 60.0,
        since: str | None = None,
        max_refs: int = 1000,
        page_size: int = DEFAULT_FEED_PAGE,
        overlap: float = DEFAULT_OVERLAP,
        lag: float = DEFAULT_LAG,
        settle_seconds: float = 30.0,
        checkpoint_seconds: float = 300.0,
        cursor_variable: str | None = None,
        cursor_store: str | None = None,
    ) -> None:
        super().__init__()
        types = check_entity_types(entity_types)
        events = check_event_types(event_types)
        if since is not None:
            parse_instant(since)  # a clear error at DAG parse time, not in the triggerer
        if poll_interval <= 0 or max_refs < 1 or overlap <= 0 or lag < 0 or settle_seconds < 0:
            raise PreservicaConfigError(
                "poll_interval and overlap must be positive, max_refs at least 1, lag and settle_seconds not negative"
            )
        if cursor_store not in (None, "variable", "memory"):
            raise PreservicaConfigError(f"cursor_store must be None, 'variable' or 'memory', not {cursor_store!r}")
        self.preservica_conn_id = preservica_conn_id
        self.collection = collection or None
        self.entity_types = list(types) if types is not None else None
        self.event_types = list(events) if events is not None else None
        self.poll_interval = float(poll_interval)
        self.since = since
        self.max_refs = int(max_refs)
        self.page_size = int(page_size)
        self.overlap = float(overlap)
        self.lag = float(lag)
        self.settle_seconds = float(settle_seconds)
        self.checkpoint_seconds = float(checkpoint_seconds)
        self.cursor_variable = cursor_variable
        self.cursor_store = cursor_store
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.monotonic: Callable[[], float] = time.monotonic

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "preservica_conn_id": self.preservica_conn_id,
                "collection": self.collection,
                "entity_types": self.entity_types,
                "event_types": self.event_types,
                "poll_interval": self.poll_interval,
                "since": self.since,
                "max_refs": self.max_refs,
                "page_size": self.page_size,
                "overlap": self.overlap,
                "lag": self.lag,
                "settle_seconds": self.settle_seconds,
                "checkpoint_seconds": self.checkpoint_seconds,
                "cursor_variable": self.cursor_variable,
                "cursor_store": self.cursor_store,
            },
        )

    # -- pieces ----------------------------------------------------------------------------------
    def store(self) -> CursorStore:
        key = self.cursor_variable or default_variable_key(
            self.preservica_conn_id, self.collection, self.entity_types, self.event_types
        )
        return choose_store(getattr(self, "asset_state_store", None), key, self.cursor_store)

    def _until(self) -> datetime:
        return self.clock() - timedelta(seconds=self.lag)

    def _payload(self, batch: ChangeBatch) -> dict[str, Any]:
        return {
            **batch.payload(self.max_refs),
            "collection": self.collection,
            "entity_types": self.entity_types,
            "event_types": self.event_types,
            "events": batch.events,
        }

    def _poll(self, hook: PreservicaHook, cursor: FeedCursor, until: datetime) -> tuple[ChangeBatch, FeedCursor]:
        wanted = FeedFilter(
            self.collection,
            tuple(self.entity_types) if self.entity_types else None,
            tuple(self.event_types) if self.event_types else None,
        )
        if wanted.event_types:
            return read_event_window(
                hook.entity_events,
                hook.changes,
                hook,
                cursor,
                until,
                wanted=wanted,
                overlap=self.overlap,
                page_size=self.page_size,
            )
        return read_window(
            hook.changes, hook, cursor, until, wanted=wanted, overlap=self.overlap, page_size=self.page_size
        )

    # -- the loop --------------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = PreservicaHook(self.preservica_conn_id)
        store = self.store()
        cursor = await store.load()
        if cursor is None:
            if self.since:
                start = parse_instant(self.since)
            else:  # "from now": the next whole millisecond, so nothing from before the start is announced
                now = self._until()
                start = now - timedelta(microseconds=now.microsecond % 1000) + timedelta(milliseconds=1)
            cursor = FeedCursor(start, floor=start)
            await store.save(cursor)
            self.log.info("Preservica change watcher starts at %s (cursor in the %s)", start.isoformat(), store.name)
        else:
            self.log.info("Preservica change watcher resumes at %s (%s)", cursor.since.isoformat(), store.name)
        durable = cursor
        last_save = self.monotonic()
        # Windows read since the durable cursor: (cursor after the window, when its event was yielded or None).
        unsettled: list[tuple[FeedCursor, float | None]] = []
        while True:
            durable, last_save = await self._checkpoint(store, unsettled, durable, last_save)
            until = self._until()
            if until - cursor.since >= timedelta(milliseconds=1):  # the feed counts in milliseconds
                try:
                    batch, cursor_after = await in_worker_thread(self._poll, hook, cursor, until)
                except PreservicaError as exc:
                    # Preservica down or refusing: say so and try again next poll; the cursor stays.
                    self.log.warning("Preservica change feed poll failed (%s: %s); retrying", type(exc).__name__, exc)
                except Exception:
                    # A watcher that dies announces nothing more: log it all, keep the cursor, poll again.
                    self.log.exception("Preservica change feed poll failed unexpectedly; retrying")
                else:
                    cursor = cursor_after
                    if batch:
                        unsettled.append((cursor, self.monotonic()))
                        self.log.info(
                            "Preservica changes %s .. %s: %d changed, %d deleted, %d unresolved",
                            batch.since,
                            batch.until,
                            len(batch.changed),
                            len(batch.deleted),
                            len(batch.unresolved),
                        )
                        yield TriggerEvent(self._payload(batch))
                    else:
                        unsettled.append((cursor, None))
            await asyncio.sleep(self.poll_interval)

    async def _checkpoint(
        self,
        store: CursorStore,
        unsettled: list[tuple[FeedCursor, float | None]],
        durable: FeedCursor,
        last_save: float,
    ) -> tuple[FeedCursor, float]:
        """Move the durable cursor past every window that is quiet or whose event has settled."""
        now = self.monotonic()
        settled_event = False
        candidate = durable
        while unsettled:
            after, emitted = unsettled[0]
            if emitted is not None and now - emitted < self.settle_seconds:
                break
            settled_event = settled_event or emitted is not None
            candidate = after
            unsettled.pop(0)
        if candidate != durable and (settled_event or now - last_save >= self.checkpoint_seconds):
            await store.save(candidate)
            return candidate, now
        if candidate != durable:
            # Quiet windows only: keep them in mind; they are saved with the next checkpoint.
            unsettled.insert(0, (candidate, None))
        return durable, last_save
