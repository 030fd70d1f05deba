"""Export jobs: ``ExportService`` (``state.exports``) runs each ``POST …/{ref}/exports`` on its own thread.

The job: the token is ``ACTIVE`` before the 202 is sent (pyPreservica's ``export_opex`` gives up on
anything else) — unless ``export_pending_seconds`` > 0, which shows ``PENDING`` for that long first. It
then snapshots the entity (``export_snapshot``), writes ``<token>.zip.partial`` in the export directory
(``<data_dir>/exports`` or a temporary directory removed on close; ``export_writer``) and renames it to
``<token>.zip``; ``PercentComplete`` follows the bytes copied and the clock. The token turns
``COMPLETED`` no sooner than ``export_seconds`` (default 1, settable through ``/_sandbox/config``) after
it became active, however fast the zip was written. A failure (the entity deleted meanwhile, a blob
missing on disk) ends ``FAILED`` with the reason in ``Errors``; cancelling the token
(``PUT /api/entity/progress/{token}/status`` ``Cancelled``) stops it (``CANCELLED``). Partial files never
keep the final name.

Faults: a ``fail_export`` fault in the fault book (``{"kind": "fail_export", "message": "...", "ref":
"<glob>", "count": 1}``) makes the next export of a matching ref end ``FAILED`` with ``message`` after
half of ``export_seconds``. A ``hostile_export`` fault (``{"kind": "hostile_export", "variant": "traversal",
"ref": "<glob>", "bytes": 268435456}``) makes the next export of a matching ref complete normally but serve a
crafted zip: the real export plus one hostile member (see ``hostile_exports``). ``reset`` stops running
exports and deletes every export file.

The service gets the repository, the progress book, the fault book and a fault counter from
``SandboxState``; the routes are in ``export_api``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import progress as P
from .entities import RepositoryError
from .export_options import ExportOptions
from .export_snapshot import snapshot
from .export_writer import ExportCancelled, ExportResult, write_export
from .hostile_exports import write_hostile_export

if TYPE_CHECKING:
    from .faults import FaultBook
    from .repository import Repository

log = logging.getLogger(__name__)

DEFAULT_EXPORT_SECONDS = 1.0
EXPORT_DIR = "exports"
JOIN_TIMEOUT = 10.0
_TICK = 0.05


@dataclass
class ExportJob:
    token: str
    ref: str
    kind: str
    options: ExportOptions
    user: str
    tenant: str
    xip_ns: str
    progress: P.ProgressRecord
    fail_message: str | None = None
    hostile: tuple[str, int] | None = None  # (variant, bytes) of a hostile_export fault
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    path: Path | None = None
    result: ExportResult | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "ref": self.ref,
            "type": self.kind,
            "user": self.user,
            "tenant": self.tenant,
            "options": self.options.to_json(),
            "status": self.progress.status,
            "percent": self.progress.percent,
            "errors": list(self.progress.errors),
            "path": str(self.path) if self.path is not None else None,
            "size": self.result.size if self.result is not None else None,
            "assets": self.result.assets if self.result is not None else None,
            "files": self.result.files if self.result is not None else None,
        }


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class ExportService:
    """Export jobs of one sandbox and the directory their zips live in. Thread-safe."""

    CONFIG_KEYS = frozenset({"export_seconds", "export_pending_seconds"})

    def __init__(
        self,
        repository: Repository,
        progress: P.ProgressBook,
        faults: FaultBook,
        count_fault: Callable[[str], None],
    ) -> None:
        self.repository = repository
        self.progress = progress
        self.faults = faults
        self._count_fault = count_fault
        self._lock = threading.RLock()
        self._jobs: dict[str, ExportJob] = {}
        self.export_seconds = DEFAULT_EXPORT_SECONDS
        self.export_pending_seconds = 0.0
        data_dir = repository.data_dir
        self._fixed_dir = data_dir / EXPORT_DIR if data_dir is not None else None
        self._temp_dir: Path | None = None

    @property
    def directory(self) -> Path:
        with self._lock:
            if self._fixed_dir is not None:
                path = self._fixed_dir
            else:
                if self._temp_dir is None or not self._temp_dir.exists():
                    self._temp_dir = Path(tempfile.mkdtemp(prefix="preservica-sandbox-exports-"))
                    weakref.finalize(self, _remove_tree, self._temp_dir)
                path = self._temp_dir
            path.mkdir(parents=True, exist_ok=True)
            return path

    # ----------------------------------------------------------------- configuration
    def config(self) -> dict[str, Any]:
        return {
            "export_seconds": _plain(self.export_seconds),
            "export_pending_seconds": _plain(self.export_pending_seconds),
        }

    def check_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validated values for the keys this service owns (``ValueError`` for bad ones)."""
        out: dict[str, Any] = {}
        for key in self.CONFIG_KEYS & set(changes):
            value = changes[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
                raise ValueError(f"{key} must be a number of seconds between 0 and 3600")
            out[key] = float(value)
        return out

    def apply_config(self, checked: dict[str, Any]) -> None:
        with self._lock:
            self.export_seconds = checked.get("export_seconds", self.export_seconds)
            self.export_pending_seconds = checked.get("export_pending_seconds", self.export_pending_seconds)

    # ----------------------------------------------------------------- jobs
    def start(self, ref: str, kind: str, options: ExportOptions, user: str, tenant: str, xip_ns: str) -> ExportJob:
        holder: list[ExportJob] = []
        record = self.progress.create("export", tenant=tenant, cancel=lambda: self._cancel(holder[0]))
        fault = self.faults.take_job("fail_export", ref)
        if fault is not None:
            self._count_fault(fault.kind)
        hostile = self.faults.take_job("hostile_export", ref) if fault is None else None
        if hostile is not None:
            self._count_fault(hostile.kind)
        job = ExportJob(
            token=record.token,
            ref=ref,
            kind=kind,
            options=options,
            user=user,
            tenant=tenant,
            xip_ns=xip_ns,
            progress=record,
            fail_message=(fault.message or "sandbox fault: the export workflow failed") if fault is not None else None,
            hostile=(str(hostile.variant), int(hostile.bytes or 0)) if hostile is not None else None,
        )
        holder.append(job)
        with self._lock:
            pending, seconds = self.export_pending_seconds, self.export_seconds
            self._jobs[job.token] = job
        if pending <= 0:
            self.progress.set_status(record, P.ACTIVE, 0.0)
        job.thread = threading.Thread(
            target=self._run, args=(job, pending, seconds), name=f"sandbox-export-{job.token[:8]}", daemon=True
        )
        job.thread.start()
        return job

    def job(self, token: str) -> ExportJob | None:
        with self._lock:
            return self._jobs.get(token)

    def jobs(self) -> list[ExportJob]:
        with self._lock:
            return list(self._jobs.values())

    def _cancel(self, job: ExportJob) -> bool:
        if job.progress.done:
            return False
        job.stop.set()
        return True

    def _wait(self, job: ExportJob, seconds: float, percent_from: float = 0.0, percent_to: float = 0.0) -> None:
        """Sleep ``seconds`` (percent moving linearly), or raise ``ExportCancelled`` when stopped."""
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            if percent_to > percent_from:
                self.progress.set_percent(job.progress, percent_from + (percent_to - percent_from) * elapsed / seconds)
            if job.stop.wait(min(_TICK, seconds - elapsed)):
                raise ExportCancelled("the export was cancelled")
        if job.stop.is_set():
            raise ExportCancelled("the export was cancelled")

    def _run(self, job: ExportJob, pending: float, seconds: float) -> None:
        partial = self.directory / f"{job.token}.zip.partial"
        try:
            if pending > 0:
                self._wait(job, pending)
                self.progress.set_status(job.progress, P.ACTIVE, 0.0)
            active_since = time.monotonic()
            if job.fail_message is not None:
                self._wait(job, seconds / 2, 0.0, 50.0)
                raise RuntimeError(job.fail_message)
            plan = snapshot(self.repository, job.ref, job.kind, job.options, job.xip_ns)
            total = max(plan.total_bytes, 1)

            def report(done: int) -> None:
                by_time = (time.monotonic() - active_since) / seconds if seconds > 0 else 1.0
                self.progress.set_percent(job.progress, min(99.0, 100.0 * min(done / total, by_time)))

            result = write_export(plan, partial, report, job.stop.is_set)
            if job.hostile is not None:
                crafted = partial.with_name(f"{job.token}.zip.hostile")
                try:
                    write_hostile_export(job.hostile[0], partial, crafted, job.hostile[1])
                    os.replace(crafted, partial)
                finally:
                    crafted.unlink(missing_ok=True)
            left = seconds - (time.monotonic() - active_since)
            if left > 0:
                self._wait(job, left, 100.0 * (1 - left / seconds), 99.0)
            if job.stop.is_set():
                raise ExportCancelled("the export was cancelled")
            final = self.directory / f"{job.token}.zip"
            os.replace(partial, final)
            job.path, job.result = final, result
            if not self.progress.set_status(job.progress, P.COMPLETED):
                final.unlink(missing_ok=True)  # finished meanwhile (reset): nobody will ask for it
                job.path = None
        except ExportCancelled:
            self.progress.set_status(job.progress, P.CANCELLED)
        except (RepositoryError, OSError, RuntimeError) as exc:
            self.progress.add_error(job.progress, str(exc))
            self.progress.set_status(job.progress, P.FAILED)
        except Exception as exc:  # a bug: report it like Preservica would, and log it
            log.exception("sandbox export %s failed unexpectedly", job.token)
            self.progress.add_error(job.progress, f"export failed: {exc!r}")
            self.progress.set_status(job.progress, P.FAILED)
        finally:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)

    def _stop_all(self) -> None:
        jobs = self.jobs()
        for job in jobs:
            job.stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for job in jobs:
            if job.thread is not None and job.thread is not threading.current_thread():
                job.thread.join(max(0.0, deadline - time.monotonic()))

    def reset(self) -> None:
        """Stop every export and delete every export file."""
        self._stop_all()
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            if job.path is not None:
                with contextlib.suppress(OSError):
                    job.path.unlink(missing_ok=True)

    def close(self) -> None:
        self.reset()
        with self._lock:
            if self._temp_dir is not None:
                _remove_tree(self._temp_dir)
                self._temp_dir = None


def _plain(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else seconds
