"""HTTP transport, below the client's API modules and the auth layer: one pooled session, timeouts, polite retries.

Retries are urllib3's ``Retry`` with this provider's rules (``retries.py``): on the ``requests`` session
through its ``HTTPAdapter`` (as Airflow's ``HttpHook`` and most well-kept clients do), and on the direct path
through urllib3 itself. Redirects are followed only within the Connection's origin (``redirects.py``).

The direct path. Small requests (the Entity API's reads and writes, a bulk metadata run's many thousands) go
straight to a urllib3 connection pool, and come back as ordinary ``requests.Response`` objects (built from
their public attributes: the body, read whole by urllib3 within the retries, is ``Response.raw``). A
``requests.Session`` costs about twice the client CPU per request (preparing, merging the environment,
cookies, hooks), which is what limits a parallel run; the path is kept because that still holds, measured
with ``benchmarks/metadata.py`` (2,000 rows, 8 workers, no latency), twice with the direct path and
twice with ``direct=False`` (set as the default for the run), alternately, on the shared 2-CPU build machine
(load 12-22: wall times are noisy; client CPU per row is not), 2026-12-07::

    nice .venv/bin/python benchmarks/metadata.py --rows 2000 --memory --settle-seconds 2

                               client CPU ms/row     seconds (2,000 rows)
                               direct   session      direct     session
    ours dry run (GETs)        0.34 0.37  0.65 0.68  1.82 2.63  3.34 3.75
    ours apply (GETs + PUTs)   0.74 0.77  1.47 1.42  4.28 6.83  7.23 8.88
    (pyPreservica's loop, for scale: 1.26-1.39 ms/row; a raw requests loop 1.18-1.26)

Before the rebuild on ``Retry`` (hand-written loop, body read through ``Response._content``), on a quieter
machine: 0.33 and 0.79 ms/row direct, 0.82 and 1.44 through the session.

Streams, forms, files, redirects within the origin and any server reached through an environment proxy take
the ``requests`` session, where a body cut off mid-read is retried by hand (``_send_session``: ``requests``
reads it after urllib3's retries are done). Both paths return ``requests.Response`` objects and raise
``requests`` exceptions, which :meth:`HttpTransport.request` turns into :class:`PreservicaConnectionError`
with the reason in words.
"""

from __future__ import annotations

import contextvars
import functools
import io
import logging
import os
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
from urllib3.util.retry import Retry

from airflow_provider_preservica import __version__
from airflow_provider_preservica.client.failures import as_requests_error, describe_connection_failure, first_line
from airflow_provider_preservica.client.redirects import refuse_off_origin_redirect
from airflow_provider_preservica.client.retries import (
    IDEMPOTENT_METHODS,
    REFUSED_BEFORE_PROCESSING,
    RETRY_STATUSES,
    Pacing,
    parse_retry_after,
    retry_for,
)
from airflow_provider_preservica.exceptions import (
    PreservicaConfigError,
    PreservicaConnectionError,
    PreservicaRedirectError,
)

__all__ = [
    "IDEMPOTENT_METHODS",
    "REFUSED_BEFORE_PROCESSING",
    "RETRY_STATUSES",
    "USER_AGENT",
    "HttpTransport",
    "describe_connection_failure",
    "effective_verify",
    "guard_session",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-preservica/{__version__} (+python-requests/{requests.__version__})"
_DIRECT_KWARGS = frozenset({"params", "data"})
_DIRECT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Accept": "*/*"}

#: The ``Retry`` of the request :meth:`HttpTransport.request` is sending in this thread (or task), if any.
_REQUEST_RETRY: contextvars.ContextVar[Retry | None] = contextvars.ContextVar("preservica_request_retry", default=None)


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
    session and for pyPreservica's (``pypreservica.py``), which is built elsewhere: hence a function, not a subclass.
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


class RetryingAdapter(HTTPAdapter):
    """``HTTPAdapter`` that sends each request with the ``Retry`` :meth:`HttpTransport.request` chose for it.

    ``requests`` gives an adapter one ``max_retries`` for all its requests; ours differ per request (a login
    may be repeated, a POST that creates something may not, each has its own timeout and wait record), and
    ``Session.request`` passes nothing through to the adapter. So the transport sets the request's ``Retry``
    in a context variable (local to the thread, as the call itself is) around ``Session.request``, and
    ``max_retries`` reads it; outside such a call it is the adapter's own (no retries, as ``requests``'s).
    """

    @property
    def max_retries(self) -> Retry:
        chosen = _REQUEST_RETRY.get()
        return self._default_retries if chosen is None else chosen

    @max_retries.setter
    def max_retries(self, value: Retry) -> None:
        self._default_retries = value


class HttpTransport:
    """Sends requests to one Preservica server; never sends anything to another origin, redirects included.

    See the module docstring for the two paths. ``max_retries``, ``backoff_base`` and ``max_retry_wait`` are
    read at each request; ``sleep`` is how a retry waits (tests pass a recorder). ``direct=False`` sends
    everything through the ``requests`` session.
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
        direct: bool = True,
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
        adapter = RetryingAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._pool = self._direct_pool(self.verify, pool_size) if direct else None

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
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        timeout: float,
        kwargs: dict[str, Any],
        retry: Retry,
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
                retries=retry,  # the body is read within the retries: a connection dropped mid-body is retried
            )
        except urllib3_errors.HTTPError as exc:
            raise as_requests_error(exc) from exc
        if 300 <= raw.status < 400 and raw.headers.get("Location"):
            refuse_off_origin_redirect(self.base_url, method, target, raw.headers["Location"], raw.status)
            return None  # within the origin: let requests follow it, as it always has
        response = requests.Response()
        response.status_code = raw.status
        response.headers = CaseInsensitiveDict(raw.headers)
        response.raw = io.BytesIO(raw.data)  # read whole (and decoded) already; Response.content reads it from here
        response.reason = raw.reason or ""
        response.url = target
        response.encoding = get_encoding_from_headers(response.headers)
        return response

    def _send_session(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        timeout: float,
        kwargs: dict[str, Any],
        retry: Retry,
    ) -> requests.Response:
        """Send through the ``requests`` session; a body cut off mid-read is sent again, as one more retry.

        urllib3's ``Retry`` cannot see that cut: ``requests`` reads a body that is not streamed in
        ``Session.send`` after the adapter has returned, so a connection dropped mid-body would end a GET at
        once. So the session is asked to stream (reading the body is all ``stream`` changes in ``Session.send``)
        and the body is read here: a cut (``ProtocolError``) or a stalled read (``ReadTimeoutError``) counts
        against the ``Retry`` the response came back with (``raw.retries``), so that it is retried for the same
        methods, within the same budget, with the same waits and log line as any other read failure. A body
        the caller asked to stream is the caller's to read.
        """
        kwargs = dict(kwargs)
        streamed = kwargs.pop("stream", False)
        while True:
            chosen = _REQUEST_RETRY.set(retry)
            try:
                response = self.session.request(
                    method, url, headers=dict(headers or {}), timeout=timeout, stream=True, **kwargs
                )
            finally:
                _REQUEST_RETRY.reset(chosen)
            if streamed:
                return response
            try:
                response.content  # noqa: B018 (reads the body)
                return response
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as exc:
                response.close()
                cut = exc.args[0] if exc.args else None
                if not isinstance(cut, (urllib3_errors.ProtocolError, urllib3_errors.ReadTimeoutError)):
                    raise
                try:  # raises the cut itself when the method may not be repeated, MaxRetryError when spent
                    retry = (getattr(response.raw, "retries", None) or retry).increment(method, url, error=cut)
                except urllib3_errors.MaxRetryError as spent:
                    raise as_requests_error(spent) from spent
                except urllib3_errors.HTTPError:
                    raise exc from None
                retry.sleep()

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
        """Send a request, retrying transient failures (``retries.py``); return the final response whatever its status.

        ``retry_unsafe`` marks a POST that is harmless to repeat (login, search).
        """
        method = method.upper()
        url = self.url_for(path_or_url)
        effective_timeout = timeout or self.timeout
        pacing = Pacing(
            sleep=self._sleep,
            backoff_base=self.backoff_base,
            max_wait=self.max_retry_wait,
            attempts=max(0, self.max_retries) + 1,
            method=method,
            url=url,
            timeout=effective_timeout,
        )
        retry = retry_for(
            repeatable=method in IDEMPOTENT_METHODS or retry_unsafe, max_retries=self.max_retries, pacing=pacing
        )
        try:
            response = self._send_direct(method, url, headers, effective_timeout, kwargs, retry)
            if response is None:  # (not ``or``: a Response is falsy when its status is an error)
                response = self._send_session(method, url, headers, effective_timeout, kwargs, retry)
        except requests.exceptions.InvalidURL as exc:
            raise PreservicaConfigError(f"invalid Preservica URL {url!r}: {first_line(exc)}") from None
        except requests.RequestException as exc:
            error = as_requests_error(exc)
            if isinstance(error, requests.exceptions.InvalidURL):
                raise PreservicaConfigError(f"invalid Preservica URL {url!r}: {first_line(error)}") from None
            reason = describe_connection_failure(error, url, effective_timeout)
            tries = f" after {pacing.attempts_made} attempts" if pacing.attempts_made > 1 else ""
            raise PreservicaConnectionError(f"{method} {url}: {reason}{tries}") from None
        return response

    def close(self) -> None:
        self.session.close()
        if self._pool is not None:
            self._pool.clear()
