"""Checking RFC 6238 time-based one-time passwords (the 6-digit codes of Preservica's 2FA).

The server side only: is a seed usable, does a code match. Preservica uses the authenticator-app
defaults (HMAC-SHA1, 30-second steps, 6 digits, base32 seed), as pyPreservica's ``pyotp.TOTP(seed).now()``
does. The sandbox keeps its own copy rather than importing the provider's: it must stand alone (it is
the other end of the wire), and an independent implementation checks the client's.
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
        decoded = base64.b32decode(cleaned, casefold=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidTotpSecret(
            "the 2FA secret is not a base32 string (the seed shown when 2FA was set up, e.g. 'JBSWY3DPEHPK3PXP')"
        ) from exc
    if not decoded:
        raise InvalidTotpSecret("the 2FA secret is empty")
    return decoded


def validate_secret(secret: str) -> None:
    """Raise :class:`InvalidTotpSecret` when ``secret`` cannot be used as a TOTP seed."""
    _decode_secret(secret)


def hotp(secret: str, counter: int) -> str:
    """RFC 4226 HOTP value of ``counter`` for a base32 ``secret``."""
    digest = hmac.new(_decode_secret(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % (10**DIGITS)).zfill(DIGITS)


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
