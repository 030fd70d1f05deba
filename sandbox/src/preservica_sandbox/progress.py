"""Asynchronous progress tokens, shared by every kind of background work (ingest, export, move ...).

``state.progress`` is one ``ProgressBook``. Work that answers with a token creates a record
(``book.create(kind, tenant=...)``) and moves it through Preservica's states (``set_status``), adding
error and warning texts as it goes; ``GET /api/entity/progress/{token}`` (``progress_api``) renders it.
Statuses are pyPreservica's ``AsyncProgress`` values: ``PENDING``, ``ACTIVE``, ``COMPLETED``, ``FAILED``,
``FINISHED_MIXED_OUTCOME``, ``ABORTED``, ``CANCELLED`` (plus ``SUSPENDING``, ``SUSPENDED``, ``UNKNOWN``).
Tokens are UUID strings. A record may carry a ``cancel`` callback: ``PUT .../progress/{token}/status``
with body ``Cancelled`` calls it (work that cannot be cancelled answers 409).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PENDING, ACTIVE, COMPLETED, FAILED = "PENDING", "ACTIVE", "COMPLETED", "FAILED"
MIXED, ABORTED, CANCELLED = "FINISHED_MIXED_OUTCOME", "ABORTED", "CANCELLED"
STATUSES = frozenset(
    {PENDING, ACTIVE, COMPLETED, FAILED, MIXED, ABORTED, CANCELLED, "SUSPENDING", "SUSPENDED", "UNKNOWN"}
)
TERMINAL = frozenset({COMPLETED, FAILED, MIXED, ABORTED, CANCELLED})


@dataclass
class ProgressRecord:
    """One token. Mutate it only through the ``ProgressBook`` methods (they take the book's lock)."""

    token: str
    kind: str
    tenant: str | None = None
    status: str = PENDING
    percent: float = 0.0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    cancel: Callable[[], bool] | None = None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class ProgressView:
    """A consistent copy of a record, for rendering."""

    token: str
    kind: str
    tenant: str | None
    status: str
    percent: float
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    created: float
    started: float | None
    finished: float | None
    details: tuple[tuple[str, str], ...]


class ProgressBook:
    """Every progress token of one sandbox. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, ProgressRecord] = {}

    def create(
        self,
        kind: str,
        tenant: str | None = None,
        cancel: Callable[[], bool] | None = None,
        token: str | None = None,
        **details: str,
    ) -> ProgressRecord:
        record = ProgressRecord(
            token=token or str(uuid.uuid4()),
            kind=kind,
            tenant=tenant,
            created=self.clock(),
            cancel=cancel,
            details=dict(details),
        )
        with self._lock:
            if record.token in self._records:
                raise ValueError(f"progress token {record.token} already exists")
            self._records[record.token] = record
        return record

    def get(self, token: str) -> ProgressRecord | None:
        with self._lock:
            return self._records.get(token)

    def view(self, token: str) -> ProgressView | None:
        with self._lock:
            record = self._records.get(token)
            if record is None:
                return None
            return ProgressView(
                token=record.token,
                kind=record.kind,
                tenant=record.tenant,
                status=record.status,
                percent=record.percent,
                errors=tuple(record.errors),
                warnings=tuple(record.warnings),
                created=record.created,
                started=record.started,
                finished=record.finished,
                details=tuple(record.details.items()),
            )

    def set_status(self, record: ProgressRecord, status: str, percent: float | None = None) -> bool:
        """Move to ``status``; a finished record never changes again (returns False then)."""
        if status not in STATUSES:
            raise ValueError(f"unknown progress status {status!r}")
        with self._lock:
            if record.done:
                return False
            now = self.clock()
            if status != PENDING and record.started is None:
                record.started = now
            record.status = status
            if percent is not None:
                record.percent = max(0.0, min(100.0, percent))
            if status in TERMINAL:
                record.finished = now
                if status == COMPLETED:
                    record.percent = 100.0
            return True

    def set_percent(self, record: ProgressRecord, percent: float) -> None:
        with self._lock:
            if not record.done:
                record.percent = max(0.0, min(100.0, percent))

    def add_error(self, record: ProgressRecord, text: str) -> None:
        with self._lock:
            record.errors.append(text)

    def add_warning(self, record: ProgressRecord, text: str) -> None:
        with self._lock:
            record.warnings.append(text)

    def tokens(self, kind: str | None = None) -> list[str]:
        with self._lock:
            return [t for t, r in self._records.items() if kind is None or r.kind == kind]

    def describe(self) -> list[dict[str, Any]]:
        """For the control API: every token with kind, status and counts."""
        with self._lock:
            return [
                {
                    "token": r.token,
                    "kind": r.kind,
                    "tenant": r.tenant,
                    "status": r.status,
                    "percent": r.percent,
                    "errors": len(r.errors),
                    "warnings": len(r.warnings),
                }
                for r in self._records.values()
            ]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
