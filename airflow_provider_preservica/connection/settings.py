"""The resolved settings of one Preservica account, whatever they were read from."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

TokenCacheMode = Literal["variable", "memory"]
TOKEN_CACHE_MODES: tuple[TokenCacheMode, ...] = ("variable", "memory")

DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_EXPIRY_MARGIN_SECONDS = 60.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_LEASE_DELAY_SECONDS = 0.5
TOKEN_VARIABLE_PREFIX = "preservica_access_token__"
LEASE_VARIABLE_PREFIX = "preservica_login_lease__"


def _safe(cache_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", cache_name)


def token_variable_key(cache_name: str) -> str:
    """Variable name of the shared token; contains ``token`` so Airflow masks its value."""
    return f"{TOKEN_VARIABLE_PREFIX}{_safe(cache_name)}"


def lease_variable_key(cache_name: str) -> str:
    """Variable name of the cross-host login lease (holds an owner id and an expiry, nothing secret)."""
    return f"{LEASE_VARIABLE_PREFIX}{_safe(cache_name)}"


@dataclass(frozen=True)
class PreservicaSettings:
    """Everything needed to talk to one account on one Preservica system.

    ``password`` and ``totp_secret`` are excluded from ``repr`` so that an accidental log line or a
    traceback with locals never shows them.
    """

    base_url: str
    username: str
    password: str = field(repr=False)
    tenant: str | None = None
    totp_secret: str | None = field(default=None, repr=False)
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES
    token_cache: TokenCacheMode = "variable"
    expiry_margin: float = DEFAULT_EXPIRY_MARGIN_SECONDS
    login_lease: bool = True
    login_lease_delay: float = DEFAULT_LEASE_DELAY_SECONDS
    source: str = "connection"
    cache_name: str = "preservica_default"

    @property
    def fingerprint(self) -> str:
        """Identifies the account (server, user, tenant) without revealing anything secret."""
        material = "\n".join([self.base_url.lower(), self.username, (self.tenant or "").upper()])
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    @property
    def token_variable_key(self) -> str:
        return token_variable_key(self.cache_name)

    @property
    def lease_variable_key(self) -> str:
        return lease_variable_key(self.cache_name)

    def describe(self) -> str:
        tenant = f", tenant {self.tenant}" if self.tenant else ""
        return f"{self.username} at {self.base_url}{tenant}"
