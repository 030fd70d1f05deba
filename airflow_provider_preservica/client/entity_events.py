"""Preservica's entity events: ``GET /api/entity/events`` (the event list) and each event's actions.

Wire format (pyPreservica 4.2.2 ``_all_events_page`` and ``_entity_from_event_page``; TNA's client reads the
same ``EventAction`` shape per entity):

- ``GET /api/entity/events?types=<T1,T2>&from=<ISO>&to=<ISO>&start&max`` answers
  ``EventsResponse/Events/xip:Event[@type]`` (``xip:Ref`` the event id, ``xip:Date``, ``xip:User``) oldest
  first, with ``Paging/TotalResults``. An event is one operation (an ingest, a move, a deletion, a metadata
  edit), however many entities it touched.
- ``GET /api/entity/events/{id}/event-actions?start&max`` answers ``EventActionsResponse/EventActions/
  xip:EventAction[@commandType]`` with ``xip:Entity`` (a ref): the entities that event touched.

So a window costs its pages of events plus one listing (one page, mostly) per event — an ingest of
10,000 assets is one event. The listings run with bounded parallelism on the shared token.

Event types, as Preservica names them in the list (``types=`` filters on them): pyPreservica's
``all_ingest_events`` asks for ``Ingest``; TNA's recorded responses show ``Ingest`` (``command_create``)
and ``Modified`` (``AddIdentifier``). ``EVENT_TYPES`` is the set the provider accepts; the sandbox makes
each of them.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from airflow_provider_preservica.client.changes import format_instant
from airflow_provider_preservica.client.namespaces import child_text, local_name
from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.exceptions import PreservicaConfigError, PreservicaHTTPError

EVENTS_PATH = "/api/entity/events"
DEFAULT_EVENTS_PAGE = 500
ACTION_READERS = 4  # parallel event-action listings on the one token

#: Entity event types as Preservica's event list names them: creation by ingest, creation through the API,
#: any edit of an entity (title, description, identifiers, metadata), a move, a security tag change, a deletion.
EVENT_TYPES = ("Ingest", "Create", "Modified", "Moved", "SecurityChanged", "Deleted")
_BY_FOLDED = {name.lower(): name for name in EVENT_TYPES}


@dataclass(frozen=True)
class EntityEvent:
    id: str
    type: str
    date: str
    user: str = ""


def check_event_types(event_types: Iterable[str] | str | None) -> tuple[str, ...] | None:
    """``None`` (no event filter: the changed-entities feed) or Preservica's names for the types asked for.

    Case and spaces do not matter (``"security changed"`` is ``SecurityChanged``); an unknown name is an
    error that lists the known ones, not a filter that silently never matches."""
    if event_types is None:
        return None
    given = [event_types] if isinstance(event_types, str) else list(event_types)
    names = [str(t).replace(" ", "").replace("_", "").lower() for t in given]
    wrong = [g for g, n in zip(given, names, strict=True) if n not in _BY_FOLDED]
    if wrong or not names:
        raise PreservicaConfigError(f"event_types must name some of {', '.join(EVENT_TYPES)}, not {given!r}")
    return tuple(dict.fromkeys(_BY_FOLDED[n] for n in names))


def _total(root: ET.Element, default: int) -> int:
    for element in root.iter():
        if local_name(element.tag) == "TotalResults" and (element.text or "").strip().isdigit():
            return int((element.text or "").strip())
    return default


class EntityEventsService:
    """Reads the event list and event actions of one server; counts its requests."""

    def __init__(self, client: PreservicaClient, readers: int = ACTION_READERS) -> None:
        self.client = client
        self.readers = readers
        self.requests = 0
        self._count = threading.Lock()

    def _get(self, path: str, params: dict[str, str]) -> ET.Element:
        with self._count:
            self.requests += 1
        try:
            return self.client.get_xml(path, params=params)
        except PreservicaHTTPError as exc:
            if exc.status == 400:
                raise PreservicaConfigError(f"Preservica refused the events query {params}: {exc.detail}") from None
            raise

    def page(
        self, types: Iterable[str], since: datetime, until: datetime, start: int = 0, size: int = DEFAULT_EVENTS_PAGE
    ) -> tuple[list[EntityEvent], int]:
        params = {
            "types": ",".join(types),
            "from": format_instant(since),
            "to": format_instant(until),
            "start": str(start),
            "max": str(size),
        }
        root = self._get(EVENTS_PATH, params)
        events = [
            EntityEvent(child_text(e, "Ref"), e.get("type", ""), child_text(e, "Date"), child_text(e, "User"))
            for e in root.iter()
            if local_name(e.tag) == "Event" and child_text(e, "Ref")
        ]
        return events, _total(root, len(events))

    def read_events(
        self, types: Iterable[str], since: datetime, until: datetime, page_size: int = DEFAULT_EVENTS_PAGE
    ) -> list[EntityEvent]:
        """Every event of ``types`` dated in ``[since, until]``, each once, oldest first (every page)."""
        if page_size < 1:
            raise PreservicaConfigError(f"page_size must be at least 1, not {page_size}")
        chosen = list(types)
        seen: dict[str, EntityEvent] = {}
        start = 0
        while True:
            events, total = self.page(chosen, since, until, start, page_size)
            for event in events:
                seen.setdefault(event.id, event)
            start += len(events)
            if not events or start >= total:
                return list(seen.values())

    def touched(self, event_id: str, page_size: int = DEFAULT_EVENTS_PAGE) -> list[str]:
        """The refs of the entities one event touched, in the order Preservica lists them (every page)."""
        refs: list[str] = []
        start = 0
        while True:
            params = {"start": str(start), "max": str(page_size)}
            root = self._get(f"{EVENTS_PATH}/{event_id}/event-actions", params)
            actions = [e for e in root.iter() if local_name(e.tag) == "EventAction"]
            refs.extend(ref for ref in (child_text(a, "Entity") for a in actions) if ref)
            start += len(actions)
            if not actions or start >= _total(root, start):
                return list(dict.fromkeys(refs))

    def touched_by(self, events: list[EntityEvent], page_size: int = DEFAULT_EVENTS_PAGE) -> dict[str, list[str]]:
        """``{event id: refs}`` for many events: their listings read ``readers`` at a time."""
        if len(events) <= 1 or self.readers <= 1:
            return {e.id: self.touched(e.id, page_size) for e in events}
        with ThreadPoolExecutor(min(self.readers, len(events)), thread_name_prefix="preservica-events") as pool:
            listings = list(pool.map(lambda e: self.touched(e.id, page_size), events))
        return {e.id: refs for e, refs in zip(events, listings, strict=True)}
