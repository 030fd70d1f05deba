"""The sandbox's own 2FA code check (``sandbox.totp``) agrees with RFC 6238 and with pyotp.

The sandbox does not import the provider's TOTP code (it becomes a distribution of its own), so its
copy is checked here on its own; ``tests/unit/client/auth/test_totp.py`` checks the provider's.
"""

from __future__ import annotations

import base64

import pyotp
import pytest
from preservica_sandbox.totp import STEP_SECONDS, InvalidTotpSecret, hotp, validate_secret, verify_totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(("moment", "expected"), [(59, "287082"), (1111111109, "081804"), (2000000000, "279037")])
def test_rfc6238_vectors(moment: int, expected: str) -> None:
    assert hotp(RFC_SECRET, moment // STEP_SECONDS) == expected
    assert verify_totp(RFC_SECRET, expected, at=moment, window=0)


def test_matches_pyotp_and_accepts_one_step_either_side() -> None:
    secret = pyotp.random_base32()
    generator = pyotp.TOTP(secret)
    now = 1_700_000_000.0
    assert verify_totp(secret, generator.at(now), at=now)
    assert verify_totp(secret, generator.at(now - 30), at=now)
    assert verify_totp(secret, generator.at(now + 30), at=now)
    assert not verify_totp(secret, generator.at(now - 90), at=now)
    assert not verify_totp(secret, "12345", at=now)
    assert not verify_totp(secret, "abcdef", at=now)


@pytest.mark.parametrize("secret", ["not base32!", "", "===="])
def test_unusable_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidTotpSecret):
        validate_secret(secret)
