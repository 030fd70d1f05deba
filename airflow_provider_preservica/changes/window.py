"""One window of Preservica's change feed: what changed since the cursor, each entity once, nothing lost.

The feed (``updated-since``) lists entities, not changes, and says nothing about when each changed;
Preservica does not document whether ``date``/``endDate`` are inclusive. So a window is read as
``[since - overlap, until]`` and an entity is reported unless it was already reported by the window
that ended at ``since`` (``FeedCursor.seen``) *and* changed only inside the overlap. To tell the two
apart, a second read of ``[since, until]`` is made — only when such an entity is present, so a quiet
feed costs exactly one request. Either boundary semantics then loses nothing:

- a change stamped exactly at the boundary is inside the overlap, so an exclusive ``endDate`` in one
  window and an exclusive ``date`` in the next cannot both miss it;
- an entity reported by the previous window was reported after that window's end, so whatever changed
  inside the overlap was already visible to whoever handled that report.

``until`` is the caller's clock minus a lag (``lag``): changes the server stamps up to ``lag`` seconds
"in our future" (clock skew, commit delay) are still read by a later window.

Filters: entity types (from the feed itself), and a collection — a folder and everything below it —
checked with one Content API search per 100 changed refs (``xip.parent_hierarchy``), never per entity.
Entities the search index does not know yet (just ingested: Preservica indexes in the background) cannot
be placed: they are reported apart as ``unresolved`` and kept in the cursor (``pending``), placed again at
every poll for up to an hour, and reported in ``refs`` once the index puts them in the collection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from airflow_provider_preservica.client.changes import (
    DEFAULT_FEED_PAGE,
    ChangedEntity,
    ChangeFeedService,
    format_instant,
    parse_instant,
)
from airflow_provider_preservica.client.changes import check_entity_types as check_entity_types  # for operators
from airflow_provider_preservica.client.search import SearchQuery

DEFAULT_OVERLAP = 2.0
DEFAULT_LAG = 5.0
RESOLVE_FOR = 3600.0  # how long an entity the search index does not know is placed again, poll after poll
MAX_SEEN = 10_000
SEARCH_CHUNK = 100
HIERARCHY_FIELD = "xip.parent_hierarchy"


class SearchesHook(Protocol):
    def search(self, query: SearchQuery | str = "%", **kwargs: Any) -> Iterable[Any]: ...


@dataclass(frozen=True)
class FeedCursor:
    """Where the next window starts, and which refs the window that ended there reported or saw."""

    since: datetime
    seen: tuple[str, ...] = ()
    # Where the watcher started (``since=`` or "now"): overlaps never reach back before it, or they
    # would announce changes from before the start. Dropped once the overlap no longer reaches it.
    floor: datetime | None = None
    # Changed entities the search index did not know yet: ``(ref, type, first seen)``, placed again each poll.
    pending: tuple[tuple[str, str, str], ...] = ()
    # What ``seen`` holds: entity refs (``entities``, the updated-since feed) or event ids (``events``).
    feed: str = "entities"

    def to_json(self) -> dict[str, Any]:
        floor = format_instant(self.floor) if self.floor is not None else None
        return {
            "since": format_instant(self.since),
            "seen": list(self.seen),
            "floor": floor,
            "pending": [list(p) for p in self.pending],
            "feed": self.feed,
        }

    def seen_in(self, feed: str) -> set[str]:
        """``seen``, if it was kept by a window of the same feed (else nothing: at worst a change twice)."""
        return set(self.seen) if self.feed == feed else set()

    @classmethod
    def from_json(cls, data: Any) -> FeedCursor | None:
        """The cursor stored as ``to_json`` made it, or ``None`` for nothing usable (never a crash)."""
        if not isinstance(data, dict) or not isinstance(data.get("since"), str):
            return None
        try:
            since = parse_instant(data["since"])
        except Exception:
            return None
        seen = data.get("seen") or []
        refs = tuple(str(r) for r in seen) if isinstance(seen, list) else ()
        pending = tuple(
            (str(p[0]), str(p[1]), str(p[2])) for p in data.get("pending") or [] if isinstance(p, list) and len(p) == 3
        )
        floor = data.get("floor")
        feed = "events" if data.get("feed") == "events" else "entities"
        try:
            return cls(since, refs, parse_instant(floor) if isinstance(floor, str) else None, pending, feed)
        except Exception:
            return cls(since, refs, None, pending, feed)


@dataclass(frozen=True)
class FeedFilter:
    collection: str | None = None
    entity_types: tuple[str, ...] | None = None
    # Preservica event types (``client.entity_events.EVENT_TYPES``): read the entity events instead of
    # updated-since (``changes.events_window``).
    event_types: tuple[str, ...] | None = None

    def wants_type(self, entity: ChangedEntity) -> bool:
        return self.entity_types is None or entity.entity_type in self.entity_types


@dataclass(frozen=True)
class ChangeBatch:
    """What one window found, after filtering. ``since``/``until`` are the window (ISO, UTC)."""

    since: str
    until: str
    changed: list[ChangedEntity] = field(default_factory=list)
    deleted: list[ChangedEntity] = field(default_factory=list)
    unresolved: list[ChangedEntity] = field(default_factory=list)
    requests: int = 0
    events: int = 0  # events read (the event-type filter only)

    def __bool__(self) -> bool:
        return bool(self.changed or self.deleted or self.unresolved)

    def payload(self, max_refs: int) -> dict[str, Any]:
        """JSON for an asset event's extra or XCom: refs capped at ``max_refs``, counts always exact."""

        def refs(entities: Sequence[ChangedEntity]) -> list[str]:
            return [e.ref for e in entities[:max_refs]]

        total = len(self.changed) + len(self.deleted) + len(self.unresolved)
        return {
            "since": self.since,
            "until": self.until,
            "refs": refs(self.changed),
            "types": {e.ref: e.entity_type for e in self.changed[:max_refs]},
            "deleted": refs(self.deleted),
            "unresolved": refs(self.unresolved),
            "count": total,
            "truncated": any(len(x) > max_refs for x in (self.changed, self.deleted, self.unresolved)),
        }


def _hierarchy(value: Any) -> set[str]:
    if isinstance(value, list):
        return {str(v) for v in value}
    if isinstance(value, str):
        return set(value.replace(",", " ").split())
    return set()


def _place(hook: SearchesHook, collection: str, refs: list[str]) -> tuple[set[str], set[str]]:
    """(inside the collection, known to the search index) among ``refs``: one search per 100 refs."""
    inside: set[str] = set()
    known: set[str] = set()
    for start in range(0, len(refs), SEARCH_CHUNK):
        chunk = refs[start : start + SEARCH_CHUNK]
        query = SearchQuery(filters={"xip.reference": chunk}, fields=(HIERARCHY_FIELD,))
        for hit in hook.search(query, page_size=len(chunk)):
            known.add(hit.reference)
            if hit.reference == collection or collection in _hierarchy(hit.value(HIERARCHY_FIELD)):
                inside.add(hit.reference)
    return inside, known


def read_window(
    feed: ChangeFeedService,
    hook: SearchesHook,
    cursor: FeedCursor,
    until: datetime,
    *,
    wanted: FeedFilter = FeedFilter(),
    overlap: float = DEFAULT_OVERLAP,
    page_size: int = DEFAULT_FEED_PAGE,
    resolve_for: float = RESOLVE_FOR,
) -> tuple[ChangeBatch, FeedCursor]:
    """Read ``[cursor.since, until]`` (see the module docstring); returns the batch and the next cursor."""
    before = feed.requests
    lower = cursor.since - timedelta(seconds=overlap)
    if cursor.floor is not None and lower < cursor.floor:
        lower = cursor.floor
    listed = feed.read_window(lower, until, page_size)
    reported_before = cursor.seen_in("entities")
    if any(e.ref in reported_before for e in listed):
        core = {e.ref for e in feed.read_window(cursor.since, until, page_size)}
        fresh = [e for e in listed if e.ref not in reported_before or e.ref in core]
    else:
        fresh = listed
    if len(listed) <= MAX_SEEN:
        seen = tuple(e.ref for e in listed)
    else:  # remember only the window's tail: more is never needed, and fewer only risks a duplicate
        seen = tuple(e.ref for e in feed.read_window(until - timedelta(seconds=overlap), until, page_size))[:MAX_SEEN]

    alive, deleted, unresolved, still_pending = classify(
        hook, [e for e in fresh if wanted.wants_type(e)], cursor, until, wanted.collection, resolve_for
    )
    batch = ChangeBatch(
        since=format_instant(cursor.since),
        until=format_instant(until),
        changed=alive,
        deleted=deleted,
        unresolved=unresolved,
        requests=feed.requests - before,
    )
    floor = cursor.floor if cursor.floor is not None and until - timedelta(seconds=overlap) < cursor.floor else None
    return batch, FeedCursor(until, seen, floor, tuple(still_pending))


def classify(
    hook: SearchesHook,
    typed: list[ChangedEntity],
    cursor: FeedCursor,
    until: datetime,
    collection: str | None,
    resolve_for: float = RESOLVE_FOR,
) -> tuple[list[ChangedEntity], list[ChangedEntity], list[ChangedEntity], list[tuple[str, str, str]]]:
    """Changed entities (already filtered by type) -> (changed inside the collection, deleted, unresolved,
    the cursor's next ``pending``). Deleted entities are not placed: the search index no longer has them."""
    deleted = [e for e in typed if e.deleted]
    alive = [e for e in typed if not e.deleted]
    unresolved: list[ChangedEntity] = []
    still_pending: list[tuple[str, str, str]] = []
    listed_now = {e.ref for e in typed}
    waiting = [ChangedEntity(ref, kind) for ref, kind, _ in cursor.pending if ref not in listed_now]
    if collection and (alive or waiting):
        first_seen = {ref: seen_at for ref, _, seen_at in cursor.pending}
        inside, known = _place(hook, collection, [e.ref for e in [*alive, *waiting]])
        unresolved = [e for e in alive if e.ref not in known]  # reported once, then placed again each poll
        give_up = format_instant(until - timedelta(seconds=resolve_for))
        still_pending = [
            (e.ref, e.entity_type, first_seen.get(e.ref, format_instant(until)))
            for e in [*alive, *waiting]
            if e.ref not in known and first_seen.get(e.ref, format_instant(until)) > give_up
        ][:MAX_SEEN]
        alive = [e for e in [*alive, *waiting] if e.ref in inside]
    return alive, deleted, unresolved, still_pending
