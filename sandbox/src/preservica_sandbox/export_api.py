"""OPEX export routes: ``POST .../{ref}/exports``, the zip's download, and ``/_sandbox/exports``.

The jobs are ``state.exports`` (``exports.ExportService``). Routes (each also under ``/api/entity/v{M}.{m}``):

- ``POST /api/entity/{structural-objects|information-objects}/{ref}/exports`` with an ``ExportAction``
  body (see ``export_options.parse_export_action``) -> **202**, ``text/plain`` body = the progress token.
  A malformed body or an unknown option value is 400 (JSON message naming the option); an unknown ref,
  or a ref of the other kind than the path says, is 404; ``content-objects`` cannot be exported (404).
- ``GET|HEAD /api/entity/actions/exports/{token}/content`` -> the zip (``application/zip``,
  ``Content-Disposition: attachment; filename="<token>.zip"``) streamed from disk with ``Content-Length``
  and ``Accept-Ranges: bytes``; one ``Range`` -> 206 + ``Content-Range``, unsatisfiable -> 416 (see
  ``file_responses``). Unknown token, or another tenant's, -> 404; an export that has not COMPLETED
  (still running, FAILED, CANCELLED) -> **409** ``{"success": false, "message", "status", "errors"}``.
- ``GET /_sandbox/exports`` (control, no auth): every export job with ref, options, status, size, path.

Faults: ``fail_export`` (see ``exports``); ``drop_after_bytes`` breaks a download mid-stream (see
``faults``). ``POST /_sandbox/reset`` stops running exports and deletes every export file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from . import entity_xml
from . import progress as P
from .errors import SandboxHTTPError
from .export_options import parse_export_action
from .file_responses import file_response
from .route_helpers import lookup, versioned_route
from .security import StateDep, TokenSession

if TYPE_CHECKING:
    from .state import SandboxState
    from .tokens import AuthenticatedSession

router = APIRouter(tags=["export"])
control_router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


@versioned_route(router, "POST", "/{path:entity_path}/{ref}/exports", status_code=202)
async def start_export(path: str, ref: str, request: Request, state: StateDep, session: TokenSession) -> Response:
    options = parse_export_action(await request.body())
    if path == "content-objects":
        raise SandboxHTTPError(404, "only folders (structural-objects) and assets (information-objects) are exported")
    entity = lookup(state.repository, path, ref)
    ctx = entity_xml.context(request, state.version)
    job = state.exports.start(entity.ref, entity.kind, options, session.user.name, session.tenant, ctx.xip_ns)
    return Response(job.token, status_code=202, media_type="text/plain;charset=UTF-8")


@versioned_route(router, "GET", "/actions/exports/{token}/content")
async def export_content(token: str, request: Request, state: StateDep, session: TokenSession) -> Response:
    return _export_download(token, request, state, session)


@versioned_route(router, "HEAD", "/actions/exports/{token}/content")
async def export_content_head(token: str, request: Request, state: StateDep, session: TokenSession) -> Response:
    return _export_download(token, request, state, session)


def _export_download(token: str, request: Request, state: SandboxState, session: AuthenticatedSession) -> Response:
    token = token.strip()
    job = state.exports.job(token)
    view = state.progress.view(token)
    if job is None or view is None or job.tenant != session.tenant:
        raise SandboxHTTPError(404, f"no export with progress token {token}")
    if view.status != P.COMPLETED or job.path is None:
        raise SandboxHTTPError(
            409,
            f"export {token} is {view.status}, not COMPLETED: its content is not available",
            extra={"status": view.status, "errors": list(view.errors)},
        )
    return file_response(request, job.path, filename=f"{token}.zip", media_type="application/zip")


@control_router.get("/exports")
async def list_exports(state: StateDep) -> list[dict[str, Any]]:
    return [job.describe() for job in state.exports.jobs()]


ROUTERS: list[APIRouter] = [router, control_router]
