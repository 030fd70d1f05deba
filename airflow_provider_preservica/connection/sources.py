"""Build :class:`PreservicaSettings` from an Airflow Connection or a legacy ini file."""

from __future__ import annotations

import json
from typing import Any, Protocol

from airflow_provider_preservica.connection.endpoint import build_base_url
from airflow_provider_preservica.connection.ini import IniCredentials
from airflow_provider_preservica.connection.settings import (
    DEFAULT_EXPIRY_MARGIN_SECONDS,
    DEFAULT_LEASE_DELAY_SECONDS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    TOKEN_CACHE_MODES,
    PreservicaSettings,
)
from airflow_provider_preservica.exceptions import PreservicaConfigError

CONN_TYPE = "preservica"

# Extra field -> accepted spellings (first is canonical; the UI writes the canonical one).
EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "tenant": ("tenant",),
    "two_fa_secret": ("two_fa_secret", "totp_secret", "twoFactorToken"),
    "verify_ssl": ("verify_ssl", "verify"),
    "ca_bundle": ("ca_bundle",),
    "timeout": ("timeout",),
    "max_retries": ("max_retries",),
    # Not "token_cache": Airflow masks every extra whose name contains "token" (the form would show '***').
    "cache_mode": ("cache_mode", "token_cache"),
    "allow_http": ("allow_http",),
    "expiry_margin": ("expiry_margin",),
    "login_lease": ("login_lease",),
    "login_lease_delay": ("login_lease_delay",),
}


class ConnectionLike(Protocol):
    conn_id: str
    host: str | None
    login: str | None
    password: str | None
    port: int | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def _extra(extras: dict[str, Any], field: str) -> Any:
    for name in EXTRA_ALIASES[field]:
        for key in (name, f"extra__{CONN_TYPE}__{name}"):
            value = extras.get(key)
            if value not in (None, "", "***"):  # "***" is a masked value the UI sent back, never a setting
                return value
    return None


_BOOL_WORDS = ("true", "1", "yes", "on", "false", "0", "no", "off")


def _as_bool(value: Any, field: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise PreservicaConfigError(f"Connection extra {field!r} must be true or false, not {value!r}")


def _as_number(value: Any, field: str, default: float, minimum: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PreservicaConfigError(f"Connection extra {field!r} must be a number, not {value!r}") from None
    if number < minimum:
        raise PreservicaConfigError(f"Connection extra {field!r} must be at least {minimum:g}, not {number:g}")
    return number


def _tls_verification(verify_ssl: Any, ca_bundle: Any) -> bool | str:
    """``verify_ssl`` false turns checking off; ``ca_bundle`` (or a path in ``verify``) trusts a private CA."""
    if isinstance(verify_ssl, str) and verify_ssl.strip().lower() not in _BOOL_WORDS:
        return verify_ssl.strip()  # requests-style: a path to a CA bundle
    if not _as_bool(verify_ssl, "verify_ssl", True):
        return False
    return str(ca_bundle) if ca_bundle else True


def settings_from_connection(conn: ConnectionLike, cache_name: str | None = None) -> PreservicaSettings:
    """Read a ``preservica`` Connection; every problem is reported with the field to fix."""
    conn_id = conn.conn_id
    try:
        extras = conn.extra_dejson
    except (ValueError, json.JSONDecodeError):
        raise PreservicaConfigError(f"Connection {conn_id!r}: the Extra field is not valid JSON") from None
    if not isinstance(extras, dict):
        raise PreservicaConfigError(f"Connection {conn_id!r}: the Extra field must be a JSON object")
    missing = [label for label, value in (("Login", conn.login), ("Password", conn.password)) if not value]
    if not conn.host:
        missing.insert(0, "Host")
    if missing:
        raise PreservicaConfigError(f"Connection {conn_id!r} has no {' and no '.join(missing)}; set them")
    token_cache = str(_extra(extras, "cache_mode") or "variable").strip().lower()
    if token_cache not in TOKEN_CACHE_MODES:
        raise PreservicaConfigError(
            f"Connection {conn_id!r}: extra 'cache_mode' must be one of {', '.join(TOKEN_CACHE_MODES)}, "
            f"not {token_cache!r}"
        )
    verify = _tls_verification(_extra(extras, "verify_ssl"), _extra(extras, "ca_bundle"))
    try:
        base_url = build_base_url(
            conn.host, conn.port, allow_http=_as_bool(_extra(extras, "allow_http"), "allow_http", False)
        )
    except PreservicaConfigError as exc:
        raise type(exc)(f"Connection {conn_id!r}: {exc}") from None
    return PreservicaSettings(
        base_url=base_url,
        username=str(conn.login),
        password=str(conn.password),
        tenant=(str(_extra(extras, "tenant")).strip() or None) if _extra(extras, "tenant") else None,
        totp_secret=str(_extra(extras, "two_fa_secret")) if _extra(extras, "two_fa_secret") else None,
        verify=verify,
        timeout=_as_number(_extra(extras, "timeout"), "timeout", DEFAULT_TIMEOUT_SECONDS, 1),
        max_retries=int(_as_number(_extra(extras, "max_retries"), "max_retries", DEFAULT_MAX_RETRIES, 0)),
        token_cache=token_cache,
        expiry_margin=_as_number(_extra(extras, "expiry_margin"), "expiry_margin", DEFAULT_EXPIRY_MARGIN_SECONDS, 0),
        login_lease=_as_bool(_extra(extras, "login_lease"), "login_lease", True),
        login_lease_delay=_as_number(
            _extra(extras, "login_lease_delay"), "login_lease_delay", DEFAULT_LEASE_DELAY_SECONDS, 0
        ),
        source=f"connection {conn_id}",
        cache_name=cache_name or conn_id,
    )


def settings_from_ini(creds: IniCredentials, cache_name: str, *, allow_http: bool = False) -> PreservicaSettings:
    try:
        base_url = build_base_url(creds.host, allow_http=allow_http)
    except PreservicaConfigError as exc:
        raise type(exc)(f"ini file {creds.path!r}: {exc}") from None
    return PreservicaSettings(
        base_url=base_url,
        username=creds.username,
        password=creds.password,
        tenant=creds.tenant,
        totp_secret=creds.totp_secret,
        source=f"ini file {creds.path}",
        cache_name=cache_name,
    )


def connection_dict_from_ini(creds: IniCredentials) -> dict[str, Any]:
    """The Airflow Connection (as ``AIRFLOW_CONN_*`` JSON) equivalent to a legacy ini file."""
    extra: dict[str, Any] = {}
    if creds.tenant:
        extra["tenant"] = creds.tenant
    if creds.totp_secret:
        extra["two_fa_secret"] = creds.totp_secret
    return {
        "conn_type": CONN_TYPE,
        "description": f"Imported from {creds.dialect} {creds.path}",
        "host": creds.host,
        "login": creds.username,
        "password": creds.password,
        "extra": extra,
    }
