"""The Connection's TLS settings take effect on every path, whatever REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE say.

``requests`` lets those variables override a session's ``verify``, so ``verify_ssl: false`` and a
``ca_bundle`` path used to be ignored on every path that goes through it (login, 2FA, refresh, forms,
downloads) while they were set - as they are on many machines. The sandbox's state is served over HTTPS
with a self-signed certificate; the variables name a bundle that does not trust it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import certifi
import pytest

from airflow_provider_preservica.client.progress import wait_for_progress
from airflow_provider_preservica.client.upload import PackageUploader
from airflow_provider_preservica.exceptions import PreservicaConnectionError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.ingest.packaging import build_opex_package
from tests.support.sandbox import MAPS_FOLDER, connection_json
from tests.support.tls import connection_at, self_signed, serve_tls

MAP_ASSET = "b0000000-0000-4000-8000-000000000001"
BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_url(sandbox_server, certificate) -> Iterator[str]:
    with serve_tls(sandbox_server.state, *certificate) as url:
        yield url


def _bundle_in_environment(monkeypatch: pytest.MonkeyPatch, variable: str, bundle: str) -> None:
    for name in BUNDLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, bundle)


def _use(monkeypatch: pytest.MonkeyPatch, sandbox, url: str, **extra: object) -> PreservicaHook:
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_at(connection_json(sandbox, **extra), url))
    return PreservicaHook()


def _every_path(hook: PreservicaHook, tmp_path) -> None:
    """Login (form), REST JSON and XML (fast path), a streamed download and the boto3 upload."""
    client = hook.get_conn()
    assert client.user_details()["userName"] == "archivist"
    assert hook.entities.get(MAPS_FOLDER).ref == MAPS_FOLDER
    assert hook.download_asset(MAP_ASSET, tmp_path / "map.bin").bytes > 0
    source = tmp_path / "delivery"
    source.mkdir()
    (source / "scan.tif").write_bytes(os.urandom(2048))
    package = build_opex_package(source, tmp_path / "out", security_tag="open").package_path
    settings = hook.settings
    uploader = PackageUploader(settings.base_url, settings.tenant, hook.token_cache, verify=settings.verify)
    result = uploader.upload(package, MAPS_FOLDER)
    assert wait_for_progress(client, result.progress_token, poll_interval=0.1, timeout=30).succeeded


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("variable", BUNDLE_VARIABLES)
def test_verify_ssl_false_is_obeyed_while_a_ca_bundle_variable_is_set(
    small_repository, tls_url, monkeypatch, tmp_path, variable
):
    _bundle_in_environment(monkeypatch, variable, certifi.where())
    small_repository.state.update_config({"ingest_seconds": 0.1})
    _every_path(_use(monkeypatch, small_repository, tls_url, verify_ssl=False), tmp_path)


def test_the_connections_ca_bundle_is_obeyed_while_a_ca_bundle_variable_is_set(
    small_repository, tls_url, certificate, monkeypatch, tmp_path
):
    _bundle_in_environment(monkeypatch, "REQUESTS_CA_BUNDLE", certifi.where())
    small_repository.state.update_config({"ingest_seconds": 0.1})
    _every_path(_use(monkeypatch, small_repository, tls_url, ca_bundle=certificate[0]), tmp_path)


def test_without_a_setting_the_variables_bundle_is_trusted_on_every_path_boto3_too(
    small_repository, tls_url, certificate, monkeypatch, tmp_path
):
    _bundle_in_environment(monkeypatch, "REQUESTS_CA_BUNDLE", certificate[0])
    small_repository.state.update_config({"ingest_seconds": 0.1})
    _every_path(_use(monkeypatch, small_repository, tls_url), tmp_path)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_ssl_false_is_obeyed_by_the_pypreservica_client_too(small_repository, tls_url, monkeypatch):
    from pyPreservica import EntityAPI

    _bundle_in_environment(monkeypatch, "REQUESTS_CA_BUNDLE", certifi.where())
    hook = _use(monkeypatch, small_repository, tls_url, verify_ssl=False)
    assert hook.get_pypreservica_client(EntityAPI).folder(MAPS_FOLDER).reference == MAPS_FOLDER


def test_by_default_an_untrusted_certificate_still_fails_closed(sandbox, tls_url, monkeypatch):
    _bundle_in_environment(monkeypatch, "REQUESTS_CA_BUNDLE", certifi.where())
    with pytest.raises(PreservicaConnectionError, match=r"TLS handshake with 127\.0\.0\.1 failed"):
        _use(monkeypatch, sandbox, tls_url).get_conn().user_details()
