"""HTTP transport, below both the auth and the client layers: one pooled ``requests.Session``, timeouts, polite retries.

Retries cover what is transient on a shared service: 429 and 503 (honouring ``Retry-After``), 502
and 504, and connection failures. A request that may not be repeated safely (a POST that changes
something) is retried only where the server cannot have acted on it: connection refused, 429, 503.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import os
import random
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, get_environ_proxies
from urllib3 import exceptions as urllib3_errors

from airflow_provider_preservica import __version__
from airflow_provider_preservica.exceptions import (
    PreservicaConfigError,
    PreservicaConnectionError,
    PreservicaRedirectError,
)
from airflow_provider_preservica.redirects import refuse_off_origin_redirect

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
REFUSED_BEFORE_PROCESSING = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = f"airflow-provider-preservica/{__version__} (+python-requests/{requests.__version__})"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe_connection_failure(exc: BaseException, url: str, timeout: float) -> str:
    """Say in plain words why a request never got an answer: DNS, refused, TLS or timeout."""
    host = urlsplit(url).hostname or url
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
        if current is None and chain[-1].args and isinstance(chain[-1].args[0], BaseException):
            current = chain[-1].args[0]
    text = " ".join(str(item) for item in chain)
    if any(isinstance(item, ssl.SSLError) for item in chain) or isinstance(exc, requests.exceptions.SSLError):
        return (
            f"TLS handshake with {host} failed ({_first_line(exc)}); check the certificate, or set the "
            "Connection extra 'ca_bundle' to your CA's PEM file ('verify_ssl': false only for a throwaway system)"
        )
    if (
        any(isinstance(item, socket.gaierror) for item in chain)
        or "Name or service not known" in text
        or ("getaddrinfo failed" in text or "Temporary failure in name resolution" in text)
    ):
        return f"cannot resolve host name {host!r} (DNS lookup failed); check the Connection's Host"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connecting to {host} timed out after {timeout:.0f} s"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"{host} did not answer within {timeout:.0f} s"
    if "Connection refused" in text or any(isinstance(item, ConnectionRefusedError) for item in chain):
        return f"connection to {host} refused; is the server running and the port right?"
    return f"connection to {host} failed: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _request_was_not_sent(exc: requests.RequestException) -> bool:
    """Connection errors raised before a byte of the request reached the server."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(exc, requests.exceptions.ReadTimeout):
        text = str(exc)
        return "NewConnectionError" in text or "Connection refused" in text or "Name or service" in text
    return False


_DIRECT_KWARGS = frozenset({"params", "data"})
_DIRECT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Accept": "*/*"}


def _as_requests_error(exc: Exception) -> requests.RequestException:
    """The ``requests`` exception that ``requests`` itself would raise for a urllib3 failure (so that every
    caller, and :func:`describe_connection_failure`, sees one kind of error whichever path sent it)."""
    if isinstance(exc, urllib3_errors.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3_errors.ConnectTimeoutError):
        error: requests.RequestException = requests.exceptions.ConnectTimeout(exc)
    elif isinstance(exc, urllib3_errors.ReadTimeoutError):
        error = requests.exceptions.ReadTimeout(exc)
    elif isinstance(exc, urllib3_errors.SSLError):
        error = requests.exceptions.SSLError(exc)
    elif isinstance(exc, urllib3_errors.LocationParseError):
        error = requests.exceptions.InvalidURL(exc)
    else:
        error = requests.exceptions.ConnectionError(exc)
    error.__cause__ = exc
    return error


def effective_verify(verify: bool | str) -> bool | str:
    """How to check the server's certificate, the same on every path (``requests``, the direct pool, boto3).

    The user's choice wins: ``False`` checks nothing, a path trusts that CA bundle. Only ``True`` consults
    ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, as ``requests`` does; left to itself ``requests`` would let
    those variables override ``False`` and a path too (``Session.merge_environment_settings``).
    """
    if verify is False or isinstance(verify, str):
        return verify
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def guard_session(session: requests.Session, base_url: str, verify: bool | str) -> None:
    """Make ``session`` keep to ``base_url``'s origin and to ``verify`` (from :func:`effective_verify`).

    Every response, each hop of a redirect included, passes a response hook that raises
    :class:`PreservicaRedirectError` for a redirect off the origin before ``requests`` would follow it. A
    request that names no ``verify`` of its own gets the session's, not ``REQUESTS_CA_BUNDLE``'s. Used for our
    session and for pyPreservica's (``interop.py``), which is built elsewhere: hence a function, not a subclass.
    """
    session.verify = verify
    session.hooks["response"].insert(0, functools.partial(_refuse_foreign_redirect, base_url))
    merge = session.merge_environment_settings

    def merge_keeping_verify(url: Any, proxies: Any, stream: Any, asked: Any, cert: Any) -> Any:
        settings = merge(url, proxies, stream, asked, cert)
        if asked is None:  # the caller did not choose: the session's choice, not the environment's
            settings["verify"] = session.verify
        return settings

    session.merge_environment_settings = merge_keeping_verify  # type: ignore[method-assign,assignment]


def _refuse_foreign_redirect(base_url: str, response: requests.Response, **_: Any) -> requests.Response:
    if response.is_redirect:
        request = response.request
        try:
            refuse_off_origin_redirect(
                base_url,
                str(request.method),
                str(request.url or response.url),
                response.headers["Location"],
                response.status_code,
            )
        except PreservicaRedirectError:
            response.close()
            raise
    return response


class HttpTransport:
    """Sends requests to one Preservica server; never sends anything to another origin, redirects included.

    Small requests (the Entity API's reads and writes, a bulk metadata run's many thousands) go straight to
    a urllib3 connection pool: ``requests.Session`` costs about three times the client CPU per request
    (preparing, merging the environment, cookies), which is what limits a parallel run. Streams, forms,
    redirects and any server reached through an environment proxy take the ``requests`` session; both
    return ``requests.Response`` objects and raise ``requests`` exceptions. Either follows a redirect only
    within the origin and raises :class:`PreservicaRedirectError` for any other (``redirects.py``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str = True,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        max_retry_wait: float = 60.0,
        pool_size: int = 16,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self.verify = effective_verify(verify)
        self.session = requests.Session()
        self.session.max_redirects = 10
        guard_session(self.session, self.base_url, self.verify)
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._pool = self._direct_pool(self.verify, pool_size)

    def _direct_pool(self, verify: bool | str, pool_size: int) -> urllib3.PoolManager | None:
        """A pool for the direct path, or ``None`` where ``requests`` must decide (an environment proxy)."""
        if get_environ_proxies(self.base_url):
            return None
        options: dict[str, Any] = {"maxsize": pool_size, "num_pools": 4, "retries": False}
        if verify is False:
            options["cert_reqs"] = "CERT_NONE"
        else:
            import certifi

            options.update(cert_reqs="CERT_REQUIRED", ca_certs=verify if isinstance(verify, str) else certifi.where())
        return urllib3.PoolManager(**options)

    def _send_direct(
        self, method: str, url: str, headers: Mapping[str, str] | None, timeout: float, kwargs: dict[str, Any]
    ) -> requests.Response | None:
        """Send through the pool; ``None`` when this request is for the ``requests`` session instead."""
        data = kwargs.get("data")
        if self._pool is None or set(kwargs) - _DIRECT_KWARGS or not isinstance(data, (bytes, str, type(None))):
            return None
        params = kwargs.get("params")
        target = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}" if params else url
        body = data.encode("utf-8") if isinstance(data, str) else data
        try:
            raw = self._pool.request(
                method,
                target,
                body=body,
                headers={**_DIRECT_HEADERS, **(headers or {})},
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=False,
                retries=False,
            )
        except urllib3_errors.HTTPError as exc:
            raise _as_requests_error(exc) from exc
        if 300 <= raw.status < 400 and raw.headers.get("Location"):
            refuse_off_origin_redirect(self.base_url, method, target, raw.headers["Location"], raw.status)
            return None  # within the origin: let requests follow it, as it always has
        response = requests.Response()
        response.status_code = raw.status
        response.headers = CaseInsensitiveDict(raw.headers)
        response._content = raw.data
        response._content_consumed = True  # type: ignore[attr-defined]  # iter_content then reuses _content
        response.raw = raw  # read whole already; close() releases nothing more
        response.reason = raw.reason or ""
        response.url = target
        response.encoding = get_encoding_from_headers(response.headers)
        return response

    def url_for(self, path_or_url: str) -> str:
        """Absolute URL for a path, or an absolute URL (e.g. ``Paging/Next``) on the same origin."""
        if "://" not in path_or_url:
            return urljoin(self.base_url + "/", path_or_url.lstrip("/"))
        mine, theirs = urlsplit(self.base_url), urlsplit(path_or_url)
        if (mine.scheme, mine.netloc) != (theirs.scheme, theirs.netloc):
            # Preservica builds paging URLs from the Host it saw; behind a proxy that can differ.
            # Re-base the path on our server rather than send the token to another origin.
            rebased = theirs._replace(scheme=mine.scheme, netloc=mine.netloc).geturl()
            log.debug("Re-based %s onto %s", theirs.netloc, mine.netloc)
            return rebased
        return path_or_url

    def _wait_before_retry(self, attempt: int, response: requests.Response | None) -> float:
        advised = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        if advised is not None:
            return min(advised, self.max_retry_wait)
        backoff = self.backoff_base * (2 ** (attempt - 1))
        return min(backoff * (0.5 + random.random()), self.max_retry_wait)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        retry_unsafe: bool = False,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request, retrying transient failures; return the final response whatever its status.

        ``retry_unsafe`` marks a POST that is harmless to repeat (login, search).
        """
        method = method.upper()
        url = self.url_for(path_or_url)
        repeatable = method in IDEMPOTENT_METHODS or retry_unsafe
        effective_timeout = timeout or self.timeout
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                direct = self._send_direct(method, url, headers, effective_timeout, kwargs)
                # (not ``direct or ...``: a Response is falsy when its status is an error)
                response = (
                    direct
                    if direct is not None
                    else self.session.request(
                        method, url, headers=dict(headers or {}), timeout=effective_timeout, **kwargs
                    )
                )
            except requests.exceptions.InvalidURL as exc:
                raise PreservicaConfigError(f"invalid Preservica URL {url!r}: {_first_line(exc)}") from None
            except requests.RequestException as exc:
                retryable = repeatable or _request_was_not_sent(exc)
                reason = describe_connection_failure(exc, url, effective_timeout)
                if isinstance(exc, requests.exceptions.SSLError) or "cannot resolve" in reason:
                    retryable = False  # a wrong certificate or host name will not fix itself
                if not retryable or attempt == attempts:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise PreservicaConnectionError(f"{method} {url}: {reason}{tries}") from None
                wait = self._wait_before_retry(attempt, None)
                log.warning(
                    "%s %s: %s; retrying in %.1f s (attempt %d of %d)",
                    method,
                    urlsplit(url).path,
                    reason,
                    wait,
                    attempt + 1,
                    attempts,
                )
                self._sleep(wait)
                continue
            status = response.status_code
            retryable = status in RETRY_STATUSES and (repeatable or status in REFUSED_BEFORE_PROCESSING)
            if not retryable or attempt == attempts:
                return response
            wait = self._wait_before_retry(attempt, response)
            log.warning(
                "Preservica answered %d to %s %s; retrying in %.1f s (attempt %d of %d)",
                status,
                method,
                urlsplit(url).path,
                wait,
                attempt + 1,
                attempts,
            )
            response.close()
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.session.close()
        if self._pool is not None:
            self._pool.clear()
