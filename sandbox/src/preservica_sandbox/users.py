"""Sandbox user accounts and the ``name:password[:tenant[:totp-secret]]`` command-line spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .totp import validate_secret

DEFAULT_TENANT = "SANDBOX"
DEFAULT_ROLES: tuple[str, ...] = ("ROLE_SDB_MANAGER_USER", "ROLE_SDB_ACCESS_USER")


@dataclass
class SandboxUser:
    """One Preservica account. ``totp_secret`` (base32) switches the account to two-factor login."""

    name: str
    password: str
    tenant: str = DEFAULT_TENANT
    totp_secret: str | None = None
    full_name: str = ""
    email: str = ""
    roles: list[str] = field(default_factory=lambda: list(DEFAULT_ROLES))

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("user name must not be empty")
        if not self.password:
            raise ValueError(f"user {self.name!r} needs a password")
        self.tenant = self.tenant or DEFAULT_TENANT
        if self.totp_secret:
            validate_secret(self.totp_secret)
        else:
            self.totp_secret = None
        if not self.full_name:
            self.full_name = self.name.split("@")[0].replace(".", " ").title()
        if not self.email:
            self.email = self.name if "@" in self.name else f"{self.name}@sandbox.preservica.invalid"

    def __repr__(self) -> str:  # never show the password or the TOTP seed
        return f"SandboxUser(name={self.name!r}, tenant={self.tenant!r}, two_factor={self.two_factor})"

    @property
    def two_factor(self) -> bool:
        return self.totp_secret is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "password": self.password,
            "tenant": self.tenant,
            "totp_secret": self.totp_secret,
            "full_name": self.full_name,
            "email": self.email,
            "roles": list(self.roles),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxUser:
        return cls(
            name=data["name"],
            password=data["password"],
            tenant=data.get("tenant") or DEFAULT_TENANT,
            totp_secret=data.get("totp_secret"),
            full_name=data.get("full_name", ""),
            email=data.get("email", ""),
            roles=list(data.get("roles", DEFAULT_ROLES)),
        )


def default_user() -> SandboxUser:
    """The account a sandbox gets when none is configured."""
    return SandboxUser(name="archivist", password="archivist-password", tenant=DEFAULT_TENANT)


def parse_user_spec(spec: str) -> SandboxUser:
    """Parse ``name:password[:tenant[:totp-secret]]``; an empty tenant means the default tenant.

    Neither part may contain ``:`` (the separator); use ``SandboxState.add_user`` for such accounts.
    """
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 4 or not parts[0] or not parts[1]:
        raise ValueError("user spec must be name:password[:tenant[:totp-secret]]")
    tenant = parts[2] if len(parts) > 2 else ""
    secret = parts[3] if len(parts) > 3 else None
    return SandboxUser(name=parts[0], password=parts[1], tenant=tenant or DEFAULT_TENANT, totp_secret=secret or None)
