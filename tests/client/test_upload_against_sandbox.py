"""The boto3 uploader against the sandbox's S3 endpoint: multipart, progress token, token refresh mid-upload."""

from __future__ import annotations

import os
import time

import pytest

from airflow_provider_preservica.client.progress import wait_for_progress
from airflow_provider_preservica.client.upload import PackageUploader
from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.ingest.packaging import build_opex_package
from tests.support.sandbox import MAPS_FOLDER, inject, logins

MiB = 1024 * 1024


@pytest.fixture
def package(tmp_path):
    source = tmp_path / "upload-batch"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(21 * MiB))
    manifest = build_opex_package(source, tmp_path / "out", security_tag="open")
    return manifest.package_path


def _uploader(hook, **kwargs):
    settings = hook.settings
    return PackageUploader(settings.base_url, settings.tenant, hook.token_cache, log_interval=0.5, **kwargs)


def test_multipart_upload_returns_the_progress_token_and_is_ingested(small_repository, package, caplog):
    caplog.set_level("INFO", logger="airflow_provider_preservica")
    small_repository.state.update_config({"ingest_seconds": 0.3})
    hook = PreservicaHook()
    result = _uploader(hook, multipart_threshold=5 * MiB, part_size=5 * MiB).upload(package, MAPS_FOLDER)
    assert result.bytes == os.path.getsize(package)
    progress = wait_for_progress(hook.get_conn(), result.progress_token, poll_interval=0.1, timeout=30)
    assert progress.status == "COMPLETED"
    parts = small_repository.state.stats()["requests"]
    assert sum(n for k, n in parts.items() if k.startswith("PUT /api/s3")) >= 5  # really multipart
    assert any("MiB/s, ETA" in r.message for r in caplog.records)  # progress with rate and ETA


def test_an_upload_longer_than_the_token_lifetime_succeeds(small_repository, package):
    small_repository.state.update_config({"token_lifetime": 6, "ingest_seconds": 0.3})
    inject(small_repository, kind="latency", route="PUT /api/s3/*", seconds=1.5, count=None)
    hook = PreservicaHook()
    started = time.monotonic()
    result = _uploader(hook, multipart_threshold=5 * MiB, part_size=5 * MiB, max_concurrency=1).upload(
        package, MAPS_FOLDER
    )
    assert time.monotonic() - started > 6  # the upload outlived the first token
    assert logins(small_repository) >= 2  # fresh credentials were fetched mid-upload
    assert wait_for_progress(hook.get_conn(), result.progress_token, poll_interval=0.1, timeout=30).succeeded


def test_aws_credentials_in_the_environment_are_never_used_instead_of_the_token(
    small_repository, tmp_path, monkeypatch
):
    """A worker with AWS credentials of its own (variables, ~/.aws, a profile) still uploads with the token."""
    aws = tmp_path / "home" / ".aws"
    aws.mkdir(parents=True)
    (aws / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAHOMEDEFAULT\naws_secret_access_key = home-secret\n"
        "[worker]\naws_access_key_id = AKIAHOMEPROFILE\naws_secret_access_key = profile-secret\n"
    )
    (aws / "config").write_text("[default]\nregion = eu-west-2\n[profile worker]\nregion = eu-west-2\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_PROFILE", "worker")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "environment-session-token")
    small_repository.state.update_config({"ingest_seconds": 0.2})
    source = tmp_path / "env-batch"
    source.mkdir()
    (source / "scan.tif").write_bytes(os.urandom(64 * 1024))
    package = build_opex_package(source, tmp_path / "pkg", security_tag="open").package_path
    hook = PreservicaHook()

    result = _uploader(hook).upload(package, MAPS_FOLDER)

    # The sandbox answers 403 InvalidAccessKeyId to any access key that is not a live Preservica token, and
    # files the upload under the user whose token signed it.
    job = small_repository.state.ingest.job(result.progress_token)
    assert job is not None and job.user == "archivist"
    assert wait_for_progress(hook.get_conn(), result.progress_token, poll_interval=0.1, timeout=30).succeeded


def test_upload_without_a_tenant_says_what_to_set(sandbox):
    with pytest.raises(PreservicaError, match="tenant"):
        PackageUploader("http://127.0.0.1:1", None, None)  # type: ignore[arg-type]


def test_ingested_asset_downloads_byte_identical_and_resumes(small_repository, tmp_path):
    from airflow_provider_preservica.client.search import SearchQuery

    small_repository.state.update_config({"ingest_seconds": 0.2})
    source = tmp_path / "one-file"
    source.mkdir()
    original = os.urandom(3 * MiB)
    (source / "scan.tif").write_bytes(original)
    package = build_opex_package(source, tmp_path / "pkg", security_tag="open").package_path
    hook = PreservicaHook()
    result = _uploader(hook).upload(package, MAPS_FOLDER)
    assert wait_for_progress(hook.get_conn(), result.progress_token, poll_interval=0.1, timeout=30).succeeded
    [hit] = list(hook.search(SearchQuery(text="scan.tif", filters={"xip.document_type": "IO"})))
    inject(small_repository, kind="drop_after_bytes", route="GET /api/content/download", bytes=100_000, count=1)

    download = hook.download_asset(hit.reference, tmp_path / "scan-copy.tif")

    assert (tmp_path / "scan-copy.tif").read_bytes() == original
    assert download.resumes == 1 and download.bytes == len(original)
