"""Host parsing, the clear-text guard, and reading Connection extras."""

from __future__ import annotations

import json

import pytest

from airflow_provider_preservica.connection.endpoint import build_base_url
from airflow_provider_preservica.connection.sources import settings_from_connection
from airflow_provider_preservica.exceptions import InsecureTransportError, PreservicaConfigError


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("eu.preservica.com", None, "https://eu.preservica.com"),
        ("https://eu.preservica.com/", None, "https://eu.preservica.com"),
        ("eu.preservica.com", 8443, "https://eu.preservica.com:8443"),
        ("http://127.0.0.1:8765", None, "http://127.0.0.1:8765"),
        ("http://localhost:8765", None, "http://localhost:8765"),
        ("http://[::1]:8765", None, "http://[::1]:8765"),
    ],
)
def test_host_forms_become_base_urls(host, port, expected):
    assert build_base_url(host, port) == expected


@pytest.mark.parametrize("host", ["http://eu.preservica.com", "http://10.0.0.5:8080", "http://preservica.lan"])
def test_plain_http_to_a_network_host_is_refused(host):
    with pytest.raises(InsecureTransportError, match="allow_http"):
        build_base_url(host)


def test_plain_http_allowed_when_the_connection_says_so():
    assert build_base_url("http://preservica.lan", allow_http=True) == "http://preservica.lan"


@pytest.mark.parametrize(
    ("host", "message"),
    [("", "no Preservica host"), ("ftp://x.org", "unsupported scheme"), ("https://x.org/api/login", "path")],
)
def test_bad_hosts_say_what_is_wrong(host, message):
    with pytest.raises(PreservicaConfigError, match=message):
        build_base_url(host)


class FakeConnection:
    def __init__(self, host="eu.preservica.com", login="me", password="pw-123456", extra=None, port=None):
        self.conn_id = "preservica_prod"
        self.host, self.login, self.password, self.port = host, login, password, port
        self.extra = json.dumps(extra or {})

    @property
    def extra_dejson(self):
        return json.loads(self.extra)


def test_connection_extras_are_read_with_their_types():
    conn = FakeConnection(
        extra={
            "tenant": "PROD",
            "two_fa_secret": "JBSWY3DPEHPK3PXP",
            "verify_ssl": "false",
            "timeout": "30",
            "token_cache": "memory",
        }
    )
    settings = settings_from_connection(conn)
    assert settings.base_url == "https://eu.preservica.com"
    assert (settings.tenant, settings.totp_secret, settings.verify) == ("PROD", "JBSWY3DPEHPK3PXP", False)
    assert (settings.timeout, settings.token_cache, settings.cache_name) == (30.0, "memory", "preservica_prod")
    assert settings.token_variable_key == "preservica_access_token__preservica_prod"


def test_legacy_prefixed_extras_and_ca_bundle():
    conn = FakeConnection(extra={"extra__preservica__tenant": "T1", "ca_bundle": "/etc/ssl/my-ca.pem"})
    settings = settings_from_connection(conn)
    assert settings.tenant == "T1" and settings.verify == "/etc/ssl/my-ca.pem"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": None}, "no Host"),
        ({"password": None}, "no Password"),
        ({"login": "", "password": ""}, "no Login and no Password"),
        ({"extra": {"token_cache": "redis"}}, "cache_mode"),
        ({"extra": {"cache_mode": "redis"}}, "cache_mode"),
        ({"extra": {"timeout": "soon"}}, "timeout"),
        ({"extra": {"allow_http": "maybe"}}, "allow_http"),
        ({"host": "http://preservica.lan"}, "preservica_prod.*plain http"),
    ],
)
def test_bad_connections_name_the_field_to_fix(kwargs, message):
    with pytest.raises(PreservicaConfigError, match=message):
        settings_from_connection(FakeConnection(**kwargs))


def test_settings_repr_hides_password_and_2fa_secret():
    settings = settings_from_connection(FakeConnection(password="Sup3r-secret", extra={"two_fa_secret": "JBSWY3DP"}))
    assert "Sup3r-secret" not in repr(settings) and "JBSWY3DP" not in repr(settings)


def test_fingerprint_tells_accounts_apart_without_the_password():
    a = settings_from_connection(FakeConnection(password="one-password"))
    b = settings_from_connection(FakeConnection(password="other-password"))
    c = settings_from_connection(FakeConnection(login="someone-else"))
    assert a.fingerprint == b.fingerprint != c.fingerprint
