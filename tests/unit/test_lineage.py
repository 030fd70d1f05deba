"""What each operator returns to the OpenLineage provider, and that it returns nothing without it."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pytest

from airflow_provider_preservica.ingest.report import IngestReport
from airflow_provider_preservica.lineage import LineageDataset, entity_dataset, operator_lineage, path_dataset
from airflow_provider_preservica.metadata.model import Outcome, RowOutcome
from airflow_provider_preservica.metadata.runner import MetadataRun
from airflow_provider_preservica.operators.export import PreservicaExportOperator
from airflow_provider_preservica.operators.ingest import PreservicaIngestOperator
from airflow_provider_preservica.operators.metadata import PreservicaMetadataOperator
from airflow_provider_preservica.operators.search import PreservicaSearchOperator

HOST = "eu.preservica.com"
NS = "preservica://eu.preservica.com"
FOLDER = "8a7f1c52-0b7e-4f0e-9d2c-1e6b5a4c3d21"


@pytest.mark.parametrize(
    ("given", "namespace", "name"),
    [
        ("/data/reports/r.csv", "file", "/data/reports/r.csv"),
        ("file:///data/reports/r.csv", "file", "/data/reports/r.csv"),
        ("file://nas01/exports/x.zip", "file://nas01", "/exports/x.zip"),
        ("s3://bucket/exports/2026/x.zip", "s3://bucket", "exports/2026/x.zip"),
        ("gs://bucket/r.jsonl", "gs://bucket", "r.jsonl"),
    ],
)
def test_paths_and_urls_follow_the_openlineage_naming(given: str, namespace: str, name: str) -> None:
    assert path_dataset(given) == LineageDataset(namespace, name)


def test_a_relative_path_is_made_absolute(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert path_dataset("r.csv") == LineageDataset("file", f"{tmp_path}/r.csv")


def test_entities_are_named_by_host_and_ref() -> None:
    assert entity_dataset("https://EU.preservica.com:443", FOLDER) == LineageDataset(NS, FOLDER)
    assert entity_dataset(HOST, None) == LineageDataset(NS, "@root@")  # a search of the whole repository


def pairs(items: list[Any]) -> list[tuple[str, str]]:
    return [(item.namespace, item.name) for item in items]


def statistics(item: Any) -> Any:
    return item.outputFacets["outputStatistics"]


needs_openlineage = pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="the OpenLineage provider (optional) is not installed",
)


@needs_openlineage
def test_search_reports_the_folder_searched_and_the_report_with_its_rows() -> None:
    op = PreservicaSearchOperator(task_id="s", parent_ref=FOLDER, output_path="s3://bucket/reports/open.csv")
    op._preservica_host, op._report_rows = HOST, 1200
    lineage = op.get_openlineage_facets_on_complete(None)
    assert type(lineage).__name__ == "OperatorLineage"
    assert pairs(lineage.inputs) == [(NS, FOLDER)]
    assert pairs(lineage.outputs) == [("s3://bucket", "reports/open.csv")]
    assert statistics(lineage.outputs[0]).rowCount == 1200


@needs_openlineage
def test_export_reports_the_entity_and_the_zip_and_its_unpacked_folder() -> None:
    op = PreservicaExportOperator(task_id="e", entity_ref=FOLDER, destination="/x/a.zip", unzip_to="/x/a")
    op._preservica_host = HOST
    op._result = {"path": "/x/a.zip", "bytes": 4096, "files": 7}
    lineage = op.get_openlineage_facets_on_complete(None)
    assert pairs(lineage.inputs) == [(NS, FOLDER)]
    assert pairs(lineage.outputs) == [("file", "/x/a.zip"), ("file", "/x/a")]
    assert (statistics(lineage.outputs[0]).size, statistics(lineage.outputs[0]).fileCount) == (4096, 7)


@needs_openlineage
def test_ingest_reports_the_source_and_the_folder_with_the_assets_created() -> None:
    op = PreservicaIngestOperator(task_id="i", source="gs://landing/2026-11-25", parent_ref=FOLDER)
    op._preservica_host = HOST
    op._report = IngestReport(
        batch_id="b", parent_ref=FOLDER, state="COMPLETED", package_bytes=5000, created_refs=["a", "b", "c"]
    )
    lineage = op.get_openlineage_facets_on_complete(None)
    assert pairs(lineage.inputs) == [("gs://landing", "2026-11-25")]
    assert pairs(lineage.outputs) == [(NS, FOLDER)]
    assert (statistics(lineage.outputs[0]).fileCount, statistics(lineage.outputs[0]).size) == (3, 5000)


@needs_openlineage
def test_a_failed_ingest_still_names_its_source_and_target_without_statistics() -> None:
    op = PreservicaIngestOperator(task_id="i", source="/landing/day", parent_ref=FOLDER)
    op._preservica_host = HOST
    lineage = op.get_openlineage_facets_on_complete(None)
    assert pairs(lineage.inputs) == [("file", "/landing/day")] and pairs(lineage.outputs) == [(NS, FOLDER)]
    assert not getattr(lineage.outputs[0], "outputFacets", None)


@needs_openlineage
def test_metadata_reports_the_sheet_the_entities_changed_and_the_report() -> None:
    op = PreservicaMetadataOperator(task_id="m", source="/sheets/fix.csv")
    op._preservica_host = HOST
    op._run = MetadataRun(
        source="/sheets/fix.csv",
        dry_run=False,
        outcomes=[
            RowOutcome(row=2, locator="a", outcome=Outcome.CHANGED, ref="ref-a"),
            RowOutcome(row=3, locator="b", outcome=Outcome.UNCHANGED, ref="ref-b"),
        ],
    )
    lineage = op.get_openlineage_facets_on_complete(None)
    assert pairs(lineage.inputs) == [("file", "/sheets/fix.csv")]
    assert pairs(lineage.outputs) == [(NS, "ref-a"), ("file", "/sheets/fix.report.csv")]
    assert statistics(lineage.outputs[1]).rowCount == 2


@needs_openlineage
def test_without_a_known_host_the_preservica_side_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", raising=False)
    op = PreservicaSearchOperator(task_id="s", output_path="/r.csv")  # no Connection: nothing to name
    lineage = op.get_openlineage_facets_on_complete(None)
    assert pairs(lineage.inputs) == [] and pairs(lineage.outputs) == [("file", "/r.csv")]


def test_without_the_openlineage_provider_every_operator_returns_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name.startswith("airflow.providers.openlineage"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage", None)  # import -> ImportError
    operators = [
        PreservicaSearchOperator(task_id="s", output_path="/r.csv"),
        PreservicaExportOperator(task_id="e", entity_ref=FOLDER, destination="/x.zip"),
        PreservicaIngestOperator(task_id="i", source="/in", parent_ref=FOLDER),
        PreservicaMetadataOperator(task_id="m", source="/fix.csv"),
    ]
    for op in operators:
        op._preservica_host = HOST
        assert op.get_openlineage_facets_on_complete(None) is None
    assert operator_lineage([LineageDataset("file", "/a")], []) is None
