"""One window of Preservica's entity events, filtered to event types: what changed *how*, nothing lost.

With an event-type filter (``FeedFilter.event_types``) a window reads the event list instead of the
changed-entities feed: ``GET /api/entity/events?types=...&from=&to=`` for ``[since - overlap, until]``.
Events, unlike the feed's entries, have an identity and a date that never changes, so the overlap is deduped
exactly: an event reported by the previous window (its id in ``FeedCursor.seen``) is skipped, whether
Preservica's bounds are inclusive or not. ``lag`` keeps late-committed events inside a later window, as on
the feed. A quiet window (no event of the wanted types) is one request.

For the events found, each event's actions name the entities it touched (``client.entity_events``: one
listing per event, bounded parallelism). Their types, titles and whether they are deleted come from the
changed-entities feed from ``since - overlap`` on (no end: an entity touched in the window changed last at
or after that event): its pages, not one request per entity. Then the same filters as the feed path
(``window.classify``): entity types, and a collection placed by search, ``unresolved``/``pending`` included.
An entity the feed does not list (a clock disagreement) passes the type filter with type ``""``: reported
rather than lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow_provider_preservica.changes.window import (
    DEFAULT_OVERLAP,
    MAX_SEEN,
    RESOLVE_FOR,
    ChangeBatch,
    FeedCursor,
    FeedFilter,
    SearchesHook,
    classify,
)
from airflow_provider_preservica.client.changes import ChangedEntity, ChangeFeedService, format_instant, parse_instant
from airflow_provider_preservica.client.entity_events import DEFAULT_EVENTS_PAGE, EntityEvent, EntityEventsService
from airflow_provider_preservica.client.entity_events import check_event_types as check_event_types  # for operators

FEED = "events"


def _dated_at_or_after(event: EntityEvent, moment: datetime) -> bool:
    try:
        return parse_instant(event.date) >= moment
    except Exception:
        return True  # an unreadable date: keep the id (at worst remembered one window too long)


def read_event_window(
    events: EntityEventsService,
    feed: ChangeFeedService,
    hook: SearchesHook,
    cursor: FeedCursor,
    until: datetime,
    *,
    wanted: FeedFilter,
    overlap: float = DEFAULT_OVERLAP,
    page_size: int = DEFAULT_EVENTS_PAGE,
    resolve_for: float = RESOLVE_FOR,
) -> tuple[ChangeBatch, FeedCursor]:
    """Read the events of ``wanted.event_types`` in ``[cursor.since, until]`` (see the module docstring)."""
    assert wanted.event_types, "read_event_window needs event types"
    before = events.requests + feed.requests
    lower = cursor.since - timedelta(seconds=overlap)
    if cursor.floor is not None and lower < cursor.floor:
        lower = cursor.floor
    listed = events.read_events(wanted.event_types, lower, until, page_size)
    reported_before = cursor.seen_in(FEED)
    fresh = [e for e in listed if e.id not in reported_before]
    # The next window starts at ``until - overlap``: only events from there on can be listed again. But it is
    # asked for in whole milliseconds (``format_instant`` truncates), so events in the millisecond before the
    # exact instant are listed again too; keep the ids from the start of that second (a server comparing in
    # whole seconds lists those as well). Keeping a few more ids only costs memory; one fewer is a duplicate.
    tail = until - timedelta(seconds=overlap)
    keep_from = tail.replace(microsecond=0)
    seen = tuple(e.id for e in listed if _dated_at_or_after(e, keep_from))[-MAX_SEEN:]

    touched = events.touched_by(fresh, page_size) if fresh else {}
    refs = list(dict.fromkeys(ref for event in fresh for ref in touched[event.id]))
    entities: list[ChangedEntity] = []
    if refs:
        known = {e.ref: e for e in feed.read_window(lower, None, page_size)}
        entities = [known.get(ref, ChangedEntity(ref, "")) for ref in refs]
    typed = [e for e in entities if e.entity_type == "" or wanted.wants_type(e)]
    alive, deleted, unresolved, still_pending = classify(hook, typed, cursor, until, wanted.collection, resolve_for)
    batch = ChangeBatch(
        since=format_instant(cursor.since),
        until=format_instant(until),
        changed=alive,
        deleted=deleted,
        unresolved=unresolved,
        requests=events.requests + feed.requests - before,
        events=len(fresh),
    )
    floor = cursor.floor if cursor.floor is not None and tail < cursor.floor else None
    return batch, FeedCursor(until, seen, floor, tuple(still_pending), FEED)
