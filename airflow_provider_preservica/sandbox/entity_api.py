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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from starlette.convertors import Convertor, register_url_convertor

from . import entity_xml as xml
from .errors import SandboxHTTPError
from .repository import KIND_BY_PATH, XIP_TAGS, Entity, Repository, RepositoryError, check_ref
from .security import StateDep, TokenSession
from .versions import VERSIONED_ENTITY_PREFIX

XML_MEDIA_TYPE = "application/xml"
DEFAULT_PAGE = 100

F = TypeVar("F", bound=Callable[..., Any])


class EntityPathConvertor(Convertor[str]):
    """``structural-objects`` | ``information-objects`` | ``content-objects``."""

    regex = "|".join(KIND_BY_PATH)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("entity_path", EntityPathConvertor())

router = APIRouter(tags=["entity"])

Start = Annotated[int, Query(ge=0)]
Max = Annotated[int, Query(ge=1)]


def versioned_route(on: APIRouter, method: str, suffix: str, status_code: int = 200) -> Callable[[F], F]:
    """Register an endpoint on ``on`` under ``/api/entity`` and ``/api/entity/v{M}.{m}``."""

    def register(endpoint: F) -> F:
        for prefix in ("/api/entity", VERSIONED_ENTITY_PREFIX):
            on.add_api_route(prefix + suffix, endpoint, methods=[method], status_code=status_code)
        return endpoint

    return register


def entity_route(method: str, suffix: str, status_code: int = 200) -> Callable[[F], F]:
    return versioned_route(router, method, suffix, status_code)


@contextmanager
def repository_errors() -> Iterator[None]:
    """Turn ``RepositoryError``s into Preservica-style JSON errors with their status."""
    try:
        yield
    except RepositoryError as exc:
        raise SandboxHTTPError(exc.status, str(exc)) from None


def xml_response(body: str, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type=XML_MEDIA_TYPE)


def lookup(repo: Repository, path: str, ref: str) -> Entity:
    """The entity at ``/{path}/{ref}`` or a 404."""
    kind = KIND_BY_PATH[path]
    try:
        canonical = check_ref(ref)
    except RepositoryError:
        canonical = ""
    entity = repo.get(canonical, kind) if canonical else None
    if entity is None:
        raise SandboxHTTPError(404, f"no {XIP_TAGS[kind]} with reference {ref}")
    return entity


def next_page_url(request: Request, start: int, maximum: int, total: int) -> str | None:
    if start + maximum >= total:
        return None
    return str(request.url.include_query_params(start=start + maximum, max=maximum))


# --------------------------------------------------------------------------- reads
@entity_route("GET", "/{path:entity_path}/{ref}")
async def get_entity(path: str, ref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    """The entity (``?expand=structure`` is accepted and ignored)."""
    repo = state.repository
    with repo.lock:
        entity = lookup(repo, path, ref)
        return xml_response(xml.entity_response(entity, xml.context(request, state)))


def _children(request: Request, state: StateDep, parent: str | None, start: int, maximum: int) -> Response:
    repo = state.repository
    with repo.lock, repository_errors():
        refs = repo.children(parent)
        page = [repo.require(r) for r in refs[start : start + maximum]]
        ctx = xml.context(request, state)
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
    root = xml.parse_body(await request.body())
    if xml.local(root.tag) != "StructuralObject":
        raise SandboxHTTPError(400, f"expected a StructuralObject, not {xml.local(root.tag)}")
    repo = state.repository
    with repo.lock, repository_errors():
        entity = repo.add_folder(
            title=xml.child_text(root, "Title") or "",
            description=xml.child_text(root, "Description") or "",
            security_tag=xml.child_text(root, "SecurityTag") or "open",
            parent=xml.child_text(root, "Parent") or None,
            ref=xml.child_text(root, "Ref") or None,
            custom_type=xml.child_text(root, "CustomType") or None,
            source_id=xml.child_text(root, "SourceID") or None,
        )
        return xml_response(xml.entity_response(entity, xml.context(request, state)))


@entity_route("PUT", "/{path:entity_path}/{ref}")
async def update_entity(path: str, ref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    """Update title and description (and CustomType); security tag and parent are not changed here."""
    root = xml.parse_body(await request.body())
    repo = state.repository
    with repo.lock, repository_errors():
        entity = lookup(repo, path, ref)
        if xml.local(root.tag) != XIP_TAGS[entity.kind]:
            raise SandboxHTTPError(400, f"expected a {XIP_TAGS[entity.kind]}, not {xml.local(root.tag)}")
        _check_body_ref(xml.child_text(root, "Ref"), entity)
        repo.update(
            entity.ref,
            title=xml.child_text(root, "Title"),
            description=xml.child_text(root, "Description"),
            custom_type=xml.child_text(root, "CustomType"),
        )
        return xml_response(xml.entity_response(entity, xml.context(request, state)))
