"""Remember the in-flight ingest of a batch, so an Airflow retry adopts it instead of uploading again.

One small Airflow Variable per batch (``preservica_ingest__<batch id hash>``) holds the progress token
and upload key. Variables survive retries and are visible to every worker on all Airflow 3.x
releases; outside a task the record lives in memory. The record holds nothing secret.

A record lives only while its job's outcome is unknown to the task: the operators forget it once they
know how the job ended (or handed its progress token on), so nothing is left behind by a finished run.
The record also names the run of the task that submitted it (:func:`task_series`): a retry after a
crash adopts its own run's job even if it finished meanwhile, while a cleared re-run adopts a leftover
only if it is still running (never a second job beside it) and otherwise starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, replace
from typing import Any

from airflow_provider_preservica.client.auth.stores import MemoryTokenStore, TokenStoreUnavailable, VariableTokenStore

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
    series: str = ""  # the run of the task that submitted it, see task_series()
    # A delivery split into several packages (``ingest.split``): one entry per package uploaded so far,
    # ``[key, progress_token, first path, last path, assets, bytes, index]`` (paths ``None``: the whole source),
    # so that a retry adopts each of them and sends only the rest. ``complete``: every package was sent.
    packages: list[list[Any]] | None = None
    complete: bool = True

    def sent_packages(self) -> list[list[Any]]:
        """The packages uploaded so far, each with its index last; a record of one package (or an older
        release) is its own only entry."""
        if self.packages:
            return [[*p[:6], p[6] if len(p) > 6 else position] for position, p in enumerate(self.packages, 1)]
        return [[self.key, self.progress_token, None, None, self.assets_sent, self.package_bytes, 1]]


def task_series(ti: Any, retries: int | None) -> str:
    """The same for a try of a task instance and its retries, different after each clear.

    Airflow raises ``max_tries`` by the task's ``retries`` when a task instance is cleared, so
    ``max_tries - retries`` is the last try before this run of it (Airflow finds the first try of a run the
    same way). Empty where the task instance does not say (then every record counts as this run's).
    """
    max_tries = getattr(ti, "max_tries", None)
    if not isinstance(max_tries, int):
        return ""
    return f"{getattr(ti, 'run_id', '')}#{max_tries - (retries or 0)}"


def batch_key(batch_id: str) -> str:
    return PREFIX + hashlib.sha256(batch_id.encode()).hexdigest()[:32]


class InFlightStore:
    """Airflow Variables inside a task, process memory outside one: where in-flight records and claims live."""

    name = "in-flight"

    def __init__(self, description: str) -> None:
        self._variables = VariableTokenStore(description)
        self._memory = MemoryTokenStore()

    def read(self, key: str) -> str | None:
        try:
            return self._variables.read(key)
        except TokenStoreUnavailable:
            return self._memory.read(key)

    def write(self, key: str, value: str) -> None:
        try:
            self._variables.write(key, value)
        except TokenStoreUnavailable:
            self._memory.write(key, value)

    def delete(self, key: str) -> None:
        try:
            self._variables.delete(key)
        except TokenStoreUnavailable:
            self._memory.delete(key)


class BatchRegistry:
    def __init__(self) -> None:
        self._store = InFlightStore("In-flight Preservica ingest (managed by PreservicaIngestOperator)")

    def load(self, batch_id: str) -> InFlightIngest | None:
        raw = self._store.read(batch_key(batch_id))
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
        self._store.write(batch_key(record.batch_id), json.dumps(asdict(record)))

    def claim(self, record: InFlightIngest, series: str) -> None:
        """Make an adopted job this run's, so that this run's own retries adopt it too."""
        if record.series != series:
            self.save(replace(record, series=series))

    def forget(self, batch_id: str) -> None:
        try:
            self._store.delete(batch_key(batch_id))
        except Exception as exc:  # a stale record only costs a progress lookup on a later run
            log.debug("Could not delete in-flight record of %s (%s)", batch_id, type(exc).__name__)
