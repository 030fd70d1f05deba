"""The Process Monitor reader: per-asset outcomes of an ingest, found by the uploaded object key."""

from __future__ import annotations

import pytest

from airflow_provider_preservica.client.monitor import ingest_messages
from airflow_provider_preservica.client.progress import wait_for_progress
from airflow_provider_preservica.client.upload import PackageUploader
from airflow_provider_preservica.exceptions import PreservicaError, ProgressTokenUnknownError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.ingest.existing import SOURCE_ID_IDENTIFIER, existing_source_ids
from airflow_provider_preservica.ingest.packaging import build_opex_package
from tests.support.sandbox import MAPS_FOLDER, connection_json


@pytest.fixture
def ingest(small_repository, tmp_path):
    small_repository.state.update_config({"ingest_seconds": 0.2})
    hook = PreservicaHook()
    uploader = PackageUploader(hook.settings.base_url, hook.settings.tenant, hook.token_cache)

    def run(source, name):
        manifest = build_opex_package(source, tmp_path / f"out-{name}", security_tag="open")
        result = uploader.upload(manifest.package_path, MAPS_FOLDER, key=f"{name}.zip")
        wait_for_progress(hook.get_conn(), result.progress_token, poll_interval=0.1, timeout=30)
        return manifest, result.key

    return hook, run


def test_a_completed_ingest_names_every_asset_it_created(ingest, tmp_path):
    hook, run = ingest
    source = tmp_path / "letters"
    source.mkdir()
    for index in range(4):
        (source / f"letter-{index}.txt").write_text(f"letter {index}")
    manifest, key = run(source, "letters")

    messages = ingest_messages(hook.get_conn(), key)

    assert messages.found and messages.errors == []
    sent = [asset.source_id for asset in manifest.assets]
    assert sorted(messages.created) == sorted(sent)
    assert messages.created == existing_source_ids(hook.entities, sent, SOURCE_ID_IDENTIFIER)


def test_an_unknown_upload_key_has_no_monitor(ingest):
    hook, _ = ingest
    messages = ingest_messages(hook.get_conn(), "never-uploaded.zip")
    assert not messages.found and messages.created == {} and messages.errors == []


def test_a_task_uploads_waits_and_reads_the_monitor_through_the_hook_alone(small_repository, tmp_path):
    """What the ingest operator does, from ``@task`` code: only hook methods, no client object in sight."""
    small_repository.state.update_config({"ingest_seconds": 0.2})
    hook = PreservicaHook()
    sent = {}
    for name in ("maps-a", "maps-b"):
        source = tmp_path / name
        source.mkdir()
        (source / f"{name}.txt").write_text(name)
        manifest = build_opex_package(source, tmp_path / f"out-{name}", security_tag="open")
        result = hook.upload_package(manifest.package_path, MAPS_FOLDER, key=f"{name}.zip", max_concurrency=1)
        sent[result.progress_token] = (result.key, [asset.source_id for asset in manifest.assets])

    tokens = list(sent)
    finished = hook.wait_for_all(tokens, poll_interval=0.1, timeout=30, what="ingest")
    seen = hook.progress_many([*tokens, "no-such-token"])

    assert sorted(finished) == sorted(tokens) and all(p.succeeded for p in finished.values())
    assert isinstance(seen.pop("no-such-token"), ProgressTokenUnknownError)
    assert seen == finished
    for key, source_ids in sent.values():
        assert sorted(hook.ingest_messages(key).created) == sorted(source_ids)


def test_a_connection_without_a_tenant_cannot_upload_and_says_so_before_sending(sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox, tenant=""))
    with pytest.raises(PreservicaError, match="set the Connection extra 'tenant'"):
        PreservicaHook().package_uploader()
    assert not any(route.startswith("PUT ") for route in sandbox.state.stats()["requests"])
