"""Where a redirect may take a request: within the Connection's origin (scheme, host and port), nowhere else.

Every request this provider sends carries a secret: the login form holds the password, 2FA completion a
code, a refresh its refresh token, every other call the access token (as ``Preservica-Access-Token``, which
``requests`` keeps on a redirect to another host; it strips only ``Authorization``) or, for the S3 upload,
as the access key. So a redirect off the origin, including an https -> http downgrade on the same host, is
never followed: :func:`refuse_off_origin_redirect` raises :class:`PreservicaRedirectError`, which names the
origin the server pointed at and what to change. Redirects within the origin are followed as before.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from airflow_provider_preservica.exceptions import PreservicaRedirectError

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, lower-cased, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: no origin we would ever match
        port = -1
    return scheme, (parts.hostname or "").lower(), port if port is not None else DEFAULT_PORTS.get(scheme)


def origin_text(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, as a user would type it (no path, query or user info)."""
    scheme, host, port = origin_of(url)
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if port in (None, DEFAULT_PORTS.get(scheme)) else f":{port}")


def refuse_off_origin_redirect(base_url: str, method: str, url: str, location: str, status: int) -> str:
    """The absolute target of a redirect from ``url`` to ``location``; raises unless it is on ``base_url``'s origin."""
    target = urljoin(url, location.strip())
    if origin_of(target) == origin_of(base_url):
        return target
    ours, theirs = origin_text(base_url), origin_text(target)
    path = urlsplit(url).path or "/"
    downgrade = origin_of(base_url)[0] == "https" and origin_of(target)[0] != "https"
    if downgrade:
        advice = (
            "keep the Connection's host on https, and have whoever runs the server or the proxy in front of it "
            "redirect to https, never to http"
        )
    else:
        advice = (
            f"if Preservica now lives there, set the Connection's host to {theirs}; otherwise ask whoever runs "
            f"the proxy or load balancer in front of {ours} why it redirects"
        )
    where = f"{theirs} (plain http, unencrypted)" if downgrade else theirs
    raise PreservicaRedirectError(
        f"Preservica at {ours} answered HTTP {status} to {method} {path} with a redirect to another origin, {where}; "
        f"not followed, so that the password and tokens stay with {ours}. To fix: {advice}"
    )
