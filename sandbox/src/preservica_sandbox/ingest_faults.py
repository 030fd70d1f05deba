"""Ingest faults: make the next ingests fail, end with a mixed outcome, or hang (``/_sandbox/ingest-faults``).

``{"outcome": "FAILED" | "FINISHED_MIXED_OUTCOME" | "STUCK", "count": 1, "name": "<glob on the monitor
name>", "message": "..."}``. ``FAILED``: the next ingest fails before creating anything, with ``message``
as its error. ``FINISHED_MIXED_OUTCOME``: the first asset fails with ``message``, the rest is ingested,
the end state is ``FINISHED_MIXED_OUTCOME`` (even for a one-asset package). ``STUCK``: the job stays
``ACTIVE`` until it is cancelled, terminated or the sandbox is reset. ``count`` is how many ingests a
fault applies to (``null`` = until cleared). A job takes its fault when it is created. Workflow instances
of the other contexts (access, transformation ...) take faults too, their name being the context's name:
``FAILED`` fails the instance with ``message`` in its errors, ``STUCK`` keeps it ``Active``.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass
from typing import Any

from . import progress as P

FAULT_OUTCOMES = frozenset({P.FAILED, P.MIXED, "STUCK"})


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


class IngestFaultBook:
    """Active ingest faults in the order they were added. Thread-safe; counts are consumed atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[IngestFault] = []
        self._next_id = 1

    def add(self, fault: IngestFault) -> IngestFault:
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def active(self) -> list[IngestFault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> int:
        """Forget every fault; returns how many there were."""
        with self._lock:
            removed = len(self._faults)
            self._faults.clear()
            return removed

    def reset(self) -> None:
        """Forget every fault; ids start at 1 again."""
        with self._lock:
            self._faults.clear()
            self._next_id = 1

    def take(self, name: str) -> IngestFault | None:
        """Consume the oldest fault whose ``name`` glob matches a new job's monitor name."""
        with self._lock:
            for fault in self._faults:
                if fault.name is None or fnmatch.fnmatchcase(name, fault.name):
                    fault.fired += 1
                    if fault.count is not None:
                        fault.count -= 1
                    self._faults = [f for f in self._faults if f.count is None or f.count > 0]
                    return fault
        return None
