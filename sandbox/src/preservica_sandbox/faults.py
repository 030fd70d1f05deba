"""Fault injection: the fault model and a thread-safe book of active faults (the middleware is ``fault_middleware``).

Faults are posted to ``/_sandbox/faults`` (see ``control_api``). ``expire_tokens`` and ``revoke_token``
act at once on the token store; ``status``, ``redirect``, ``latency``, ``drop`` and ``drop_after_bytes``
wait in the ``FaultBook`` for matching requests. ``redirect`` answers a 3xx with ``Location: location``
(``{path}`` in it stands for the request's path and query), as a proxy or load balancer in front of
Preservica may: a client must not carry passwords or tokens to another origin. ``drop_after_bytes`` lets
the response start and closes the connection after ``bytes`` bytes of its body (the client sees a short
body, then a broken connection).
A ``latency`` fault with ``together`` holds each matching request until that many are held (at most
``seconds``), so concurrent requests are in flight together however the clients were scheduled.
``after`` lets that many matching requests through first, so a fault lands mid-run at a known request
rather than whenever a watcher gets to post it; ``expire_tokens`` and ``revoke_token`` given a ``route``
(or ``after``) wait likewise and act just before the matching request is handled.
Job kinds (``fail_export``, ``hostile_export``, ``fail_entity_action``) are not matched against requests: the
work they name takes them (``FaultBook.take_job``) when it starts. ``fail_entity_action`` has an ``action``
(``move``, ``security_tag`` or ``*``) besides the ``ref`` glob; ``hostile_export`` a ``variant`` (see
``hostile_exports``) and ``bytes``, how far a bomb inflates. Nothing here ever applies to ``/_sandbox/*``.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .hostile_exports import VARIANTS

CONTROL_PREFIX = "/_sandbox"
IMMEDIATE_KINDS = frozenset({"expire_tokens", "revoke_token"})
QUEUED_KINDS = frozenset({"status", "redirect", "latency", "drop", "drop_after_bytes"})
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
#: Taken by background work rather than by requests (``FaultBook.take_job``).
JOB_KINDS = frozenset({"fail_export", "fail_entity_action", "hostile_export"})
#: What a ``hostile_export`` fault may name: ``hostile_exports.VARIANTS``.
HOSTILE_VARIANTS = VARIANTS
#: What a ``fail_entity_action`` fault may name (``*`` = either).
ENTITY_ACTIONS = ("move", "security_tag", "*")
KINDS = IMMEDIATE_KINDS | QUEUED_KINDS | JOB_KINDS
_DEFAULT_RETRY_AFTER = {429: 1.0, 503: 1.0}


class FaultSpecError(ValueError):
    """A fault description that cannot be used; the message is safe to return to the caller."""


def is_control_path(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


@dataclass
class Fault:
    """One injected fault. ``count`` is what is left (``None`` = until cleared)."""

    kind: str
    route: str = "*"
    status: int | None = None
    count: int | None = 1
    retry_after: float | None = None
    seconds: float | None = None
    user: str | None = None
    token: str | None = None
    token_prefix: str | None = None
    bytes: int | None = None
    message: str | None = None
    ref: str | None = None
    action: str | None = None
    variant: str | None = None
    location: str | None = None
    after: int = 0  # matching requests still to let through before it applies
    together: int | None = None  # latency: hold each request until this many are held (``seconds`` at most)
    on_request: bool = False  # an expire_tokens / revoke_token fault that waits for a matching request
    id: int = 0
    fired: int = 0
    applied: int | None = None

    @property
    def method(self) -> str | None:
        head, _, rest = self.route.partition(" ")
        return head.upper() if rest else None

    @property
    def glob(self) -> str:
        head, _, rest = self.route.partition(" ")
        return rest.strip() if rest else head

    def matches(self, method: str, path: str) -> bool:
        wanted = self.method
        if wanted is not None and wanted not in (method.upper(), "*"):
            return False
        return fnmatch.fnmatchcase(path, self.glob)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.kind in QUEUED_KINDS or self.on_request:
            out.update(route=self.route, count=self.count, fired=self.fired, after=self.after)
        if self.kind == "status":
            retry = self.retry_after
            if retry is not None and retry.is_integer():
                retry = int(retry)
            out.update(status=self.status, retry_after=retry)
        if self.kind == "redirect":
            out.update(status=self.status, location=self.location)
        if self.kind == "latency":
            out["seconds"] = self.seconds
            if self.together is not None:
                out["together"] = self.together
        if self.kind == "drop_after_bytes":
            out["bytes"] = self.bytes
        if self.kind in JOB_KINDS:
            out.update(ref=self.ref or "*", message=self.message, count=self.count, fired=self.fired)
        if self.kind == "fail_entity_action":
            out["action"] = self.action or "*"
        if self.kind == "hostile_export":
            out.update(variant=self.variant, bytes=self.bytes)
        if self.user is not None:
            out["user"] = self.user
        if self.token is not None or self.token_prefix is not None:
            out["token_prefix"] = (self.token or self.token_prefix or "")[:8]  # never the full token
        if self.applied is not None:
            out["applied"] = self.applied
        return out


def _number(data: dict[str, Any], key: str, default: float | None, minimum: float = 0.0) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise FaultSpecError(f"{key} must be a number >= {minimum:g}")
    return float(value)


def _count(data: dict[str, Any], default: int | None) -> int | None:
    value = data.get("count", default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FaultSpecError("count must be a positive integer or null")
    return value


def _after(data: dict[str, Any]) -> int:
    value = data.get("after", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultSpecError("after must be a number of matching requests to let through first (>= 0)")
    return value


def _route(data: dict[str, Any]) -> str:
    route = data.get("route", "*")
    if not isinstance(route, str) or not route.strip():
        raise FaultSpecError("route must be a pattern such as 'GET /api/user/details' or '/api/*'")
    route = " ".join(route.split())
    head, _, rest = route.partition(" ")
    glob = rest if rest else head
    bad_method = bool(rest) and not (head.isalpha() or head == "*")
    if bad_method or " " in glob or not glob.startswith(("/", "*")):
        raise FaultSpecError("route must be 'METHOD /path/glob' or '/path/glob'")
    return route


def parse_fault(data: Any) -> Fault:
    """Validate one fault description (a JSON object) and build the ``Fault``."""
    if not isinstance(data, dict):
        raise FaultSpecError("a fault must be a JSON object")
    kind = data.get("kind")
    if kind not in KINDS:
        raise FaultSpecError(f"kind must be one of {sorted(KINDS)}")
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise FaultSpecError("user must be a string")
    if kind in IMMEDIATE_KINDS:
        token, prefix = data.get("token"), data.get("token_prefix")
        if kind == "revoke_token" and sum(x is not None for x in (token, prefix, user)) != 1:
            raise FaultSpecError("revoke_token needs exactly one of token, token_prefix, user")
        if any(x is not None and (not isinstance(x, str) or not x) for x in (token, prefix)):
            raise FaultSpecError("token / token_prefix must be non-empty strings")
        fault = Fault(kind=kind, user=user, token=token, token_prefix=prefix, count=None)
        if "route" in data or "after" in data:  # wait for a matching request, then act once
            fault.route, fault.after, fault.count, fault.on_request = _route(data), _after(data), 1, True
        return fault
    if kind in JOB_KINDS:
        message, ref = data.get("message"), data.get("ref", "*")
        if message is not None and not isinstance(message, str):
            raise FaultSpecError("message must be a string")
        if not isinstance(ref, str) or not ref:
            raise FaultSpecError("ref must be an entity reference or a glob such as '*'")
        action = data.get("action", "*") if kind == "fail_entity_action" else None
        if kind == "fail_entity_action" and action not in ENTITY_ACTIONS:
            raise FaultSpecError(f"action must be one of {list(ENTITY_ACTIONS)}")
        variant, size = data.get("variant"), data.get("bytes", 256 * 1024 * 1024)
        if kind == "hostile_export":
            if variant not in HOSTILE_VARIANTS:
                raise FaultSpecError(f"variant must be one of {list(HOSTILE_VARIANTS)}")
            if isinstance(size, bool) or not isinstance(size, int) or not 0 < size < 4 * 1024**3:
                raise FaultSpecError("bytes (how far a bomb inflates) must be a number of bytes under 4 GiB")
        return Fault(
            kind=kind, route="*", message=message, ref=ref, action=action, count=_count(data, 1),
            variant=variant if kind == "hostile_export" else None, bytes=size if kind == "hostile_export" else None,
        )  # fmt: skip
    route = _route(data)
    if kind == "drop_after_bytes":
        size = data.get("bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise FaultSpecError("drop_after_bytes needs bytes, a number of body bytes >= 0")
        return Fault(kind=kind, route=route, bytes=size, count=_count(data, 1), after=_after(data))
    if kind == "latency":
        seconds = _number(data, "seconds", None)
        if seconds is None:
            raise FaultSpecError("latency needs seconds")
        together = data.get("together")
        if together is not None and (isinstance(together, bool) or not isinstance(together, int) or together < 2):
            raise FaultSpecError("together must be a number of requests (>= 2) to hold until all have arrived")
        return Fault(
            kind=kind, route=route, seconds=seconds, count=_count(data, None), after=_after(data), together=together
        )
    if kind == "drop":
        return Fault(kind=kind, route=route, count=_count(data, 1), after=_after(data))
    if kind == "redirect":
        status, location = data.get("status", 307), data.get("location")
        if status not in REDIRECT_STATUSES or isinstance(status, bool):
            raise FaultSpecError(f"a redirect's status must be one of {list(REDIRECT_STATUSES)}")
        if not isinstance(location, str) or not location.strip():
            raise FaultSpecError("redirect needs location, a URL or path ('{path}' stands for the request's)")
        return Fault(
            kind=kind, route=route, status=status, location=location.strip(), count=_count(data, 1), after=_after(data)
        )
    status = data.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise FaultSpecError("status must be an HTTP error status (400-599)")
    retry_after = _number(data, "retry_after", _DEFAULT_RETRY_AFTER.get(status))
    return Fault(
        kind=kind, route=route, status=status, count=_count(data, 1), retry_after=retry_after, after=_after(data)
    )


def parse_faults(body: Any) -> list[Fault]:
    """One fault object or a list of them."""
    items: Iterable[Any] = body if isinstance(body, list) else [body]
    return [parse_fault(item) for item in items]


class FaultBook:
    """Active queued faults in the order they were posted. Thread-safe; counts are consumed atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def assign_id(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
        return fault

    def add(self, fault: Fault) -> Fault:
        if fault.kind not in QUEUED_KINDS | JOB_KINDS and not fault.on_request:
            raise ValueError(f"{fault.kind} faults act immediately and are not queued")
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> int:
        with self._lock:
            removed = len(self._faults)
            self._faults.clear()
            return removed

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def take(self, method: str, path: str) -> tuple[list[Fault], Fault | None]:
        """Consume what applies to one request: every matching latency and token fault (they act
        before it), then the first matching status, redirect or drop fault (older faults win). A fault with
        ``after`` left lets this request through and counts it instead."""
        before: list[Fault] = []
        action: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if fault.kind in JOB_KINDS or not fault.matches(method, path):
                    continue
                if fault.after:
                    fault.after -= 1
                    continue
                if fault.kind == "latency" or fault.on_request:
                    before.append(fault)
                elif action is None:
                    action = fault
                else:
                    continue
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
            self._faults = [f for f in self._faults if f.count is None or f.count > 0]
        return before, action

    def take_job(self, kind: str, subject: str, action: str | None = None) -> Fault | None:
        """Consume the oldest ``kind`` job fault whose ``ref`` glob matches ``subject`` (an entity ref)
        and, for faults naming an ``action`` other than ``*``, whose action is ``action``."""
        with self._lock:
            for fault in self._faults:
                if fault.kind != kind or fault.action not in (None, "*", action):
                    continue
                if fnmatch.fnmatchcase(subject, fault.ref or "*"):
                    fault.fired += 1
                    if fault.count is not None:
                        fault.count -= 1
                    self._faults = [f for f in self._faults if f.count is None or f.count > 0]
                    return fault
        return None
