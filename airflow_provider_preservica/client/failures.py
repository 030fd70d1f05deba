"""What went wrong when a request got no answer, in one kind of exception and in plain words.

The transport sends through ``requests`` or straight through urllib3 (``http.py``), and urllib3's ``Retry``
wraps the last failure in ``MaxRetryError``; :func:`as_requests_error` gives every caller the exception
``requests`` itself would raise, whichever path failed, and :func:`describe_connection_failure` says why
(DNS, refused, TLS or timeout), for the error and for the log line before each retry (``retries.py``).
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import requests
from urllib3 import exceptions as urllib3_errors

_DNS_WORDS = ("Name or service not known", "getaddrinfo failed", "Temporary failure in name resolution")


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: its causes, its contexts and an exception given as its first argument."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
        if current is None and chain[-1].args and isinstance(chain[-1].args[0], BaseException):
            current = chain[-1].args[0]
    return chain


def is_name_resolution_failure(exc: BaseException) -> bool:
    """The host name did not resolve (a wrong Connection host, or no DNS): no retry will fix it."""
    chain = causes(exc)
    text = " ".join(str(item) for item in chain)
    return any(isinstance(item, socket.gaierror) for item in chain) or any(words in text for words in _DNS_WORDS)


def as_requests_error(exc: Exception) -> requests.RequestException:
    """The ``requests`` exception that ``requests`` itself would raise for this failure, ``MaxRetryError`` unwrapped.

    ``requests`` reports a read timeout that outlasted the retries as a ``ConnectionError`` around urllib3's
    ``MaxRetryError``; unwrapped, it is a ``ReadTimeout`` again, so that the error says the server did not answer.
    """
    if isinstance(exc, requests.RequestException):
        inner = exc.args[0] if exc.args else None
        if not isinstance(inner, urllib3_errors.MaxRetryError):
            return exc
        exc = inner
    if isinstance(exc, urllib3_errors.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3_errors.NewConnectionError):  # a subclass of ConnectTimeoutError, but not a timeout
        error: requests.RequestException = requests.exceptions.ConnectionError(exc)
    elif isinstance(exc, urllib3_errors.ConnectTimeoutError):
        error = requests.exceptions.ConnectTimeout(exc)
    elif isinstance(exc, urllib3_errors.ReadTimeoutError):
        error = requests.exceptions.ReadTimeout(exc)
    elif isinstance(exc, urllib3_errors.SSLError):
        error = requests.exceptions.SSLError(exc)
    elif isinstance(exc, urllib3_errors.LocationParseError):
        error = requests.exceptions.InvalidURL(exc)
    elif isinstance(exc, requests.RequestException):
        return exc
    else:
        error = requests.exceptions.ConnectionError(exc)
    error.__cause__ = exc
    return error


def describe_connection_failure(exc: BaseException, url: str, timeout: float) -> str:
    """Say in plain words why a request never got an answer: DNS, refused, TLS or timeout."""
    host = urlsplit(url).hostname or url
    chain = causes(exc)
    text = " ".join(str(item) for item in chain)
    if any(isinstance(item, ssl.SSLError) for item in chain) or isinstance(exc, requests.exceptions.SSLError):
        return (
            f"TLS handshake with {host} failed ({first_line(exc)}); check the certificate, or set the "
            "Connection extra 'ca_bundle' to your CA's PEM file ('verify_ssl': false only for a throwaway system)"
        )
    if is_name_resolution_failure(exc):
        return f"cannot resolve host name {host!r} (DNS lookup failed); check the Connection's Host"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connecting to {host} timed out after {timeout:.0f} s"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"{host} did not answer within {timeout:.0f} s"
    if "Connection refused" in text or any(isinstance(item, ConnectionRefusedError) for item in chain):
        return f"connection to {host} refused; is the server running and the port right?"
    return f"connection to {host} failed: {first_line(exc)}"


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]
