"""Content API (JSON): search, search-within, indexed fields and object details.

``GET`` or ``POST`` (form-encoded; values in the body win over the query string) with ``q`` (a
JSON string, see ``search`` for the semantics), ``start`` (default 0), ``max`` (default 10, ``-1``
= all remaining hits) and ``metadata`` (a comma list and/or repeated keys; without it the fields
named in ``q.fields`` are returned). ``search-within`` also needs ``parenthierarchy`` (a folder
ref; unknown -> 404). Responses are ``{"success": true, "version": 1, "value": {...}}``; errors
are ``{"success": false, "message": ...}`` with 400 (bad query, unknown field) or 404.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .entities import CO, IO, SO, RepositoryError, check_ref
from .errors import SandboxHTTPError
from .search import FIELDS, SearchError, SearchQuery, engine_for, indexed_fields, parse_metadata, parse_query
from .security import StateDep, TokenSession
from .state import SandboxState

router = APIRouter(prefix="/api/content", tags=["content"])

DEFAULT_MAX = 10
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
HISTORY_PROPERTIES = ("cmis:createdBy", "cmis:creationDate", "cmis:lastModifiedBy", "cmis:lastModificationDate")


def ok(value: Any) -> JSONResponse:
    return JSONResponse({"success": True, "version": 1, "value": value})


async def request_params(request: Request) -> dict[str, list[str]]:
    """Query-string parameters, overridden key by key by a form (or JSON object) body."""
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    if request.method != "POST":
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body: dict[str, list[str]] = {}
    if content_type in FORM_TYPES:
        form = await request.form()
        for key, item in form.multi_items():
            if isinstance(item, str):
                body.setdefault(key, []).append(item)
    elif content_type == "application/json":
        try:
            doc = json.loads(await request.body() or b"{}")
        except ValueError:
            raise SandboxHTTPError(400, "request body is not valid JSON") from None
        if not isinstance(doc, dict):
            raise SandboxHTTPError(400, "a JSON request body must be an object of parameters")
        for key, item in doc.items():
            values = item if isinstance(item, list) else [item]
            body[key] = [v if isinstance(v, str) else json.dumps(v) for v in values]
    params.update(body)
    return params


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _integer(params: dict[str, list[str]], name: str, default: int, minimum: int) -> int:
    raw = _single(params, name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SandboxHTTPError(400, f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise SandboxHTTPError(400, f"{name} must be at least {minimum}, not {value}")
    return value


def _run_search(state: SandboxState, query: SearchQuery, fields: list[str], start: int, maximum: int) -> dict[str, Any]:
    engine = engine_for(state.repository)
    total, page = engine.page(query, start, maximum)
    return {
        "objectIds": [entity.content_id for entity in page],
        "totalHits": total,
        "metadata": engine.rows(page, fields),
    }


async def _search(request: Request, state: SandboxState, within: bool) -> JSONResponse:
    params = await request_params(request)
    folder: str | None = None
    if within:
        raw = _single(params, "parenthierarchy")
        if not raw or not raw.strip():
            raise SandboxHTTPError(400, "search-within needs parenthierarchy (a folder reference)")
        try:
            folder = check_ref(raw)
        except RepositoryError:
            folder = None
        if folder is None or state.repository.get(folder, SO) is None:
            raise SandboxHTTPError(404, f"no folder with reference {raw.strip()} (parenthierarchy)")
    try:
        query = parse_query(_single(params, "q"), within=folder)
        fields = (
            parse_metadata(params["metadata"]) if "metadata" in params else list(dict.fromkeys(query.requested_fields))
        )
    except SearchError as exc:
        raise SandboxHTTPError(400, str(exc)) from None
    start = _integer(params, "start", 0, 0)
    maximum = _integer(params, "max", DEFAULT_MAX, -1)
    value = await run_in_threadpool(_run_search, state, query, fields, start, maximum)
    return ok(value)


@router.api_route("/search", methods=["GET", "POST"])
async def search(request: Request, state: StateDep, _: TokenSession) -> JSONResponse:
    return await _search(request, state, within=False)


@router.api_route("/search-within", methods=["GET", "POST"])
async def search_within(request: Request, state: StateDep, _: TokenSession) -> JSONResponse:
    return await _search(request, state, within=True)


@router.get("/indexed-fields")
async def get_indexed_fields(state: StateDep, _: TokenSession) -> JSONResponse:
    return ok(indexed_fields(state.version))


@router.get("/object-details")
async def object_details(state: StateDep, _: TokenSession, id: str = "", excludeproperties: str = "") -> JSONResponse:
    """A CMIS-style property map of one entity (``id=sdb:IO|<ref>``); 404 when unknown."""
    kind, _sep, raw_ref = id.removeprefix("sdb:").partition("|")
    if kind not in (SO, IO, CO) or not raw_ref:
        raise SandboxHTTPError(400, f"id must look like sdb:IO|<reference>, not {id!r}")
    try:
        ref = check_ref(raw_ref)
    except RepositoryError:
        ref = ""
    repo = state.repository
    with repo.lock:
        entity = repo.get(ref, kind) if ref else None
        if entity is None:
            raise SandboxHTTPError(404, f"The requested reference is not found in the repository: {id}")
        value: dict[str, Any] = {
            "id": entity.content_id,
            "name": entity.title,
            "description": entity.description,
            "cmis:objectId": entity.content_id,
            "cmis:name": entity.title,
            "cmis:description": entity.description,
            "cmis:baseTypeId": "cmis:folder" if entity.kind == SO else "cmis:document",
            "cmis:objectTypeId": f"sdb:{entity.kind}",
            "cmis:parentId": f"sdb:{IO if entity.kind == CO else SO}|{entity.parent}" if entity.parent else None,
            "cmis:createdBy": "sandbox",
            "cmis:creationDate": entity.created,
            "cmis:lastModifiedBy": "sandbox",
            "cmis:lastModificationDate": entity.modified,
        }
        for field in FIELDS.values():
            field_value = field.value(entity, repo)
            if field_value is not None:
                value[field.name] = field_value
    if "history" in {p.strip().lower() for p in excludeproperties.split(",")}:
        for name in HISTORY_PROPERTIES:
            value.pop(name, None)
    return ok(value)
