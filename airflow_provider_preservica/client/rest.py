"""The REST client: authenticated requests, one 401 recovery, errors that say what went wrong."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any, Protocol

import requests

from airflow_provider_preservica.client.auth.token import AccessToken
from airflow_provider_preservica.client.http import HttpTransport
from airflow_provider_preservica.exceptions import PreservicaHTTPError, PreservicaTokenRejectedError

log = logging.getLogger(__name__)

TOKEN_HEADER = "Preservica-Access-Token"
VERSION_PATH = "/api/entity/versiondetails/version"
USER_DETAILS_PATH = "/api/user/details"


class TokenProvider(Protocol):
    def get_token(self) -> AccessToken: ...

    def invalidate(self, failed: AccessToken) -> None: ...


def error_detail(response: requests.Response, limit: int = 500) -> str:
    """The server's own explanation, from a JSON ``message`` or the text of an XML/HTML body."""
    content_type = response.headers.get("Content-Type", "")
    try:
        if "json" in content_type:
            body = response.json()
            if isinstance(body, dict):
                for key in ("message", "error", "detail", "errorMessage"):
                    if body.get(key):
                        return str(body[key])[:limit]
        text = response.text
    except (ValueError, RuntimeError):
        return response.reason or ""
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return (text or response.reason or "")[:limit]


class PreservicaClient:
    """Authenticated access to one Preservica server.

    Every request carries the cached token. A 401 drops that token (only that one), fetches a
    valid one - usually by one new login - and retries once; a second 401 is an error, never a loop.
    """

    def __init__(self, transport: HttpTransport, tokens: TokenProvider) -> None:
        self.transport = transport
        self.tokens = tokens

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    def _send(self, method: str, path: str, token: AccessToken, headers: dict[str, str] | None, **kwargs: Any):
        merged = {TOKEN_HEADER: token.value, **(headers or {})}
        return self.transport.request(method, path, headers=merged, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        expected: Iterable[int] = (200,),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send an authenticated request; raise :class:`PreservicaHTTPError` unless status is expected."""
        token = self.tokens.get_token()
        response = self._send(method, path, token, headers, **kwargs)
        if response.status_code == 401:
            response.close()
            log.info("Preservica rejected the cached token for %s %s; obtaining a new one", method, path)
            self.tokens.invalidate(token)
            token = self.tokens.get_token()
            response = self._send(method, path, token, headers, **kwargs)
            if response.status_code == 401:
                detail = error_detail(response)
                self.tokens.invalidate(token)
                raise PreservicaTokenRejectedError(
                    f"Preservica rejected a freshly issued token for {method} {path} ({detail or 'HTTP 401'}); "
                    "the account may lack the rights for this call, or the server's clock or session store "
                    "is at fault. Not retrying further."
                )
        if response.status_code not in set(expected):
            detail = error_detail(response)
            response.close()
            raise PreservicaHTTPError(response.status_code, method.upper(), path, detail)
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise PreservicaHTTPError(
                response.status_code, "GET", path, "expected a JSON body but got something else"
            ) from None

    def get_xml(self, path: str, **kwargs: Any) -> ET.Element:
        response = self.request("GET", path, **kwargs)
        try:
            return ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise PreservicaHTTPError(response.status_code, "GET", path, f"malformed XML ({exc})") from None

    def server_version(self) -> str:
        """The Preservica release, e.g. ``7.7.1``, from ``versiondetails/version``."""
        root = self.get_xml(VERSION_PATH)
        for element in root.iter():
            if element.tag.rsplit("}", 1)[-1] == "CurrentVersion" and element.text:
                return element.text.strip()
        raise PreservicaHTTPError(200, "GET", VERSION_PATH, "no CurrentVersion element in the response")

    def user_details(self) -> dict[str, Any]:
        body = self.get_json(USER_DETAILS_PATH)
        return body if isinstance(body, dict) else {}

    def close(self) -> None:
        self.transport.close()
