"""The 2FA code the provider sends (``auth.totp``, computed by pyotp) agrees with the RFC, with pyotp's defaults
and with the sandbox's independent check, for every seed the provider has always accepted."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator

import pyotp
import pytest
from preservica_sandbox.totp import hotp as sandbox_hotp
from preservica_sandbox.totp import verify_totp as sandbox_verify
from preservica_sandbox.users import SandboxUser, parse_user_spec

from airflow_provider_preservica.client.auth.totp import STEP_SECONDS, seconds_left_in_step, totp_at, validate_secret
from airflow_provider_preservica.exceptions import InvalidTotpSecret, PreservicaConfigError

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(("moment", "expected"), [(59, "287082"), (1111111109, "081804"), (2000000000, "279037")])
def test_rfc6238_vectors(moment: int, expected: str) -> None:
    assert totp_at(RFC_SECRET, moment) == expected


def test_matches_pyotp_and_the_sandbox_accepts_it() -> None:
    secret = pyotp.random_base32()
    now = 1_700_000_000.0
    assert totp_at(secret, now) == pyotp.TOTP(secret).at(int(now))
    assert totp_at(secret, now, step_offset=-1) == pyotp.TOTP(secret).at(int(now) - STEP_SECONDS)
    assert sandbox_verify(secret, totp_at(secret, now), at=now, window=0)
    assert seconds_left_in_step(1_699_999_980 + 10.5) == STEP_SECONDS - 10.5  # a step starts at 1_699_999_980


@pytest.mark.parametrize(
    "pasted",
    ["jbsw y3dp ehpk 3pxp", "JBSW-Y3DP-EHPK-3PXP", "jbswy3dpehpk3pxp"],
)
def test_seeds_as_people_paste_them(pasted: str) -> None:
    """Spaces, dashes and lower case were always accepted; the code is the clean seed's."""
    assert totp_at(pasted, 1e9) == sandbox_hotp("JBSWY3DPEHPK3PXP", int(1e9 // STEP_SECONDS))


@pytest.mark.parametrize("seed", ["JBSWY3DPEHPK3PXP", "AB", "MFRGG"])
def test_short_seeds_are_still_accepted(seed: str) -> None:
    """pyotp 2.10+ refuses seeds under 112 bits; Preservica issued the seed, so the provider does not."""
    validate_secret(seed)
    assert totp_at(seed, 1e9) == sandbox_hotp(seed, int(1e9 // STEP_SECONDS))


@pytest.mark.parametrize("seed", ["", "   ", "- -", "========", "not base32!", "A", "JBSWY3DPEHPK3PX1"])
def test_unusable_seeds_are_a_config_error_that_does_not_show_the_seed(seed: str) -> None:
    with pytest.raises(InvalidTotpSecret) as info:
        totp_at(seed)
    assert isinstance(info.value, PreservicaConfigError) and isinstance(info.value, ValueError)
    assert len(seed.strip(" -")) < 4 or seed not in str(info.value)


@pytest.fixture
def local_time_with_dst() -> Iterator[None]:
    """This process's local time zone is London's (BST ends at 02:00 on 29 October 2023, 01:xx happens twice)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/London"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("local_time_with_dst")
@pytest.mark.parametrize("moment", [1698539400, 1698543000])  # 01:30 BST and, an hour later, 01:30 GMT
def test_the_code_ignores_the_local_time_zone(moment: int) -> None:
    """The counter is the Unix time's, even in the hour a DST change repeats (older pyotp read local time)."""
    assert totp_at(RFC_SECRET, moment) == sandbox_hotp(RFC_SECRET, moment // STEP_SECONDS)


def test_old_import_path_works_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match=r"utils\.totp\.totp_at is deprecated; use .*auth\.totp"):
        from airflow_provider_preservica.utils.totp import totp_at as old_totp_at
    assert old_totp_at is totp_at
    with pytest.warns(DeprecationWarning):
        from airflow_provider_preservica.utils.totp import hotp, verify_totp
    now = 1_700_000_000.0
    assert hotp(RFC_SECRET, 1) == sandbox_hotp(RFC_SECRET, 1)
    assert verify_totp(RFC_SECRET, totp_at(RFC_SECRET, now - STEP_SECONDS), at=now)
    assert not verify_totp(RFC_SECRET, totp_at(RFC_SECRET, now - 3 * STEP_SECONDS), at=now)
    assert not verify_totp(RFC_SECRET, "12345", at=now)


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
