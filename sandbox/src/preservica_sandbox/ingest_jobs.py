"""The records of the ingest side: workflow contexts, ingest jobs and the messages of their process monitors.

An ``IngestJob`` is one package being processed (or one workflow instance): its progress token, the
workflow instance id, the monitor's name and messages, the entities it created, and the event that
stops it. Progress token <-> monitor <-> workflow instance: the monitor's ``mappedId`` is the progress
token without hyphens (``monitor_token`` gives the token back); its ``name`` is the uploaded object key
(``opex/<container>`` for the incremental workflow); messages carry ``workflowInstanceId``; the progress
XML carries ``MonitorId`` and ``WorkflowInstanceId``. ``WORKFLOW_STATES`` and ``MONITOR_STATES`` name a
progress status the way the Workflow API and the Process Monitor API show it.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import progress as P
from .ingest_faults import IngestFault
from .s3_store import StoredObject

#: Share of ``ingest_seconds`` a job spends ``PENDING``; the rest is spread over its items.
PENDING_SHARE = 0.2
PARENT_PARAMETER = "StructuralObjectReference"
OPEX_CONTAINER_PARAMETER = "OpexContainerDirectory"


def package_bucket(tenant: str) -> str:
    return f"{tenant.lower()}.package.upload"


def source_bucket(tenant: str) -> str:
    """The emulated customer source location watched by the incremental OPEX workflow."""
    return f"com.preservica.{tenant.lower()}.upload"


@dataclass(frozen=True)
class WorkflowContext:
    name: str
    type: str
    definition: str
    description: str = ""

    @property
    def id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"preservica-sandbox/workflow-context/{self.name}"))


UPLOAD_CONTEXT = WorkflowContext(
    "Basic Ingest", "Ingest", "com.preservica.core.workflow.ingest", "Ingest of packages uploaded to the S3 endpoint"
)
OPEX_CONTEXT = WorkflowContext(
    "Ingest OPEX (Incremental)",
    "Ingest",
    "com.preservica.core.workflow.ingest.opex.incremental",
    "Ingests the OPEX container named by OpexContainerDirectory from the source bucket",
)
CONTEXTS: tuple[WorkflowContext, ...] = (
    UPLOAD_CONTEXT,
    OPEX_CONTEXT,
    WorkflowContext("Download Assets", "Access", "com.preservica.core.workflow.access.download"),
    WorkflowContext("Migrate Formats", "Transformation", "com.preservica.core.workflow.transformation.migrate"),
    WorkflowContext("Characterise Content", "DataManagement", "com.preservica.core.workflow.datamanagement.char"),
)

WORKFLOW_STATES = {
    P.PENDING: "Pending",
    P.ACTIVE: "Active",
    P.COMPLETED: "Completed",
    P.FAILED: "Failed",
    P.MIXED: "Finished_Mixed_Outcome",
    P.ABORTED: "Aborted",
    P.CANCELLED: "Aborted",
}
MONITOR_STATES = {
    P.PENDING: "Pending",
    P.ACTIVE: "Running",
    P.COMPLETED: "Succeeded",
    P.FAILED: "Failed",
    P.MIXED: "Failed",
    P.ABORTED: "Failed",
    P.CANCELLED: "Failed",
}


def find_context(context_id: str | None, name: str | None) -> WorkflowContext | None:
    for context in CONTEXTS:
        if (context_id and context.id == context_id) or (not context_id and name and context.name == name):
            return context
    return None


@dataclass
class MonitorMessage:
    id: str
    status: str  # Info | Warning | Error
    code: str
    display: str
    path: str
    date: str
    params: dict[str, Any] | None = None
    entity_ref: str | None = None
    entity_title: str | None = None
    source_id: str | None = None
    security_descriptor: str | None = None

    @property
    def message(self) -> str:
        if self.params is None:
            return self.code
        return f"{self.code}|{json.dumps(self.params, separators=(',', ':'))}"


@dataclass
class IngestJob:
    token: str
    workflow_id: int
    name: str
    context: WorkflowContext
    user: str
    tenant: str
    progress: P.ProgressRecord
    kind: str  # "upload" | "opex-incremental" | "workflow"
    parent: str | None = None
    source: StoredObject | None = None
    container: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    correlation_id: str | None = None
    subcategory: str = ""
    size: int = 0
    files_total: int = 0
    files_processed: int = 0
    messages: list[MonitorMessage] = field(default_factory=list)
    created_refs: list[str] = field(default_factory=list)
    fault: IngestFault | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    stop_status: str = P.ABORTED
    thread: threading.Thread | None = None
    timeseries: list[dict[str, Any]] = field(default_factory=list)
    archival_process_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    workflow_group_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def monitor_id(self) -> str:
        return uuid.UUID(self.token).hex

    @property
    def has_monitor(self) -> bool:
        return self.kind != "workflow"

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or raise ``JobStopped`` as soon as the job is asked to stop."""
        if seconds > 0 and self.stop.wait(seconds):
            raise JobStopped
        if self.stop.is_set():
            raise JobStopped


def monitor_token(mapped_id: str) -> str | None:
    """The progress token behind a monitor's ``mappedId`` (the token without hyphens)."""
    try:
        return str(uuid.UUID(mapped_id))
    except ValueError:
        return None


class JobStopped(Exception):
    """The job was cancelled, terminated or the sandbox is shutting down."""
