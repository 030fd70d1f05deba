"""Carry out an approved deletion manifest: re-check it, request each deletion, approve it as the manager.

Safety, in order:

1. Nothing is requested unless the repository still matches the approved manifest: the manifest is built
   again for every target not already in flight and compared (refs, types, titles, parents, sizes); any
   difference refuses the whole deletion and names what changed (:class:`ManifestChangedError`).
2. Only the manifest's top-level targets are requested, each once: the progress token is recorded (the
   same in-flight record as ingest and export, ``jobs``) before anything else happens, so a
   retry after a crash between the request and the approval approves the recorded request instead of
   asking again, and a retry after the approval finds it done.
3. The approval is sent with the manager client (another account), only while the token reads
   ``PENDING``; afterwards the entity must read 404, or the deletion is reported as not done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_preservica.client.entities import EntityService
from airflow_provider_preservica.client.namespaces import Namespaces
from airflow_provider_preservica.client.progress import Progress, poll_until
from airflow_provider_preservica.deletion.manifest import ManifestTooLargeError, build_manifest, differences
from airflow_provider_preservica.exceptions import (
    DeletionFailedError,
    EntityNotFoundError,
    ManifestChangedError,
    PreservicaError,
    PreservicaHTTPError,
    ProgressTokenUnknownError,
)
from airflow_provider_preservica.jobs import InFlightJob, JobRegistry

log = logging.getLogger(__name__)


class DeletionCalls(Protocol):
    """What a deletion asks of Preservica, of each account: what ``PreservicaHook`` offers (pass the hooks)."""

    @property
    def entities(self) -> EntityService: ...

    def progress(self, token: str) -> Progress: ...

    def progress_many(self, tokens: list[str]) -> dict[str, Progress | PreservicaError]: ...

    def request_deletion(self, ref: str, entity_type: str, comment: str) -> str: ...

    def approve_deletion(self, token: str, comment: str, *, ns: Namespaces | None = None) -> None: ...


@dataclass
class DeferredState:
    """What a deferred deletion carries from one wait to the next (JSON: it travels with the trigger)."""

    approved: list[str] = field(default_factory=list)  # tokens this task approved
    done: list[str] = field(default_factory=list)  # tokens that finished (COMPLETED)


@dataclass
class DeletionReport:
    deleted: list[dict[str, Any]] = field(default_factory=list)  # the manifest's targets, as listed there
    requested: list[str] = field(default_factory=list)  # refs asked for in this try
    adopted: list[str] = field(default_factory=list)  # refs whose earlier request this try took over
    progress_tokens: dict[str, str] = field(default_factory=dict)


class DeletionRunner:
    def __init__(
        self,
        requester: DeletionCalls,
        manager: DeletionCalls,
        registry: JobRegistry,
        record_prefix: str,
        series: str,
        *,
        operator_comment: str,
        supervisor_comment: str,
        poll_interval: float = 2.0,
        timeout: float = 3600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.requester = requester
        self.manager = manager
        self.entities = requester.entities
        self.registry = registry
        self.record_prefix = record_prefix
        self.series = series
        self.operator_comment = operator_comment
        self.supervisor_comment = supervisor_comment
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.sleep = sleep

    def _record_id(self, ref: str) -> str:
        return f"{self.record_prefix}/{ref}"

    def recheck(self, approved: dict[str, Any], refs: list[str]) -> None:
        """Refuse unless the part of the repository under ``refs`` is what the approved manifest lists."""
        if not refs:
            return
        wanted = set(refs)
        approved_part = {**approved, "entities": [e for e in approved["entities"] if e["target"] in wanted]}
        try:
            current = build_manifest(
                self.entities,
                refs,
                host=approved.get("host", ""),
                include_sizes=bool(approved.get("include_sizes", True)),
                max_entities=max(len(approved_part["entities"]) * 2, 100),
            )
        except (EntityNotFoundError, ManifestTooLargeError) as exc:
            raise ManifestChangedError(
                f"the repository changed since the deletion was approved ({exc}); nothing was deleted: make a new "
                "manifest and have it approved"
            ) from None
        changes = differences(approved_part, current)
        if changes:
            raise ManifestChangedError(
                "the repository changed since the deletion was approved; nothing was deleted: make a new manifest "
                "and have it approved. Changes: " + "; ".join(changes)
            )

    def submit(self, approved: dict[str, Any]) -> DeletionReport:
        """Request each target's deletion once (or take over an earlier try's request); returns the tokens.

        Nothing is requested unless the repository still matches the manifest (``recheck``). Each token is
        recorded before anything else happens, so a retry after a crash approves the recorded request.
        """
        targets = list(approved["targets"])
        adopted: dict[str, str | None] = {}
        for target in targets:
            record = self.registry.load(self._record_id(target["ref"]))
            adopted[target["ref"]] = self._adopt(record) if record is not None else None
        self.recheck(approved, [ref for ref, token in adopted.items() if token is None])
        report = DeletionReport()
        for target in targets:
            ref, token = target["ref"], adopted[target["ref"]]
            if token is None:
                token = self.requester.request_deletion(ref, target["type"], self.operator_comment)
                record = InFlightJob("deletion", self._record_id(ref), token, ref, time.time(), series=self.series)
                self.registry.save(record)
                report.requested.append(ref)
                log.info(
                    "Deletion of %s %s %r requested: progress token %s", target["type"], ref, target["title"], token
                )
            else:
                report.adopted.append(ref)
                log.info("Taking over the deletion of %s requested by an earlier try (token %s)", ref, token)
            report.progress_tokens[ref] = token
        return report

    def run(self, approved: dict[str, Any]) -> DeletionReport:
        """Submit, then wait in this process for each deletion (approving it when it reads PENDING)."""
        report = self.submit(approved)
        for target in approved["targets"]:
            token = report.progress_tokens[target["ref"]]
            self.require_completed(self._see_through(token, target["ref"]), target["ref"])
        return self.conclude(approved, report)

    def approve_if_pending(self, progress: Progress) -> bool:
        """Approve a request that reads ``PENDING``."""
        if progress.status != "PENDING":
            return False
        self._approve(progress.token)
        return True

    def look(self, tokens: Iterable[str]) -> dict[str, list[Any]]:
        """One read of each token: ``{token: [status, errors]}`` (JSON, as the tokens trigger reports them);
        a failed read fails the try (a retry takes the requests over)."""
        statuses: dict[str, list[Any]] = {}
        for token, progress in self.requester.progress_many(list(tokens)).items():
            if isinstance(progress, PreservicaError):
                raise progress
            statuses[token] = [progress.status, progress.errors]
        return statuses

    def step(self, report: DeletionReport, statuses: dict[str, list[Any]], state: DeferredState) -> list[str]:
        """The deferred path between two waits: approve what reads ``PENDING`` (once), fail on what ended
        otherwise than ``COMPLETED``, note what finished; returns the tokens still running."""
        by_token = {token: ref for ref, token in report.progress_tokens.items()}
        just_approved = []
        for token, (status, _) in statuses.items():
            if token not in state.approved and self.approve_if_pending(Progress(token, status)):
                state.approved.append(token)
                just_approved.append(token)
                log.info("Approved the deletion of %s (progress token %s)", by_token[token], token)
        if just_approved:  # one more look: a deletion that finishes at once needs no deferral
            statuses = {**statuses, **self.look(just_approved)}
        for token, (status, errors) in statuses.items():
            progress = Progress(token, status, errors=list(errors))
            if progress.finished and token not in state.done:
                self.require_completed(progress, by_token[token])
                state.done.append(token)
        return [t for t in report.progress_tokens.values() if t not in state.done]

    def conclude(self, approved: dict[str, Any], report: DeletionReport) -> DeletionReport:
        """Every deletion has completed: check that each target is gone, then forget the in-flight records."""
        for target in approved["targets"]:
            self._require_gone(target)
            report.deleted.append(target)
        for target in approved["targets"]:  # only now: a retry after a later target failed takes these over as done
            self.registry.forget(self._record_id(target["ref"]))
        return report

    def _adopt(self, record: InFlightJob) -> str | None:
        """The recorded request's token, unless Preservica has forgotten it or it ended without deleting."""
        try:
            progress = self.requester.progress(record.token)
        except ProgressTokenUnknownError:
            return None
        if progress.status in ("FAILED", "CANCELLED", "ABORTED"):
            return None  # rejected or failed earlier: asked again, after the same re-check as a new request
        return record.token

    def _see_through(self, token: str, ref: str) -> Progress:
        """Approve once the request reads PENDING, then wait until Preservica has finished it."""

        def announce(progress: Progress) -> None:  # runs when the status changes
            self.approve_if_pending(progress)

        return poll_until(
            lambda: self.requester.progress(token),
            finished=lambda progress: progress.finished,
            state=lambda progress: progress.status,
            announce=announce,
            subject=token,
            timed_out=lambda state: (
                f"the deletion of {ref} (progress token {token}) did not finish in {self.timeout:.0f} s; a retry "
                "takes it over without asking again"
            ),
            poll_interval=self.poll_interval,
            timeout=self.timeout,
            sleep=self.sleep,
        )

    @staticmethod
    def require_completed(progress: Progress, ref: str) -> None:
        token = progress.token
        if progress.status != "COMPLETED":
            raise DeletionFailedError(
                f"Preservica's deletion of {ref} (progress token {token}) ended {progress.status}: "
                + ("; ".join(progress.errors[:5]) or "no error details returned")
            )

    def _approve(self, token: str) -> None:
        try:
            # The requester's namespaces: the manager's hook need not read the server version again.
            self.manager.approve_deletion(token, self.supervisor_comment, ns=self.entities.ns)
        except PreservicaHTTPError as exc:
            if exc.status != 409:  # 409: decided meanwhile (an earlier try's approval arrived): read on
                raise

    def _require_gone(self, target: dict[str, Any]) -> None:
        try:
            self.entities.get(target["ref"], target["type"])
        except EntityNotFoundError:
            return
        raise DeletionFailedError(
            f"Preservica reported the deletion of {target['type']} {target['ref']} complete, but it is still there"
        )
