"""Remember a long-running Preservica job while its outcome is unknown, so that an Airflow retry adopts it.

Every operator that starts remote work keeps one record of the same shape, :class:`InFlightJob`: its
``kind`` (``ingest``, ``export``, ``workflow``, ``deletion``), the ``batch`` it belongs to (the task's run, or
a delivery's ``batch_id``), the ``token`` to follow (a progress token, or a workflow instance id) and a
``key`` (the upload key, the destination, the workflow context, the deleted ref). :class:`JobRegistry` keeps
one small Airflow Variable per batch, ``preservica_job__<hash of the batch>``. Variables survive retries and
are visible to every worker on all Airflow 3.x releases; outside a task the record lives in memory
(:class:`JobStore`). The record holds nothing secret.

A record lives only while its job's outcome is unknown to the task: the operators forget it once they
know how the job ended (or handed its token on), so nothing is left behind by a finished run. The record
also names the run of the task that submitted it (:func:`task_series`): a retry after a crash adopts its
own run's job even if it finished meanwhile, while a cleared re-run adopts a leftover only if it is still
running (never a second job beside it) and otherwise starts afresh.

Releases before this module kept the same record as ``InFlightIngest`` (``batch_id``, ``progress_token``)
under ``preservica_ingest__<hash>``. :meth:`JobRegistry.load` reads such a record too, so that a task
retried across an upgrade still adopts the job its earlier try started, and :meth:`JobRegistry.forget`
removes both.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, replace
from typing import Any

from airflow_provider_preservica.client.auth.stores import MemoryTokenStore, TokenStoreUnavailable, VariableTokenStore

log = logging.getLogger(__name__)
PREFIX = "preservica_job__"
LEGACY_PREFIX = "preservica_ingest__"  # where releases before jobs.py kept the same record


@dataclass(frozen=True)
class InFlightJob:
    kind: str  # "ingest", "export", "workflow", "deletion"
    batch: str
    token: str  # what to follow: a progress token, or a workflow instance id
    key: str  # the upload key, the destination, the workflow context, the ref deleted
    submitted_at: float = 0.0
    series: str = ""  # the run of the task that submitted it, see task_series()
    package_sha256: str | None = None
    assets_sent: int = 0
    package_bytes: int = 0
    # A delivery split into several packages (``ingest.split``): one entry per package uploaded so far,
    # ``[key, progress_token, first path, last path, assets, bytes, index]`` (paths ``None``: the whole source),
    # so that a retry adopts each of them and sends only the rest. ``complete``: every package was sent.
    packages: list[list[Any]] | None = None
    complete: bool = True

    # The names of the record before it served every kind of job.
    @property
    def batch_id(self) -> str:
        return self.batch

    @property
    def progress_token(self) -> str:
        return self.token

    def sent_packages(self) -> list[list[Any]]:
        """The packages uploaded so far, each with its index last; a record of one package (or an older
        release) is its own only entry."""
        if self.packages:
            return [[*p[:6], p[6] if len(p) > 6 else position] for position, p in enumerate(self.packages, 1)]
        return [[self.key, self.token, None, None, self.assets_sent, self.package_bytes, 1]]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> InFlightJob:
        """A record in this module's format, or in the ``InFlightIngest`` format of earlier releases.

        :raises ValueError: not a record of either format.
        """
        data: dict[str, Any] = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if "batch_id" in data:  # InFlightIngest(batch_id, progress_token, key, package_sha256, submitted_at, ...)
            batch, token = data.pop("batch_id"), data.pop("progress_token", None)
            data = {"kind": "", **data, "batch": batch, "token": token}
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


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


def batch_hash(batch: str) -> str:
    return hashlib.sha256(batch.encode()).hexdigest()[:32]


def job_key(batch: str) -> str:
    """The Variable that holds the record of ``batch``."""
    return PREFIX + batch_hash(batch)


def legacy_key(batch: str) -> str:
    """The Variable that held it before this module (``InFlightIngest``)."""
    return LEGACY_PREFIX + batch_hash(batch)


class JobStore:
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


class JobRegistry:
    """The in-flight record of each batch: load, save, claim for this run, forget."""

    def __init__(self, store: Any | None = None) -> None:
        self._store = store or JobStore("In-flight Preservica job (managed by the Preservica operators)")

    def load(self, batch: str) -> InFlightJob | None:
        for key in (job_key(batch), legacy_key(batch)):
            raw = self._store.read(key)
            if not raw:
                continue
            try:
                record = InFlightJob.from_json(raw)
            except ValueError:
                log.warning("Ignoring an unreadable in-flight record for batch %s", batch)
                continue
            if record.batch == batch:
                return record
        return None

    def save(self, record: InFlightJob) -> None:
        self._store.write(job_key(record.batch), record.to_json())

    def claim(self, record: InFlightJob, series: str) -> None:
        """Make an adopted job this run's, so that this run's own retries adopt it too."""
        if record.series != series:
            self.save(replace(record, series=series))

    def forget(self, batch: str) -> None:
        for key in (job_key(batch), legacy_key(batch)):
            try:
                self._store.delete(key)
            except Exception as exc:  # a stale record only costs a progress lookup on a later run
                log.debug("Could not delete in-flight record of %s (%s)", batch, type(exc).__name__)
