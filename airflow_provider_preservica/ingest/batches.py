"""Remember the in-flight ingest of a batch, so an Airflow retry adopts it instead of uploading again.

One small Airflow Variable per batch (``preservica_ingest__<batch id hash>``) holds the progress token
and upload key. Variables survive retries and are visible to every worker on all Airflow 3.x
releases; outside a task the record lives in memory. The record holds nothing secret.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_preservica.auth.stores import MemoryTokenStore, TokenStoreUnavailable, VariableTokenStore

log = logging.getLogger(__name__)
PREFIX = "preservica_ingest__"


@dataclass(frozen=True)
class InFlightIngest:
    batch_id: str
    progress_token: str
    key: str
    package_sha256: str | None
    submitted_at: float
    assets_sent: int = 0
    package_bytes: int = 0


def batch_key(batch_id: str) -> str:
    return PREFIX + hashlib.sha256(batch_id.encode()).hexdigest()[:32]


class BatchRegistry:
    def __init__(self) -> None:
        self._variables = VariableTokenStore("In-flight Preservica ingest (managed by PreservicaIngestOperator)")
        self._memory = MemoryTokenStore()

    def _read_raw(self, key: str) -> str | None:
        try:
            return self._variables.read(key)
        except TokenStoreUnavailable:
            return self._memory.read(key)

    def load(self, batch_id: str) -> InFlightIngest | None:
        raw = self._read_raw(batch_key(batch_id))
        if not raw:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            record = InFlightIngest(**data)
        except (ValueError, TypeError):
            log.warning("Ignoring an unreadable in-flight record for batch %s", batch_id)
            return None
        return record if record.batch_id == batch_id else None

    def save(self, record: InFlightIngest) -> None:
        value = json.dumps(asdict(record))
        try:
            self._variables.write(batch_key(record.batch_id), value)
        except TokenStoreUnavailable:
            self._memory.write(batch_key(record.batch_id), value)

    def forget(self, batch_id: str) -> None:
        try:
            self._variables.delete(batch_key(batch_id))
        except TokenStoreUnavailable:
            self._memory.delete(batch_key(batch_id))
        except Exception as exc:  # a stale record only costs a progress lookup on a later run
            log.debug("Could not delete in-flight record of %s (%s)", batch_id, type(exc).__name__)
