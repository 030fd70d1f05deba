"""A login lease across hosts over a last-writer-wins store (Fischer's timed mutual exclusion).

Airflow Variables have no compare-and-set, so workers on different hosts cannot lock one another.
Fischer's algorithm only needs writes that finish within a known time: read the lease; if nobody
holds it, write your claim, wait longer than any write can take, and read again. If your claim is
still there, every competitor that could overwrite it has already done so, so you hold the lease;
otherwise somebody else does and you wait for the token they will store. The same lease guards
logins and refreshes: one holder across all hosts spends a token's single-use refresh token.

If the bound is ever broken (a very slow write) two hosts may both log in: one login too many,
never a failure. A holder that dies frees the lease when it expires.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from airflow_provider_preservica.client.auth.stores import TokenStore

log = logging.getLogger(__name__)

T = TypeVar("T")
LOGIN_WAIT = "Another worker is logging in to Preservica; waiting for its token"


class LoginLease:
    def __init__(
        self,
        store: TokenStore,
        key: str,
        *,
        claim_delay: float = 0.5,
        lease_seconds: float = 90.0,
        poll_interval: float = 0.2,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        waiting_message: str = LOGIN_WAIT,
    ) -> None:
        self.store = store
        self.key = key
        self.claim_delay = claim_delay
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep
        self.waiting_message = waiting_message
        self.owner = uuid.uuid4().hex
        self.held = False

    def _holder(self) -> tuple[str, float] | None:
        try:
            data = json.loads(self.store.read(self.key) or "null")
            owner, expires = str(data["owner"]), float(data["expires"])
        except (ValueError, TypeError, KeyError):
            return None
        return (owner, expires) if expires > self._clock() else None

    def acquire(self, ready: Callable[[], T | None], timeout: float) -> T | None:
        """Hold the lease (returns ``None``), or return what ``ready()`` finds while another holds it.

        ``ready`` re-reads the token store, so waiters pick up the holder's token as soon as it lands.
        After ``timeout`` the caller proceeds without the lease (an extra login beats a failed task).
        """
        deadline = self._clock() + timeout
        announced = False
        while self._clock() < deadline:
            holder = self._holder()
            if holder is not None and holder[0] != self.owner:
                if not announced:
                    log.info("%s", self.waiting_message)
                    announced = True
                found = ready()
                if found is not None:
                    return found
                self._sleep(self.poll_interval)
                continue
            self.store.write(self.key, json.dumps({"owner": self.owner, "expires": self._clock() + self.lease_seconds}))
            self._sleep(self.claim_delay)
            holder = self._holder()
            if holder is not None and holder[0] == self.owner:
                self.held = True
                found = ready()  # the previous holder may have finished just before we took over
                if found is not None:
                    self.release()
                return found
            found = ready()
            if found is not None:
                return found
        if self.waiting_message == LOGIN_WAIT:
            log.warning("No Preservica login lease after %.0f s; logging in without it", timeout)
        return None

    def try_acquire(self, ready: Callable[[], T | None]) -> T | None:
        """One claim, no waiting for another holder (a renewal ahead of expiry): ``self.held`` says if it won.

        Returns what ``ready()`` finds once the lease is held (the previous holder may have stored a
        token just before), releasing the lease again in that case.
        """
        holder = self._holder()
        if holder is not None and holder[0] != self.owner:
            return None
        self.store.write(self.key, json.dumps({"owner": self.owner, "expires": self._clock() + self.lease_seconds}))
        self._sleep(self.claim_delay)
        holder = self._holder()
        if holder is None or holder[0] != self.owner:
            return None
        self.held = True
        found = ready()
        if found is not None:
            self.release()
        return found

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        holder = self._holder()
        if holder is not None and holder[0] == self.owner:
            try:
                self.store.delete(self.key)
            except Exception as exc:  # an expiring lease frees itself; nothing else to do
                log.debug("Could not release the login lease %s (%s)", self.key, type(exc).__name__)
