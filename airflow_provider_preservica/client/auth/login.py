"""Log in to Preservica with username and password (completing 2FA when the account needs it), or renew a token.

Only this module obtains tokens from the server. ``PasswordLogin()`` logs in; ``PasswordLogin.refresh``
exchanges a token's single-use refresh token for a new pair (``POST /api/accesstoken/refresh``, form
field ``refreshToken``, the still-valid access token in ``Preservica-Access-Token``). Refresh tokens
are single-use, so parallel refreshes of one collide: the token cache (``cache.py``) calls ``refresh``
only under its single-flight locks and cross-host lease, and logs in when a refresh is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_preservica.client.auth.token import AccessToken
from airflow_provider_preservica.client.auth.totp import seconds_left_in_step, totp_at
from airflow_provider_preservica.connection.settings import PreservicaSettings
from airflow_provider_preservica.exceptions import (
    InvalidTotpSecret,
    PreservicaHTTPError,
    PreservicaLoginRejectedError,
    PreservicaTwoFactorRejectedError,
    RefreshRejected,
)

if TYPE_CHECKING:  # the hook hands us its transport, and the transport its responses: only client/ imports them
    import requests

    from airflow_provider_preservica.client.http import HttpTransport

log = logging.getLogger(__name__)

LOGIN_PATH = "/api/accesstoken/login"
COMPLETE_2FA_PATH = "/api/accesstoken/complete-2fa"
REFRESH_PATH = "/api/accesstoken/refresh"
TOKEN_HEADER = "Preservica-Access-Token"
DEFAULT_VALID_FOR_MINUTES = 15.0


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class PasswordLogin:
    """Callable that performs one login and returns a fresh :class:`AccessToken`; ``refresh`` renews one.

    ``clock`` stamps when a request was sent (a token's lifetime counts from then); the token cache's clock.
    """

    def __init__(
        self, settings: PreservicaSettings, transport: HttpTransport, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.transport = transport
        self._clock = clock

    def _scrub(self, text: str) -> str:
        for secret in (self.settings.password, self.settings.totp_secret):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _who(self) -> str:
        return self.settings.describe()

    def __call__(self) -> AccessToken:
        issued_at = self._clock()
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
            raise PreservicaTwoFactorRejectedError(
                f"Preservica account {self._who()} has 2FA enabled but not set up: log in once in the "
                "Preservica web UI to set it up, then put the seed in the Connection extra 'two_fa_secret'"
            )
        if response.status_code in (401, 403):
            reason = self._scrub(message) or f"HTTP {response.status_code}"
            raise PreservicaLoginRejectedError(
                f"Preservica rejected the login of {self._who()}: {reason}. Check the Connection's "
                "login, password and tenant extra"
            )
        raise PreservicaHTTPError(
            response.status_code, "POST", self.transport.url_for(LOGIN_PATH), self._scrub(message or response.reason)
        )

    def refresh(self, token: AccessToken) -> AccessToken:
        """Exchange ``token``'s refresh token for a new token pair; :class:`RefreshRejected` if refused.

        Not retried after a server error or a broken connection (the refresh token may already be
        spent); 429 and 503 are, since the server did not act on them. Messages never carry a token.
        """
        if not token.refresh_token:
            raise RefreshRejected(f"the cached Preservica token of {self._who()} has no refresh token")
        issued_at = self._clock()
        response = self.transport.request(
            "POST",
            REFRESH_PATH,
            data={"refreshToken": token.refresh_token},
            headers={TOKEN_HEADER: token.value},
        )
        body = _json_or_empty(response)
        if response.status_code == 200 and body.get("token"):
            renewed = self._token_from(body, issued_at, action="Renewed the Preservica token of")
            return renewed
        message = str(body.get("message") or response.reason or "")
        for secret in (token.value, token.refresh_token):
            message = message.replace(secret, "***")
        reason = f"HTTP {response.status_code}" + (f": {self._scrub(message)}" if message else "")
        raise RefreshRejected(f"Preservica rejected the refresh token of {self._who()} ({reason})")

    def _complete_2fa(self, challenge: dict[str, Any], issued_at: float) -> AccessToken:
        secret = self.settings.totp_secret
        if not secret:
            raise PreservicaTwoFactorRejectedError(
                f"Preservica account {self._who()} requires two-factor authentication: add the account's "
                "TOTP seed to the Connection extra 'two_fa_secret' (or 'twoFactorToken' in credentials.properties)"
            )
        # A code about to roll over may be stale by the time it arrives; wait for the next one.
        if seconds_left_in_step() < 2:
            time.sleep(seconds_left_in_step() + 0.1)
        try:
            code = totp_at(secret)
        except InvalidTotpSecret as exc:
            raise PreservicaTwoFactorRejectedError(f"cannot complete 2FA for {self._who()}: {exc}") from None
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
        raise PreservicaTwoFactorRejectedError(
            f"Preservica rejected the 2FA code for {self._who()}: {reason}. Check the 'two_fa_secret' "
            "extra and that this machine's clock is right (TOTP codes change every 30 s)"
        )

    def _token_from(
        self, body: dict[str, Any], issued_at: float, action: str = "Logged in to Preservica as"
    ) -> AccessToken:
        try:
            minutes = float(body.get("validFor", DEFAULT_VALID_FOR_MINUTES))
        except (TypeError, ValueError):
            minutes = DEFAULT_VALID_FOR_MINUTES
        refresh_token = body.get("refresh-token")
        token = AccessToken(
            value=str(body["token"]),
            expires_at=issued_at + minutes * 60.0,
            issued_at=issued_at,
            fingerprint=self.settings.fingerprint,
            refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        )
        log.info("%s %s (token valid for %.0f s)", action, self._who(), token.lifetime)
        return token
