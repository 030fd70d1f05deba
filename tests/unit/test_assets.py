"""Preservica Asset URIs and the asset events the operators fill in (no network, no Airflow DB)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_preservica.assets import (
    ALIAS_ASSET_LIMIT,
    emit_asset_events,
    file_asset,
    preservica_asset,
    preservica_host,
    preservica_uri,
)

REF = "8a7f1c52-0b7e-4f0e-9d2c-1e6b5a4c3d21"


@pytest.mark.parametrize(
    ("given", "host"),
    [
        ("eu.preservica.com", "eu.preservica.com"),
        ("https://eu.preservica.com", "eu.preservica.com"),
        ("https://EU.Preservica.com:443/", "eu.preservica.com"),
        ("http://archive.example.org:80", "archive.example.org"),
        ("https://preservica.example.org:8443", "preservica.example.org:8443"),
        ("preservica.example.org:8443", "preservica.example.org:8443"),
        ("http://127.0.0.1:8765", "127.0.0.1:8765"),
        ("https://[::1]:9443", "[::1]:9443"),
        ("preservica://eu.preservica.com", "eu.preservica.com"),
    ],
)
def test_the_host_part_is_the_same_however_the_connection_writes_it(given: str, host: str) -> None:
    assert preservica_host(given) == host


def test_preservica_asset_is_the_asset_a_user_writes_by_hand() -> None:
    asset = preservica_asset("https://eu.preservica.com", REF)
    assert asset == Asset(f"preservica://eu.preservica.com/{REF}")
    assert (asset.name, asset.uri) == (f"preservica://eu.preservica.com/{REF}",) * 2
    assert preservica_asset("eu.preservica.com", REF, group="collections").group == "collections"


@pytest.mark.parametrize("ref", ["", "  ", "{{ params.folder }}", "a/b", "{% if x %}"])
def test_a_templated_or_malformed_ref_is_refused_with_the_way_out(ref: str) -> None:
    with pytest.raises(ValueError, match="AssetAlias"):
        preservica_uri("eu.preservica.com", ref)


def test_no_host_is_refused() -> None:
    with pytest.raises(ValueError, match="host"):
        preservica_host("")


def test_file_asset_of_a_path_and_of_a_url(tmp_path: Path) -> None:
    assert file_asset(str(tmp_path / "r.csv")).uri == f"file://{tmp_path}/r.csv"
    assert file_asset("s3://bucket/reports/r.csv").uri == "s3://bucket/reports/r.csv"


class FakeOperator:
    def __init__(self, outlets: list[Any]) -> None:
        self.outlets = outlets
        self.log = logging.getLogger("test.operator")


FOLDER = preservica_asset("eu.preservica.com", REF)
ALIAS = AssetAlias("nightly")


def serialized(events: OutletEventAccessors) -> list[dict[str, Any]]:
    from airflow.sdk.execution_time.task_runner import _serialize_outlet_events

    return list(_serialize_outlet_events(events))


def test_a_run_that_changed_something_fills_assets_and_aliases() -> None:
    operator, events = FakeOperator([FOLDER, ALIAS, "not an asset"]), OutletEventAccessors()
    produced = [preservica_asset("eu.preservica.com", "other-ref")]
    assert emit_asset_events(operator, {"outlet_events": events}, produced=produced, extra={"created_count": 2})
    assert serialized(events) == [
        {"dest_asset_key": {"name": FOLDER.uri, "uri": FOLDER.uri}, "extra": {"created_count": 2}},
        {
            "source_alias_name": "nightly",
            "dest_asset_key": {"name": produced[0].uri, "uri": produced[0].uri},
            "dest_asset_extra": {},
            "extra": {"created_count": 2},
        },
    ]
    assert operator.outlets == [FOLDER, ALIAS, "not an asset"]


def test_a_run_that_changed_nothing_withholds_every_event(caplog: pytest.LogCaptureFixture) -> None:
    outlets = [FOLDER, ALIAS, "not an asset"]
    operator, events = FakeOperator(outlets), OutletEventAccessors()
    with caplog.at_level(logging.INFO, logger="test.operator"):
        assert not emit_asset_events(
            operator, {"outlet_events": events}, produced=[FOLDER], extra={"x": 1}, changed=False
        )
    assert serialized(events) == []
    # Airflow emits for every Asset outlet of a successful task: this run's copy of the task drops them.
    assert operator.outlets == [ALIAS, "not an asset"] and outlets == [FOLDER, ALIAS, "not an asset"]
    assert "No asset event" in caplog.text


def test_emit_unchanged_keeps_airflows_every_success_rule() -> None:
    operator, events = FakeOperator([FOLDER]), OutletEventAccessors()
    assert emit_asset_events(
        operator, {"outlet_events": events}, produced=[], extra={"x": 1}, changed=False, emit_unchanged=True
    )
    assert serialized(events)[0]["extra"] == {"x": 1} and operator.outlets == [FOLDER]


def test_no_outlets_or_no_task_context_is_a_no_op() -> None:
    assert not emit_asset_events(FakeOperator([]), {}, produced=[FOLDER], extra={})
    assert not emit_asset_events(FakeOperator([FOLDER]), {}, produced=[FOLDER], extra={})


def test_an_alias_gets_at_most_the_limit_of_assets(caplog: pytest.LogCaptureFixture) -> None:
    operator, events = FakeOperator([ALIAS]), OutletEventAccessors()
    produced = [preservica_asset("eu.preservica.com", f"ref-{i}") for i in range(ALIAS_ASSET_LIMIT + 5)]
    with caplog.at_level(logging.WARNING, logger="test.operator"):
        emit_asset_events(operator, {"outlet_events": events}, produced=produced, extra={})
    assert len(serialized(events)) == ALIAS_ASSET_LIMIT
    assert f"only the first {ALIAS_ASSET_LIMIT}" in caplog.text
