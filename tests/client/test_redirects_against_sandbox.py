"""A redirect to another origin never takes the password, a 2FA code, a token or a refresh token along.

The sandbox plays a proxy in front of Preservica that answers a redirect (its ``redirect`` fault); a second
HTTP server on loopback (another port: another origin) records whatever reaches it. On every client path -
login, 2FA, refresh, REST (JSON and XML, the fast path and the ``requests`` session), streamed downloads
(including a resumed one), bitstreams, the boto3 upload and a pyPreservica client made by the hook - nothing
may reach it, and the user gets an error that names the origin the server pointed at and what to do. A
redirect within the origin still works.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from airflow_provider_preservica.client.auth.login import PasswordLogin
from airflow_provider_preservica.client.http import HttpTransport
from airflow_provider_preservica.client.upload import PackageUploader
from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.ingest.packaging import build_opex_package
from benchmarks.other_origin import OtherOrigin
from tests.support.accounts import SECRETS, TWO_FA_USER
from tests.support.sandbox import ISSUED_TOKENS, MAPS_FOLDER, connection_json, inject, remember_tokens
from tests.support.tls import connection_at, self_signed, serve_tls

LOGIN = "POST /api/accesstoken/login"
DETAILS = "GET /api/user/details"
CONTENT = "GET /api/content/download"
BITSTREAM = "GET /api/entity/content-objects/*/generations/*/bitstreams/*/content"
MAP_ASSET = "b0000000-0000-4000-8000-000000000001"


@pytest.fixture
def elsewhere() -> Iterator[OtherOrigin]:
    with OtherOrigin() as server:
        yield server


def redirect(server, elsewhere: OtherOrigin, route: str, status: int = 307, count: int | None = None) -> None:
    """Every request on ``route`` (until cleared) is redirected to the same path on ``elsewhere``."""
    inject(server, kind="redirect", route=route, status=status, location=elsewhere.base_url + "{path}", count=count)


def assert_refused(error: pytest.ExceptionInfo[PreservicaError], server, elsewhere: OtherOrigin) -> None:
    """Nothing reached the other origin, and the error names it and says how to fix the Connection."""
    remember_tokens(server)
    assert elsewhere.holding([*SECRETS, *ISSUED_TOKENS]) == []
    assert elsewhere.received == [], "a request was sent to the other origin"
    message = str(error.value)
    assert elsewhere.base_url in message and "another origin" in message, message
    assert "Connection's host" in message, message
    assert not any(secret in message for secret in [*SECRETS, *ISSUED_TOKENS])


def test_login_redirected_elsewhere_keeps_the_password(preservica_conn, elsewhere):
    redirect(preservica_conn, elsewhere, LOGIN)
    with pytest.raises(PreservicaError) as error:
        PreservicaHook().get_conn().user_details()
    assert_refused(error, preservica_conn, elsewhere)
    assert preservica_conn.state.stats()["requests"][LOGIN] == 1  # refused at once, not retried


def test_2fa_completion_redirected_elsewhere_keeps_the_code(sandbox, elsewhere, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox, TWO_FA_USER))
    redirect(sandbox, elsewhere, "POST /api/accesstoken/complete-2fa", status=308)
    with pytest.raises(PreservicaError) as error:
        PreservicaHook().get_conn().user_details()
    assert_refused(error, sandbox, elsewhere)


def test_refresh_redirected_elsewhere_keeps_both_tokens(preservica_conn, elsewhere):
    hook = PreservicaHook()
    token = hook.token_cache.get_token()
    redirect(preservica_conn, elsewhere, "POST /api/accesstoken/refresh")
    transport = HttpTransport(hook.settings.base_url)
    with pytest.raises(PreservicaError) as error:
        PasswordLogin(hook.settings, transport).refresh(token)
    transport.close()
    assert token.refresh_token and token.refresh_token not in str(error.value)
    assert_refused(error, preservica_conn, elsewhere)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_rest_json_get_redirected_elsewhere_keeps_the_token(preservica_conn, elsewhere, status):
    client = PreservicaHook().get_conn()
    client.user_details()  # logged in; the fast path's pool is warm
    redirect(preservica_conn, elsewhere, DETAILS, status=status)
    with pytest.raises(PreservicaError) as error:
        client.user_details()
    assert_refused(error, preservica_conn, elsewhere)


def test_rest_xml_get_redirected_elsewhere_keeps_the_token(small_repository, elsewhere):
    hook = PreservicaHook()
    redirect(small_repository, elsewhere, "GET /api/entity/*", status=302)
    with pytest.raises(PreservicaError) as error:
        hook.entities.get(MAPS_FOLDER)
    assert_refused(error, small_repository, elsewhere)


def test_form_post_redirected_elsewhere_keeps_the_token(small_repository, elsewhere, tmp_path):
    hook = PreservicaHook()
    hook.get_conn().user_details()
    redirect(small_repository, elsewhere, "POST /api/content/*")
    with pytest.raises(PreservicaError) as error:
        list(hook.search("%", page_size=5))
    assert_refused(error, small_repository, elsewhere)


def test_download_redirected_elsewhere_keeps_the_token_and_leaves_no_file(small_repository, elsewhere, tmp_path):
    redirect(small_repository, elsewhere, CONTENT, status=302)
    with pytest.raises(PreservicaError) as error:
        PreservicaHook().download_asset(MAP_ASSET, tmp_path / "map.tif")
    assert_refused(error, small_repository, elsewhere)
    assert list(tmp_path.iterdir()) == []


def test_resumed_download_redirected_elsewhere_keeps_the_token(small_repository, elsewhere, tmp_path):
    inject(small_repository, kind="drop_after_bytes", route=CONTENT, bytes=10, count=1)
    redirect(small_repository, elsewhere, CONTENT, status=302)  # the resume (Range) request is the one redirected
    with pytest.raises(PreservicaError) as error:
        PreservicaHook().download_asset(MAP_ASSET, tmp_path / "map.tif")
    assert_refused(error, small_repository, elsewhere)
    assert small_repository.state.stats()["faults_fired"] == {"drop_after_bytes": 1, "redirect": 1}
    assert list(tmp_path.iterdir()) == []


def test_bitstream_download_redirected_elsewhere_keeps_the_token(small_repository, elsewhere, tmp_path):
    repository = small_repository.state.repository
    asset = repository.add_asset("letters", MAPS_FOLDER)
    (tmp_path / "source").write_bytes(b"letter " * 100)
    repository.add_bitstream_file(asset.ref, tmp_path / "source", "letter.txt")
    target = tmp_path / "out"
    redirect(small_repository, elsewhere, BITSTREAM)
    with pytest.raises(PreservicaError) as error:
        PreservicaHook().download_bitstreams(asset.ref, target)
    assert_refused(error, small_repository, elsewhere)
    assert list(target.iterdir()) == []


def test_upload_redirected_elsewhere_keeps_the_token(small_repository, elsewhere, tmp_path):
    source = tmp_path / "delivery"
    source.mkdir()
    (source / "scan.tif").write_bytes(os.urandom(4096))
    package = build_opex_package(source, tmp_path / "out", security_tag="open").package_path
    hook = PreservicaHook()
    settings = hook.settings
    redirect(small_repository, elsewhere, "PUT /api/s3/*")
    uploader = PackageUploader(settings.base_url, settings.tenant, hook.token_cache, verify=settings.verify)
    with pytest.raises(PreservicaError) as error:
        uploader.upload(package, MAPS_FOLDER)
    assert_refused(error, small_repository, elsewhere)


@pytest.fixture(scope="module")
def tls_url(sandbox_server, tmp_path_factory) -> Iterator[str]:
    with serve_tls(sandbox_server.state, *self_signed(tmp_path_factory.mktemp("tls"))) as url:
        yield url


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_a_downgrade_to_plain_http_is_refused_by_name(sandbox, tls_url, elsewhere, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_at(connection_json(sandbox, verify_ssl=False), tls_url)
    )
    client = PreservicaHook().get_conn()
    client.user_details()
    redirect(sandbox, elsewhere, DETAILS, status=302)
    with pytest.raises(PreservicaError, match="plain http") as error:
        client.user_details()
    assert_refused(error, sandbox, elsewhere)


@pytest.mark.parametrize("route", [LOGIN, DETAILS, "POST /api/content/*"])
def test_a_redirect_within_the_origin_still_works(small_repository, route):
    inject(small_repository, kind="redirect", route=route, status=307, location="{path}")
    hook = PreservicaHook()
    assert hook.get_conn().user_details()["userName"] == "archivist"
    assert len(list(hook.search("%", page_size=5))) > 0
    assert small_repository.state.stats()["faults_fired"] == {"redirect": 1}


def test_pypreservica_client_redirected_elsewhere_keeps_the_token(small_repository, elsewhere):
    from pyPreservica import EntityAPI

    entity = PreservicaHook().get_pypreservica_client(EntityAPI)
    redirect(small_repository, elsewhere, "GET /api/entity/*", status=302)
    with pytest.raises(PreservicaError) as error:
        entity.folder(MAPS_FOLDER)
    assert_refused(error, small_repository, elsewhere)
