"""When to send a request again, and how long to wait first: urllib3's ``Retry``, with this provider's rules.

Retries cover what is transient on a shared service: 429 and 503 (honouring ``Retry-After``), 502 and 504,
connection failures and read timeouts. Each request the transport sends (``http.py``, on either of its
paths: the ``requests`` session's ``HTTPAdapter`` or the direct urllib3 pool) carries a :class:`PoliteRetry`
from :func:`retry_for`, and urllib3 does the counting, as it does for Airflow's ``HttpHook`` and most
well-kept clients. As configured there:

- ``total=max_retries``: that many attempts after the first, whatever failed;
- a connection that could not be made (nothing was sent) is retried for every method; a read failure or a
  retryable status only for an idempotent method (``IDEMPOTENT_METHODS``) or a POST its caller marks as
  harmless to repeat (the login, a search), since the server may have acted on it;
- ``other=0``: a TLS failure (a wrong certificate) is not retried; ``raise_on_status=False``: the last
  response comes back whatever its status, for the caller to read; redirects are left to ``requests``,
  which follows them within the origin only (``redirects.py``).

What ``Retry`` cannot express is kept here, each as a small override:

- :meth:`PoliteRetry.is_retry`: 429 and 503 are retried for *any* method, a POST that creates something
  included: the server refused the request before acting on it. urllib3 asks about the method first.
- :meth:`PoliteRetry.increment`: a host name that does not resolve is not retried; urllib3 counts it as
  a connection error, but a wrong host will not fix itself in the seconds a retry waits.
- :meth:`PoliteRetry.sleep`: the wait goes through the transport's injected ``sleep`` (tests pass a
  recorder, so that nothing waits on the wall clock) and is recorded (the error says how many attempts were
  made); ``Retry-After`` (parsed by urllib3) is capped at ``max_wait``; the backoff has jitter and starts at
  the first retry (urllib3's starts at the second); and every wait is logged with its reason.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from urllib3 import exceptions as urllib3_errors
from urllib3.util.retry import Retry

from airflow_provider_preservica.client.failures import (
    as_requests_error,
    describe_connection_failure,
    is_name_resolution_failure,
)

if TYPE_CHECKING:
    from typing_extensions import Self
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
REFUSED_BEFORE_PROCESSING = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), if any (urllib3 parses it)."""
    if not value or not value.strip():
        return None
    try:
        return float(Retry().parse_retry_after(value.strip()))
    except urllib3_errors.InvalidHeader:
        try:
            return max(0.0, float(value))  # "1.5": not in the RFC, but meant as seconds
        except ValueError:
            return None


@dataclass
class Pacing:
    """What one request's retries share: how to wait, the limits, and the waits so far (for the error message)."""

    sleep: Callable[[float], None]
    backoff_base: float
    max_wait: float
    attempts: int  # allowed in all: the first and max_retries more
    method: str
    url: str
    timeout: float
    waits: list[float] = field(default_factory=list)

    @property
    def attempts_made(self) -> int:
        return len(self.waits) + 1


class PoliteRetry(Retry):
    """urllib3's ``Retry`` with the three rules it cannot express (see the module docstring)."""

    RETRY_AFTER_STATUS_CODES = REFUSED_BEFORE_PROCESSING  # not 413: a body too large stays too large

    def __init__(self, *args: Any, pacing: Pacing | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pacing = pacing

    def new(self, **kw: Any) -> Self:
        kw.setdefault("pacing", self.pacing)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """429 and 503 for any method (refused before processing); the rest as urllib3 decides."""
        if status_code in REFUSED_BEFORE_PROCESSING and status_code in self.status_forcelist:
            return True
        return super().is_retry(method, status_code, has_retry_after)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        """As urllib3's, except that a host name that does not resolve ends the retries at once."""
        if error is not None and is_name_resolution_failure(error):
            raise urllib3_errors.MaxRetryError(_pool, url, error) from error  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """Wait before the next attempt: ``Retry-After`` if the server sent one (at most ``max_wait``), else backoff."""
        pacing = self.pacing
        if pacing is None:  # a plain Retry's behaviour, with time.sleep
            super().sleep(response)
            return
        advised = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        if advised is not None and self.respect_retry_after_header:
            wait = min(advised, pacing.max_wait)
        else:
            backoff = pacing.backoff_base * (2 ** (len(self.history) - 1))
            wait = min(backoff * (0.5 + random.random()), pacing.max_wait)
        self._log(wait, response)
        pacing.waits.append(wait)
        pacing.sleep(wait)

    def _log(self, wait: float, response: BaseHTTPResponse | None) -> None:
        pacing = self.pacing
        assert pacing is not None
        path = urlsplit(pacing.url).path
        attempt = len(self.history) + 1
        last = self.history[-1] if self.history else None
        if response is not None or last is None or last.error is None:
            status = response.status if response is not None else (last.status if last else None)
            log.warning(
                "Preservica answered %s to %s %s; retrying in %.1f s (attempt %d of %d)",
                status,
                pacing.method,
                path,
                wait,
                attempt,
                pacing.attempts,
            )
            return
        reason = describe_connection_failure(as_requests_error(last.error), pacing.url, pacing.timeout)
        log.warning(
            "%s %s: %s; retrying in %.1f s (attempt %d of %d)",
            pacing.method,
            path,
            reason,
            wait,
            attempt,
            pacing.attempts,
        )


def retry_for(*, repeatable: bool, max_retries: int, pacing: Pacing) -> PoliteRetry:
    """The ``Retry`` for one request: ``repeatable`` when it may be sent twice (idempotent, or marked so)."""
    return PoliteRetry(
        total=max(0, max_retries),
        connect=None,
        read=None,
        status=None,
        other=0,
        allowed_methods=None if repeatable else IDEMPOTENT_METHODS,
        status_forcelist=RETRY_STATUSES,
        raise_on_status=False,
        respect_retry_after_header=True,
        pacing=pacing,
    )
