"""Entity API moves and security tag changes (asynchronous, progress tokens) and the Security API tag list.

Routes (the two ``PUT`` routes also under ``/api/entity/v{M}.{m}``; the queueing and applying is
``entity_actions``):

- ``PUT /api/entity/{structural-objects|information-objects}/{ref}/parent-ref``, ``text/plain`` body =
  the destination folder's ref, or ``@root@`` (folders only) -> **202**, ``text/plain`` body = the
  progress token (what pyPreservica's ``move_async`` returns and ``move_sync`` polls).
  Unknown entity (or of another kind than the path says) -> 404; unknown destination folder -> 404
  ``destination folder … does not exist``; 400 for an empty or malformed body, a destination that is
  an asset, an asset sent to ``@root@``, a folder sent below itself and any ``content-objects`` ref
  (content objects move with their asset). Moving to the current parent is allowed (it changes nothing).
- ``PUT /api/entity/{path}/{ref}/security-descriptor?includeDescendants=false|true``, ``text/plain`` body
  = the tag name -> **202** + token. ``includeDescendants=true`` also retags every folder, asset and
  content object below. A tag the sandbox does not know (``security_tags`` config) -> **400**
  ``{"success": false, "message": "unknown security tag 'x': the known tags are open, closed, public",
  "known_tags": [...]}`` — a request the server cannot carry out as given, like every other invalid
  body here; no token is made. ``includeDescendants`` other than true/false -> 400; unknown entity -> 404.
- ``GET /api/security/tags`` -> the known tags (pyPreservica ``user_security_tags`` /
  ``security_tags_base``, which read ``.//{sec}Tag@name`` and ``.//{sec}Permission``)::

    <SecurityTagsResponse xmlns="http://preservica.com/SecurityAPI/v7.7">
      <Tags><Tag name="open"><Permissions><Permission>VIEW</Permission>…</Permissions></Tag>…</Tags>
    </SecurityTagsResponse>

  in the Security namespace of the configured release (``v{M}.{m}``, like pyPreservica's ``sec_ns``;
  the root element name is UNVERIFIED).
- ``GET /_sandbox/entity-actions`` (control, no auth): every action with token, ref, destination or
  tag, status and errors.

The entity keeps its parent and tag until the token turns ``COMPLETED`` (``entity_action_seconds``).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Request, Response

from .entities import RepositoryError, check_ref
from .entity_actions import MOVE, SECURITY_TAG
from .errors import SandboxHTTPError
from .route_helpers import lookup, repository_errors, versioned_route, xml_response
from .security import StateDep, TokenSession
from .versions import NS_SECURITY, api_version

ROOT = "@root@"
TOKEN_MEDIA_TYPE = "text/plain;charset=UTF-8"

router = APIRouter(tags=["entity"])
control_router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


async def _text_body(request: Request, what: str) -> str:
    text = (await request.body()).decode("utf-8", "replace").strip()
    if not text:
        raise SandboxHTTPError(400, f"the request body (text/plain) must be {what}")
    return text


def _token_response(token: str) -> Response:
    return Response(token, status_code=202, media_type=TOKEN_MEDIA_TYPE)


@versioned_route(router, "PUT", "/{path:entity_path}/{ref}/parent-ref", status_code=202)
async def move_entity(path: str, ref: str, request: Request, state: StateDep, session: TokenSession) -> Response:
    """Move a folder or asset; applied asynchronously (see the module docstring)."""
    repo = state.repository
    entity = lookup(repo, path, ref)
    body = await _text_body(request, f"the destination folder's reference or {ROOT}")
    destination: str | None = None
    if body != ROOT:
        try:
            destination = check_ref(body)
        except RepositoryError:
            raise SandboxHTTPError(400, f"the body must be a folder reference or {ROOT}, not {body[:100]!r}") from None
    with repo.lock, repository_errors():
        repo.check_move(entity.ref, destination)
    job = state.entity_actions.start(MOVE, entity.ref, entity.kind, destination, session.user.name, session.tenant)
    return _token_response(job.token)


def _include_descendants(request: Request) -> bool:
    value = request.query_params.get("includeDescendants", "false").strip().lower()
    if value not in ("true", "false"):
        raise SandboxHTTPError(400, f"includeDescendants must be true or false, not {value!r}")
    return value == "true"


@versioned_route(router, "PUT", "/{path:entity_path}/{ref}/security-descriptor", status_code=202)
async def change_security_tag(
    path: str, ref: str, request: Request, state: StateDep, session: TokenSession
) -> Response:
    """Change the security tag (of descendants too, on request); applied asynchronously."""
    entity = lookup(state.repository, path, ref)
    include = _include_descendants(request)
    tag = await _text_body(request, "the name of a security tag")
    known = list(state.entity_actions.security_tags())
    if tag not in known:
        raise SandboxHTTPError(
            400,
            f"unknown security tag {tag[:100]!r}: the known tags are {', '.join(known)}",
            extra={"known_tags": known},
        )
    job = state.entity_actions.start(
        SECURITY_TAG, entity.ref, entity.kind, tag, session.user.name, session.tenant, include_descendants=include
    )
    return _token_response(job.token)


@router.get("/api/security/tags")
async def security_tags(state: StateDep, _: TokenSession) -> Response:
    """The tags the sandbox knows, each with its permissions, in the Security API namespace."""
    namespace = f"{NS_SECURITY}/v{api_version(state.version)}"
    parts = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><SecurityTagsResponse xmlns="{namespace}">']
    parts.append("<Tags>")
    for name, permissions in state.entity_actions.security_tags().items():
        listed = "".join(f"<Permission>{escape(p)}</Permission>" for p in permissions)
        parts.append(f"<Tag name={quoteattr(name)}><Permissions>{listed}</Permissions></Tag>")
    parts.append("</Tags></SecurityTagsResponse>")
    return xml_response("".join(parts))


@control_router.get("/entity-actions")
async def list_entity_actions(state: StateDep) -> list[dict[str, Any]]:
    return [job.describe() for job in state.entity_actions.actions()]


ROUTERS: list[APIRouter] = [router, control_router]
