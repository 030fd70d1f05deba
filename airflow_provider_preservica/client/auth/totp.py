"""The 2FA code the provider answers Preservica's challenge with: RFC 6238, computed by pyotp.

Preservica uses the authenticator-app defaults (HMAC-SHA1, 30-second steps, 6 digits, base32 seed), which are
pyotp's too; pyPreservica answers with ``pyotp.TOTP(seed).now()``. What is ours is only the seed as people paste
it (spaces, dashes, lower case, missing padding are all accepted, as before) and the error for a seed that is
not base32 (:class:`InvalidTotpSecret`, whose message never shows the seed). The sandbox checks codes with its
own implementation (``preservica_sandbox.totp``): it is the other side of the wire.
"""

from __future__ import annotations

import datetime
import time

import pyotp

from airflow_provider_preservica.exceptions import InvalidTotpSecret

STEP_SECONDS = 30
DIGITS = 6


class _SeedAsIssued(pyotp.TOTP):
    """pyotp 2.10+ refuses seeds under 112 bits; Preservica issued the seed, and a client cannot choose it."""

    min_secret_length_bits = 8


def generator(secret: str) -> pyotp.TOTP:
    """A pyotp ``TOTP`` for the account's seed; :class:`InvalidTotpSecret` if the seed is not usable."""
    cleaned = secret.replace(" ", "").replace("-", "").upper()
    if not cleaned:
        raise InvalidTotpSecret("the 2FA secret is empty")
    try:
        totp = _SeedAsIssued(cleaned, digits=DIGITS, interval=STEP_SECONDS)
        key = totp.byte_secret()  # pyotp before 2.10 decodes only when it computes a code
    except ValueError as exc:  # binascii.Error is a ValueError; the message names no part of the seed
        raise InvalidTotpSecret(
            "the 2FA secret is not a base32 string (the seed shown when 2FA was set up, e.g. 'JBSWY3DPEHPK3PXP')"
        ) from exc
    if not key:
        raise InvalidTotpSecret("the 2FA secret is empty")
    return totp


def validate_secret(secret: str) -> None:
    """Raise :class:`InvalidTotpSecret` when ``secret`` cannot be used as a TOTP seed."""
    generator(secret)


def totp_at(secret: str, for_time: float | None = None, step_offset: int = 0) -> str:
    """The code valid at ``for_time`` (default: now), shifted by ``step_offset`` steps.

    The moment goes to pyotp as an aware UTC datetime: every pyotp version turns that into the counter exactly,
    while older ones read a bare timestamp as local time (off by an hour in the hour a DST change repeats).
    """
    moment = time.time() if for_time is None else for_time
    when = datetime.datetime.fromtimestamp(moment, tz=datetime.timezone.utc)
    return generator(secret).at(when, counter_offset=step_offset)


def seconds_left_in_step(for_time: float | None = None) -> float:
    moment = time.time() if for_time is None else for_time
    return STEP_SECONDS - (moment % STEP_SECONDS)
