"""Entity API (XML): identifiers (list, add, update, delete, lookup) and metadata fragments.

Identifiers: ``ApiId`` is a 32-hex id chosen by the sandbox; ``by-identifier`` matches ``type`` and
``value`` exactly (``type`` may be left out to match any type). Metadata fragments: a POST adds a
``MetadataContainer``'s document under its ``schemaUri`` (or the document's namespace); the
fragment URL, ``.../metadata/{fragment ref}``, reads, replaces (PUT) and deletes (204) it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from . import entity_xml as xml
from . import xml_bodies
from .entities import Entity
from .errors import SandboxHTTPError
from .route_helpers import (
    DEFAULT_PAGE,
    Max,
    Start,
    lookup,
    next_page_url,
    repository_errors,
    versioned_route,
    xml_response,
)
from .security import StateDep, TokenSession

router = APIRouter(tags=["entity"])


def _check_entity(body_ref: str | None, entity: Entity) -> None:
    if body_ref and body_ref.strip().lower() != entity.ref:
        raise SandboxHTTPError(400, f"the body names entity {body_ref}, the URL {entity.ref}")


# --------------------------------------------------------------------------- identifiers
@versioned_route(router, "GET", "/{path:entity_path}/{ref}/identifiers")
async def list_identifiers(path: str, ref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    repo = state.repository
    with repo.lock:
        entity = lookup(repo, path, ref)
        return xml_response(
            xml.identifiers_response(entity.ref, entity.identifiers, xml.context(request, state.version))
        )


@versioned_route(router, "POST", "/{path:entity_path}/{ref}/identifiers")
async def add_identifier(path: str, ref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    id_type, value, body_ref = xml_bodies.parse_identifier_body(await request.body())
    repo = state.repository
    with repo.lock, repository_errors():
        entity = lookup(repo, path, ref)
        _check_entity(body_ref, entity)
        identifier = repo.add_identifier(entity.ref, id_type, value)
        return xml_response(xml.identifier_response(entity.ref, identifier, xml.context(request, state.version)))


@versioned_route(router, "PUT", "/{path:entity_path}/{ref}/identifiers/{api_id}")
async def update_identifier(
    path: str, ref: str, api_id: str, request: Request, state: StateDep, _: TokenSession
) -> Response:
    id_type, value, body_ref = xml_bodies.parse_identifier_body(await request.body())
    repo = state.repository
    with repo.lock, repository_errors():
        entity = lookup(repo, path, ref)
        _check_entity(body_ref, entity)
        identifier = repo.update_identifier(entity.ref, api_id, id_type, value)
        return xml_response(xml.identifier_response(entity.ref, identifier, xml.context(request, state.version)))


@versioned_route(router, "DELETE", "/{path:entity_path}/{ref}/identifiers/{api_id}", status_code=204)
async def delete_identifier(path: str, ref: str, api_id: str, state: StateDep, _: TokenSession) -> Response:
    repo = state.repository
    with repo.lock, repository_errors():
        entity = lookup(repo, path, ref)
        repo.delete_identifier(entity.ref, api_id)
    return Response(status_code=204)


@versioned_route(router, "GET", "/entities/by-identifier")
async def by_identifier(
    request: Request,
    state: StateDep,
    _: TokenSession,
    value: Annotated[str, Query(min_length=1)],
    type: str | None = None,
    start: Start = 0,
    max: Max = DEFAULT_PAGE,
) -> Response:
    repo = state.repository
    with repo.lock:
        matches = repo.find_by_identifier(type or None, value)
        page = matches[start : start + max]
        next_url = next_page_url(request, start, max, len(matches))
        return xml_response(xml.entities_response(page, len(matches), next_url, xml.context(request, state.version)))


# --------------------------------------------------------------------------- metadata fragments
@versioned_route(router, "POST", "/{path:entity_path}/{ref}/metadata")
async def add_metadata(path: str, ref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    schema, document, body_ref, _mref = xml_bodies.parse_metadata_body(await request.body())
    repo = state.repository
    with repo.lock, repository_errors():
        entity = lookup(repo, path, ref)
        _check_entity(body_ref, entity)
        fragment = repo.add_metadata(entity.ref, schema, document)
        return xml_response(xml.metadata_response(entity, fragment, xml.context(request, state.version)))


@versioned_route(router, "GET", "/{path:entity_path}/{ref}/metadata/{mref}")
async def get_metadata(path: str, ref: str, mref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    repo = state.repository
    with repo.lock, repository_errors():
        entity = lookup(repo, path, ref)
        fragment = repo.get_metadata(entity.ref, mref)
        return xml_response(xml.metadata_response(entity, fragment, xml.context(request, state.version)))


@versioned_route(router, "PUT", "/{path:entity_path}/{ref}/metadata/{mref}")
async def replace_metadata(
    path: str, ref: str, mref: str, request: Request, state: StateDep, _: TokenSession
) -> Response:
    schema, document, body_ref, body_mref = xml_bodies.parse_metadata_body(await request.body())
    repo = state.repository
    with repo.lock, repository_errors():
        entity = lookup(repo, path, ref)
        _check_entity(body_ref, entity)
        if body_mref and body_mref != mref:
            raise SandboxHTTPError(400, f"the body names fragment {body_mref}, the URL {mref}")
        fragment = repo.replace_metadata(entity.ref, mref, schema, document)
        return xml_response(xml.metadata_response(entity, fragment, xml.context(request, state.version)))


@versioned_route(router, "DELETE", "/{path:entity_path}/{ref}/metadata/{mref}", status_code=204)
async def delete_metadata(path: str, ref: str, mref: str, state: StateDep, _: TokenSession) -> Response:
    repo = state.repository
    with repo.lock, repository_errors():
        entity = lookup(repo, path, ref)
        repo.delete_metadata(entity.ref, mref)
    return Response(status_code=204)
