"""The sandbox accounts of a test session, and the secrets that must never appear in what it logged."""

from __future__ import annotations

from preservica_sandbox import SandboxUser

ARCHIVIST = SandboxUser(name="archivist", password="Arch1vist-s3cret-pw", tenant="SANDBOX")
PROD_USER = SandboxUser(name="prod-robot", password="pr0d-R0bot-pw-7781", tenant="PROD")
TEST_USER = SandboxUser(name="test-robot", password="t3st-R0bot-pw-4410", tenant="TEST")
TWO_FA_USER = SandboxUser(
    name="guarded", password="Guard3d-2fa-pw-0007", tenant="SANDBOX", totp_secret="JBSWY3DPEHPK3PXPJBSWY3DP"
)
#: A second account of the archivist's tenant, with the manager role: approves deletions.
MANAGER = SandboxUser(name="records.manager", password="Man4ger-appr0val-pw", tenant="SANDBOX")
USERS = [ARCHIVIST, PROD_USER, TEST_USER, TWO_FA_USER, MANAGER]
WRONG_PASSWORD = "Wr0ng-Passw0rd-991"
SECRETS = [u.password for u in USERS] + [u.totp_secret for u in USERS if u.totp_secret] + [WRONG_PASSWORD]
