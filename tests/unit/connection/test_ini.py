"""The two legacy ini dialects users arrive with."""

from __future__ import annotations

import pytest

from airflow_provider_preservica.connection.ini import read_ini
from airflow_provider_preservica.connection.sources import connection_dict_from_ini, settings_from_ini
from airflow_provider_preservica.exceptions import PreservicaConfigError

SAMPLE_CONFIG_INI = """[DEFAULT]
URL = https://eu.preservica.com/api/accesstoken/login
Host = eu.preservica.com
Username = archivist@example.org
Password = pa%ss:word;with=odd chars
Tenant = MYTENANT
Version = V6
"""

CREDENTIALS_PROPERTIES = """[credentials]
username=robot@example.org
password=r0b0t-pw
tenant=PROD
server=us.preservica.com
twoFactorToken=JBSWY3DPEHPK3PXP
"""


def test_preservica_sample_config_ini(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text(SAMPLE_CONFIG_INI)
    creds = read_ini(path)
    assert (creds.dialect, creds.host, creds.username) == (
        "config.ini",
        "https://eu.preservica.com",
        "archivist@example.org",
    )
    assert (creds.password, creds.tenant) == ("pa%ss:word;with=odd chars", "MYTENANT")
    assert settings_from_ini(creds, "legacy").base_url == "https://eu.preservica.com"


def test_keys_in_any_case_and_host_only(tmp_path):
    path = tmp_path / "lower.ini"
    path.write_text("[DEFAULT]\nhost = eu.preservica.com\nUSERNAME = u\npassword = p\n")
    creds = read_ini(path)
    assert (creds.host, creds.username, creds.password, creds.tenant) == ("eu.preservica.com", "u", "p", None)


def test_pypreservica_credentials_properties(tmp_path):
    path = tmp_path / "credentials.properties"
    path.write_text(CREDENTIALS_PROPERTIES)
    creds = read_ini(path)
    assert (creds.dialect, creds.host, creds.tenant, creds.totp_secret) == (
        "credentials.properties",
        "us.preservica.com",
        "PROD",
        "JBSWY3DPEHPK3PXP",
    )
    conn = connection_dict_from_ini(creds)
    assert conn["conn_type"] == "preservica" and conn["extra"] == {
        "tenant": "PROD",
        "two_fa_secret": "JBSWY3DPEHPK3PXP",
    }


def test_missing_keys_are_all_named_at_once(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text("[DEFAULT]\nTenant = X\n")
    with pytest.raises(PreservicaConfigError) as error:
        read_ini(path)
    message = str(error.value)
    assert "URL/Host" in message and "Username" in message and "Password" in message and str(path) in message


def test_unparsable_and_absent_files(tmp_path):
    broken = tmp_path / "broken.ini"
    broken.write_text("this is not an ini file\n=\n")
    with pytest.raises(PreservicaConfigError, match="cannot be parsed"):
        read_ini(broken)
    with pytest.raises(PreservicaConfigError, match="does not exist"):
        read_ini(tmp_path / "nowhere.ini")


def test_parse_errors_do_not_echo_the_password(tmp_path):
    path = tmp_path / "dup.ini"
    path.write_text("[DEFAULT]\nPassword = first-Secret-1\nPassword = second-Secret-2\n")
    with pytest.raises(PreservicaConfigError) as error:
        read_ini(path)
    assert "Secret" not in str(error.value)
