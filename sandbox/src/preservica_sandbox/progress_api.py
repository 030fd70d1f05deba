"""Progress tokens: ``GET /api/entity/progress/{token}`` (also ``/api/entity/v{M}.{m}/...`` and
``/api/processmonitor/progress/{token}``) and ``PUT .../progress/{token}/status`` (body ``Cancelled``).

Response (XML, default namespace ``http://status.preservica.com``; clients read ``.//{ns}Status``)::

    <ProgressResponse xmlns="http://status.preservica.com">
      <Token>…</Token><Status>ACTIVE</Status><PercentComplete>40</PercentComplete>
      <Started>2024-01-07T12:02:04.000Z</Started>[<Finished>…</Finished>]
      [<MonitorId>…</MonitorId><WorkflowInstanceId>3</WorkflowInstanceId>]   (ingests)
      [<Errors><Error>…</Error></Errors><Warnings><Warning>…</Warning></Warnings>]   (?includeErrors=true)
    </ProgressResponse>

A token of another tenant, or an unknown one, is 404. Cancelling work that cannot be cancelled (or has
finished) is 409; a successful cancel answers the progress document (the status turns ``CANCELLED`` as
soon as the work notices, between two items).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response

from .entities import iso_timestamp
from .errors import SandboxHTTPError
from .progress import ProgressView
from .security import StateDep, TokenSession
from .versions import VERSIONED_ENTITY_PREFIX

STATUS_NS = "http://status.preservica.com"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
PREFIXES = ("/api/entity", VERSIONED_ENTITY_PREFIX, "/api/processmonitor")

router = APIRouter(tags=["progress"])


def _el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _percent(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def render_progress(view: ProgressView, include_errors: bool) -> str:
    parts = [f'{XML_DECLARATION}<ProgressResponse xmlns="{STATUS_NS}">', _el("Token", view.token)]
    parts += [_el("Status", view.status), _el("PercentComplete", _percent(view.percent))]
    if view.started is not None:
        parts.append(_el("Started", iso_timestamp(view.started)))
    if view.finished is not None:
        parts.append(_el("Finished", iso_timestamp(view.finished)))
    for name, value in view.details:
        parts.append(_el(name, value))
    if include_errors:
        parts.append("<Errors>" + "".join(_el("Error", e) for e in view.errors) + "</Errors>")
        parts.append("<Warnings>" + "".join(_el("Warning", w) for w in view.warnings) + "</Warnings>")
    parts.append("</ProgressResponse>")
    return "".join(parts)


def _view(state: StateDep, session: TokenSession, token: str) -> ProgressView:
    view = state.progress.view(token.strip())
    if view is None or (view.tenant is not None and view.tenant != session.tenant):
        raise SandboxHTTPError(404, f"no progress token {token}")
    return view


async def get_progress(token: str, request: Request, state: StateDep, session: TokenSession) -> Response:
    include = request.query_params.get("includeErrors", "false").lower() == "true"
    return Response(render_progress(_view(state, session, token), include), media_type="application/xml")


async def cancel_progress(token: str, request: Request, state: StateDep, session: TokenSession) -> Response:
    view = _view(state, session, token)
    wanted = (await request.body()).decode("utf-8", "replace").strip().strip('"')
    if wanted.lower() not in ("cancelled", "canceled"):
        raise SandboxHTTPError(400, f"only 'Cancelled' can be requested, not {wanted!r}")
    record = state.progress.get(view.token)
    if record is None or record.cancel is None or not record.cancel():
        raise SandboxHTTPError(409, f"progress token {token} cannot be cancelled (finished or not cancellable)")
    fresh = state.progress.view(view.token) or view
    return Response(render_progress(fresh, True), media_type="application/xml")


for _prefix in PREFIXES:
    router.add_api_route(_prefix + "/progress/{token}", get_progress, methods=["GET"])
    router.add_api_route(_prefix + "/progress/{token}/status", cancel_progress, methods=["PUT"])
