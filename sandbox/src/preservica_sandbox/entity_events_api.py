"""Entity API: the changed-entities feed and entity events, as pyPreservica 4.2.2 and TNA's client call them.

- ``GET /api/entity/entities/updated-since?date=<ISO>[&endDate=<ISO>]&start&max`` (pyPreservica
  ``updated_entities``; TNA adds ``endDate``): ``EntitiesResponse/Entities/Entity[@ref][@title][@type]``
  (``@deleted="true"`` for deleted entities, as TNA's client reads it), oldest change first, an
  entity changed twice listed once at its last change; ``Paging/Next`` + ``TotalResults``.
  ``date`` is **inclusive** and ``endDate`` **exclusive**; both are ISO 8601 instants, UTC unless
  they carry an offset (``Z``, ``+00:00`` and ``+0000`` are all read), compared at millisecond
  precision. A missing or unreadable ``date`` is a 400 naming the parameter.
- ``GET /api/entity/events?types=&from=&to=&username=&start&max`` (``all_events``,
  ``all_ingest_events``): ``EventsResponse/Events/xip:Event[@type]`` (``xip:Ref`` = event id,
  ``xip:Date``, ``xip:User`` when known), oldest first.
- ``GET /api/entity/events/{id}/event-actions`` (``entity_from_event``) and
  ``GET /api/entity/{path}/{ref}/event-actions`` (``entity_events``):
  ``EventActionsResponse/EventActions/xip:EventAction[@commandType]`` with ``xip:Event[@type]``,
  ``xip:Date`` and ``xip:Entity``; an entity's actions newest first (TNA reads the first as the latest).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Query, Request, Response

from . import entity_xml as xml
from .changes import Event, EventAction, parse_instant
from .errors import SandboxHTTPError
from .route_helpers import DEFAULT_PAGE, Max, Start, lookup, next_page_url, versioned_route, xml_response
from .security import StateDep, TokenSession

router = APIRouter(tags=["entity"])


def _instant(name: str, value: str) -> str:
    try:
        return parse_instant(value)
    except ValueError:
        raise SandboxHTTPError(
            400, f"{name}={value!r} is not an ISO 8601 date-time: send e.g. 2024-05-01T12:00:00.000Z"
        ) from None


def _paging(total: int, next_url: str | None) -> str:
    link = f"<Next>{escape(next_url)}</Next>" if next_url else ""
    return f"<Paging>{link}<TotalResults>{total}</TotalResults></Paging>"


@versioned_route(router, "GET", "/entities/updated-since")
async def updated_since(
    request: Request,
    state: StateDep,
    _: TokenSession,
    date: Annotated[str | None, Query()] = None,
    endDate: Annotated[str | None, Query()] = None,
    start: Start = 0,
    max: Max = DEFAULT_PAGE,
) -> Response:
    if not date:
        raise SandboxHTTPError(400, "updated-since needs date=<ISO 8601 date-time>, e.g. 2024-05-01T12:00:00.000Z")
    since = _instant("date", date)
    until = _instant("endDate", endDate) if endDate else None
    rows = state.repository.updated_since(since, until)
    ctx = xml.context(request, state.version)
    entities = "".join(
        f"<Entity ref={quoteattr(ref)} title={quoteattr(title)} type={quoteattr(kind)}"
        + (' deleted="true"' if deleted else "")
        + f">{escape(ctx.url(ref, kind))}</Entity>"
        for _modified, _seq, ref, kind, title, deleted in rows[start : start + max]
    )
    body = (
        ctx.open("EntitiesResponse")
        + f"<Entities>{entities}</Entities>"
        + _paging(len(rows), next_page_url(request, start, max, len(rows)))
        + "</EntitiesResponse>"
    )
    return xml_response(body)


def _xip_event(event: Event) -> str:
    user = f"<xip:User>{escape(event.user)}</xip:User>" if event.user else ""
    return (
        f"<xip:Event type={quoteattr(event.type)}><xip:Ref>{escape(event.id)}</xip:Ref>"
        f"<xip:Date>{event.date}</xip:Date>{user}</xip:Event>"
    )


def _event_actions(
    request: Request, state: StateDep, rows: Sequence[tuple[Event, EventAction]], start: int, maximum: int
) -> Response:
    ctx = xml.context(request, state.version)
    actions = "".join(
        f"<xip:EventAction commandType={quoteattr(action.command)}>{_xip_event(event)}"
        f"<xip:Date>{event.date}</xip:Date><xip:Entity>{escape(action.ref)}</xip:Entity></xip:EventAction>"
        for event, action in rows[start : start + maximum]
    )
    body = (
        ctx.open("EventActionsResponse")
        + f"<EventActions>{actions}</EventActions>"
        + _paging(len(rows), next_page_url(request, start, maximum, len(rows)))
        + "</EventActionsResponse>"
    )
    return xml_response(body)


@versioned_route(router, "GET", "/events")
async def events(
    request: Request,
    state: StateDep,
    _: TokenSession,
    types: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    username: str | None = None,
    start: Start = 0,
    max: Max = DEFAULT_PAGE,
) -> Response:
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    since = _instant("from", from_) if from_ else None
    until = _instant("to", to) if to else None
    repo = state.repository
    with repo.lock:
        chosen = [
            e
            for e in repo.changes.events
            if (wanted is None or e.type in wanted)
            and (since is None or e.date >= since)
            and (until is None or e.date <= until)
            and (username is None or e.user == username)
        ]
    ctx = xml.context(request, state.version)
    body = (
        ctx.open("EventsResponse")
        + "<Events>"
        + "".join(_xip_event(e) for e in chosen[start : start + max])
        + "</Events>"
        + _paging(len(chosen), next_page_url(request, start, max, len(chosen)))
        + "</EventsResponse>"
    )
    return xml_response(body)


@versioned_route(router, "GET", "/events/{event_id}/event-actions")
async def event_actions_of_event(
    event_id: str, request: Request, state: StateDep, _: TokenSession, start: Start = 0, max: Max = DEFAULT_PAGE
) -> Response:
    repo = state.repository
    with repo.lock:
        event = repo.changes.event(event_id)
        if event is None:
            raise SandboxHTTPError(404, f"no event with id {event_id}")
        rows = [(event, action) for action in event.actions]
    return _event_actions(request, state, rows, start, max)


@versioned_route(router, "GET", "/{path:entity_path}/{ref}/event-actions")
async def event_actions_of_entity(
    path: str, ref: str, request: Request, state: StateDep, _: TokenSession, start: Start = 0, max: Max = DEFAULT_PAGE
) -> Response:
    repo = state.repository
    with repo.lock:
        entity = lookup(repo, path, ref)
        rows = [
            (event, action)
            for event in reversed(repo.changes.events)
            for action in event.actions
            if action.ref == entity.ref
        ]
    return _event_actions(request, state, rows, start, max)
