"""Entity API (XML): entities by ref, children, create folder, update title/description.

Every route is served both unversioned (``/api/entity/...``, namespaces of the configured release)
and versioned (``/api/entity/v7.7/...``, namespaces pinned by the path). Links in responses
(``Self``, ``Paging/Next``, fragment URLs) are absolute, built from the request's base URL and
keep the request's prefix. Unknown or malformed refs answer 404; a ref of another kind than the
path says (an asset under ``structural-objects``) is unknown too. The update (``PUT``, pyPreservica
``save``) ignores a ``SecurityTag`` or ``Parent`` in the body: moves (``parent-ref``) and security tag
changes (``security-descriptor``) are asynchronous actions, served by ``entity_actions_api``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response

from . import entity_xml as xml
from . import xml_bodies
from .entities import XIP_TAGS, Entity
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

F = TypeVar("F", bound=Callable[..., Any])

router = APIRouter(tags=["entity"])


def entity_route(method: str, suffix: str, status_code: int = 200) -> Callable[[F], F]:
    return versioned_route(router, method, suffix, status_code)


# --------------------------------------------------------------------------- reads
@entity_route("GET", "/{path:entity_path}/{ref}")
async def get_entity(path: str, ref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    """The entity (``?expand=structure`` is accepted and ignored)."""
    repo = state.repository
    with repo.lock:
        entity = lookup(repo, path, ref)
        return xml_response(xml.entity_response(entity, xml.context(request, state.version)))


def _children(request: Request, state: StateDep, parent: str | None, start: int, maximum: int) -> Response:
    repo = state.repository
    with repo.lock, repository_errors():
        refs = repo.children(parent)
        page = [repo.require(r) for r in refs[start : start + maximum]]
        ctx = xml.context(request, state.version)
        body = xml.children_response(
            page, len(refs), next_page_url(request, start, maximum, len(refs)), str(request.url), ctx
        )
    return xml_response(body)


@entity_route("GET", "/root/children")
async def root_children(
    request: Request, state: StateDep, _: TokenSession, start: Start = 0, max: Max = DEFAULT_PAGE
) -> Response:
    return _children(request, state, None, start, max)


@entity_route("GET", "/structural-objects/{ref}/children")
async def folder_children(
    ref: str, request: Request, state: StateDep, _: TokenSession, start: Start = 0, max: Max = DEFAULT_PAGE
) -> Response:
    folder = lookup(state.repository, "structural-objects", ref)
    return _children(request, state, folder.ref, start, max)


# --------------------------------------------------------------------------- writes
def _check_body_ref(body_ref: str | None, entity: Entity) -> None:
    if body_ref and body_ref.strip().lower() != entity.ref:
        raise SandboxHTTPError(400, f"the body names {body_ref}, the URL {entity.ref}")


@entity_route("POST", "/structural-objects")
async def create_folder(request: Request, state: StateDep, _: TokenSession) -> Response:
    """Create a folder; the client may choose its ``Ref``. No ``Parent`` means the root."""
    root = xml_bodies.parse_body(await request.body())
    if xml_bodies.local(root.tag) != "StructuralObject":
        raise SandboxHTTPError(400, f"expected a StructuralObject, not {xml_bodies.local(root.tag)}")
    repo = state.repository
    with repo.lock, repository_errors():
        entity = repo.add_folder(
            title=xml_bodies.child_text(root, "Title") or "",
            description=xml_bodies.child_text(root, "Description") or "",
            security_tag=xml_bodies.child_text(root, "SecurityTag") or "open",
            parent=xml_bodies.child_text(root, "Parent") or None,
            ref=xml_bodies.child_text(root, "Ref") or None,
            custom_type=xml_bodies.child_text(root, "CustomType") or None,
            source_id=xml_bodies.child_text(root, "SourceID") or None,
        )
        return xml_response(xml.entity_response(entity, xml.context(request, state.version)))


@entity_route("PUT", "/{path:entity_path}/{ref}")
async def update_entity(path: str, ref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    """Update title and description (and CustomType); security tag and parent are not changed here."""
    root = xml_bodies.parse_body(await request.body())
    repo = state.repository
    with repo.lock, repository_errors():
        entity = lookup(repo, path, ref)
        if xml_bodies.local(root.tag) != XIP_TAGS[entity.kind]:
            raise SandboxHTTPError(400, f"expected a {XIP_TAGS[entity.kind]}, not {xml_bodies.local(root.tag)}")
        _check_body_ref(xml_bodies.child_text(root, "Ref"), entity)
        repo.update(
            entity.ref,
            title=xml_bodies.child_text(root, "Title"),
            description=xml_bodies.child_text(root, "Description"),
            custom_type=xml_bodies.child_text(root, "CustomType"),
        )
        return xml_response(xml.entity_response(entity, xml.context(request, state.version)))
