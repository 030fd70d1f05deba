"""The sandbox's one shared state: users, tokens, counters, faults, configuration, and the services.

Every API module works on one ``SandboxState`` (``request.app.state.sandbox``). It builds the
repository, the progress book and the fault book, and wires them into the services that do the work
(``IngestService``, ``ExportService``, ``EntityActionService``): the services get what they need as
constructor arguments and never import this module, so the state sits above them and below the API
routers. All mutations take one ``threading.RLock`` because the routers run on uvicorn's event loop
while tests poke the state from their own threads. With a data directory, users, tokens and counters
are written as JSON whenever tokens change (and on ``close``), and read back at start, so a restarted
sandbox still honours the tokens it issued. Users given to the constructor replace stored users of the
same name; the default ``archivist`` account is added only when neither source names any user.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .deletions import DeletionService
from .entity_actions import EntityActionService
from .exports import ExportService
from .faults import Fault, FaultBook
from .ingest import IngestService
from .persistence import JsonStore
from .progress import ProgressBook
from .repository import Repository
from .tokens import AccessToken, AuthenticatedSession, Continuation, TokenRejected
from .users import DEFAULT_TENANT, SandboxUser, default_user, parse_user_spec
from .versions import parse_version

__all__ = [
    "DEFAULT_TENANT",
    "AccessToken",
    "AuthenticatedSession",
    "SandboxState",
    "SandboxUser",
    "TokenRejected",
    "parse_user_spec",
]

DEFAULT_TOKEN_LIFETIME = 900.0
DEFAULT_VERSION = "7.7.1"
CONTINUATION_LIFETIME = 300.0
#: Expired tokens are remembered this long (so a 401 can say "expired") and then forgotten.
EXPIRED_TOKEN_RETENTION = 3600.0


def _plain(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else seconds


class _Counters:
    def __init__(self) -> None:
        self.logins: Counter[str] = Counter()
        self.login_failures: Counter[str] = Counter()
        self.refreshes: Counter[str] = Counter()
        self.needs_2fa: Counter[str] = Counter()
        self.login_times: defaultdict[str, list[float]] = defaultdict(list)
        self.requests: Counter[str] = Counter()
        self.faults_fired: Counter[str] = Counter()
        self.tokens_issued = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "logins": dict(self.logins),
            "login_failures": dict(self.login_failures),
            "refreshes": dict(self.refreshes),
            "needs_2fa": dict(self.needs_2fa),
            "login_times": {user: list(times) for user, times in self.login_times.items()},
            "requests": dict(self.requests),
            "faults_fired": dict(self.faults_fired),
            "tokens_issued": self.tokens_issued,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Counters:
        counters = cls()
        for name in ("logins", "login_failures", "refreshes", "needs_2fa", "requests", "faults_fired"):
            getattr(counters, name).update({str(k): int(v) for k, v in data.get(name, {}).items()})
        for user, times in data.get("login_times", {}).items():
            counters.login_times[user] = [float(t) for t in times]
        counters.tokens_issued = int(data.get("tokens_issued", 0))
        return counters


class SandboxState:
    """Users, tokens, counters, faults and configuration of one sandbox."""

    def __init__(
        self,
        users: Iterable[SandboxUser | str] | None = None,
        token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
        version: str = DEFAULT_VERSION,
        data_dir: str | Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.faults = FaultBook()
        self._token_lifetime = self._check_lifetime(token_lifetime)
        parse_version(version)
        self._version = version
        self._users: dict[str, SandboxUser] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> access token; popped on use
        self._continuations: dict[str, Continuation] = {}
        self._counters = _Counters()
        self._dirty = False
        self._store = JsonStore(data_dir) if data_dir is not None else None
        #: Folders, assets and content objects (see ``repository``); persisted as JSON lines with a data dir.
        self.repository = Repository(lock=self.lock, clock=clock, data_dir=data_dir)
        #: Progress tokens of background work (ingest, export ...); see ``progress``.
        self.progress = ProgressBook(clock=clock)
        #: S3 uploads, package processing, process monitors, workflow instances; see ``ingest``.
        self.ingest = IngestService(self.repository, self.progress, clock=clock)
        #: OPEX export jobs and their zips on disk; see ``exports``.
        self.exports = ExportService(self.repository, self.progress, self.faults, self.count_fault)
        #: Queued moves and security tag changes, and the known security tags; see ``entity_actions``.
        self.entity_actions = EntityActionService(self.repository, self.progress, self.faults, self.count_fault)
        #: Deletion requests awaiting a manager's approval; see ``deletions``.
        self.deletions = DeletionService(self.repository, self.progress)
        if self._store is not None:
            self._load(self._store)
        for user in users or []:
            self.add_user(parse_user_spec(user) if isinstance(user, str) else user, persist=False)
        if not self._users:
            self.add_user(default_user(), persist=False)
        self._save()

    # ----------------------------------------------------------------- configuration
    @staticmethod
    def _check_lifetime(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError("token_lifetime must be a positive number of seconds")
        return float(value)

    @property
    def token_lifetime(self) -> float:
        return self._token_lifetime

    @property
    def version(self) -> str:
        return self._version

    def config(self) -> dict[str, Any]:
        with self.lock:
            return {
                "token_lifetime": _plain(self._token_lifetime),
                "version": self._version,
                **self.ingest.config(),
                **self.exports.config(),
                **self.entity_actions.config(),
                **self.deletions.config(),
            }

    def update_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``token_lifetime`` (seconds; affects tokens issued afterwards), ``version`` and the keys
        of the services (``ingest_seconds``, ``export_seconds``, ``entity_action_seconds``, ``security_tags`` ...).

        All values are checked before any is applied: a bad one changes nothing."""
        services = (self.ingest, self.exports, self.entity_actions, self.deletions)
        unknown = set(changes) - {"token_lifetime", "version"} - set().union(*(s.CONFIG_KEYS for s in services))
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        with self.lock:
            lifetime = self._token_lifetime
            version = self._version
            if "token_lifetime" in changes:
                lifetime = self._check_lifetime(changes["token_lifetime"])
            if "version" in changes:
                if not isinstance(changes["version"], str):
                    raise ValueError("version must be a string such as 7.7.1")
                parse_version(changes["version"])
                version = changes["version"]
            checked = [(service, service.check_config(changes)) for service in services]
            self._token_lifetime, self._version = lifetime, version
            for service, values in checked:
                service.apply_config(values)
            return self.config()

    # ----------------------------------------------------------------- users
    def add_user(self, user: SandboxUser, persist: bool = True) -> SandboxUser:
        with self.lock:
            self._users[user.name] = user
            if persist:
                self._save()
        return user

    def get_user(self, name: str) -> SandboxUser | None:
        with self.lock:
            return self._users.get(name)

    def users(self) -> list[SandboxUser]:
        with self.lock:
            return list(self._users.values())

    # ----------------------------------------------------------------- tokens
    def issue_token(self, user: SandboxUser, *, login: bool = True) -> AccessToken:
        """Create a token pair for ``user``; ``login`` counts it as a login (refreshes do not)."""
        with self.lock:
            now = self.clock()
            record = AccessToken(
                token=str(uuid.uuid4()),
                user=user.name,
                tenant=user.tenant,
                issued_at=now,
                expires_at=now + self._token_lifetime,
                refresh_token=str(uuid.uuid4()),
            )
            self._prune(now)
            self._tokens[record.token] = record
            self._refresh[record.refresh_token] = record.token
            self._counters.tokens_issued += 1
            if login:
                self._counters.logins[user.name] += 1
                self._counters.login_times[user.name].append(now)
            self._save()
            return record

    def authenticate_token(self, token: str | None) -> AuthenticatedSession:
        """The session behind a presented token, or ``TokenRejected`` (answer 401)."""
        if not token:
            raise TokenRejected("Missing access token")
        with self.lock:
            record = self._tokens.get(token)
            if record is None:
                raise TokenRejected("Invalid access token")
            if record.revoked:
                raise TokenRejected("Access token has been revoked")
            if self.clock() >= record.expires_at:
                raise TokenRejected("Access token has expired")
            user = self._users.get(record.user)
            if user is None:
                raise TokenRejected("Access token belongs to an unknown user")
            return AuthenticatedSession(token=record, user=user)

    def refresh(self, session: AuthenticatedSession, refresh_token: str) -> AccessToken:
        """Exchange a single-use refresh token for a new pair; the old access token stays valid."""
        with self.lock:
            owner = self._refresh.pop(refresh_token, None)
            record = self._tokens.get(owner) if owner else None
            if record is None:
                raise TokenRejected("Invalid or already used refresh token")
            if record.user != session.user.name or record.revoked or self.clock() >= record.expires_at:
                raise TokenRejected("Refresh token is not valid for this session")
            self._counters.refreshes[session.user.name] += 1
            return self.issue_token(session.user, login=False)

    def expire_tokens(self, user: str | None = None) -> int:
        """Make every live token (of ``user``) expire now; returns how many changed."""
        with self.lock:
            now = self.clock()
            changed = 0
            for record in self._tokens.values():
                if (user is None or record.user == user) and record.expires_at > now:
                    record.expires_at = now
                    changed += 1
            self._save()
            return changed

    def revoke_tokens(self, token: str | None = None, token_prefix: str | None = None, user: str | None = None) -> int:
        """Revoke one token (by value or 8-char prefix) or all current tokens of a user."""
        with self.lock:
            now = self.clock()
            changed = 0
            for record in self._tokens.values():
                if record.revoked or record.expires_at <= now:
                    continue
                if (
                    (token is not None and record.token == token)
                    or (token_prefix is not None and record.token.startswith(token_prefix))
                    or (user is not None and record.user == user)
                ):
                    record.revoked = True
                    changed += 1
            self._save()
            return changed

    def tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            now = self.clock()
            return [r.describe(now) for r in self._tokens.values() if user is None or r.user == user]

    def active_token_count(self) -> int:
        with self.lock:
            now = self.clock()
            return sum(1 for r in self._tokens.values() if not r.revoked and now < r.expires_at)

    def _prune(self, now: float) -> None:
        horizon = now - max(EXPIRED_TOKEN_RETENTION, self._token_lifetime)
        stale = [t for t, r in self._tokens.items() if r.expires_at < horizon]
        for token in stale:
            record = self._tokens.pop(token)
            self._refresh.pop(record.refresh_token, None)
        for key in [k for k, c in self._continuations.items() if c.expires_at < now]:
            del self._continuations[key]

    # ----------------------------------------------------------------- two-factor
    def start_two_factor(self, user: SandboxUser) -> str:
        """A short-lived, single-use continuation token for ``complete-2fa``."""
        with self.lock:
            now = self.clock()
            self._prune(now)
            continuation = str(uuid.uuid4())
            expires_at = now + CONTINUATION_LIFETIME
            self._continuations[continuation] = Continuation(user.name, user.tenant, expires_at)
            self._counters.needs_2fa[user.name] += 1
            return continuation

    def take_continuation(self, continuation: str, username: str) -> SandboxUser:
        """Consume a continuation token (whatever the outcome of the code check that follows)."""
        with self.lock:
            pending = self._continuations.pop(continuation, None)
            if pending is None or self.clock() >= pending.expires_at:
                raise TokenRejected("Invalid, expired or already used continuation token")
            user = self._users.get(pending.user)
            if user is None or pending.user != username:
                raise TokenRejected("Continuation token does not belong to this user")
            return user

    # ----------------------------------------------------------------- counters
    def record_login_failure(self, username: str) -> None:
        with self.lock:
            self._counters.login_failures[username] += 1
            self._save()

    def count_request(self, key: str) -> None:
        with self.lock:
            self._counters.requests[key] += 1
            self._dirty = True  # written with the next token change or on close()

    def count_fault(self, kind: str) -> None:
        with self.lock:
            self._counters.faults_fired[kind] += 1

    def stats(self) -> dict[str, Any]:
        with self.lock:
            out = self._counters.to_json()
            out["active_tokens"] = self.active_token_count()
            out["token_lifetime"] = _plain(self._token_lifetime)
            out["version"] = self._version
            return out

    def reset(self, repository: bool = False) -> None:
        """Forget counters, tokens, continuations and faults; keep users and configuration.

        The repository is kept (seeding 100,000 assets is not free) unless ``repository`` is true.
        Running ingests are stopped first (outside the lock: they may be waiting for it).
        """
        self.ingest.reset()
        self.exports.reset()
        self.entity_actions.reset()
        self.deletions.reset()
        with self.lock:
            self.progress.clear()
            if repository:
                self.repository.clear()
            self._counters = _Counters()
            self._tokens.clear()
            self._refresh.clear()
            self._continuations.clear()
            self.faults.clear()
            self._save()

    def add_faults(self, faults: list[Fault]) -> list[Fault]:
        """Queue request faults; apply ``expire_tokens``/``revoke_token`` now unless they wait for a request."""
        for fault in faults:
            if fault.kind in ("expire_tokens", "revoke_token") and not fault.on_request:
                self.faults.assign_id(fault)
                fault.applied = self.apply_token_fault(fault)
            else:
                self.faults.add(fault)
        return faults

    def apply_token_fault(self, fault: Fault) -> int:
        """Expire or revoke the tokens an ``expire_tokens``/``revoke_token`` fault names; how many changed."""
        if fault.kind == "expire_tokens":
            return self.expire_tokens(fault.user)
        return self.revoke_tokens(fault.token, fault.token_prefix, fault.user)

    # ----------------------------------------------------------------- persistence
    def _snapshot(self) -> dict[str, Any]:
        return {
            "format": 1,
            "users": [u.to_json() for u in self._users.values()],
            "tokens": [asdict(r) for r in self._tokens.values()],
            "unused_refresh_tokens": sorted(self._refresh),
            "counters": self._counters.to_json(),
        }

    def _load(self, store: JsonStore) -> None:
        data = store.load()
        if data is None:
            return
        for raw in data.get("users", []):
            user = SandboxUser.from_json(raw)
            self._users[user.name] = user
        unused = set(data.get("unused_refresh_tokens", []))
        for raw in data.get("tokens", []):
            record = AccessToken(**raw)
            self._tokens[record.token] = record
            if record.refresh_token in unused:
                self._refresh[record.refresh_token] = record.token
        self._counters = _Counters.from_json(data.get("counters", {}))

    def _save(self) -> None:
        if self._store is None:
            return
        with self.lock:
            self._store.save(self._snapshot())
            self._dirty = False

    def flush(self) -> None:
        """Write pending counter changes (request counts are not written on every request)."""
        with self.lock:
            if self._dirty:
                self._save()

    def close(self) -> None:
        self.ingest.close()
        self.exports.close()
        self.entity_actions.close()
        self.flush()
        self.repository.close()
