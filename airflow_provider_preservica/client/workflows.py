"""Preservica's Workflow API (``/sdb/rest/workflow``, XML in ``http://workflow.preservica.com``).

Workflow contexts are what users see in Preservica's Workflows screen ("Ingest OPEX (Incremental)",
their own access or transformation contexts); a workflow instance is one run of a context. The calls and
their bodies are the ones pyPreservica 4.2.2's ``WorkflowAPI`` sends (reference: "Workflow API").
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

from airflow_provider_preservica.client.progress import poll_until
from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.exceptions import (
    PreservicaConfigError,
    PreservicaHTTPError,
    WorkflowContextNotFoundError,
    WorkflowInstanceUnknownError,
)

log = logging.getLogger(__name__)

WORKFLOW_NS = "http://workflow.preservica.com"
BASE = "/sdb/rest/workflow"
XML_HEADERS = {"Content-Type": "application/xml;charset=UTF-8"}
TYPES = ("Ingest", "Access", "Transformation", "DataManagement")
SUCCEEDED = frozenset({"Completed"})
FAILED = frozenset({"Failed", "Finished_Mixed_Outcome", "Aborted"})


@dataclass(frozen=True)
class WorkflowContext:
    id: str
    name: str
    type: str = ""
    definition: str = ""
    description: str = ""


@dataclass(frozen=True)
class WorkflowInstance:
    id: str
    state: str
    context_id: str = ""
    context_name: str = ""
    started: str | None = None
    finished: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def finished_running(self) -> bool:
        return self.state in SUCCEEDED or self.state in FAILED

    @property
    def succeeded(self) -> bool:
        return self.state in SUCCEEDED


def _text(element: ET.Element, name: str) -> str:
    return (element.findtext(f"{{{WORKFLOW_NS}}}{name}") or "").strip()


def list_contexts(
    client: PreservicaClient, workflow_type: str | None = None, definition: str | None = None
) -> list[WorkflowContext]:
    """Workflow contexts, optionally of one type (``Ingest``, ``Access``, ...) or workflow definition."""
    params: dict[str, str] = {}
    if workflow_type:
        if workflow_type not in TYPES:
            raise PreservicaConfigError(f"workflow type must be one of {', '.join(TYPES)}, not {workflow_type!r}")
        params["type"] = workflow_type
    if definition:
        params["workflowDefinitionId"] = definition
    root = client.get_xml(f"{BASE}/contexts", params=params)
    return [
        WorkflowContext(
            id=_text(c, "Id"),
            name=_text(c, "Name"),
            type=_text(c, "Type"),
            definition=_text(c, "WorkflowDefinitionTextId"),
            description=_text(c, "Description"),
        )
        for c in root.iter(f"{{{WORKFLOW_NS}}}WorkflowContext")
    ]


def find_context(client: PreservicaClient, name_or_id: str, workflow_type: str | None = None) -> WorkflowContext:
    """The context whose id or name (exactly, then ignoring case) is ``name_or_id``; one request."""
    contexts = list_contexts(client, workflow_type)
    wanted = name_or_id.strip()
    for matches in (
        [c for c in contexts if c.id == wanted],
        [c for c in contexts if c.name == wanted],
        [c for c in contexts if c.name.casefold() == wanted.casefold()],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            ids = ", ".join(f"{c.id} ({c.type})" for c in matches)
            raise WorkflowContextNotFoundError(
                f"{len(matches)} workflow contexts are named {wanted!r} (ids {ids}): pass the id, or workflow_type"
            )
    known = ", ".join(sorted(f"{c.name!r}" for c in contexts)) or "none"
    scope = f" of type {workflow_type}" if workflow_type else ""
    raise WorkflowContextNotFoundError(
        f"no workflow context{scope} named or numbered {wanted!r} on {client.base_url}; the contexts are: {known}"
    )


def start_workflow(
    client: PreservicaClient,
    context: WorkflowContext,
    parameters: Mapping[str, str] | None = None,
    correlation_id: str | None = None,
) -> str:
    """Start an instance of ``context``; returns the instance id."""
    root = ET.Element(f"{{{WORKFLOW_NS}}}StartWorkflowRequest")
    ET.SubElement(root, f"{{{WORKFLOW_NS}}}WorkflowContextId").text = context.id
    ET.SubElement(root, f"{{{WORKFLOW_NS}}}WorkflowContextName").text = context.name
    for key, value in (parameters or {}).items():
        parameter = ET.SubElement(root, f"{{{WORKFLOW_NS}}}Parameter")
        ET.SubElement(parameter, f"{{{WORKFLOW_NS}}}Key").text = str(key)
        ET.SubElement(parameter, f"{{{WORKFLOW_NS}}}Value").text = str(value)
    ET.SubElement(root, f"{{{WORKFLOW_NS}}}CorrelationId").text = correlation_id or str(uuid.uuid4())
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    response = client.request("POST", f"{BASE}/instances", data=body, headers=XML_HEADERS, expected=(200, 201))
    try:
        instance_id = _text(ET.fromstring(response.content), "Id")
    except ET.ParseError as exc:
        raise PreservicaHTTPError(response.status_code, "POST", f"{BASE}/instances", f"malformed XML ({exc})") from None
    if not instance_id:
        raise PreservicaHTTPError(response.status_code, "POST", f"{BASE}/instances", "no instance Id in the response")
    return instance_id


def read_instance(client: PreservicaClient, instance_id: str) -> WorkflowInstance:
    """One look at ``GET /instances/{id}?includeErrors=true``."""
    path = f"{BASE}/instances/{instance_id}"
    try:
        root = client.get_xml(path, params={"includeErrors": "true"})
    except PreservicaHTTPError as exc:
        if exc.status == 404:
            raise WorkflowInstanceUnknownError(f"Preservica does not know workflow instance {instance_id}") from None
        raise
    errors = [
        " ".join(t.strip() for t in e.itertext() if t.strip())
        for container in root.iter(f"{{{WORKFLOW_NS}}}Errors")
        for e in container
    ]
    return WorkflowInstance(
        id=_text(root, "Id") or str(instance_id),
        state=_text(root, "State") or "Unknown",
        context_id=_text(root, "WorkflowContextId"),
        context_name=_text(root, "WorkflowContextName"),
        started=_text(root, "Started") or None,
        finished=_text(root, "Finished") or None,
        errors=[e for e in errors if e],
    )


def wait_for_workflow(
    client: PreservicaClient, instance_id: str, *, poll_interval: float, timeout: float
) -> WorkflowInstance:
    """Poll until the instance has finished (any outcome); transient read failures are waited out."""
    return poll_until(
        lambda: read_instance(client, instance_id),
        finished=lambda instance: instance.finished_running,
        state=lambda instance: instance.state,
        announce=lambda instance: log.info(
            "Preservica workflow instance %s (%s): %s", instance_id, instance.context_name, instance.state
        ),
        subject=f"workflow instance {instance_id}",
        timed_out=lambda state: (
            f"Preservica workflow instance {instance_id} still {state} after {timeout:.0f} s; it may still "
            "finish: look it up in Preservica's Workflows screen"
        ),
        poll_interval=poll_interval,
        timeout=timeout,
    )
