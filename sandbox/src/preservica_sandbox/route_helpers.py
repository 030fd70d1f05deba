"""What the API routers share: Entity API route registration, lookups, XML answers, paging, JSON bodies.

Routers import these instead of importing one another:

- ``versioned_route(router, method, suffix)``: an endpoint under ``/api/entity`` and
  ``/api/entity/v{M}.{m}`` (the ``{path:entity_path}`` and ``{api_version:api_version}`` URL
  convertors are registered on import);
- ``lookup(repository, path, ref)``: the entity at ``/{path}/{ref}`` or a 404 (unknown or malformed
  refs and refs of another kind than the path are all unknown);
- ``repository_errors()``: ``RepositoryError`` -> Preservica-style JSON error with its status;
- ``xml_response(body)``; ``Start``/``Max``/``DEFAULT_PAGE`` and ``next_page_url`` for paging;
- ``json_body(request)``: the JSON body of a control request, or a 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from starlette.convertors import Convertor, register_url_convertor

from .entities import KIND_BY_PATH, XIP_TAGS, Entity, RepositoryError, check_ref
from .errors import SandboxHTTPError
from .versions import VERSIONED_ENTITY_PREFIX

if TYPE_CHECKING:
    from .repository import Repository

XML_MEDIA_TYPE = "application/xml"
DEFAULT_PAGE = 100

F = TypeVar("F", bound=Callable[..., Any])

Start = Annotated[int, Query(ge=0)]
Max = Annotated[int, Query(ge=1)]


class EntityPathConvertor(Convertor[str]):
    """``structural-objects`` | ``information-objects`` | ``content-objects``."""

    regex = "|".join(KIND_BY_PATH)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("entity_path", EntityPathConvertor())


def versioned_route(on: APIRouter, method: str, suffix: str, status_code: int = 200) -> Callable[[F], F]:
    """Register an endpoint on ``on`` under ``/api/entity`` and ``/api/entity/v{M}.{m}``."""

    def register(endpoint: F) -> F:
        for prefix in ("/api/entity", VERSIONED_ENTITY_PREFIX):
            on.add_api_route(prefix + suffix, endpoint, methods=[method], status_code=status_code)
        return endpoint

    return register


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


async def json_body(request: Request) -> Any:
    """The request's JSON body, or a 400 ``body must be JSON``."""
    try:
        return await request.json()
    except ValueError:
        raise SandboxHTTPError(400, "body must be JSON") from None
