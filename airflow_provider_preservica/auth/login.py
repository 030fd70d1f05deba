"""Log in to Preservica with username and password, completing 2FA when the account needs it.

Only this module obtains tokens from the server. It never uses ``/refresh``: refresh tokens are
single-use, so parallel workers refreshing one would collide, whereas parallel logins are allowed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

from airflow_provider_preservica.auth.settings import PreservicaSettings
from airflow_provider_preservica.auth.token import AccessToken
from airflow_provider_preservica.exceptions import PreservicaAuthError, PreservicaHTTPError
from airflow_provider_preservica.transport import HttpTransport
from airflow_provider_preservica.utils.totp import InvalidTotpSecret, seconds_left_in_step, totp_at

log = logging.getLogger(__name__)

LOGIN_PATH = "/api/accesstoken/login"
COMPLETE_2FA_PATH = "/api/accesstoken/complete-2fa"
DEFAULT_VALID_FOR_MINUTES = 15.0


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class PasswordLogin:
    """Callable that performs one login and returns a fresh :class:`AccessToken`."""

    def __init__(self, settings: PreservicaSettings, transport: HttpTransport) -> None:
        self.settings = settings
        self.transport = transport

    def _scrub(self, text: str) -> str:
        for secret in (self.settings.password, self.settings.totp_secret):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _who(self) -> str:
        return self.settings.describe()

    def __call__(self) -> AccessToken:
        issued_at = time.time()
        form = {"username": self.settings.username, "password": self.settings.password}
        if self.settings.tenant:
            form["tenant"] = self.settings.tenant
        response = self.transport.request("POST", LOGIN_PATH, data=form, retry_unsafe=True)
        body = _json_or_empty(response)
        if response.status_code == 200 and body.get("token"):
            return self._token_from(body, issued_at)
        message = str(body.get("message") or "")
        if message == "needs.2fa":
            return self._complete_2fa(body, issued_at)
        if message == "needs.2fa.setup":
            raise PreservicaAuthError(
                f"Preservica account {self._who()} has 2FA enabled but not set up: log in once in the "
                "Preservica web UI to set it up, then put the seed in the Connection extra 'two_fa_secret'"
            )
        if response.status_code in (401, 403):
            reason = self._scrub(message) or f"HTTP {response.status_code}"
            raise PreservicaAuthError(
                f"Preservica rejected the login of {self._who()}: {reason}. Check the Connection's "
                "login, password and tenant extra"
            )
        raise PreservicaHTTPError(
            response.status_code, "POST", self.transport.url_for(LOGIN_PATH), self._scrub(message or response.reason)
        )

    def _complete_2fa(self, challenge: dict[str, Any], issued_at: float) -> AccessToken:
        secret = self.settings.totp_secret
        if not secret:
            raise PreservicaAuthError(
                f"Preservica account {self._who()} requires two-factor authentication: add the account's "
                "TOTP seed to the Connection extra 'two_fa_secret' (or 'twoFactorToken' in credentials.properties)"
            )
        # A code about to roll over may be stale by the time it arrives; wait for the next one.
        if seconds_left_in_step() < 2:
            time.sleep(seconds_left_in_step() + 0.1)
        try:
            code = totp_at(secret)
        except InvalidTotpSecret as exc:
            raise PreservicaAuthError(f"cannot complete 2FA for {self._who()}: {exc}") from None
        form = {
            "username": self.settings.username,
            "continuationToken": str(challenge.get("continuationToken", "")),
            "tenant": str(challenge.get("tenant") or self.settings.tenant or ""),
            "twoFactorToken": code,
        }
        response = self.transport.request("POST", COMPLETE_2FA_PATH, data=form)
        body = _json_or_empty(response)
        if response.status_code == 200 and body.get("token"):
            return self._token_from(body, issued_at)
        reason = self._scrub(str(body.get("message") or f"HTTP {response.status_code}"))
        raise PreservicaAuthError(
            f"Preservica rejected the 2FA code for {self._who()}: {reason}. Check the 'two_fa_secret' "
            "extra and that this machine's clock is right (TOTP codes change every 30 s)"
        )

    def _token_from(self, body: dict[str, Any], issued_at: float) -> AccessToken:
        try:
            minutes = float(body.get("validFor", DEFAULT_VALID_FOR_MINUTES))
        except (TypeError, ValueError):
            minutes = DEFAULT_VALID_FOR_MINUTES
        token = AccessToken(
            value=str(body["token"]),
            expires_at=issued_at + minutes * 60.0,
            issued_at=issued_at,
            fingerprint=self.settings.fingerprint,
        )
        log.info("Logged in to Preservica as %s (token valid for %.0f s)", self._who(), token.lifetime)
        return token
