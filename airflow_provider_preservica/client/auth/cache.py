"""The shared token cache: one password login per account, then renewals by refresh, however many tasks run.

Read path: this process's memory -> the shared store (an Airflow Variable) -> renewal. A miss takes a
per-process and a per-host lock and reads the store again before it renews, so concurrent tasks on a
worker queue behind one renewal and then reuse its token; a timed lease in the store (see ``lease.py``)
does the same between hosts. On a 401 only the token that failed is dropped, so a task holding a stale
token cannot throw away a fresh one another task just stored.

Renewal (see ``token.py`` for *fresh*, *due*, *usable*, *refreshable*):

- A fresh token is used as it is. A due one (less than a third of its lifetime left) is renewed ahead
  of expiry, but nobody waits for that: if another thread, process or host is already renewing (its
  lock or lease is taken), the current token is used, as it is after a failed renewal ahead of expiry.
- A renewal spends the refresh token of the record in the store, read again under the locks and the
  lease, so only one process anywhere presents a given refresh token (single-use: a second would be
  refused). Where no store is shared (memory mode, outside a task) it is this process's own token.
- A refused or failed refresh (already used, expired, revoked, unreachable) is followed by one more
  look at the store (another host may have won a race and stored the new token) and then a password
  login, still under the same locks and lease.
- A refused login is remembered by this process for a few minutes: threads that queued behind it (a
  metadata run reads with eight) get the same error without asking again, since every refused login
  counts towards the account's lockout. Changed credentials are tried at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from airflow_provider_preservica.client.auth.lease import LoginLease
from airflow_provider_preservica.client.auth.locks import single_flight, try_single_flight
from airflow_provider_preservica.client.auth.stores import TokenStore, TokenStoreUnavailable
from airflow_provider_preservica.client.auth.token import AccessToken
from airflow_provider_preservica.connection.settings import PreservicaSettings
from airflow_provider_preservica.exceptions import PreservicaAuthError, PreservicaError, PreservicaLoginRejectedError

log = logging.getLogger(__name__)

_fallback_announced: set[str] = set()
#: Refresh tokens this process has presented, newest last; never presented twice (they are single-use).
_SPENT_KEPT = 64
#: After a failed renewal ahead of expiry, the next attempt waits this long (at most a twelfth of the lifetime).
RENEWAL_RETRY_SECONDS = 30.0
#: How long this process answers a refused login's credentials with the same refusal instead of a new login.
REFUSAL_KEPT_SECONDS = 300.0


def _masker() -> Callable[[str], object] | None:
    """Airflow's ``mask_secret``, or ``None`` without Airflow.

    Its first use imports Airflow (about a second outside a task, where nothing has imported it yet). The
    cache calls this before it logs in or refreshes, so that cost is paid before the token's lifetime
    starts counting rather than out of it.
    """
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow is a dependency; kept for plain-Python use
        return None
    return mask_secret


def _mask(token: AccessToken) -> None:
    """Register the token (and its refresh token) with Airflow's secrets masker: task logs show ``***``."""
    mask_secret = _masker()
    if mask_secret is None:  # pragma: no cover - see _masker
        return
    mask_secret(token.value)
    if token.refresh_token:
        mask_secret(token.refresh_token)


def _later(*tokens: AccessToken | None) -> AccessToken | None:
    """The token that expires last, or ``None``."""
    present = [token for token in tokens if token is not None]
    return max(present, key=lambda token: token.expires_at) if present else None


class TokenCache:
    """Hands out a valid token for one account, sharing it through ``store`` when there is one.

    ``login()`` logs in with the password. ``refresh(token)`` exchanges the token's refresh token for a
    new one and raises :class:`PreservicaError` when refused; when it is not given, ``login.refresh`` is
    used if the login has one (``PasswordLogin`` does), otherwise tokens are renewed by logging in.
    ``clock`` gives the time that tokens are judged by (wall-clock seconds, as ``expires_at`` is); tests
    pass a clock they move themselves instead of sleeping.
    """

    _memory: ClassVar[dict[str, AccessToken]] = {}
    _memory_guard: ClassVar[threading.Lock] = threading.Lock()
    _spent: ClassVar[dict[str, None]] = {}
    _not_before: ClassVar[dict[str, float]] = {}  # key -> no renewal ahead of expiry before this moment
    # key -> (digest of the refused credentials, until when, the refusal); the digest never leaves memory
    _refused: ClassVar[dict[str, tuple[str, float, PreservicaLoginRejectedError]]] = {}

    def __init__(
        self,
        settings: PreservicaSettings,
        login: Callable[[], AccessToken],
        store: TokenStore | None,
        *,
        refresh: Callable[[AccessToken], AccessToken] | None = None,
        lock_timeout: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._login = login
        self._refresh = refresh if refresh is not None else getattr(login, "refresh", None)
        self._store = store
        self._lock_timeout = lock_timeout
        self._clock = clock
        self.key = settings.token_variable_key
        self.logins = 0  # password logins performed through this instance; handy for tests and benchmarks
        self.refreshes = 0  # successful refreshes performed through this instance

    # -- memory ---------------------------------------------------------------------------
    def _usable(self, token: AccessToken | None) -> bool:
        return token is not None and token.usable(
            self.settings.fingerprint, self.settings.expiry_margin, now=self._clock()
        )

    def _memory_token(self) -> AccessToken | None:
        with self._memory_guard:
            return self._memory.get(self.key)

    def _from_memory(self) -> AccessToken | None:
        token = self._memory_token()
        return token if self._usable(token) else None

    def _remember(self, token: AccessToken) -> None:
        with self._memory_guard:
            self._memory[self.key] = token

    def _forget(self, failed: AccessToken) -> None:
        with self._memory_guard:
            if (current := self._memory.get(self.key)) and current.value == failed.value:
                del self._memory[self.key]

    @classmethod
    def _spend(cls, refresh_token: str) -> bool:
        """Mark a refresh token as presented; ``False`` if this process presented it before."""
        with cls._memory_guard:
            if refresh_token in cls._spent:
                return False
            cls._spent[refresh_token] = None
            while len(cls._spent) > _SPENT_KEPT:
                del cls._spent[next(iter(cls._spent))]
            return True

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

    def _stored(self) -> AccessToken | None:
        """The store's record for this account, expired or not (its refresh token may still be good)."""
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
        _mask(token)
        return token

    def _read_store(self) -> AccessToken | None:
        token = self._stored()
        return token if self._usable(token) else None

    def _fresh_in_store(self) -> AccessToken | None:
        token = self._read_store()
        return token if token is not None and token.fresh(now=self._clock()) else None

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
        """A token with more than the expiry margin left, renewed ahead of expiry; logs in only if it must."""
        token = self._from_memory()
        if token is None or not token.fresh(now=self._clock()):
            token = _later(token, self._read_store())
        if token is None:
            return self._renew(None)
        self._remember(token)
        if token.fresh(now=self._clock()) or self._clock() < self._not_before.get(self.key, 0.0):
            return token
        return self._renew(token)

    def _renew(self, current: AccessToken | None) -> AccessToken:
        """Renew under the single-flight locks and the lease: refresh if possible, else log in.

        ``current`` is a still-usable token being renewed ahead of expiry: then nothing waits for
        another renewer, and a failed renewal returns ``current``. ``None``: a token is needed now.
        """
        with contextlib.ExitStack() as stack:
            if current is None:
                stack.enter_context(single_flight(self.key, self._lock_timeout))
            elif not stack.enter_context(try_single_flight(self.key)):
                return self._postpone(current)  # another thread or process of this host is renewing
            stored = self._stored()
            current = _later(self._from_memory(), stored if self._usable(stored) else None)
            if current is not None:
                self._remember(current)
                if current.fresh(now=self._clock()):
                    return current  # renewed by someone else meanwhile
            lease = self._lease()
            if lease is not None:
                try:
                    if current is not None:
                        found = lease.try_acquire(self._fresh_in_store)
                        if found is None and not lease.held:
                            return self._postpone(current)  # another host is renewing
                    else:
                        found = lease.acquire(self._read_store, timeout=self._lock_timeout)
                except Exception as exc:  # the lease lives in a Variable too: one renewal too many beats a failure
                    log.warning(
                        "Could not take the Preservica login lease (%s); renewing without it", type(exc).__name__
                    )
                    with contextlib.suppress(Exception):
                        lease.release()
                    lease, found = None, None
                if found is not None:
                    self._remember(found)
                    return found
                stored = self._stored()  # as it is now that we hold the lease
            try:
                return self._obtain(stored, current)
            finally:
                if lease is not None:
                    lease.release()
        raise AssertionError("unreachable")  # pragma: no cover

    def _postpone(self, current: AccessToken) -> AccessToken:
        """Keep using ``current`` and look again a little later (not on every request)."""
        self._not_before[self.key] = self._clock() + min(5.0, current.lifetime / 40)
        return current

    def _obtain(self, stored: AccessToken | None, current: AccessToken | None) -> AccessToken:
        """Holding the locks (and lease): refresh the shared record's token, or log in; store the result."""
        _masker()  # its first use is slow: pay for it before the new token's lifetime starts, not out of it
        basis = stored if self._store is not None and stored is not None else _later(self._memory_token(), current)
        token: AccessToken | None = None
        refresh_token = basis.refresh_token if basis is not None and basis.refreshable(now=self._clock()) else None
        if basis is not None and refresh_token and self._refresh is not None and self._spend(refresh_token):
            token = self._try_refresh(basis)
            if token is None:  # refused: perhaps another process spent it first and stored the result
                winner = self._winner(basis)
                if winner is not None:
                    self._remember(winner)
                    return winner
        if token is None:
            try:
                token = self._password_login()
            except PreservicaError as exc:
                if current is not None and self._usable(current):
                    retry = min(RENEWAL_RETRY_SECONDS, current.lifetime / 12)
                    self._not_before[self.key] = self._clock() + retry
                    log.warning(
                        "Could not renew the Preservica token of %s (%s); using the current one, which is still "
                        "valid, and trying again in %.0f s",
                        self.settings.describe(),
                        exc,
                        retry,
                    )
                    return current
                raise
            self.logins += 1
        self._not_before.pop(self.key, None)
        _mask(token)
        self._remember(token)
        self._write_store(token)
        return token

    def _credentials(self) -> str:
        secrets = (self.settings.fingerprint, self.settings.password, self.settings.totp_secret or "")
        return hashlib.sha256("\n".join(secrets).encode()).hexdigest()

    def _password_login(self) -> AccessToken:
        """Log in, unless these very credentials were refused moments ago (see the module docstring)."""
        credentials = self._credentials()
        with self._memory_guard:
            refused = self._refused.get(self.key)
        if refused is not None and refused[0] == credentials and time.time() < refused[1]:
            raise type(refused[2])(str(refused[2]))
        try:
            return self._login()
        except PreservicaLoginRejectedError as exc:
            with self._memory_guard:
                self._refused[self.key] = (credentials, time.time() + REFUSAL_KEPT_SECONDS, exc)
            raise

    def _try_refresh(self, basis: AccessToken) -> AccessToken | None:
        """The refreshed token, or ``None`` (logged) when Preservica refused or could not be asked."""
        if self._refresh is None:
            return None
        try:
            token = self._refresh(basis)
        except PreservicaAuthError as exc:
            log.info("%s; logging in with the password instead", exc)
            return None
        except PreservicaError as exc:
            log.warning(
                "Could not refresh the Preservica token of %s (%s); logging in with the password instead",
                self.settings.describe(),
                exc,
            )
            return None
        self.refreshes += 1
        return token

    def _winner(self, basis: AccessToken) -> AccessToken | None:
        """After a refused refresh: a newer token another process stored meanwhile (it won the race), if any."""
        if self._store is None:
            return None
        for attempt in range(2):
            if attempt:
                time.sleep(self.settings.login_lease_delay)  # as long as a store write may take
            found = self._fresh_in_store()
            if found is not None and found.value != basis.value:
                log.info("Another worker renewed the Preservica token first; using its token")
                return found
        return None

    def _lease(self) -> LoginLease | None:
        """A cross-host lease, when tokens are shared through a store other hosts can see."""
        if self._store is None or not self.settings.login_lease:
            return None
        return LoginLease(
            self._store,
            self.settings.lease_variable_key,
            claim_delay=self.settings.login_lease_delay,
            lease_seconds=self.settings.timeout * 2 + 30,
            clock=self._clock,
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
            cls._not_before.clear()
            cls._refused.clear()
