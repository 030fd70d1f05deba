"""Package processing: what happens after an upload, and the records that report on it.

``state.ingest`` is one ``IngestService``. It owns the S3 object store (``store``), the ingest jobs,
their process monitors and messages, the workflow instances, the ingest faults and the ``ingest_seconds``
setting. Progress tokens live in ``state.progress`` (``progress.ProgressBook``).

A job is started by a completed upload to ``{tenant}.package.upload`` (PutObject or
CompleteMultipartUpload) or by starting the "Ingest OPEX (Incremental)" workflow on a container of the
source bucket ``com.preservica.{tenant}.upload``. It runs on its own thread:

1. ``PENDING`` for 20 % of ``ingest_seconds`` (monitor ``Pending``, workflow ``Pending``);
2. ``ACTIVE`` (``Running``/``Active``): the package is opened and checked as a whole — a zip, XIP v6
   ``metadata.xml`` or OPEX (``.opex`` files; a zip with neither is a plain folder tree, ingested as
   OPEX without sidecars), well-formed XML, no ``: < > | " * \\`` in names, a parent folder that exists.
   Any problem ends the job ``FAILED`` with nothing created. Then each folder and asset is processed in
   turn, the remaining 80 % of ``ingest_seconds`` spread over them;
3. the end state: ``COMPLETED`` when no item failed; ``FAILED`` when items failed and none was ingested
   or skipped; ``FINISHED_MIXED_OUTCOME`` otherwise. Entities are in the repository (and so in search)
   before the state says so.

OPEX rules: a directory is a folder (manifest ``<dir>/<dir>.opex``: SourceID, title, description,
security tag, identifiers, descriptive metadata; a manifest's ``Files``/``Folders`` must all be present
— a listed child that is missing is an error); a file is an asset with one content object, one
generation and one bitstream (sidecar ``<file>.opex``: the same properties plus ``Fixities``, each
checked against the bytes — a mismatch fails that asset, nothing of it is stored); a directory ending
``.pax`` or with a sibling ``<dir>.opex`` is a PAX asset folder (``Representation_<Type>/[<co>/]<file>``,
fixities with ``path``); ``<x>.pax.zip`` is a zipped PAX. Names with ``?`` or non-ASCII characters are
skipped without a message, as Preservica does. Incremental matching: a folder whose SourceID (or, without
one, title) matches a folder under the same parent is reused (Info ``monitor.info.directory.skip``); an
asset whose SourceID (or, without one, title) matches an asset under the same parent is skipped with a
Warning (``monitor.warning.file.skip``). The SourceID is kept on the entity and as an identifier of type
``SourceID``.

XIP rules: ``InformationObject``/``StructuralObject``/``ContentObject`` refs are kept; an entity's
``Parent`` is used when it names a folder of the package or of the repository, otherwise the upload's
``structuralobjectreference``; bitstreams are found at ``content/<PhysicalLocation>/<Filename>`` and
their ``FileSize`` and ``Fixities`` checked. An asset whose ref already exists fails.

The upload's parent (``x-amz-meta-structuralobjectreference``) is required unless every top-level
entity of an XIP package names its parent.

Progress token <-> monitor <-> workflow instance: the monitor's ``mappedId`` is the progress token
without hyphens (``uuid.UUID(mapped_id)`` gives the token back); its ``name`` is the uploaded object key
(``opex/<container>`` for the incremental workflow); messages carry ``workflowInstanceId``; the progress
XML carries ``MonitorId`` and ``WorkflowInstanceId``.

Ingest faults (``add_fault``; ``/_sandbox/ingest-faults``): ``{"outcome": "FAILED" |
"FINISHED_MIXED_OUTCOME" | "STUCK", "count": 1, "name": "<glob on the monitor name>", "message": "..."}``.
``FAILED``: the next ingest fails before creating anything, with ``message`` as its error.
``FINISHED_MIXED_OUTCOME``: the first asset fails with ``message``, the rest is ingested, the end state
is ``FINISHED_MIXED_OUTCOME`` (even for a one-asset package). ``STUCK``: the job stays ``ACTIVE`` until
it is cancelled, terminated or the sandbox is reset.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import posixpath
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import progress as P
from .packages import (
    ILLEGAL_NAME_CHARACTERS,
    OPEX_SUFFIX,
    FileTree,
    OpexDocument,
    PackageError,
    PackageTree,
    XipPackage,
    ZipTree,
    find_xip_documents,
    fixity_name,
    parse_opex,
    parse_xip,
    silently_skipped,
)
from .repository import (
    CO,
    IO,
    SO,
    Bitstream,
    Entity,
    Generation,
    Identifier,
    MetadataFragment,
    Repository,
    RepositoryError,
    Representation,
    check_ref,
    iso_timestamp,
)
from .s3_store import ObjectStore, StoredObject

if TYPE_CHECKING:
    from .state import SandboxState

log = logging.getLogger(__name__)

DEFAULT_INGEST_SECONDS = 1.0
PENDING_SHARE = 0.2
JOIN_TIMEOUT = 15.0
SOURCE_ID_TYPE = "SourceID"
FAULT_OUTCOMES = frozenset({P.FAILED, P.MIXED, "STUCK"})
PARENT_PARAMETER = "StructuralObjectReference"
OPEX_CONTAINER_PARAMETER = "OpexContainerDirectory"


def package_bucket(tenant: str) -> str:
    return f"{tenant.lower()}.package.upload"


def source_bucket(tenant: str) -> str:
    """The emulated customer source location watched by the incremental OPEX workflow."""
    return f"com.preservica.{tenant.lower()}.upload"


# --------------------------------------------------------------------------- workflow contexts
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


# --------------------------------------------------------------------------- records
@dataclass
class IngestFault:
    outcome: str
    count: int | None = 1
    name: str | None = None
    message: str | None = None
    id: int = 0
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outcome": self.outcome,
            "count": self.count,
            "name": self.name,
            "message": self.message,
            "fired": self.fired,
        }


def parse_ingest_fault(data: Any) -> IngestFault:
    if not isinstance(data, dict):
        raise ValueError("an ingest fault must be a JSON object")
    unknown = set(data) - {"outcome", "count", "name", "message"}
    if unknown:
        raise ValueError(f"unknown ingest fault keys: {sorted(unknown)}")
    outcome = data.get("outcome")
    if outcome not in FAULT_OUTCOMES:
        raise ValueError(f"outcome must be one of {sorted(FAULT_OUTCOMES)}")
    count = data.get("count", 1)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer or null (until cleared)")
    for key in ("name", "message"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"{key} must be a string")
    return IngestFault(outcome=outcome, count=count, name=data.get("name"), message=data.get("message"))


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


def monitor_token(mapped_id: str) -> str | None:
    """The progress token behind a monitor's ``mappedId`` (the token without hyphens)."""
    try:
        return str(uuid.UUID(mapped_id))
    except ValueError:
        return None


class _Stopped(Exception):
    """The job was cancelled, terminated or the sandbox is shutting down."""


# --------------------------------------------------------------------------- the service
class IngestService:
    """See the module docstring. Thread-safe; job threads never hold ``_lock`` while touching the repository."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.clock: Callable[[], float] = state.clock
        self._lock = threading.RLock()
        self.store = ObjectStore(state.repository.data_dir, clock=state.clock)
        self.ingest_seconds = DEFAULT_INGEST_SECONDS
        self._jobs: dict[str, IngestJob] = {}
        self._workflows: dict[int, IngestJob] = {}
        self._next_workflow_id = 1
        self._faults: list[IngestFault] = []
        self._next_fault_id = 1

    @property
    def progress(self) -> P.ProgressBook:
        return self.state.progress

    @property
    def repository(self) -> Repository:
        return self.state.repository

    # ----------------------------------------------------------------- configuration
    CONFIG_KEYS = frozenset({"ingest_seconds"})

    def config(self) -> dict[str, Any]:
        seconds = self.ingest_seconds
        return {"ingest_seconds": int(seconds) if float(seconds).is_integer() else seconds}

    def check_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validated values for the keys this service owns (``ValueError`` for bad ones)."""
        out: dict[str, Any] = {}
        if "ingest_seconds" in changes:
            value = changes["ingest_seconds"]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
                raise ValueError("ingest_seconds must be a number of seconds between 0 and 3600")
            out["ingest_seconds"] = float(value)
        return out

    def apply_config(self, checked: dict[str, Any]) -> None:
        if "ingest_seconds" in checked:
            self.ingest_seconds = checked["ingest_seconds"]

    # ----------------------------------------------------------------- faults
    def add_fault(self, fault: IngestFault) -> IngestFault:
        with self._lock:
            fault.id = self._next_fault_id
            self._next_fault_id += 1
            self._faults.append(fault)
        return fault

    def faults(self) -> list[IngestFault]:
        with self._lock:
            return list(self._faults)

    def clear_faults(self) -> int:
        with self._lock:
            removed = len(self._faults)
            self._faults.clear()
            return removed

    def _take_fault(self, name: str) -> IngestFault | None:
        with self._lock:
            for fault in self._faults:
                if fault.name is None or fnmatch.fnmatchcase(name, fault.name):
                    fault.fired += 1
                    if fault.count is not None:
                        fault.count -= 1
                    self._faults = [f for f in self._faults if f.count is None or f.count > 0]
                    return fault
        return None

    # ----------------------------------------------------------------- starting work
    def _new_job(
        self,
        *,
        kind: str,
        name: str,
        context: WorkflowContext,
        user: str,
        tenant: str,
        **extra: Any,
    ) -> IngestJob:
        holder: list[IngestJob] = []
        with self._lock:
            workflow_id = self._next_workflow_id
            self._next_workflow_id += 1
        record = self.progress.create("ingest", tenant=tenant, cancel=lambda: self._cancel(holder[0]))
        if kind != "workflow":
            record.details["MonitorId"] = uuid.UUID(record.token).hex
        record.details["WorkflowInstanceId"] = str(workflow_id)
        with self._lock:
            job = IngestJob(
                token=record.token,
                workflow_id=workflow_id,
                name=name,
                context=context,
                user=user,
                tenant=tenant,
                progress=record,
                kind=kind,
                **extra,
            )
            holder.append(job)
            if kind != "workflow":
                job.fault = self._take_fault(name)
            self._jobs[job.token] = job
            self._workflows[workflow_id] = job
            self._sample(job)
        job.thread = threading.Thread(target=self._run, args=(job,), name=f"sandbox-ingest-{workflow_id}", daemon=True)
        job.thread.start()
        return job

    def submit_upload(self, obj: StoredObject, user: str, tenant: str) -> IngestJob:
        """Start ingesting an object that has just arrived in the package bucket."""
        parent = obj.metadata.get("structuralobjectreference") or None
        job = self._new_job(
            kind="upload",
            name=obj.key,
            context=UPLOAD_CONTEXT,
            user=user,
            tenant=tenant,
            parent=parent.strip() if parent else None,
            source=obj,
            size=obj.size,
        )
        obj.progress_token = job.token
        return job

    def start_workflow(
        self, context: WorkflowContext, parameters: dict[str, str], correlation_id: str | None, user: str, tenant: str
    ) -> IngestJob:
        if context == OPEX_CONTEXT:
            container = parameters.get(OPEX_CONTAINER_PARAMETER, "").strip().strip("/")
            return self._new_job(
                kind="opex-incremental",
                name=container or "opex/",
                context=context,
                user=user,
                tenant=tenant,
                parent=parameters.get(PARENT_PARAMETER) or None,
                container=container,
                parameters=parameters,
                correlation_id=correlation_id,
            )
        return self._new_job(
            kind="workflow",
            name=context.name,
            context=context,
            user=user,
            tenant=tenant,
            parameters=parameters,
            correlation_id=correlation_id,
        )

    # ----------------------------------------------------------------- stopping work
    def _cancel(self, job: IngestJob) -> bool:
        if job.progress.done:
            return False
        job.stop_status = P.CANCELLED
        job.stop.set()
        return True

    def terminate(self, workflow_id: int) -> bool:
        with self._lock:
            job = self._workflows.get(workflow_id)
        if job is None or job.progress.done:
            return False
        job.stop_status = P.ABORTED
        job.stop.set()
        return True

    def _stop_all(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_status = P.ABORTED
            job.stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for job in jobs:
            if job.thread is not None and job.thread is not threading.current_thread():
                job.thread.join(max(0.0, deadline - time.monotonic()))
                if job.thread.is_alive():
                    log.warning("sandbox ingest %s did not stop within %.0f s", job.token, JOIN_TIMEOUT)

    def reset(self) -> None:
        """Stop every job (they end ``ABORTED``), then forget jobs, faults, uploads and objects; ids start at 1."""
        self._stop_all()
        with self._lock:
            self._jobs.clear()
            self._workflows.clear()
            self._faults.clear()
            self._next_workflow_id = self._next_fault_id = 1
        self.store.clear()

    def close(self) -> None:
        self._stop_all()
        self.store.close()

    # ----------------------------------------------------------------- reading
    def job(self, token: str) -> IngestJob | None:
        with self._lock:
            return self._jobs.get(token)

    def jobs(self, tenant: str | None = None) -> list[IngestJob]:
        with self._lock:
            return [j for j in self._jobs.values() if tenant is None or j.tenant == tenant]

    def workflow(self, workflow_id: int) -> IngestJob | None:
        with self._lock:
            return self._workflows.get(workflow_id)

    def workflows(self, tenant: str | None = None) -> list[IngestJob]:
        with self._lock:
            return [j for j in self._workflows.values() if tenant is None or j.tenant == tenant]

    def job_by_monitor(self, mapped_id: str) -> IngestJob | None:
        token = monitor_token(mapped_id)
        job = self.job(token) if token else None
        return job if job is not None and job.has_monitor else None

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the service lock while rendering several jobs consistently."""
        with self._lock:
            yield

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "token": j.token,
                    "monitor": j.monitor_id if j.has_monitor else None,
                    "workflow_instance": j.workflow_id,
                    "name": j.name,
                    "kind": j.kind,
                    "status": j.progress.status,
                    "created_refs": list(j.created_refs),
                    "messages": len(j.messages),
                }
                for j in self._jobs.values()
            ]

    # ----------------------------------------------------------------- job updates
    def _sample(self, job: IngestJob) -> None:
        job.timeseries.append(
            {
                "date": iso_timestamp(self.clock()),
                "status": MONITOR_STATES.get(job.progress.status, "Pending"),
                "filesProcessed": job.files_processed,
                "filesPending": max(0, job.files_total - job.files_processed),
                "warnings": sum(1 for m in job.messages if m.status == "Warning"),
                "errors": sum(1 for m in job.messages if m.status == "Error"),
            }
        )

    def _message(
        self,
        job: IngestJob,
        status: str,
        code: str,
        display: str,
        path: str,
        params: dict[str, Any] | None = None,
        entity: Entity | None = None,
        source_id: str | None = None,
    ) -> None:
        message = MonitorMessage(
            id=uuid.uuid4().hex,
            status=status,
            code=code,
            display=display,
            path=path,
            date=iso_timestamp(self.clock()),
            params=params,
            entity_ref=entity.ref if entity else None,
            entity_title=entity.title if entity else None,
            source_id=source_id if source_id is not None else (entity.source_id if entity else None),
            security_descriptor=entity.security_tag if entity else None,
        )
        with self._lock:
            job.messages.append(message)
        if status == "Error":
            self.progress.add_error(job.progress, display)
        elif status == "Warning":
            self.progress.add_warning(job.progress, display)

    def _set_status(self, job: IngestJob, status: str) -> None:
        with self._lock:
            self.progress.set_status(job.progress, status)
            self._sample(job)

    def _count(self, job: IngestJob, processed: int, total: int) -> None:
        with self._lock:
            job.files_processed = processed
            job.files_total = total
            self.progress.set_percent(job.progress, 100.0 * processed / total if total else 0.0)

    # ----------------------------------------------------------------- the job thread
    def _wait(self, job: IngestJob, seconds: float) -> None:
        if seconds > 0 and job.stop.wait(seconds):
            raise _Stopped
        if job.stop.is_set():
            raise _Stopped

    def _run(self, job: IngestJob) -> None:
        try:
            self._wait(job, self.ingest_seconds * PENDING_SHARE)
            self._set_status(job, P.ACTIVE)
            if job.kind == "workflow":
                self._wait(job, self.ingest_seconds * (1 - PENDING_SHARE))
                self._set_status(job, P.COMPLETED)
                return
            fault = job.fault
            if fault is not None and fault.outcome == P.FAILED:
                text = fault.message or "sandbox fault: the ingest workflow failed"
                self._message(job, "Error", "monitor.error.workflow.failed", text, job.name)
                self._set_status(job, P.FAILED)
                return
            if fault is not None and fault.outcome == "STUCK":
                job.stop.wait()
                raise _Stopped
            status = _Processor(self, job).run()
            self._set_status(job, status)
        except _Stopped:
            self._message(
                job,
                "Error",
                "monitor.error.workflow.stopped",
                f"Ingest {'cancelled' if job.stop_status == P.CANCELLED else 'aborted'} before it finished",
                job.name,
            )
            self._set_status(job, job.stop_status)
        except PackageError as exc:
            self._message(job, "Error", "monitor.error.package.invalid", str(exc), job.name)
            self._set_status(job, P.FAILED)
        except Exception as exc:  # a sandbox bug must still end the job, visibly
            log.exception("sandbox ingest %s failed unexpectedly", job.token)
            self._message(job, "Error", "monitor.error.internal", f"sandbox internal error: {exc!r}", job.name)
            self._set_status(job, P.FAILED)
        finally:
            if job.source is not None:
                self.store.release(job.source)


# --------------------------------------------------------------------------- processing
@dataclass
class _Item:
    kind: str  # folder | asset | pax | paxzip | missing
    path: str
    doc: OpexDocument | None = None
    sidecar: str | None = None


def _basename(path: str) -> str:
    return posixpath.basename(path)


def _now(clock: Callable[[], float]) -> str:
    return iso_timestamp(clock())


class _Processor:
    """Processes one job's package (OPEX or XIP) into the repository."""

    def __init__(self, service: IngestService, job: IngestJob) -> None:
        self.service = service
        self.job = job
        self.repo = service.repository
        self.clock = service.clock
        self.ingested = 0
        self.failed = 0
        self.skipped = 0
        self.processed = 0
        self.total = 0
        self.step = 0.0
        self._cleanup: list[Path] = []
        self._trees: list[PackageTree] = []
        self._children_index: dict[str | None, dict[tuple[str, str, str], str]] = {}
        self._fault_pending = job.fault is not None and job.fault.outcome == P.MIXED

    # ----------------------------------------------------------------- helpers
    def message(self, *args: Any, **kwargs: Any) -> None:
        self.service._message(self.job, *args, **kwargs)

    def item_done(self) -> None:
        self.processed += 1
        self.service._count(self.job, self.processed, self.total)
        self.service._wait(self.job, self.step)

    def now(self) -> str:
        return _now(self.clock)

    def _pace(self, items: int) -> None:
        self.total = items
        self.step = self.service.ingest_seconds * (1 - PENDING_SHARE) / max(1, items)
        self.service._count(self.job, 0, items)

    def run(self) -> str:
        try:
            tree = self._open_tree()
            xip_documents = find_xip_documents(tree) if self.job.kind == "upload" else []
            if xip_documents:
                self.job.subcategory = "XIP"
                self._run_xip(tree, xip_documents)
            else:
                self.job.subcategory = "OPEX"
                self._run_opex(tree)
        finally:
            for opened in self._trees:
                opened.close()
            for path in self._cleanup:
                with contextlib.suppress(OSError):
                    path.unlink()
        if self._fault_pending is False and self.job.fault is not None and self.job.fault.outcome == P.MIXED:
            return P.MIXED
        if self.failed == 0:
            return P.COMPLETED
        if self.ingested == 0 and self.skipped == 0:
            return P.FAILED
        return P.MIXED

    def _open_tree(self) -> PackageTree:
        job = self.job
        if job.kind == "upload":
            assert job.source is not None
            tree: PackageTree = ZipTree(job.source.open())
        else:
            tree = self._container_tree()
        self._trees.append(tree)
        return tree

    def _container_tree(self) -> PackageTree:
        job = self.job
        if not job.container:
            raise PackageError(f"the workflow needs the parameter {OPEX_CONTAINER_PARAMETER} (e.g. opex/<container>)")
        bucket = source_bucket(job.tenant)
        prefix = job.container + "/"
        objects = self.service.store.objects(bucket, prefix)
        if not objects:
            raise PackageError(f"nothing under s3://{bucket}/{prefix}: the OPEX container is empty or missing")
        by_path = {o.key[len(prefix) :]: o for o in objects}
        job.size = sum(o.size for o in objects)
        return FileTree({name: (o.size, None) for name, o in by_path.items()}, opener=lambda p: by_path[p].open())

    def _check_names(self, tree: PackageTree) -> None:
        bad = sorted(
            path
            for path in [*tree.files, *tree.dirs]
            if path and any(c in ILLEGAL_NAME_CHARACTERS for c in _basename(path))
        )
        if bad:
            shown = ", ".join(bad[:20]) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
            raise PackageError(
                f"illegal characters ({' '.join(sorted(ILLEGAL_NAME_CHARACTERS))}) in {len(bad)} name(s): {shown}"
            )

    def _parent_folder(self, ref: str | None, what: str) -> str:
        if not ref:
            raise PackageError(
                f"no parent folder for {what}: upload with the metadata x-amz-meta-structuralobjectreference"
            )
        try:
            canonical = check_ref(ref)
        except RepositoryError:
            raise PackageError(f"parent folder {ref!r} is not a valid reference") from None
        if self.repo.get(canonical, SO) is None:
            raise PackageError(f"parent folder {canonical} does not exist")
        return canonical

    # ----------------------------------------------------------------- matching existing entities
    def _index(self, parent: str | None) -> dict[tuple[str, str, str], str]:
        """(kind, "sid"|"title", value) -> ref of the children of ``parent`` (built once per folder)."""
        index = self._children_index.get(parent)
        if index is None:
            index = {}
            with self.repo.lock:
                refs = self.repo.children(parent) if parent is None or self.repo.get(parent, SO) else []
                for ref in refs:
                    entity = self.repo.get(ref)
                    if entity is None:
                        continue
                    if entity.source_id:
                        index.setdefault((entity.kind, "sid", entity.source_id), ref)
                    index.setdefault((entity.kind, "title", entity.title), ref)
            self._children_index[parent] = index
        return index

    def _match(self, kind: str, parent: str | None, source_id: str | None, title: str) -> tuple[str, str] | None:
        index = self._index(parent)
        if source_id:
            ref = index.get((kind, "sid", source_id))
            return (ref, f"Source ID {source_id}") if ref else None
        ref = index.get((kind, "title", title))
        return (ref, f"Title {title}") if ref else None

    def _remember(self, entity: Entity) -> None:
        index = self._index(entity.parent)
        if entity.source_id:
            index.setdefault((entity.kind, "sid", entity.source_id), entity.ref)
        index.setdefault((entity.kind, "title", entity.title), entity.ref)

    # ----------------------------------------------------------------- building entities
    def _entity(
        self,
        kind: str,
        title: str,
        parent: str | None,
        doc: OpexDocument | None = None,
        ref: str | None = None,
        description: str = "",
        security_tag: str = "open",
        custom_type: str | None = None,
    ) -> Entity:
        now = self.now()
        source_id = doc.source_id if doc else None
        entity = Entity(
            ref=ref or str(uuid.uuid4()),
            kind=kind,
            title=title,
            description=(doc.description if doc and doc.description else description),
            security_tag=(doc.security_tag if doc and doc.security_tag else security_tag),
            parent=parent,
            created=now,
            modified=now,
            source_id=source_id,
            custom_type=custom_type,
        )
        if doc is not None:
            if source_id:
                entity.identifiers.append(Identifier(uuid.uuid4().hex, SOURCE_ID_TYPE, source_id))
            entity.identifiers.extend(Identifier(uuid.uuid4().hex, t, v) for t, v in doc.identifiers)
            entity.metadata.extend(MetadataFragment(str(uuid.uuid4()), s, x) for s, x in doc.fragments)
        return entity

    def _store(self, tree: PackageTree, path: str) -> Bitstream:
        with tree.open(path) as handle:
            return self.repo.store_blob(handle, _basename(path))

    def _discard(self, bitstreams: list[Bitstream]) -> None:
        for bitstream in bitstreams:
            location = self.repo.blob_path(bitstream)
            if location is not None:
                with contextlib.suppress(OSError):
                    location.unlink()

    def _verify(self, bitstream: Bitstream, expected: list[tuple[str, str]], path: str) -> str | None:
        """The first fixity mismatch as a message, or ``None``; unknown algorithms are warned about."""
        for algorithm, value in expected:
            name = fixity_name(algorithm)
            if name is None:
                self.message(
                    "Warning",
                    "monitor.warning.fixity.unsupported",
                    f"{path}: fixity algorithm {algorithm!r} is not supported; not checked",
                    path,
                    {"algorithm": algorithm},
                )
                continue
            actual = bitstream.fixities.get(name, "")
            if actual.lower() != value.strip().lower():
                return f"{path}: {algorithm} fixity mismatch: the package says {value}, the content has {actual}"
        return None

    def _insert(self, entities: list[Entity]) -> None:
        self.repo.insert_entities(entities)
        for entity in entities:
            if entity.kind != CO:
                self._remember(entity)
        with self.service._lock:
            self.job.created_refs.extend(e.ref for e in entities if e.kind != CO)

    def _injected_failure(self, path: str) -> bool:
        if not self._fault_pending:
            return False
        self._fault_pending = False
        fault = self.job.fault
        text = (fault.message if fault and fault.message else "sandbox fault: asset failed") + f" ({path})"
        self.message("Error", "monitor.error.asset.failed", text, path)
        self.failed += 1
        return True

    # ----------------------------------------------------------------- OPEX
    def _plan_opex(self, tree: PackageTree, root_manifest: str | None) -> tuple[list[_Item], dict[str, OpexDocument]]:
        docs: dict[str, OpexDocument] = {}
        problems: list[str] = []
        for path in sorted(tree.files):
            if path.lower().endswith(OPEX_SUFFIX) and not silently_skipped(_basename(path)):
                try:
                    docs[path] = parse_opex(tree.read(path), path)
                except PackageError as exc:
                    problems.append(str(exc))
        if problems:
            raise PackageError("; ".join(problems))
        items: list[_Item] = []

        def manifest_of(directory: str) -> str | None:
            if not directory:
                return root_manifest
            return f"{directory}/{_basename(directory)}{OPEX_SUFFIX}"

        def walk(directory: str) -> None:
            subdirs, files = tree.children(directory)
            manifest = manifest_of(directory)
            present: set[str] = set()
            for sub in subdirs:
                name = _basename(sub)
                if silently_skipped(name):
                    continue
                present.add(name)
                sidecar = sub + OPEX_SUFFIX
                if name.lower().endswith(".pax") or sidecar in tree.files:
                    items.append(_Item("pax", sub, docs.get(sidecar), sidecar if sidecar in tree.files else None))
                    present.add(name + OPEX_SUFFIX)
                    continue
                sub_manifest = manifest_of(sub)
                items.append(_Item("folder", sub, docs.get(sub_manifest or ""), sub_manifest))
                walk(sub)
            for path in files:
                name = _basename(path)
                if silently_skipped(name):
                    continue
                present.add(name)
                if name.lower().endswith(OPEX_SUFFIX):
                    if path == manifest or path[: -len(OPEX_SUFFIX)] in tree.files:
                        continue
                    if path[: -len(OPEX_SUFFIX)] in tree.dirs:
                        continue
                    self.message(
                        "Warning",
                        "monitor.warning.opex.orphan",
                        f"{path}: OPEX metadata for nothing in the package; ignored",
                        path,
                    )
                    continue
                sidecar = path + OPEX_SUFFIX
                kind = "paxzip" if name.lower().endswith(".pax.zip") else "asset"
                items.append(_Item(kind, path, docs.get(sidecar), sidecar if sidecar in tree.files else None))
            doc = docs.get(manifest or "")
            if doc is not None and (doc.manifest_files is not None or doc.manifest_folders is not None):
                listed = [e.name for e in doc.manifest_files or []] + list(doc.manifest_folders or [])
                for name in listed:
                    if name and name not in present:
                        child = f"{directory}/{name}" if directory else name
                        items.append(_Item("missing", child, None, manifest))

        walk("")
        return items, docs

    def _run_opex(self, tree: PackageTree) -> None:
        job = self.job
        self._check_names(tree)
        root_manifest = None
        if job.kind == "opex-incremental" and job.container:
            candidate = _basename(job.container) + OPEX_SUFFIX
            root_manifest = candidate if candidate in tree.files else None
        items, docs = self._plan_opex(tree, root_manifest)
        if job.kind == "upload" or job.parent:
            root_parent: str | None = self._parent_folder(job.parent, "the OPEX package")
        else:
            root_parent = None  # the incremental workflow may create top-level folders at the root
        folder_refs: dict[str, str | None] = {"": root_parent}
        self._pace(len(items))
        for item in items:
            parent_dir = posixpath.dirname(item.path)
            if parent_dir not in folder_refs:  # its folder failed: nothing below it can be placed
                self.failed += 1
                self.message(
                    "Error",
                    "monitor.error.parent.failed",
                    f"{item.path}: not ingested because its folder failed",
                    item.path,
                )
            elif item.kind == "folder":
                ref = self._opex_folder(item, folder_refs[parent_dir])
                if ref is not None:
                    folder_refs[item.path] = ref
            elif item.kind == "missing":
                self.failed += 1
                self.message(
                    "Error",
                    "monitor.error.manifest.missing",
                    f"{item.path}: listed in the manifest {item.sidecar} but not in the package",
                    item.path,
                )
            else:
                self._opex_asset(tree, item, folder_refs[parent_dir], docs)
            self.item_done()

    def _opex_folder(self, item: _Item, parent: str | None) -> str | None:
        doc = item.doc
        title = (doc.title if doc and doc.title else None) or _basename(item.path)
        source_id = doc.source_id if doc else None
        matched = self._match(SO, parent, source_id, title)
        if matched is not None:
            ref, how = matched
            existing = self.repo.get(ref)
            self.message(
                "Info",
                "monitor.info.directory.skip",
                f"Matched directory {item.path} to existing SO {ref} via {how}",
                item.path,
                {"matchText": how},
                entity=existing,
                source_id=source_id,
            )
            return ref
        folder = self._entity(SO, title, parent, doc)
        try:
            self._insert([folder])
        except RepositoryError as exc:
            self.failed += 1
            self.message("Error", "monitor.error.directory.failed", f"{item.path}: {exc}", item.path)
            return None
        self.message(
            "Info",
            "monitor.info.directory.created",
            f"Created folder {folder.ref} for directory {item.path}",
            item.path,
            entity=folder,
        )
        return folder.ref

    def _skip_existing(self, item: _Item, parent: str, title: str, source_id: str | None) -> bool:
        matched = self._match(IO, parent, source_id, title)
        if matched is None:
            return False
        ref, how = matched
        self.skipped += 1
        self.message(
            "Warning",
            "monitor.warning.file.skip",
            f"Matched file {item.path} to existing IO {ref} via {how}; not ingested again",
            item.path,
            {"matchText": how},
            entity=self.repo.get(ref),
            source_id=source_id,
        )
        return True

    def _opex_asset(self, tree: PackageTree, item: _Item, parent: str | None, docs: dict[str, OpexDocument]) -> None:
        if parent is None:
            self.failed += 1
            self.message(
                "Error", "monitor.error.asset.parent", f"{item.path}: an asset cannot sit at the root", item.path
            )
            return
        doc = item.doc
        name = _basename(item.path)
        default_title = name
        for suffix in (".pax.zip", ".pax"):
            if item.kind != "asset" and name.lower().endswith(suffix):
                default_title = name[: -len(suffix)]
                break
        title = (doc.title if doc and doc.title else None) or default_title
        source_id = doc.source_id if doc else None
        if self._skip_existing(item, parent, title, source_id):
            return
        if self._injected_failure(item.path):
            return
        manifest = docs.get(posixpath.dirname(item.path) + "/" + _basename(posixpath.dirname(item.path)) + OPEX_SUFFIX)
        if manifest is not None and manifest.manifest_files:
            for entry in manifest.manifest_files:
                if entry.name == name and entry.size is not None and item.kind == "asset":
                    actual = tree.files.get(item.path)
                    if actual != entry.size:
                        self.failed += 1
                        self.message(
                            "Error",
                            "monitor.error.manifest.size",
                            f"{item.path}: the manifest says {entry.size} bytes, the package has {actual}",
                            item.path,
                        )
                        return
        asset = self._entity(IO, title, parent, doc)
        try:
            if item.kind == "asset":
                entities = self._single_file_asset(tree, item, asset, doc)
            elif item.kind == "pax":
                entities = self._pax_asset(tree, item.path, asset, doc)
            else:
                entities = self._zipped_pax_asset(tree, item.path, asset, doc)
        except _AssetFailed as failure:
            self.failed += 1
            self.message("Error", failure.code, failure.text, item.path, failure.params)
            return
        try:
            self._insert(entities)
        except RepositoryError as exc:
            self._discard([b for e in entities for g in e.generations for b in g.bitstreams])
            self.failed += 1
            self.message("Error", "monitor.error.asset.failed", f"{item.path}: {exc}", item.path)
            return
        self.ingested += 1
        self.message(
            "Info",
            "monitor.info.successful.ingest.with.opex",
            f"Successfully ingested {item.path} as asset {asset.ref}",
            item.path,
            entity=asset,
        )

    def _content_object(self, asset: Entity, title: str, bitstreams: list[Bitstream]) -> Entity:
        now = self.now()
        return Entity(
            ref=str(uuid.uuid4()),
            kind=CO,
            title=title,
            security_tag=asset.security_tag,
            parent=asset.ref,
            created=now,
            modified=now,
            generations=[Generation(original=True, active=True, effective_date=now, bitstreams=bitstreams)],
        )

    def _checked_blob(self, tree: PackageTree, path: str, expected: list[tuple[str, str]], shown: str) -> Bitstream:
        bitstream = self._store(tree, path)
        problem = self._verify(bitstream, expected, shown)
        if problem is not None:
            self._discard([bitstream])
            raise _AssetFailed("monitor.error.fixity.mismatch", problem, {"path": shown})
        return bitstream

    def _single_file_asset(
        self, tree: PackageTree, item: _Item, asset: Entity, doc: OpexDocument | None
    ) -> list[Entity]:
        name = _basename(item.path)
        expected = [(f.algorithm, f.value) for f in (doc.fixities if doc else []) if not f.path or f.path == name]
        bitstream = self._checked_blob(tree, item.path, expected, item.path)
        content = self._content_object(asset, name, [bitstream])
        asset.representations.append(Representation("Preservation", "Preservation", [content.ref]))
        return [asset, content]

    def _pax_asset(self, tree: PackageTree, base: str, asset: Entity, doc: OpexDocument | None) -> list[Entity]:
        """A PAX: ``Representation_<Type>[_n]/`` folders of content-object folders (or bare files)."""
        fixities = doc.fixities if doc else []
        contents: list[Entity] = []
        stored: list[Bitstream] = []
        subdirs, _ = tree.children(base)
        try:
            for rep_dir in subdirs:
                rep_name = _basename(rep_dir)
                if not rep_name.startswith("Representation_"):
                    continue
                rep_type = (
                    "Access" if rep_name[len("Representation_") :].lower().startswith("access") else "Preservation"
                )
                rep = Representation(rep_type, rep_name[len("Representation_") :] or rep_type)
                co_dirs, co_files = tree.children(rep_dir)
                groups: list[tuple[str, list[str]]] = [(_basename(p), [p]) for p in co_files]
                for co_dir in co_dirs:
                    groups.append((_basename(co_dir), tree.children(co_dir)[1]))
                for co_title, paths in groups:
                    bitstreams: list[Bitstream] = []
                    for path in paths:
                        relative = path[len(base) + 1 :] if base else path
                        expected = [
                            (f.algorithm, f.value)
                            for f in fixities
                            if f.path and f.path.replace("\\", "/").lstrip("/") == relative
                        ]
                        bitstream = self._checked_blob(tree, path, expected, path)
                        stored.append(bitstream)
                        bitstreams.append(bitstream)
                    if bitstreams:
                        content = self._content_object(asset, co_title, bitstreams)
                        rep.content_objects.append(content.ref)
                        contents.append(content)
                if rep.content_objects:
                    asset.representations.append(rep)
        except _AssetFailed:
            self._discard(stored)
            raise
        if not contents:
            raise _AssetFailed(
                "monitor.error.pax.empty", f"{base}: a PAX needs Representation_<Type> folders with files", None
            )
        return [asset, *contents]

    def _zipped_pax_asset(self, tree: PackageTree, path: str, asset: Entity, doc: OpexDocument | None) -> list[Entity]:
        target = self.service.store.new_path(".pax.zip")
        self._cleanup.append(target)
        with tree.open(path) as source, open(target, "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        name = _basename(path)
        expected = [(f.algorithm, f.value) for f in (doc.fixities if doc else []) if not f.path or f.path == name]
        if expected:
            with open(target, "rb") as handle:
                bitstream = self.repo.store_blob(handle, name)
            self._discard([bitstream])
            problem = self._verify(bitstream, expected, path)
            if problem is not None:
                raise _AssetFailed("monitor.error.fixity.mismatch", problem, {"path": path})
        try:
            inner = ZipTree(target)
        except PackageError as exc:
            raise _AssetFailed("monitor.error.pax.invalid", f"{path}: {exc}", None) from None
        self._trees.append(inner)
        return self._pax_asset(inner, "", asset, None)

    # ----------------------------------------------------------------- XIP
    def _run_xip(self, tree: PackageTree, documents: list[str]) -> None:
        self._check_names(tree)
        packages = [parse_xip(tree.read(path), path) for path in documents]
        package_folders = {f.ref for p in packages for f in p.folders}
        header_parent = self.job.parent
        header_checked: str | None = None

        def resolve(declared: str | None, what: str) -> str:
            nonlocal header_checked
            if declared:
                if declared in package_folders:
                    return declared
                try:
                    canonical = check_ref(declared)
                except RepositoryError:
                    canonical = ""
                if canonical and self.repo.get(canonical, SO) is not None:
                    return canonical
                if not header_parent:
                    raise PackageError(f"{what}: parent folder {declared} does not exist")
            if header_checked is None:
                header_checked = self._parent_folder(header_parent, what)
            return header_checked

        plan: list[tuple[XipPackage, str, str, str]] = []  # (package, kind, ref, parent)
        for package in packages:
            for folder in package.folders:
                plan.append((package, SO, folder.ref, resolve(folder.parent, f"folder {folder.ref}")))
            for asset in package.assets:
                plan.append((package, IO, asset.ref, resolve(asset.parent, f"asset {asset.ref}")))
        self._pace(len(plan))
        done_folders: set[str] = set()
        for package, kind, ref, parent in plan:
            if parent in package_folders and parent not in done_folders:
                self.failed += 1
                self.message("Error", "monitor.error.parent.failed", f"{ref}: its parent folder {parent} failed", ref)
            elif kind == SO:
                if self._xip_folder(package, ref, parent):
                    done_folders.add(ref)
            else:
                self._xip_asset(tree, package, ref, parent)
            self.item_done()

    def _xip_folder(self, package: XipPackage, ref: str, parent: str) -> bool:
        source = next(f for f in package.folders if f.ref == ref)
        try:
            folder = self._entity(
                SO,
                source.title,
                parent,
                ref=check_ref(ref),
                description=source.description,
                security_tag=source.security_tag,
                custom_type=source.custom_type,
            )
            self._add_xip_descriptive(package, folder)
            self._insert([folder])
        except RepositoryError as exc:
            self.failed += 1
            self.message("Error", "monitor.error.directory.failed", f"folder {ref}: {exc}", ref)
            return False
        self.message("Info", "monitor.info.directory.created", f"Created folder {folder.ref}", ref, entity=folder)
        return True

    def _add_xip_descriptive(self, package: XipPackage, entity: Entity) -> None:
        for owner, id_type, value in package.identifiers:
            if owner == entity.ref:
                entity.identifiers.append(Identifier(uuid.uuid4().hex, id_type, value))
        for owner, schema, xml in package.metadata:
            if owner == entity.ref:
                entity.metadata.append(MetadataFragment(str(uuid.uuid4()), schema, xml))

    def _xip_asset(self, tree: PackageTree, package: XipPackage, ref: str, parent: str) -> None:
        source = next(a for a in package.assets if a.ref == ref)
        path = package.base if package.base and _basename(package.base) == ref else f"{package.base}/{ref}".lstrip("/")
        if self._injected_failure(path):
            return
        stored: list[Bitstream] = []
        try:
            try:
                canonical = check_ref(ref)
            except RepositoryError as exc:
                raise _AssetFailed("monitor.error.asset.failed", f"asset {ref}: {exc}", None) from None
            if self.repo.get(canonical) is not None:
                raise _AssetFailed(
                    "monitor.error.asset.exists", f"asset {ref}: an entity with this reference already exists", None
                )
            asset = self._entity(
                IO,
                source.title,
                parent,
                ref=canonical,
                description=source.description,
                security_tag=source.security_tag,
                custom_type=source.custom_type,
            )
            self._add_xip_descriptive(package, asset)
            contents: list[Entity] = []
            for xrep in package.representations:
                if xrep.asset != ref:
                    continue
                rep_type = "Access" if xrep.type.lower() == "access" else "Preservation"
                rep = Representation(rep_type, xrep.name)
                for co_ref in xrep.content_objects:
                    content = self._xip_content_object(tree, package, co_ref, asset, stored)
                    rep.content_objects.append(content.ref)
                    contents.append(content)
                asset.representations.append(rep)
            self._insert([asset, *contents])
        except _AssetFailed as failure:
            self._discard(stored)
            self.failed += 1
            self.message("Error", failure.code, failure.text, path, failure.params)
            return
        except RepositoryError as exc:
            self._discard(stored)
            self.failed += 1
            self.message("Error", "monitor.error.asset.failed", f"asset {ref}: {exc}", path)
            return
        self.ingested += 1
        self.message(
            "Info", "monitor.info.successful.ingest", f"Successfully ingested asset {asset.ref}", path, entity=asset
        )

    def _xip_content_object(
        self, tree: PackageTree, package: XipPackage, co_ref: str, asset: Entity, stored: list[Bitstream]
    ) -> Entity:
        source = package.content_objects.get(co_ref)
        if source is None:
            raise _AssetFailed("monitor.error.xip.invalid", f"content object {co_ref} is not described", None)
        try:
            canonical = check_ref(co_ref)
        except RepositoryError as exc:
            raise _AssetFailed("monitor.error.xip.invalid", f"content object {co_ref}: {exc}", None) from None
        if self.repo.get(canonical) is not None:
            raise _AssetFailed("monitor.error.asset.exists", f"content object {co_ref} already exists", None)
        generations: list[Generation] = []
        for xgen in package.generations:
            if xgen.content_object != co_ref:
                continue
            bitstreams: list[Bitstream] = []
            for reference in xgen.bitstreams:
                described = package.bitstream_for(reference)
                if described is None:
                    raise _AssetFailed("monitor.error.xip.invalid", f"bitstream {reference} is not described", None)
                location = package.content_path(described, tree)
                if location is None:
                    raise _AssetFailed(
                        "monitor.error.bitstream.missing", f"bitstream {reference} is not in the package", None
                    )
                bitstream = self._store(tree, location)
                stored.append(bitstream)
                if described.size is not None and described.size != bitstream.size:
                    raise _AssetFailed(
                        "monitor.error.bitstream.size",
                        f"{location}: FileSize says {described.size} bytes, the package has {bitstream.size}",
                        {"path": location},
                    )
                problem = self._verify(bitstream, described.fixities, location)
                if problem is not None:
                    raise _AssetFailed("monitor.error.fixity.mismatch", problem, {"path": location})
                bitstreams.append(bitstream)
            generations.append(
                Generation(
                    original=xgen.original,
                    active=xgen.active,
                    effective_date=xgen.effective_date,
                    bitstreams=bitstreams,
                )
            )
        now = self.now()
        content = Entity(
            ref=canonical,
            kind=CO,
            title=source.title,
            description=source.description,
            security_tag=source.security_tag or asset.security_tag,
            parent=asset.ref,
            created=now,
            modified=now,
            custom_type=source.custom_type,
            generations=generations,
        )
        self._add_xip_descriptive(package, content)
        return content


class _AssetFailed(Exception):
    def __init__(self, code: str, text: str, params: dict[str, Any] | None) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.params = params
