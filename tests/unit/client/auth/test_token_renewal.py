"""Token renewal rules and the cache's refresh logic, with a fake issuer (no network, no Airflow database).

The issuer behaves like Preservica's Access Token API: logins always work, a refresh token is single-use
and only good while its access token is, and refusals raise ``RefreshRejected``. Issuer and cache share a
``FakeClock``: a token ages only when a test advances it, never with the machine's speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest

from airflow_provider_preservica.client.auth.cache import TokenCache
from airflow_provider_preservica.client.auth.login import RefreshRejected
from airflow_provider_preservica.client.auth.stores import MemoryTokenStore
from airflow_provider_preservica.client.auth.token import AccessToken
from airflow_provider_preservica.connection.settings import PreservicaSettings
from airflow_provider_preservica.exceptions import PreservicaConnectionError
from tests.support import REPO
from tests.support.clock import FakeClock

SETTINGS = PreservicaSettings(
    base_url="https://preservica.example.org",
    username="robot",
    password="Unit-R0bot-pw-1234",
    cache_name="unit_renewal",
    login_lease_delay=0.02,
)
FP = SETTINGS.fingerprint


class FakeIssuer:
    """Issues token pairs of ``lifetime`` seconds; refresh tokens are single-use."""

    def __init__(self, lifetime: float = 900.0, clock: FakeClock | None = None) -> None:
        self.lifetime = lifetime
        self.clock = clock or FakeClock()
        self.logins = 0
        self.refreshes = 0
        self.refused = 0
        self.unused: set[str] = set()
        self.reject_next_refreshes = 0
        self.login_fails = False
        self.guard = threading.Lock()

    def _issue(self) -> AccessToken:
        now = self.clock()
        token = AccessToken(str(uuid.uuid4()), now + self.lifetime, now, FP, refresh_token=str(uuid.uuid4()))
        self.unused.add(token.refresh_token or "")
        return token

    def login(self) -> AccessToken:
        if self.login_fails:
            raise PreservicaConnectionError("POST https://preservica.example.org/api/accesstoken/login: refused")
        with self.guard:
            self.logins += 1
            return self._issue()

    def refresh(self, token: AccessToken) -> AccessToken:
        time.sleep(0.01)  # a round trip: lets competitors pile up
        with self.guard:
            if self.reject_next_refreshes or token.refresh_token not in self.unused or self.clock() >= token.expires_at:
                self.reject_next_refreshes = max(0, self.reject_next_refreshes - 1)
                self.unused.discard(token.refresh_token or "")
                self.refused += 1
                raise RefreshRejected("Preservica rejected the refresh token of robot (HTTP 401: already used)")
            self.unused.discard(token.refresh_token or "")
            self.refreshes += 1
            return self._issue()


def aged(token: AccessToken, seconds: float) -> AccessToken:
    """The same token as the cache would see it ``seconds`` later (its times moved back)."""
    return AccessToken(
        token.value, token.expires_at - seconds, token.issued_at - seconds, FP, refresh_token=token.refresh_token
    )


@pytest.fixture
def store(tmp_path, monkeypatch) -> MemoryTokenStore:
    monkeypatch.setenv("PRESERVICA_LOCK_DIR", str(tmp_path))
    TokenCache.clear_memory()
    shared = MemoryTokenStore()
    for key in (SETTINGS.token_variable_key, SETTINGS.lease_variable_key):
        shared.delete(key)
    yield shared
    TokenCache.clear_memory()


def cache_for(issuer: FakeIssuer, store: MemoryTokenStore | None) -> TokenCache:
    return TokenCache(SETTINGS, issuer.login, store, refresh=issuer.refresh, lock_timeout=10, clock=issuer.clock)


def stored(store: MemoryTokenStore) -> AccessToken | None:
    return AccessToken.from_json(store.read(SETTINGS.token_variable_key))


# -- the rules ------------------------------------------------------------------------------------------
def test_a_fifteen_minute_token_is_fresh_then_due_then_unusable_then_past_refreshing():
    token = AccessToken("t", expires_at=900.0, issued_at=0.0, fingerprint=FP, refresh_token="r")
    assert token.fresh(now=599) and not token.fresh(now=600)  # renew once a third (300 s) is left
    assert token.usable(FP, 60, now=839) and not token.usable(FP, 60, now=840)  # in use until the margin
    assert token.refreshable(now=894) and not token.refreshable(now=895)  # a refresh needs a live token
    assert not AccessToken("t", 900.0, 0.0, FP).refreshable(now=10)  # no refresh token, no refresh


def test_short_tokens_keep_a_renewal_window_before_they_become_unusable():
    token = AccessToken("t", expires_at=20.0, issued_at=0.0, fingerprint=FP, refresh_token="r")
    renew_from, usable_until, refreshable_until = token.renew_at, 20.0 - 20 / 4, 20.0 - 2.0
    assert renew_from < usable_until < refreshable_until < token.expires_at
    assert not token.fresh(now=14) and token.usable(FP, 60, now=14) and token.refreshable(now=17.9)


def test_the_refresh_token_is_stored_with_the_token_and_hidden_from_repr():
    token = AccessToken("tok-value-1234", 900.0, 0.0, FP, refresh_token="refresh-value-5678")
    record = json.loads(token.to_json())
    assert record["refresh_token"] == "refresh-value-5678" and record["version"] == 1
    assert AccessToken.from_json(token.to_json()) == token
    assert "refresh-value-5678" not in repr(token) and "tok-value-1234" not in repr(token)


def test_a_record_written_before_refresh_existed_is_still_read():
    old = json.dumps(
        {"version": 1, "token": "old-token-value", "expires_at": 900.5, "issued_at": 0.5, "fingerprint": FP}
    )
    token = AccessToken.from_json(old)
    assert token is not None and token.value == "old-token-value" and token.refresh_token is None
    assert "refresh_token" not in json.loads(token.to_json())
    odd = json.loads(old) | {"refresh_token": 42}
    assert AccessToken.from_json(json.dumps(odd)).refresh_token is None  # unusable field, token still good


# -- the cache ------------------------------------------------------------------------------------------
def test_a_due_token_is_refreshed_once_and_shared(store):
    issuer = FakeIssuer()
    first = cache_for(issuer, store).get_token()
    store.write(SETTINGS.token_variable_key, aged(first, 650).to_json())  # 250 s left: due
    TokenCache.clear_memory()

    renewed = cache_for(issuer, store).get_token()

    assert (issuer.logins, issuer.refreshes) == (1, 1)
    assert renewed.value != first.value and stored(store).value == renewed.value
    assert cache_for(issuer, store).get_token().value == renewed.value and issuer.refreshes == 1


def test_a_fresh_token_is_not_renewed(store):
    issuer = FakeIssuer()
    cache = cache_for(issuer, store)
    token = cache.get_token()
    for _ in range(20):
        assert cache.get_token() == token
    assert (issuer.logins, issuer.refreshes) == (1, 0)


def test_a_rejected_refresh_falls_back_to_one_login(store):
    issuer = FakeIssuer()
    first = cache_for(issuer, store).get_token()
    store.write(SETTINGS.token_variable_key, aged(first, 650).to_json())
    TokenCache.clear_memory()
    issuer.reject_next_refreshes = 1

    cache = cache_for(issuer, store)
    token = cache.get_token()

    assert (issuer.logins, issuer.refreshes, issuer.refused) == (2, 0, 1)
    assert (cache.logins, cache.refreshes) == (1, 0)
    assert stored(store).value == token.value and token.refresh_token  # the login's pair replaces the spent one


def test_a_token_too_close_to_expiry_to_refresh_is_renewed_by_login(store):
    issuer = FakeIssuer()
    first = cache_for(issuer, store).get_token()
    store.write(SETTINGS.token_variable_key, aged(first, 897).to_json())  # 3 s left: past refreshing
    TokenCache.clear_memory()

    cache_for(issuer, store).get_token()

    assert (issuer.logins, issuer.refreshes, issuer.refused) == (2, 0, 0)  # no doomed refresh sent


def test_threads_asking_at_once_spend_the_refresh_token_once(store):
    issuer = FakeIssuer()
    first = cache_for(issuer, store).get_token()
    store.write(SETTINGS.token_variable_key, aged(first, 870).to_json())  # 30 s left: unusable, refreshable
    TokenCache.clear_memory()
    start = threading.Barrier(12)
    got: list[AccessToken] = []

    def ask() -> None:
        start.wait()
        got.append(cache_for(issuer, store).get_token())

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert (issuer.logins, issuer.refreshes, issuer.refused) == (1, 1, 0)
    assert len(got) == 12 and len({token.value for token in got}) == 1


def test_a_renewal_ahead_of_expiry_that_fails_keeps_the_current_token(store):
    issuer = FakeIssuer()
    first = cache_for(issuer, store).get_token()
    due = aged(first, 650)
    store.write(SETTINGS.token_variable_key, due.to_json())
    TokenCache.clear_memory()
    issuer.reject_next_refreshes = 1
    issuer.login_fails = True  # and the password login cannot reach the server either

    cache = cache_for(issuer, store)
    assert cache.get_token().value == due.value  # still valid for 250 s: the task goes on with it
    assert cache.get_token().value == due.value and issuer.refused == 1  # no new attempt on every request

    issuer.login_fails = False
    TokenCache.clear_memory()  # (forgets the back-off too)
    renewed = cache_for(issuer, store).get_token()
    assert (
        renewed.value != due.value and issuer.logins == 2 and issuer.refused == 1
    )  # the spent refresh token is not resent


def test_without_a_store_the_process_refreshes_its_own_token():
    issuer = FakeIssuer(lifetime=3.0)
    TokenCache.clear_memory()
    cache = cache_for(issuer, None)
    first = cache.get_token()
    issuer.clock.advance(2.1)  # 0.9 s left of 3 s: due, still usable
    second = cache.get_token()
    assert second != first and (issuer.logins, issuer.refreshes) == (1, 1)
    TokenCache.clear_memory()


FIRST_LOGIN_IN_A_NEW_PROCESS = """
import sys, time
from airflow_provider_preservica.client.auth.cache import TokenCache
from airflow_provider_preservica.connection.settings import PreservicaSettings
from airflow_provider_preservica.client.auth.token import AccessToken

settings = PreservicaSettings(base_url="https://preservica.example.org", username="robot", password="pw-123456789")
seen = []

def login():
    seen.append("airflow.sdk.log" in sys.modules)  # is the secrets masker loaded before the token's clock starts?
    now = time.time()
    return AccessToken("token-value-1", now + 900, now, settings.fingerprint)

TokenCache(settings, login, None).get_token()
print(seen)
"""


def test_the_first_login_of_a_process_does_not_pay_for_loading_the_secrets_masker_out_of_the_token():
    """Loading Airflow's secrets masker takes about a second in a fresh process: it is done before the login.

    Done after it, a new token started its life a second old (a 3 s sandbox token lost a third of it).
    """
    done = subprocess.run(
        [sys.executable, "-c", FIRST_LOGIN_IN_A_NEW_PROCESS],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True]"


def test_a_login_without_refresh_support_renews_by_logging_in(store):
    issuer = FakeIssuer()
    first = TokenCache(SETTINGS, issuer.login, store, lock_timeout=10, clock=issuer.clock).get_token()
    store.write(SETTINGS.token_variable_key, aged(first, 650).to_json())
    TokenCache.clear_memory()
    TokenCache(SETTINGS, issuer.login, store, lock_timeout=10, clock=issuer.clock).get_token()
    assert (issuer.logins, issuer.refreshes) == (2, 0)


class LeaseWritesFail(MemoryTokenStore):
    """A store whose lease writes fail (the API server refusing a Variable write), token writes work."""

    def write(self, key: str, value: str) -> None:
        if key == SETTINGS.lease_variable_key:
            raise RuntimeError("Variable write refused")
        super().write(key, value)


@pytest.mark.parametrize("left", [250, 30], ids=["due", "past its margin"])
def test_a_lease_that_cannot_be_written_does_not_fail_the_renewal(store, left):
    flaky = LeaseWritesFail()
    issuer = FakeIssuer()
    first = cache_for(issuer, store).get_token()
    flaky.write(SETTINGS.token_variable_key, aged(first, 900 - left).to_json())
    TokenCache.clear_memory()

    renewed = cache_for(issuer, flaky).get_token()

    assert renewed.value != first.value and (issuer.logins, issuer.refreshes) == (1, 1)
    assert stored(flaky).value == renewed.value
