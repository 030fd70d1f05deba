"""Read the legacy credential files Preservica users keep next to their scripts.

Two dialects are understood:

* Preservica's sample ``config.ini`` (Access-Token-Example): section ``[DEFAULT]`` with ``URL`` or
  ``Host``, ``Username``, ``Password``, optional ``Tenant``; keys in any case.
* pyPreservica's ``credentials.properties``: section ``[credentials]`` with ``username``,
  ``password``, optional ``tenant``, ``server`` and ``twoFactorToken``.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from airflow_provider_preservica.exceptions import PreservicaConfigError

INI_ENV_VAR = "PRESERVICA_INI"


@dataclass(frozen=True)
class IniCredentials:
    """What a legacy file says, before it is turned into settings."""

    path: str
    dialect: str
    host: str
    username: str
    password: str = field(repr=False)
    tenant: str | None = None
    totp_secret: str | None = field(default=None, repr=False)


def _pick(section: configparser.SectionProxy, *names: str) -> str | None:
    for name in names:
        value = section.get(name)  # configparser lower-cases keys, so any case matches
        if value is not None and value.strip():
            return value.strip().strip('"').strip("'")
    return None


def _server_of(url_or_host: str) -> str:
    """The sample config.ini's ``URL`` is the full login URL; only scheme and server matter."""
    if "://" not in url_or_host:
        return url_or_host.split("/", 1)[0]
    parts = urlsplit(url_or_host)
    return f"{parts.scheme}://{parts.netloc}"


def read_ini(path: str | os.PathLike[str]) -> IniCredentials:
    """Parse a legacy credentials file; errors name the file and every missing key at once."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise PreservicaConfigError(f"Preservica ini file {str(file)!r} does not exist or is not a file")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with file.open(encoding="utf-8-sig") as handle:
            parser.read_file(handle)
    except (configparser.Error, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise PreservicaConfigError(f"Preservica ini file {str(file)!r} cannot be parsed: {reason}") from None
    except OSError as exc:
        raise PreservicaConfigError(f"Preservica ini file {str(file)!r} cannot be read: {exc.strerror}") from None

    if parser.has_section("credentials"):
        section = parser["credentials"]
        dialect = "credentials.properties"
        host_keys: tuple[str, ...] = ("server", "url", "host")
    else:
        section = parser["DEFAULT"]
        dialect = "config.ini"
        host_keys = ("url", "host", "server")

    values = {
        "host": _pick(section, *host_keys),
        "username": _pick(section, "username", "user"),
        "password": _pick(section, "password"),
    }
    missing = [name for name, value in values.items() if not value]
    if missing:
        where = "[credentials]" if dialect == "credentials.properties" else "[DEFAULT]"
        host_label = "server" if dialect == "credentials.properties" else "URL/Host"
        labels = {"host": host_label, "username": "Username", "password": "Password"}
        raise PreservicaConfigError(
            f"Preservica ini file {str(file)!r} ({dialect}) lacks {', '.join(labels[m] for m in missing)} "
            f"in section {where}"
        )
    return IniCredentials(
        path=str(file),
        dialect=dialect,
        host=_server_of(values["host"] or ""),
        username=values["username"] or "",
        password=values["password"] or "",
        tenant=_pick(section, "tenant"),
        totp_secret=_pick(section, "twofactortoken", "two_fa_secret", "totp_secret"),
    )
