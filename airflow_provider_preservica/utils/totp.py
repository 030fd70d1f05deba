"""Deprecated: the provider's TOTP code is ``airflow_provider_preservica.client.auth.totp`` (over pyotp) now.

Every name this module had still works and warns once per use with a ``DeprecationWarning``. ``hotp`` and
``verify_totp`` (server-side checks the provider never needed) are kept here only, computed by pyotp.
"""

from __future__ import annotations

import datetime
import time
import warnings
from typing import Any

from airflow_provider_preservica.client.auth import totp as _totp
from airflow_provider_preservica.exceptions import InvalidTotpSecret as _InvalidTotpSecret

_MOVED = {
    "STEP_SECONDS": "airflow_provider_preservica.client.auth.totp",
    "DIGITS": "airflow_provider_preservica.client.auth.totp",
    "validate_secret": "airflow_provider_preservica.client.auth.totp",
    "totp_at": "airflow_provider_preservica.client.auth.totp",
    "seconds_left_in_step": "airflow_provider_preservica.client.auth.totp",
    "InvalidTotpSecret": "airflow_provider_preservica.exceptions",
    "hotp": "pyotp (pyotp.HOTP(secret).at(counter))",
    "verify_totp": "pyotp (pyotp.TOTP(secret).verify(code, valid_window=1))",
}


def _hotp(secret: str, counter: int) -> str:
    """RFC 4226 HOTP value of ``counter`` for a base32 ``secret``."""
    return _totp.generator(secret).generate_otp(counter)


def _verify_totp(secret: str, code: str, at: float | None = None, window: int = 1) -> bool:
    """True when ``code`` matches the step containing ``at`` or up to ``window`` steps either side."""
    candidate = (code or "").strip()
    if len(candidate) != _totp.DIGITS or not candidate.isdigit():
        return False
    moment = time.time() if at is None else at
    when = datetime.datetime.fromtimestamp(moment, tz=datetime.timezone.utc)
    return _totp.generator(secret).verify(candidate, for_time=when, valid_window=window)


_HERE = {"hotp": _hotp, "verify_totp": _verify_totp, "InvalidTotpSecret": _InvalidTotpSecret}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"{__name__}.{name} is deprecated; use {_MOVED[name]}",
        DeprecationWarning,
        stacklevel=2,
    )
    return _HERE[name] if name in _HERE else getattr(_totp, name)
