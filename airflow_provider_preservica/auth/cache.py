"""The shared token cache: one login per account and token lifetime, however many tasks run.

Read path: this process's memory -> the shared store (an Airflow Variable) -> login. A miss takes a
per-process and a per-host lock and reads the store again before logging in, so concurrent tasks on
a worker queue behind one login and then reuse its token; a timed lease in the store (see
``lease.py``) does the same between hosts. On a 401 only the token that failed is
dropped, so a task holding a stale token cannot throw away a fresh one another task just stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import ClassVar

from airflow_provider_preservica.auth.lease import LoginLease
from airflow_provider_preservica.auth.locks import single_flight
from airflow_provider_preservica.auth.settings import PreservicaSettings
from airflow_provider_preservica.auth.stores import TokenStore, TokenStoreUnavailable
from airflow_provider_preservica.auth.token import AccessToken

log = logging.getLogger(__name__)

_fallback_announced: set[str] = set()


def _mask(token: AccessToken) -> None:
    """Register the token with Airflow's secrets masker so task logs show ``***`` instead."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow is a dependency; kept for plain-Python use
        return
    mask_secret(token.value)


class TokenCache:
    """Hands out a valid token for one account, sharing it through ``store`` when there is one."""

    _memory: ClassVar[dict[str, AccessToken]] = {}
    _memory_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        settings: PreservicaSettings,
        login: Callable[[], AccessToken],
        store: TokenStore | None,
        *,
        lock_timeout: float = 300.0,
    ) -> None:
        self.settings = settings
        self._login = login
        self._store = store
        self._lock_timeout = lock_timeout
        self.key = settings.token_variable_key
        self.logins = 0  # logins performed through this instance; handy for tests and benchmarks

    # -- memory ---------------------------------------------------------------------------
    def _from_memory(self) -> AccessToken | None:
        with self._memory_guard:
            token = self._memory.get(self.key)
        if token and token.usable(self.settings.fingerprint, self.settings.expiry_margin):
            return token
        return None

    def _remember(self, token: AccessToken) -> None:
        with self._memory_guard:
            self._memory[self.key] = token

    def _forget(self, failed: AccessToken) -> None:
        with self._memory_guard:
            if (current := self._memory.get(self.key)) and current.value == failed.value:
                del self._memory[self.key]

    # -- shared store ------------------------------------------------------------------------
    def _store_unavailable(self, reason: str) -> None:
        self._store = None
        if self.key not in _fallback_announced:
            _fallback_announced.add(self.key)
            log.info(
                "Airflow Variables are not reachable here (%s); the Preservica token for %s is cached in "
                "this process's memory only",
                reason,
                self.settings.cache_name,
            )

    def _read_store(self) -> AccessToken | None:
        if self._store is None:
            return None
        try:
            raw = self._store.read(self.key)
        except TokenStoreUnavailable as exc:
            self._store_unavailable(str(exc))
            return None
        if raw is None:
            return None
        token = AccessToken.from_json(raw)
        if token is None:
            log.warning("Ignoring an unreadable token cache entry in %s; it will be overwritten", self.key)
            return None
        if token.fingerprint != self.settings.fingerprint:
            log.info(
                "Token cache %s holds a token for another server or account (host, user or tenant differ); "
                "it will be overwritten",
                self.key,
            )
            return None
        if not token.usable(self.settings.fingerprint, self.settings.expiry_margin):
            return None
        _mask(token)
        return token

    def _write_store(self, token: AccessToken) -> None:
        if self._store is None:
            return
        try:
            self._store.write(self.key, token.to_json())
        except TokenStoreUnavailable as exc:
            self._store_unavailable(str(exc))
        except Exception as exc:  # a failed write costs other tasks a login, not this task its run
            log.warning("Could not store the Preservica token in %s (%s)", self.key, type(exc).__name__)

    # -- public ------------------------------------------------------------------------------
    @property
    def store_name(self) -> str:
        return self._store.name if self._store is not None else "memory"

    def get_token(self) -> AccessToken:
        """A token with more than the expiry margin left; logs in only if nobody else has one."""
        token = self._from_memory() or self._read_store()
        if token:
            self._remember(token)
            return token
        with single_flight(self.key, self._lock_timeout):
            token = self._from_memory() or self._read_store()
            if token:
                self._remember(token)
                return token
            lease = self._lease()
            if lease is not None:
                token = lease.acquire(self._read_store, timeout=self._lock_timeout)
                if token:
                    self._remember(token)
                    return token
            try:
                token = self._login()
                self.logins += 1
                _mask(token)
                self._remember(token)
                self._write_store(token)
            finally:
                if lease is not None:
                    lease.release()
            return token

    def _lease(self) -> LoginLease | None:
        """A cross-host lease, when tokens are shared through a store other hosts can see."""
        if self._store is None or not self.settings.login_lease:
            return None
        return LoginLease(
            self._store,
            self.settings.lease_variable_key,
            claim_delay=self.settings.login_lease_delay,
            lease_seconds=self.settings.timeout * 2 + 30,
        )

    def invalidate(self, failed: AccessToken) -> None:
        """Drop ``failed`` from memory and from the store, but only if it is still the cached one."""
        with single_flight(self.key, self._lock_timeout):
            self._forget(failed)
            if self._store is None:
                return
            try:
                raw = self._store.read(self.key)
            except TokenStoreUnavailable as exc:
                self._store_unavailable(str(exc))
                return
            stored = AccessToken.from_json(raw)
            if stored is not None and stored.value == failed.value:
                try:
                    self._store.delete(self.key)
                except Exception as exc:
                    log.warning("Could not clear the token cache %s (%s)", self.key, type(exc).__name__)

    @classmethod
    def clear_memory(cls) -> None:
        with cls._memory_guard:
            cls._memory.clear()
