"""Package processing: what happens after an upload, and the records that report on it.

``state.ingest`` is one ``IngestService`` (given the repository, the progress book and the clock by
``SandboxState``). It owns the S3 object store (``store``), the ingest jobs, their process monitors and
messages (``ingest_reporting``), the workflow instances, the ingest faults (``ingest_faults``) and the
``ingest_seconds`` setting. Progress tokens live in the progress book (``progress.ProgressBook``).

A job is started by a completed upload to ``{tenant}.package.upload`` (PutObject or
CompleteMultipartUpload) or by starting the "Ingest OPEX (Incremental)" workflow on a container of the
source bucket ``com.preservica.{tenant}.upload``. It runs on its own thread:

1. ``PENDING`` for 20 % of ``ingest_seconds`` (monitor ``Pending``, workflow ``Pending``);
2. ``ACTIVE`` (``Running``/``Active``): the package is opened (``ingest_processing.open_package``) and
   handed to the processor of its format — XIP v6 ``metadata.xml`` (``ingest_xip``) or OPEX (``.opex``
   files, or a plain folder tree; ``ingest_opex``) — which checks it as a whole and then processes each
   folder and asset, the remaining 80 % of ``ingest_seconds`` spread over them;
3. the end state: ``COMPLETED``, ``FAILED`` or ``FINISHED_MIXED_OUTCOME`` (see ``ingest_processing``);
   a cancelled or terminated job ends ``CANCELLED``/``ABORTED``.

The records (jobs, workflow contexts, monitor messages, how token, monitor and workflow instance name
each other) are in ``ingest_jobs``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import progress as P
from .ingest_faults import IngestFault, IngestFaultBook
from .ingest_jobs import (
    OPEX_CONTAINER_PARAMETER,
    OPEX_CONTEXT,
    PARENT_PARAMETER,
    PENDING_SHARE,
    UPLOAD_CONTEXT,
    IngestJob,
    JobStopped,
    WorkflowContext,
    monitor_token,
)
from .ingest_opex import OpexProcessor
from .ingest_processing import open_package
from .ingest_reporting import JobReporter
from .ingest_xip import XipProcessor
from .packages import PackageError, find_xip_documents
from .s3_store import ObjectStore, StoredObject
from .search import engine_for

if TYPE_CHECKING:
    from .repository import Repository

log = logging.getLogger(__name__)

DEFAULT_INGEST_SECONDS = 1.0
JOIN_TIMEOUT = 15.0


class IngestService:
    """See the module docstring. Thread-safe; job threads never hold ``_lock`` while touching the repository."""

    def __init__(
        self, repository: Repository, progress: P.ProgressBook, clock: Callable[[], float] = time.time
    ) -> None:
        self.repository = repository
        self.progress = progress
        self.clock = clock
        self._lock = threading.RLock()
        #: Writes monitor messages, samples and progress; shares ``_lock``.
        self.reporter = JobReporter(progress, clock, self._lock)
        self.store = ObjectStore(repository.data_dir, clock=clock)
        self.ingest_seconds = DEFAULT_INGEST_SECONDS
        self._jobs: dict[str, IngestJob] = {}
        self._workflows: dict[int, IngestJob] = {}
        self._next_workflow_id = 1
        self._faults = IngestFaultBook()

    # ----------------------------------------------------------------- configuration
    CONFIG_KEYS = frozenset({"ingest_seconds", "index_lag_searches"})

    def config(self) -> dict[str, Any]:
        seconds = self.ingest_seconds
        return {
            "ingest_seconds": int(seconds) if float(seconds).is_integer() else seconds,
            "index_lag_searches": engine_for(self.repository).index_lag,
        }

    def check_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validated values for the keys this service owns (``ValueError`` for bad ones)."""
        out: dict[str, Any] = {}
        if "ingest_seconds" in changes:
            value = changes["ingest_seconds"]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
                raise ValueError("ingest_seconds must be a number of seconds between 0 and 3600")
            out["ingest_seconds"] = float(value)
        if "index_lag_searches" in changes:
            lag = changes["index_lag_searches"]
            if isinstance(lag, bool) or not isinstance(lag, int) or not 0 <= lag <= 1000:
                raise ValueError("index_lag_searches must be a whole number of searches between 0 and 1000")
            out["index_lag_searches"] = lag
        return out

    def apply_config(self, checked: dict[str, Any]) -> None:
        if "ingest_seconds" in checked:
            self.ingest_seconds = checked["ingest_seconds"]
        if "index_lag_searches" in checked:
            # What an ingest creates reaches the search index late (``search``): counted in searches.
            engine_for(self.repository).set_index_lag(checked["index_lag_searches"])

    # ----------------------------------------------------------------- faults
    def add_fault(self, fault: IngestFault) -> IngestFault:
        return self._faults.add(fault)

    def faults(self) -> list[IngestFault]:
        return self._faults.active()

    def clear_faults(self) -> int:
        return self._faults.clear()

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
            job.fault = self._faults.take(name)  # other contexts too: a fault named after one fails its instance
            self._jobs[job.token] = job
            self._workflows[workflow_id] = job
            self.reporter.sample(job)
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
            self._faults.reset()
            self._next_workflow_id = 1
        self.store.clear()
        engine_for(self.repository).set_index_lag(0)

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

    # ----------------------------------------------------------------- the job thread
    def _run(self, job: IngestJob) -> None:
        try:
            job.wait(self.ingest_seconds * PENDING_SHARE)
            self.reporter.set_status(job, P.ACTIVE)
            fault = job.fault
            if fault is not None and fault.outcome == P.FAILED:
                text = fault.message or "sandbox fault: the ingest workflow failed"
                self.reporter.message(job, "Error", "monitor.error.workflow.failed", text, job.name)
                self.reporter.set_status(job, P.FAILED)
                return
            if fault is not None and fault.outcome == "STUCK":
                job.stop.wait()
                raise JobStopped
            if job.kind == "workflow":  # contexts other than ingest run for a while and complete
                job.wait(self.ingest_seconds * (1 - PENDING_SHARE))
                self.reporter.set_status(job, P.COMPLETED)
                return
            status = self._process(job)
            self.reporter.set_status(job, status)
        except JobStopped:
            self.reporter.message(
                job,
                "Error",
                "monitor.error.workflow.stopped",
                f"Ingest {'cancelled' if job.stop_status == P.CANCELLED else 'aborted'} before it finished",
                job.name,
            )
            self.reporter.set_status(job, job.stop_status)
        except PackageError as exc:
            self.reporter.message(job, "Error", "monitor.error.package.invalid", str(exc), job.name)
            self.reporter.set_status(job, P.FAILED)
        except Exception as exc:  # a sandbox bug must still end the job, visibly
            log.exception("sandbox ingest %s failed unexpectedly", job.token)
            self.reporter.message(job, "Error", "monitor.error.internal", f"sandbox internal error: {exc!r}", job.name)
            self.reporter.set_status(job, P.FAILED)
        finally:
            if job.source is not None:
                self.store.release(job.source)

    def _process(self, job: IngestJob) -> str:
        """Open the job's package, hand it to the processor of its format; the end status."""
        tree = open_package(job, self.store)
        try:
            documents = find_xip_documents(tree) if job.kind == "upload" else []
        except BaseException:
            tree.close()
            raise
        if documents:
            job.subcategory = "XIP"
            xip = XipProcessor(job, self.repository, self.reporter, self.store, self.ingest_seconds, documents)
            return xip.run(tree)
        job.subcategory = "OPEX"
        return OpexProcessor(job, self.repository, self.reporter, self.store, self.ingest_seconds).run(tree)
