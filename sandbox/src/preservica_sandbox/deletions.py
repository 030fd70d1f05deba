"""Deletion in two steps, as Preservica does it: a request, then an approval by a second, manager account.

``state.deletions`` is one ``DeletionService``; the routes are in ``deletions_api``.

1. ``DELETE /api/entity/{path}/{ref}`` with a ``DeletionAction/Submission/Comment`` body records a request
   and answers 202 with a progress token that reads ``PENDING`` (pyPreservica's ``_delete_entity`` polls
   the token until it reads ``PENDING``, then approves). Nothing is deleted yet: the entity reads as before.
2. ``PUT /api/entity/actions/deletions/{token}`` with ``DeletionAction/Approval/Approved|Comment``, sent
   by **another** user holding ``ROLE_SDB_MANAGER_USER`` (pyPreservica logs in as ``manager.username``
   for it), answers 202. ``Approved`` true deletes the entity with everything below it (content
   objects too) and the token turns ``COMPLETED``; false turns it ``CANCELLED`` and nothing changes.
   The requester approving their own request, or an approver without the manager role -> 403; an
   unknown token -> 404; a token already decided -> 409. If the entity went meanwhile, the token
   turns ``FAILED`` with the reason.

Configuration ``deletion_hold`` (default false): while true, an approved deletion is not carried out at
once: its token reads ``ACTIVE`` (Preservica's deletion workflow running) until the hold is set false,
which carries out every held deletion. Tests use it to see a task wait for a deletion without racing a clock.

Each request is kept (``GET /_sandbox/deletions``: token, ref, type, requester, comments, approver,
status), so tests can count requests and see who approved what. Configuration: ``deletion_workflow``
(default true); false makes every deletion request answer 422 ("no active workflow context for full
deletion"), as Preservica does when no deletion workflow is configured. ``POST /_sandbox/reset``
forgets the requests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import progress as P
from .entities import RepositoryError

if TYPE_CHECKING:
    from .repository import Repository

MANAGER_ROLE = "ROLE_SDB_MANAGER_USER"


class DeletionRefused(Exception):
    """An approval the sandbox will not take: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class DeletionRequest:
    token: str
    ref: str
    kind: str
    user: str
    tenant: str
    comment: str
    progress: P.ProgressRecord
    approver: str | None = None
    approval_comment: str | None = None
    deleted: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "ref": self.ref,
            "type": self.kind,
            "user": self.user,
            "tenant": self.tenant,
            "comment": self.comment,
            "approver": self.approver,
            "approval_comment": self.approval_comment,
            "status": self.progress.status,
            "deleted": self.deleted,
            "errors": list(self.progress.errors),
        }


class DeletionService:
    """Deletion requests of one sandbox and their approvals. Thread-safe."""

    CONFIG_KEYS = frozenset({"deletion_workflow", "deletion_hold"})

    def __init__(self, repository: Repository, progress: P.ProgressBook) -> None:
        self.repository = repository
        self.progress = progress
        self._lock = threading.Lock()
        self._requests: dict[str, DeletionRequest] = {}
        self.workflow_active = True
        self.hold = False
        self._held: list[DeletionRequest] = []

    def config(self) -> dict[str, Any]:
        return {"deletion_workflow": self.workflow_active, "deletion_hold": self.hold}

    def check_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        for key in self.CONFIG_KEYS:
            if key in changes and not isinstance(changes[key], bool):
                raise ValueError(f"{key} must be true or false")
        return {k: changes[k] for k in self.CONFIG_KEYS if k in changes}

    def apply_config(self, checked: dict[str, Any]) -> None:
        self.workflow_active = checked.get("deletion_workflow", self.workflow_active)
        with self._lock:
            self.hold = checked.get("deletion_hold", self.hold)
            released: list[DeletionRequest] = []
            if not self.hold:
                released, self._held = self._held, []
        for job in released:
            self._carry_out(job)

    def request(self, ref: str, kind: str, comment: str, user: str, tenant: str) -> DeletionRequest:
        """Record a request; its token reads ``PENDING`` until a manager decides."""
        record = self.progress.create("deletion", tenant=tenant)
        job = DeletionRequest(record.token, ref, kind, user, tenant, comment, record)
        with self._lock:
            self._requests[job.token] = job
        return job

    def decide(self, token: str, approver_name: str, roles: list[str], approved: bool, comment: str) -> DeletionRequest:
        """Approve (delete now) or reject a pending request (``DeletionRefused`` if the sandbox will not)."""
        with self._lock:
            job = self._requests.get(token)
            if job is None:
                raise DeletionRefused(404, f"no deletion request with progress token {token}")
            if job.progress.done or job.approver is not None:
                raise DeletionRefused(409, f"deletion request {token} was already decided ({job.progress.status})")
            if approver_name == job.user:
                raise DeletionRefused(403, "a deletion must be approved by another user than the one who requested it")
            if MANAGER_ROLE not in roles:
                raise DeletionRefused(403, f"approving a deletion needs the {MANAGER_ROLE} role")
            job.approver, job.approval_comment = approver_name, comment
        if not approved:
            self.progress.set_status(job.progress, P.CANCELLED)
            return job
        with self._lock:
            if self.hold:
                self.progress.set_status(job.progress, P.ACTIVE)
                self._held.append(job)
                return job
        self._carry_out(job)
        return job

    def _carry_out(self, job: DeletionRequest) -> None:
        try:
            job.deleted = self.repository.delete(job.ref)
        except RepositoryError as exc:
            self.progress.add_error(job.progress, f"deleting {job.ref} failed: {exc}")
            self.progress.set_status(job.progress, P.FAILED)
        else:
            self.progress.set_status(job.progress, P.COMPLETED)

    def requests(self) -> list[DeletionRequest]:
        with self._lock:
            return list(self._requests.values())

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._held.clear()
            self.hold = False
