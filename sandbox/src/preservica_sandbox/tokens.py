"""Access-token records: what a login issues, what an authenticated request carries, why a token is refused.

Plain data; ``SandboxState`` keeps these records (and decides their lifetimes) under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .users import SandboxUser


class TokenRejected(Exception):
    """An access or refresh token that must be answered with 401; ``str()`` is the client message."""


@dataclass
class AccessToken:
    token: str
    user: str
    tenant: str
    issued_at: float
    expires_at: float
    refresh_token: str
    revoked: bool = False

    def describe(self, now: float) -> dict[str, Any]:
        """Public view for the control API: never the token or refresh token themselves."""
        return {
            "token_prefix": self.token[:8],
            "user": self.user,
            "tenant": self.tenant,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "revoked": self.revoked,
            "expired": now >= self.expires_at,
        }


@dataclass(frozen=True)
class AuthenticatedSession:
    """What ``require_token`` hands to an endpoint: the token record and its user."""

    token: AccessToken
    user: SandboxUser

    @property
    def tenant(self) -> str:
        return self.token.tenant


@dataclass
class Continuation:
    """A pending two-factor login (``needs.2fa``): single use, short-lived."""

    user: str
    tenant: str
    expires_at: float
