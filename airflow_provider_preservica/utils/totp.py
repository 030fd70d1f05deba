"""RFC 6238 time-based one-time passwords (the 6-digit codes of Preservica's 2FA).

Preservica uses the authenticator-app defaults: HMAC-SHA1, 30-second steps, 6 digits, base32 seed.
Twenty lines of stdlib do it; a dependency would add nothing.
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


class InvalidTotpSecret(ValueError):
    """The 2FA seed is not valid base32."""


def _decode_secret(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").replace("-", "").upper()
    cleaned += "=" * (-len(cleaned) % 8)
    try:
        return base64.b32decode(cleaned, casefold=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidTotpSecret(
            "the 2FA secret is not a base32 string (the seed shown when 2FA was set up, e.g. 'JBSWY3DPEHPK3PXP')"
        ) from exc


def totp_at(secret: str, for_time: float | None = None, step_offset: int = 0) -> str:
    """Return the code valid at ``for_time`` (default: now), shifted by ``step_offset`` steps."""
    moment = time.time() if for_time is None else for_time
    counter = int(moment // STEP_SECONDS) + step_offset
    digest = hmac.new(_decode_secret(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % (10**DIGITS)
    return str(code).zfill(DIGITS)


def seconds_left_in_step(for_time: float | None = None) -> float:
    moment = time.time() if for_time is None else for_time
    return STEP_SECONDS - (moment % STEP_SECONDS)
