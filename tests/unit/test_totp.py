"""Our RFC 6238 implementation (provider and sandbox) agrees with the RFC and with pyotp."""

from __future__ import annotations

import base64

import pyotp
import pytest
from preservica_sandbox.users import SandboxUser, parse_user_spec

from airflow_provider_preservica.utils.totp import totp_at, verify_totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(("moment", "expected"), [(59, "287082"), (1111111109, "081804"), (2000000000, "279037")])
def test_rfc6238_vectors(moment: int, expected: str) -> None:
    assert totp_at(RFC_SECRET, moment) == expected


def test_matches_pyotp_and_accepts_one_step_either_side() -> None:
    secret = pyotp.random_base32()
    generator = pyotp.TOTP(secret)
    now = 1_700_000_000.0
    assert totp_at(secret, now) == generator.at(now)
    assert verify_totp(secret, generator.at(now - 30), at=now)
    assert verify_totp(secret, generator.at(now + 30), at=now)
    assert not verify_totp(secret, generator.at(now - 90), at=now)
    assert not verify_totp(secret, "12345", at=now)
    assert not verify_totp(secret, "abcdef", at=now)


def test_user_spec_parsing() -> None:
    user = parse_user_spec("joe:secret-pw")
    assert (user.name, user.password, user.tenant, user.totp_secret) == ("joe", "secret-pw", "SANDBOX", None)
    user = parse_user_spec("joe:pw:ACME:JBSWY3DPEHPK3PXP")
    assert user.tenant == "ACME" and user.two_factor
    assert parse_user_spec("joe:pw::JBSWY3DPEHPK3PXP").tenant == "SANDBOX"
    for bad in ("joe", "joe:", ":pw", "a:b:c:d:e", "joe:pw:T:not base32!"):
        with pytest.raises(ValueError) as info:
            parse_user_spec(bad)
        assert "pw" not in str(info.value)
    assert "secret-pw" not in repr(SandboxUser("joe", "secret-pw"))
