"""RFC 6238 time-based one-time passwords (HMAC-SHA1, 30 s steps, 6 digits, base32 seeds).

This is what Preservica's 2FA expects and what pyPreservica computes with ``pyotp.TOTP(seed).now()``.
The sandbox keeps its own copy so that it never depends on the provider's client code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time

STEP_SECONDS = 30
DIGITS = 6


def _decode_secret(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").replace("-", "").upper()
    cleaned += "=" * (-len(cleaned) % 8)
    try:
        return base64.b32decode(cleaned, casefold=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("TOTP secret is not valid base32") from exc


def validate_secret(secret: str) -> None:
    """Raise ``ValueError`` when ``secret`` cannot be used as a TOTP seed."""
    if not _decode_secret(secret):
        raise ValueError("TOTP secret is empty")


def hotp(secret: str, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 HOTP value of ``counter`` for a base32 ``secret``."""
    digest = hmac.new(_decode_secret(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % (10**digits)).zfill(digits)


def totp(secret: str, at: float | None = None, step: int = STEP_SECONDS) -> str:
    """The TOTP code valid at ``at`` (epoch seconds, default now)."""
    moment = time.time() if at is None else at
    return hotp(secret, int(moment // step))


def verify_totp(secret: str, code: str, at: float | None = None, window: int = 1) -> bool:
    """True when ``code`` matches the step containing ``at`` or up to ``window`` steps either side.

    Codes are not remembered: pyPreservica logs in again on every expiry and may present the same
    code twice within one 30 s step, which a strict replay check would refuse.
    """
    candidate = (code or "").strip()
    if len(candidate) != DIGITS or not candidate.isdigit():
        return False
    moment = time.time() if at is None else at
    current = int(moment // STEP_SECONDS)
    return any(hmac.compare_digest(hotp(secret, current + delta), candidate) for delta in range(-window, window + 1))
