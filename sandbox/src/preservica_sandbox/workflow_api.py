"""Workflow API (XML, namespace ``http://workflow.preservica.com``) under ``/sdb/rest/workflow``.

- ``GET /contexts[?type=Ingest|Access|Transformation|DataManagement][&workflowDefinitionId=…]``:
  ``WorkflowContextsResponse/WorkflowContexts/WorkflowContext`` (``Id``, ``Name``, ``Description``,
  ``WorkflowDefinitionTextId``, ``Type``). Contexts: "Basic Ingest" (the one package uploads run in),
  "Ingest OPEX (Incremental)", and one each of Access, Transformation and DataManagement.
- ``POST /instances`` (``StartWorkflowRequest``: ``WorkflowContextId`` or ``WorkflowContextName``,
  ``Parameter/Key|Value``*, ``CorrelationId``) -> 201 ``<WorkflowInstance><Id>n</Id></WorkflowInstance>``.
  "Ingest OPEX (Incremental)" ingests the source-bucket prefix named by ``OpexContainerDirectory``
  (``opex/<container>``; an optional ``StructuralObjectReference`` parameter gives the parent folder,
  otherwise top-level folders go to the repository root); other contexts run for ``ingest_seconds`` and
  complete. Unknown context -> 404; a body that is not a ``StartWorkflowRequest`` -> 400.
- ``GET /instances/{id}[?includeErrors=true]``: ``Id``, ``Started``, ``Finished`` (when finished),
  ``State``, ``DisplayState``, ``ArchivalProcessId``, ``WorkflowGroupId``, ``WorkflowContextId``,
  ``WorkflowContextName``, ``WorkflowDefinitionTextId``, ``Creator``, ``ProgressToken`` [, ``Errors/Error``].
  Every ingest (upload or workflow start) is an instance; its state mirrors the progress token:
  ``Pending``, ``Active``, ``Completed``, ``Failed``, ``Finished_Mixed_Outcome``, ``Aborted``.
- ``GET /instances?type=&state=&contextId=&creator=&from=&to=&start=&max=``: ``WorkflowInstancesResponse``
  with ``TotalCount``, ``Count`` and ``WorkflowInstances/WorkflowInstance``* (newest first; ``state`` and
  ``type`` may be comma-separated).
- ``POST /instances/terminate?workflowInstanceIds=1,2``: 202; running instances end ``Aborted``.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response

from . import xml_bodies
from .entities import iso_timestamp
from .errors import SandboxHTTPError
from .ingest_jobs import CONTEXTS, WORKFLOW_STATES, IngestJob, WorkflowContext, find_context
from .security import StateDep, TokenSession

WORKFLOW_NS = "http://workflow.preservica.com"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
MEDIA_TYPE = "application/xml;charset=UTF-8"

router = APIRouter(prefix="/sdb/rest/workflow", tags=["workflow"])


def _el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _xml(root: str, body: str, status_code: int = 200) -> Response:
    return Response(
        f'{XML_DECLARATION}<{root} xmlns="{WORKFLOW_NS}">{body}</{root}>', status_code, media_type=MEDIA_TYPE
    )


def _values(request: Request, name: str) -> set[str]:
    return {v.strip().lower() for raw in request.query_params.getlist(name) for v in raw.split(",") if v.strip()}


def _context_xml(context: WorkflowContext) -> str:
    return (
        "<WorkflowContext>"
        + _el("Id", context.id)
        + _el("Name", context.name)
        + _el("Description", context.description)
        + _el("WorkflowDefinitionTextId", context.definition)
        + _el("Type", context.type)
        + "</WorkflowContext>"
    )


def _instance_body(job: IngestJob, include_errors: bool) -> str:
    record = job.progress
    state = WORKFLOW_STATES.get(record.status, "Unknown")
    parts = [_el("Id", job.workflow_id)]
    if record.started is not None:
        parts.append(_el("Started", iso_timestamp(record.started)))
    if record.finished is not None:
        parts.append(_el("Finished", iso_timestamp(record.finished)))
    parts += [
        _el("State", state),
        _el("DisplayState", state.replace("_", " ")),
        _el("ArchivalProcessId", job.archival_process_id),
        _el("WorkflowGroupId", job.workflow_group_id),
        _el("WorkflowContextId", job.context.id),
        _el("WorkflowContextName", job.context.name),
        _el("WorkflowDefinitionTextId", job.context.definition),
        _el("Creator", job.user),
        _el("ProgressToken", job.token),
    ]
    if include_errors:
        parts.append("<Errors>" + "".join(_el("Error", e) for e in record.errors) + "</Errors>")
    return "".join(parts)


@router.get("/contexts")
async def contexts(request: Request, _: TokenSession) -> Response:
    types = _values(request, "type")
    definitions = {d for d in request.query_params.getlist("workflowDefinitionId") if d}
    chosen = [
        c
        for c in CONTEXTS
        if (not types or c.type.lower() in types) and (not definitions or c.definition in definitions)
    ]
    body = "<WorkflowContexts>" + "".join(_context_xml(c) for c in chosen) + "</WorkflowContexts>"
    return _xml("WorkflowContextsResponse", body)


@router.post("/instances")
async def start_instance(request: Request, state: StateDep, session: TokenSession) -> Response:
    root = xml_bodies.parse_body(await request.body())
    if xml_bodies.local(root.tag) != "StartWorkflowRequest":
        raise SandboxHTTPError(400, f"expected a StartWorkflowRequest, not {xml_bodies.local(root.tag)}")
    context_id = xml_bodies.child_text(root, "WorkflowContextId")
    context_name = xml_bodies.child_text(root, "WorkflowContextName")
    context = find_context(context_id, context_name)
    if context is None:
        raise SandboxHTTPError(404, f"no workflow context {context_id or context_name!r}")
    parameters: dict[str, str] = {}
    for parameter in root:
        if xml_bodies.local(parameter.tag) == "Parameter":
            key = xml_bodies.child_text(parameter, "Key")
            if key:
                parameters[key] = xml_bodies.child_text(parameter, "Value") or ""
    correlation = xml_bodies.child_text(root, "CorrelationId")
    job = state.ingest.start_workflow(context, parameters, correlation, session.user.name, session.tenant)
    return _xml("WorkflowInstance", _el("Id", job.workflow_id), status_code=201)


@router.post("/instances/terminate")
async def terminate(request: Request, state: StateDep, session: TokenSession) -> Response:
    raw = request.query_params.get("workflowInstanceIds", "")
    try:
        ids = [int(v) for v in raw.split(",") if v.strip()]
    except ValueError:
        raise SandboxHTTPError(400, "workflowInstanceIds must be comma-separated integers") from None
    if not ids:
        raise SandboxHTTPError(400, "workflowInstanceIds is required")
    for workflow_id in ids:
        job = state.ingest.workflow(workflow_id)
        if job is not None and job.tenant == session.tenant:
            state.ingest.terminate(workflow_id)
    return Response(status_code=202)


@router.get("/instances/{workflow_id}")
async def instance(workflow_id: str, request: Request, state: StateDep, session: TokenSession) -> Response:
    job = state.ingest.workflow(int(workflow_id)) if workflow_id.isdigit() else None
    if job is None or job.tenant != session.tenant:
        raise SandboxHTTPError(404, f"no workflow instance {workflow_id}")
    include = request.query_params.get("includeErrors", "false").lower() == "true"
    with state.ingest.reading():
        return _xml("WorkflowInstance", _instance_body(job, include))


@router.get("/instances")
async def instances(request: Request, state: StateDep, session: TokenSession) -> Response:
    states, types = _values(request, "state"), _values(request, "type")
    context_ids = {c for c in request.query_params.getlist("contextId") if c}
    creators = {c for c in request.query_params.getlist("creator") if c}
    since, until = request.query_params.get("from"), request.query_params.get("to")
    try:
        start = int(request.query_params.get("start", "0"))
        maximum = int(request.query_params.get("max", "25"))
    except ValueError:
        raise SandboxHTTPError(400, "start and max must be integers") from None
    if start < 0 or maximum < 1:
        raise SandboxHTTPError(400, "start must be >= 0 and max >= 1")
    chosen: list[IngestJob] = []
    for job in reversed(state.ingest.workflows(session.tenant)):
        record = job.progress
        started = iso_timestamp(record.started if record.started is not None else record.created)
        if states and WORKFLOW_STATES.get(record.status, "Unknown").lower() not in states:
            continue
        if types and job.context.type.lower() not in types:
            continue
        if (context_ids and job.context.id not in context_ids) or (creators and job.user not in creators):
            continue
        if (since and started < since) or (until and started[: len(until)] > until):
            continue
        chosen.append(job)
    page = chosen[start : start + maximum]
    with state.ingest.reading():
        items = "".join(f"<WorkflowInstance>{_instance_body(job, False)}</WorkflowInstance>" for job in page)
    body = _el("TotalCount", len(chosen)) + _el("Count", len(page)) + f"<WorkflowInstances>{items}</WorkflowInstances>"
    return _xml("WorkflowInstancesResponse", body)
