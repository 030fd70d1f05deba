"""Entity API deletion (request, then approval by a second manager account); the service is ``deletions``.

- ``DELETE /api/entity/{structural-objects|information-objects}/{ref}`` (also under ``/api/entity/v{M}.{m}``),
  body ``<DeletionAction xmlns="{entity ns}"><Submission><Comment>why</Comment></Submission></DeletionAction>``
  -> **202**, ``text/plain`` body = the progress token (``PENDING`` until decided). Unknown entity -> 404; a
  body that is not a ``DeletionAction`` with a ``Submission`` -> 400; content objects -> 400 (they go with
  their asset); ``deletion_workflow`` false -> 422.
- ``PUT /api/entity/actions/deletions/{token}`` (also versioned), body
  ``<DeletionAction><Approval><Approved>true|false</Approved><Comment>…</Comment></Approval></DeletionAction>``
  -> **202** (see ``deletions`` for who may approve and what happens).
- ``GET /_sandbox/deletions`` (control, no auth): every request with its token, requester, approver, status.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from . import xml_bodies
from .deletions import DeletionRefused
from .entities import CO
from .errors import SandboxHTTPError
from .route_helpers import lookup, versioned_route
from .security import StateDep, TokenSession

router = APIRouter(tags=["entity"])
control_router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


def _action_part(body: bytes, part: str) -> Any:
    root = xml_bodies.parse_body(body)
    if xml_bodies.local(root.tag) != "DeletionAction":
        raise SandboxHTTPError(400, f"expected a DeletionAction, not {xml_bodies.local(root.tag)}")
    element = xml_bodies.child(root, part)
    if element is None:
        raise SandboxHTTPError(400, f"the DeletionAction must hold a {part} element")
    return element


@versioned_route(router, "DELETE", "/{path:entity_path}/{ref}", status_code=202)
async def request_deletion(path: str, ref: str, request: Request, state: StateDep, session: TokenSession) -> Response:
    """Record a deletion request; the entity stays until a second, manager account approves it."""
    entity = lookup(state.repository, path, ref)
    if entity.kind == CO:
        raise SandboxHTTPError(400, "content objects are deleted with their asset")
    submission = _action_part(await request.body(), "Submission")
    if not state.deletions.workflow_active:
        raise SandboxHTTPError(422, "no active workflow context for full deletion exists in the system")
    comment = xml_bodies.child_text(submission, "Comment") or ""
    job = state.deletions.request(entity.ref, entity.kind, comment, session.user.name, session.tenant)
    return Response(job.token, status_code=202, media_type="text/plain;charset=UTF-8")


@versioned_route(router, "PUT", "/actions/deletions/{token}", status_code=202)
async def approve_deletion(token: str, request: Request, state: StateDep, session: TokenSession) -> Response:
    """Approve or reject a deletion request (another user than the requester, with the manager role)."""
    approval = _action_part(await request.body(), "Approval")
    approved = (xml_bodies.child_text(approval, "Approved") or "").lower()
    if approved not in ("true", "false"):
        raise SandboxHTTPError(400, "Approval/Approved must be true or false")
    comment = xml_bodies.child_text(approval, "Comment") or ""
    try:
        state.deletions.decide(token, session.user.name, list(session.user.roles), approved == "true", comment)
    except DeletionRefused as exc:
        raise SandboxHTTPError(exc.status, str(exc)) from None
    return Response(status_code=202)


@control_router.get("/deletions")
async def list_deletions(state: StateDep) -> list[dict[str, Any]]:
    return [job.describe() for job in state.deletions.requests()]


ROUTERS: list[APIRouter] = [router, control_router]
