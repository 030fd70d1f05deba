"""Errors raised by the provider.

Every message says what is wrong and how to fix it, and never contains a password, a 2FA secret or
an access token: callers may log or show these messages anywhere.
"""

from __future__ import annotations


class PreservicaError(Exception):
    """Base class of every error this provider raises."""


class PreservicaConfigError(PreservicaError):
    """Connection, ini file or argument is missing or malformed; fix the configuration and retry."""


class InsecureTransportError(PreservicaConfigError):
    """Credentials would travel over plain http to a host that is not loopback."""


class PreservicaRedirectError(PreservicaConfigError):
    """The server redirected a request carrying credentials or a token off the Connection's origin (or to
    plain http); it was not followed. The message names the origin and how to fix the Connection."""


class PreservicaAuthError(PreservicaError):
    """Preservica refused the credentials (wrong password, tenant, 2FA code, locked account)."""


class PreservicaTokenRejectedError(PreservicaAuthError):
    """A freshly issued token was rejected too: retrying would only loop."""


class PreservicaConnectionError(PreservicaError):
    """The server could not be reached (DNS, refused, TLS, timeout) after the configured retries."""


class PreservicaHTTPError(PreservicaError):
    """Preservica answered with an error status that retries did not cure."""

    def __init__(self, status: int, method: str, url: str, detail: str = "") -> None:
        self.status = status
        self.method = method
        self.url = url
        self.detail = detail
        text = f"Preservica answered HTTP {status} to {method} {url}"
        if detail:
            text += f": {detail}"
        super().__init__(text)
