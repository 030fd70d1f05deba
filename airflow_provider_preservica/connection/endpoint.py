"""Turn what users type as "host" into a base URL, refusing clear-text credentials on a network."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from airflow_provider_preservica.exceptions import InsecureTransportError, PreservicaConfigError


def is_loopback(hostname: str) -> bool:
    name = hostname.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def build_base_url(host: str | None, port: int | None = None, *, allow_http: bool = False) -> str:
    """Return ``scheme://host[:port]`` for a bare host name or a URL.

    A bare name gets https, or http when the Connection sets ``allow_http`` (a URI Connection cannot put a
    scheme in its host: ``preservica://user:pw@sandbox.lan:8765/?allow_http=true`` means plain http). Plain
    http is accepted only for loopback hosts (the sandbox) or with ``allow_http``; anything else would send
    the password in clear text. Write ``https://`` in the host to keep TLS with ``allow_http`` set.
    """
    raw = (host or "").strip()
    if not raw:
        raise PreservicaConfigError(
            "no Preservica host configured: set the Connection's Host to e.g. 'eu.preservica.com' "
            "(or a URL such as 'https://eu.preservica.com')"
        )
    if "://" not in raw:
        raw = f"{'http' if allow_http else 'https'}://{raw}"
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise PreservicaConfigError(f"unsupported scheme {scheme!r} in Preservica host {host!r}: use https://")
    if not parts.hostname:
        raise PreservicaConfigError(f"cannot read a host name from {host!r}")
    if parts.path.strip("/") or parts.query:
        raise PreservicaConfigError(
            f"Preservica host {host!r} has a path or query; give only the server, e.g. 'https://eu.preservica.com'"
        )
    effective_port = parts.port or port
    if scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise InsecureTransportError(
            f"refusing to send Preservica credentials over plain http to {parts.hostname}: use https, or set "
            'the Connection extra "allow_http": true if this network is really trusted'
        )
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if effective_port:
        netloc = f"{netloc}:{effective_port}"
    return f"{scheme}://{netloc}"
