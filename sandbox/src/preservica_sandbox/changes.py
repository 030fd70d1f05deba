"""What changed in the repository, and when: the data behind ``updated-since`` and the entity events.

``ChangeLog`` hangs off the ``Repository`` (``repository.changes``) and is written by it under the
repository's lock: every change (creation, ingest, title/description, identifiers, metadata, move,
security tag, deletion) appends one ``Event`` naming the entities it touched, with the same
timestamp the repository stamps on ``Entity.modified``. Deleted entities leave a ``Tombstone`` so
that the changed-entities feed can still list them (``deleted="true"``, as Preservica does).

The log is memory-only and bounded (``MAX_EVENTS``, oldest dropped first): it serves the feed's
history, not an audit trail. Seeding records no events (a seeded repository has no history); the
entities still carry their ``modified`` time, so they appear in ``updated-since``.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .entities import Entity

MAX_EVENTS = 100_000

# Event types, named as Preservica names them in its event list (``types=Ingest`` filters on these).
# Identifier and metadata edits are ``Modified`` events, told apart by their actions' ``commandType``
# (``AddIdentifier``, ``AddMetadata`` ...), as in TNA's recorded responses.
INGEST = "Ingest"
CREATE = "Create"
MODIFIED = "Modified"
IDENTIFIERS = MODIFIED
METADATA = MODIFIED
MOVED = "Moved"
SECURITY = "SecurityChanged"
DELETED = "Deleted"


@dataclass(slots=True, frozen=True)
class EventAction:
    """One entity touched by an event; ``command`` is the ``commandType`` Preservica reports."""

    ref: str
    kind: str
    command: str


@dataclass(slots=True)
class Event:
    id: str
    type: str
    date: str  # ISO 8601 UTC with milliseconds and ``Z``, like ``Entity.modified``
    user: str | None
    actions: list[EventAction] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class Tombstone:
    ref: str
    kind: str
    title: str
    modified: str
    seq: int


def parse_instant(text: str) -> str:
    """An ISO 8601 date or date-time as the repository's timestamp form (UTC, milliseconds, ``Z``).

    Accepts what clients send: ``...Z``, ``+00:00``, ``+0000`` (NYPL), any other offset (converted to
    UTC), a date alone (midnight UTC) and no offset at all (taken as UTC). Raises ``ValueError``.
    """
    value = text.strip()
    if len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit() and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]  # +0000 -> +00:00
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# (modified, seq, ref, kind, title, deleted): sorts oldest change first, then in creation order.
FeedRow = tuple[str, int, str, str, str, bool]


def feed_rows(
    entities: Iterable[Entity], tombstones: Iterable[Tombstone], since: str, until: str | None
) -> list[FeedRow]:
    """Entities (content objects too) whose last change is at or after ``since`` and before ``until``,
    deleted ones included, oldest change first. Both bounds are timestamps as ``parse_instant`` makes
    them: ``since`` inclusive, ``until`` exclusive. An entity changed twice is listed once, at its last change.
    """
    rows: list[FeedRow] = [
        (e.modified, e.seq, e.ref, e.kind, e.title, False)
        for e in entities
        if e.modified >= since and (until is None or e.modified < until)
    ]
    rows.extend(
        (t.modified, t.seq, t.ref, t.kind, t.title, True)
        for t in tombstones
        if t.modified >= since and (until is None or t.modified < until)
    )
    rows.sort()
    return rows


class ChangeLog:
    """Events in the order they happened, and tombstones of deleted entities. Callers hold the lock."""

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.events: deque[Event] = deque(maxlen=max_events)
        self.tombstones: dict[str, Tombstone] = {}
        self._ids = itertools.count(1)

    def record(self, event_type: str, date: str, actions: Iterable[EventAction], user: str | None = None) -> Event:
        event = Event(f"{next(self._ids):08d}-sandbox-event", event_type, date, user, list(actions))
        self.events.append(event)
        return event

    def bury(self, stones: Iterable[Tombstone]) -> None:
        for stone in stones:
            self.tombstones[stone.ref] = stone

    def revive(self, ref: str) -> None:
        """An entity with this ref exists again (created with a chosen ref): it is not deleted."""
        self.tombstones.pop(ref, None)

    def event(self, event_id: str) -> Event | None:
        return next((e for e in self.events if e.id == event_id), None)

    def clear(self) -> None:
        self.events.clear()
        self.tombstones.clear()
