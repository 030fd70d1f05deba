"""An access token with its absolute expiry, and its JSON form in the shared cache."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

RECORD_VERSION = 1


@dataclass(frozen=True)
class AccessToken:
    """A Preservica access token. ``value`` is hidden from ``repr`` so it never lands in a log."""

    value: str = field(repr=False)
    expires_at: float
    issued_at: float
    fingerprint: str

    @property
    def lifetime(self) -> float:
        return max(0.0, self.expires_at - self.issued_at)

    def usable(self, fingerprint: str, margin: float, now: float | None = None) -> bool:
        """True while the token belongs to this account and has more than the margin left.

        The margin shrinks for short-lived tokens (at most a quarter of the lifetime), so a sandbox
        token of a few seconds is still reused instead of being treated as always expired.
        """
        moment = time.time() if now is None else now
        effective_margin = min(margin, self.lifetime / 4)
        return self.fingerprint == fingerprint and moment < self.expires_at - effective_margin

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": RECORD_VERSION,
                "token": self.value,
                "expires_at": round(self.expires_at, 3),
                "issued_at": round(self.issued_at, 3),
                "expires_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at)),
                "fingerprint": self.fingerprint,
            }
        )

    @classmethod
    def from_json(cls, raw: object) -> AccessToken | None:
        """Parse a cache record; anything corrupt or of an unknown shape gives ``None``."""
        if not isinstance(raw, str) or not raw.strip():
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
                return None
            token = data["token"]
            expires_at = float(data["expires_at"])
            issued_at = float(data["issued_at"])
            fingerprint = data["fingerprint"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(token, str) or not token or not isinstance(fingerprint, str):
            return None
        return cls(value=token, expires_at=expires_at, issued_at=issued_at, fingerprint=fingerprint)
