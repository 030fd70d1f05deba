"""What a running ingest reports: process-monitor messages and samples, and its progress token.

``JobReporter`` is the one place that writes a job's monitor records: ``message`` (an Info, Warning or
Error line, also added to the progress token's errors or warnings), ``count`` (files processed of
files total, and the token's percentage), ``set_status`` (the token's status, with a monitor sample)
and ``sample`` (one point of the monitor's time series). It shares the ingest service's lock, so the
API can render several jobs consistently (``IngestService.reading``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from . import progress as P
from .entities import Entity, iso_timestamp
from .ingest_jobs import MONITOR_STATES, IngestJob, MonitorMessage


class JobReporter:
    """Writes the monitor records and progress of ingest jobs. Thread-safe under ``lock``."""

    def __init__(self, progress: P.ProgressBook, clock: Callable[[], float], lock: threading.RLock) -> None:
        self.progress = progress
        self.clock = clock
        self.lock = lock

    def sample(self, job: IngestJob) -> None:
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

    def message(
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
        with self.lock:
            job.messages.append(message)
        if status == "Error":
            self.progress.add_error(job.progress, display)
        elif status == "Warning":
            self.progress.add_warning(job.progress, display)

    def set_status(self, job: IngestJob, status: str) -> None:
        with self.lock:
            self.progress.set_status(job.progress, status)
            self.sample(job)

    def count(self, job: IngestJob, processed: int, total: int) -> None:
        with self.lock:
            job.files_processed = processed
            job.files_total = total
            self.progress.set_percent(job.progress, 100.0 * processed / total if total else 0.0)
