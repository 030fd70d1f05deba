"""An access token with its absolute expiry (and refresh token), and its JSON form in the shared cache.

When a token is renewed:

- *fresh* while more than a third of its lifetime is left: used as it is;
- *due* after that: the cache renews it (refresh, else login) but keeps using it meanwhile;
- *usable* while ``now < expires_at - margin`` (margin: the configured one, at most a quarter of the
  lifetime): after that nobody sends it any more;
- *refreshable* while it carries a refresh token and is a few seconds short of its expiry (Preservica
  refreshes only with a valid access token, and a refresh token lives as long as its access token).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

RECORD_VERSION = 1
#: Renew once less than this share of the lifetime is left.
RENEW_WHEN_LEFT = 1 / 3
#: A refresh is not attempted this close to expiry (at most; a tenth of the lifetime for short tokens).
REFRESH_SAFETY_SECONDS = 5.0


@dataclass(frozen=True)
class AccessToken:
    """A Preservica access token; ``value`` and ``refresh_token`` are kept out of ``repr`` (and so out of logs)."""

    value: str = field(repr=False)
    expires_at: float
    issued_at: float
    fingerprint: str
    refresh_token: str | None = field(default=None, repr=False)

    @property
    def lifetime(self) -> float:
        return max(0.0, self.expires_at - self.issued_at)

    @property
    def renew_at(self) -> float:
        """From this moment on the token is due for renewal (a third of its lifetime left)."""
        return self.expires_at - self.lifetime * RENEW_WHEN_LEFT

    def usable(self, fingerprint: str, margin: float, now: float | None = None) -> bool:
        """True while the token belongs to this account and has more than the margin left.

        The margin shrinks for short-lived tokens (at most a quarter of the lifetime), so a sandbox
        token of a few seconds is still reused instead of being treated as always expired.
        """
        moment = time.time() if now is None else now
        effective_margin = min(margin, self.lifetime / 4)
        return self.fingerprint == fingerprint and moment < self.expires_at - effective_margin

    def fresh(self, now: float | None = None) -> bool:
        """True while more than a third of the lifetime is left: no reason to renew yet."""
        return (time.time() if now is None else now) < self.renew_at

    def refreshable(self, now: float | None = None) -> bool:
        """True while the refresh token can still be exchanged (the access token it goes with is still valid)."""
        moment = time.time() if now is None else now
        safety = min(REFRESH_SAFETY_SECONDS, self.lifetime / 10)
        return bool(self.refresh_token) and moment < self.expires_at - safety

    def to_json(self) -> str:
        record: dict[str, object] = {
            "version": RECORD_VERSION,
            "token": self.value,
            "expires_at": round(self.expires_at, 3),
            "issued_at": round(self.issued_at, 3),
            "expires_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at)),
            "fingerprint": self.fingerprint,
        }
        if self.refresh_token:
            record["refresh_token"] = self.refresh_token
        return json.dumps(record)

    @classmethod
    def from_json(cls, raw: object) -> AccessToken | None:
        """Parse a cache record; anything corrupt or of an unknown shape gives ``None``.

        ``refresh_token`` is optional: records written before the cache renewed tokens have none (the
        token is then used as it is and renewed by a login).
        """
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
        refresh_token = data.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            refresh_token = None
        return cls(
            value=token,
            expires_at=expires_at,
            issued_at=issued_at,
            fingerprint=fingerprint,
            refresh_token=refresh_token,
        )
