"""Preservica's changed-entities feed, ``GET /api/entity/entities/updated-since``, read page by page.

Wire format (pyPreservica 4.2.2 ``_updated_entities_page``, TNA's ``entitiesUpdatedSince``):
``date=<ISO>`` and optionally ``endDate=<ISO>``, ``start``/``max``; the answer is
``EntitiesResponse/Entities/Entity[@ref][@title][@type]`` (``@deleted`` on deleted entities, as TNA's
client reads it) with ``Paging/TotalResults``. An entry names an entity and nothing about *when* it
changed; Preservica does not document whether ``date`` and ``endDate`` are inclusive. Callers that
keep a cursor therefore overlap their windows and dedupe (``changes.cursor``); this module only reads.

Dates go out as UTC with milliseconds and ``Z`` (``2024-05-01T12:00:00.000Z``, TNA's form; the
sandbox also reads ``+00:00`` and ``+0000``).

Paging by offset over a live feed can skip an entry: an entity changed again while we page leaves the
window and every later entry moves up by one. ``read_window`` watches ``TotalResults`` and steps back
by as many entries as left the window, re-reading a few (deduped by ref) rather than skipping any.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from airflow_provider_preservica.client.namespaces import local_name
from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.exceptions import PreservicaConfigError, PreservicaHTTPError

UPDATED_SINCE_PATH = "/api/entity/entities/updated-since"
DEFAULT_FEED_PAGE = 500
ENTITY_TYPES = ("SO", "IO", "CO")


@dataclass(frozen=True)
class ChangedEntity:
    ref: str
    entity_type: str
    title: str = ""
    deleted: bool = False


@dataclass(frozen=True)
class FeedPage:
    entities: list[ChangedEntity]
    total: int


def format_instant(moment: datetime) -> str:
    """``datetime`` -> ``2024-05-01T12:00:00.123Z`` (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time (``Z``, ``+00:00`` or no offset = UTC) as an aware UTC ``datetime``."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise PreservicaConfigError(
            f"{text!r} is not an ISO 8601 date-time; write it like 2024-05-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def check_entity_types(entity_types: Iterable[str] | None) -> tuple[str, ...] | None:
    """``None`` (every type) or the validated types; a clear error names a wrong one."""
    if entity_types is None:
        return None
    chosen = tuple(
        dict.fromkeys(str(t).upper() for t in ([entity_types] if isinstance(entity_types, str) else entity_types))
    )
    wrong = [t for t in chosen if t not in ENTITY_TYPES]
    if wrong or not chosen:
        raise PreservicaConfigError(
            "entity_types must name some of SO (folders), IO (assets), CO (content objects), "
            f"not {list(entity_types)!r}"
        )
    return chosen


def _page_from(root: ET.Element) -> FeedPage:
    # Namespaces differ by release; the feed's few elements are found by local name, which spares a
    # version request per poll.
    entities = [
        ChangedEntity(
            ref=element.get("ref", ""),
            entity_type=element.get("type", ""),
            title=element.get("title", ""),
            deleted=element.get("deleted", "").strip().lower() in ("true", "1", "yes"),
        )
        for element in root.iter()
        if local_name(element.tag) == "Entity" and element.get("ref")
    ]
    total = len(entities)
    for element in root.iter():
        if local_name(element.tag) == "TotalResults" and (element.text or "").strip().isdigit():
            total = int((element.text or "").strip())
    return FeedPage(entities, total)


class ChangeFeedService:
    """Reads ``updated-since`` for one server."""

    def __init__(self, client: PreservicaClient) -> None:
        self.client = client
        self.requests = 0  # pages fetched by this service: polling cost is counted, not guessed

    def page(self, since: datetime, until: datetime | None, start: int = 0, size: int = DEFAULT_FEED_PAGE) -> FeedPage:
        params = {"date": format_instant(since), "start": str(start), "max": str(size)}
        if until is not None:
            params["endDate"] = format_instant(until)
        self.requests += 1
        try:
            root = self.client.get_xml(UPDATED_SINCE_PATH, params=params)
        except PreservicaHTTPError as exc:
            if exc.status == 400:
                raise PreservicaConfigError(
                    f"Preservica refused the change feed query {params}: {exc.detail}"
                ) from None
            raise
        return _page_from(root)

    def read_window(
        self, since: datetime, until: datetime | None, page_size: int = DEFAULT_FEED_PAGE
    ) -> list[ChangedEntity]:
        """Every entity the feed lists between ``since`` and ``until``, each once, in feed order."""
        if page_size < 1:
            raise PreservicaConfigError(f"page_size must be at least 1, not {page_size}")
        seen: dict[str, ChangedEntity] = {}
        start, last_total = 0, None
        while True:
            page = self.page(since, until, start, page_size)
            if last_total is not None and page.total < last_total and start > 0:
                # Entries left the window since the previous page: later ones moved up. Step back.
                start = max(0, start - (last_total - page.total))
                last_total = page.total
                page = self.page(since, until, start, page_size)
            last_total = page.total
            for entity in page.entities:
                seen.setdefault(entity.ref, entity)
            start += len(page.entities)
            if not page.entities or start >= page.total:
                return list(seen.values())
