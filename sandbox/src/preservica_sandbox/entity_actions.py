"""Asynchronous entity actions: moves (``parent-ref``) and security tag changes (``security-descriptor``).

``state.entity_actions`` is one ``EntityActionService`` (given the repository, the progress book, the
fault book and a fault counter by ``SandboxState``); the routes are in ``entity_actions_api``.
An action is checked when it is requested (the route answers 4xx and nothing is queued if it cannot
work), gets a progress token that is ``ACTIVE`` before the 202 is sent (pyPreservica's ``move_sync``
and ``security_tag_sync`` stop polling at anything else), and is applied ``entity_action_seconds``
later (default 0.2; 0 = applied before the 202 is answered, the token already ``COMPLETED``). Until
then the entity reads as before — GET, children, search. Then the repository changes (its version
grows, so search follows at once) and the token turns ``COMPLETED``; if the change cannot be made any
more (the entity or the destination deleted, a cycle made meanwhile by another move) it turns
``FAILED`` with the reason in ``Errors`` and nothing changes.

One daemon worker thread applies every queued action in due order (a heap), however many are
waiting: hundreds of concurrent moves cost no more threads than one.

Configuration (``POST /_sandbox/config``, ``GET`` shows it):

- ``entity_action_seconds``: 0..3600.
- ``security_tags``: the tags the sandbox knows, a list of names (each gets ``DEFAULT_PERMISSIONS``)
  or an object ``{"name": ["PERMISSION", ...]}``; read back as the object. Default ``open``,
  ``closed``, ``public``. ``GET /api/security/tags`` lists them; a security tag change to another
  name is refused (400). Tags already on entities are never checked.

Faults: ``{"kind": "fail_entity_action", "action": "move" | "security_tag" | "*", "ref": "<glob>",
"message": "...", "count": 1}`` posted to ``/_sandbox/faults`` makes the next ``count`` matching
actions end ``FAILED`` with ``message`` (when they would have been applied; nothing changes).
``POST /_sandbox/reset`` forgets queued actions (they are never applied).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import progress as P
from .entities import RepositoryError

if TYPE_CHECKING:
    from .faults import FaultBook
    from .repository import Repository

log = logging.getLogger(__name__)

MOVE, SECURITY_TAG = "move", "security_tag"
DEFAULT_ACTION_SECONDS = 0.2
#: Permissions listed for a tag configured by name only. UNVERIFIED names: Preservica's own set is not
#: documented in the sources; pyPreservica only passes the texts through.
DEFAULT_PERMISSIONS: tuple[str, ...] = ("VIEW", "DOWNLOAD", "EDIT_METADATA", "MANAGE_CONTENT", "DELETE")
DEFAULT_SECURITY_TAGS: tuple[str, ...] = ("open", "closed", "public")
JOIN_TIMEOUT = 5.0


@dataclass
class EntityAction:
    """One requested move or security tag change."""

    token: str
    action: str  # MOVE | SECURITY_TAG
    ref: str
    kind: str  # SO | IO | CO
    target: str | None  # destination folder (None = root) or the new tag
    include_descendants: bool
    user: str
    tenant: str
    progress: P.ProgressRecord
    fail_message: str | None = None
    changed: int = 0
    due: float = 0.0

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "token": self.token,
            "action": self.action,
            "ref": self.ref,
            "type": self.kind,
            "user": self.user,
            "tenant": self.tenant,
            "status": self.progress.status,
            "errors": list(self.progress.errors),
        }
        if self.action == MOVE:
            out["destination"] = self.target  # None = the root
        else:
            out.update(tag=self.target, include_descendants=self.include_descendants, changed=self.changed)
        return out


def check_security_tags(value: Any) -> dict[str, tuple[str, ...]]:
    """``["open", ...]`` or ``{"open": ["VIEW", ...]}`` -> ``{name: permissions}`` (``ValueError`` if bad)."""
    usage = 'security_tags must be a non-empty list of distinct names or an object {"name": ["PERMISSION", ...]}'
    if isinstance(value, list):
        if not all(isinstance(name, str) for name in value) or len(set(value)) != len(value):
            raise ValueError(usage)
        value = {name: list(DEFAULT_PERMISSIONS) for name in value}
    if not isinstance(value, dict) or not value:
        raise ValueError(usage)
    out: dict[str, tuple[str, ...]] = {}
    for name, permissions in value.items():
        if not name.strip() or name != name.strip():
            raise ValueError(f"security tag names must be non-empty, without surrounding spaces: {name!r}")
        if not isinstance(permissions, list) or not all(isinstance(p, str) and p for p in permissions):
            raise ValueError(f"permissions of security tag {name!r} must be a list of non-empty strings")
        out[name] = tuple(permissions)
    return out


class EntityActionService:
    """Queued moves and security tag changes of one sandbox. Thread-safe."""

    CONFIG_KEYS = frozenset({"entity_action_seconds", "security_tags"})

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
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, EntityAction]] = []
        self._actions: dict[str, EntityAction] = {}
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.seconds = DEFAULT_ACTION_SECONDS
        self._tags = check_security_tags(list(DEFAULT_SECURITY_TAGS))

    # ----------------------------------------------------------------- configuration
    def config(self) -> dict[str, Any]:
        with self._cond:
            seconds = self.seconds
            return {
                "entity_action_seconds": int(seconds) if float(seconds).is_integer() else seconds,
                "security_tags": {name: list(perms) for name, perms in self._tags.items()},
            }

    def check_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validated values for the keys this service owns (``ValueError`` for bad ones)."""
        out: dict[str, Any] = {}
        if "entity_action_seconds" in changes:
            value = changes["entity_action_seconds"]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
                raise ValueError("entity_action_seconds must be a number of seconds between 0 and 3600")
            out["entity_action_seconds"] = float(value)
        if "security_tags" in changes:
            out["security_tags"] = check_security_tags(changes["security_tags"])
        return out

    def apply_config(self, checked: dict[str, Any]) -> None:
        with self._cond:
            seconds = checked.get("entity_action_seconds", self.seconds)
            if seconds != self.seconds:
                self._retime(seconds)
            self.seconds = seconds
            self._tags = checked.get("security_tags", self._tags)

    def _retime(self, seconds: float) -> None:
        """Queued actions take the new delay too, counted from when each was queued (call with ``_cond`` held).

        A test can then hold actions with a long delay for as long as it looks at them, and release them
        with 0, instead of racing a short delay.
        """
        queued = [(job.due - self.seconds + seconds, order, job) for _, order, job in self._queue]
        for due, _, job in queued:
            job.due = due
        heapq.heapify(queued)
        self._queue[:] = queued
        self._cond.notify_all()

    def security_tags(self) -> dict[str, tuple[str, ...]]:
        """Known tags, in configured order, with their permissions."""
        with self._cond:
            return dict(self._tags)

    # ----------------------------------------------------------------- actions
    def start(
        self,
        action: str,
        ref: str,
        kind: str,
        target: str | None,
        user: str,
        tenant: str,
        include_descendants: bool = False,
    ) -> EntityAction:
        """Create the ``ACTIVE`` token and queue the action (or apply it now when the delay is 0)."""
        record = self.progress.create(action, tenant=tenant)
        self.progress.set_status(record, P.ACTIVE, 0.0)
        fault = self.faults.take_job("fail_entity_action", ref, action)
        if fault is not None:
            self._count_fault(fault.kind)
        what = "move" if action == MOVE else "security tag change"
        job = EntityAction(
            token=record.token,
            action=action,
            ref=ref,
            kind=kind,
            target=target,
            include_descendants=include_descendants,
            user=user,
            tenant=tenant,
            progress=record,
            fail_message=(fault.message or f"sandbox fault: the {what} failed") if fault is not None else None,
        )
        with self._cond:
            self._actions[job.token] = job
            seconds = self.seconds
            if seconds > 0:
                job.due = time.monotonic() + seconds
                heapq.heappush(self._queue, (job.due, next(self._order), job))
                self._ensure_worker()
                self._cond.notify()
        if seconds <= 0:
            self._apply(job)
        return job

    def action(self, token: str) -> EntityAction | None:
        with self._cond:
            return self._actions.get(token)

    def actions(self) -> list[EntityAction]:
        with self._cond:
            return list(self._actions.values())

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _apply(self, job: EntityAction) -> None:
        progress = self.progress
        try:
            if job.fail_message is not None:
                raise RuntimeError(job.fail_message)
            repo = self.repository
            if job.action == MOVE:
                repo.move(job.ref, job.target)
            else:
                job.changed = repo.set_security_tag(job.ref, job.target or "", job.include_descendants)
        except (RepositoryError, RuntimeError) as exc:
            progress.add_error(job.progress, str(exc))
            progress.set_status(job.progress, P.FAILED)
        except Exception as exc:  # a bug: report it like Preservica would, and log it
            log.exception("sandbox entity action %s failed unexpectedly", job.token)
            progress.add_error(job.progress, f"{job.action} failed: {exc!r}")
            progress.set_status(job.progress, P.FAILED)
        else:
            progress.set_status(job.progress, P.COMPLETED)

    # ----------------------------------------------------------------- the worker
    def _ensure_worker(self) -> None:
        """Start the worker thread if it is not running (call with ``_cond`` held)."""
        if self._thread is None or not self._thread.is_alive():
            self._closed = False
            self._thread = threading.Thread(target=self._run, name="sandbox-entity-actions", daemon=True)
            self._thread.start()

    def _next_due(self) -> EntityAction | None:
        """Wait for the earliest action to fall due; ``None`` once closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                if self._queue and self._queue[0][0] <= now:
                    return heapq.heappop(self._queue)[2]
                self._cond.wait(self._queue[0][0] - now if self._queue else None)
            return None

    def _run(self) -> None:
        while (job := self._next_due()) is not None:
            self._apply(job)

    def reset(self) -> None:
        """Forget every action; queued ones are never applied."""
        with self._cond:
            self._queue.clear()
            self._actions.clear()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)
