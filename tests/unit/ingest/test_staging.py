"""Landing-folder staging: what a person finds in the landing folder and the report after each step."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

import pytest

from airflow_provider_preservica.ingest.packaging import uuid_source_ids
from airflow_provider_preservica.ingest.staging import (
    FileRecord,
    Holdings,
    LandingLayout,
    NothingDelivered,
    StagingError,
    StagingManifest,
    file_delivery,
    move_tree,
    record_ingested,
    stage_delivery,
    write_report,
)

DAY = "2026-11-25"
FILES = {
    "minutes.pdf": b"minutes " * 100,
    "letters/to-the-mayor.pdf": b"letter " * 50,
    "letters/CON.pdf": b"reserved name",
    "bad: name?.tif": b"illegal characters",
    "scans/page|1/page.tif": b"file below a folder with an illegal name",
    ".DS_Store": b"finder clutter",
}


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def layout(tmp_path: Path) -> LandingLayout:
    for name, content in FILES.items():
        path = tmp_path / "landing" / DAY / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return LandingLayout.of(tmp_path / "landing", DAY)


def test_bad_names_go_to_quarantine_keeping_their_paths_and_the_rest_is_staged(layout):
    manifest = stage_delivery(layout)

    assert tree(layout.quarantine("illegal-name")) == {
        "bad: name?.tif": FILES["bad: name?.tif"],
        "letters/CON.pdf": FILES["letters/CON.pdf"],
        "scans/page|1/page.tif": FILES["scans/page|1/page.tif"],
    }
    assert tree(layout.delivery) == {n: FILES[n] for n in ("minutes.pdf", "letters/to-the-mayor.pdf", ".DS_Store")}
    assert tree(layout.staged) == {n: FILES[n] for n in ("minutes.pdf", "letters/to-the-mayor.pdf")}
    quarantined = {r.path: r.detail for r in manifest.quarantined()}
    assert sorted(quarantined) == ["bad: name?.tif", "letters/CON.pdf", "scans/page|1/page.tif"]
    assert quarantined["letters/CON.pdf"].startswith("illegal-name: CON is a reserved device name")
    assert "name contains '|'" in quarantined["scans/page|1/page.tif"]  # the folder's problem, named
    assert manifest.to_ingest == 2


def test_staged_files_are_links_to_the_sources_with_the_ingest_source_ids_and_fixity(layout):
    manifest = stage_delivery(layout)

    record = next(r for r in manifest.files if r.path == "letters/to-the-mayor.pdf")
    staged, source = layout.staged / record.path, layout.delivery / record.path
    assert os.stat(staged).st_ino == os.stat(source).st_ino  # a hard link: no copy, same filesystem
    assert record.source_id == uuid_source_ids(DAY)("letters/to-the-mayor.pdf", False)
    assert (record.fixity_type, record.fixity_value) == ("SHA-256", hashlib.sha256(FILES[record.path]).hexdigest())
    assert StagingManifest.load(layout.manifest_path) == manifest


def test_files_already_in_preservica_are_skipped_with_their_ref_and_not_staged(layout):
    ids = uuid_source_ids(DAY)
    known = {ids("minutes.pdf", False): "ref-existing"}
    asked: list[list[FileRecord]] = []

    def existing(records: list[FileRecord]) -> Holdings:
        asked.append(records)
        return Holdings(present={r.source_id: known[r.source_id] for r in records if r.source_id in known})

    manifest = stage_delivery(layout, existing=existing)

    assert sorted(r.path for r in asked[0]) == ["letters/to-the-mayor.pdf", "minutes.pdf"]
    sha256 = {r.path: (r.fixity_type, r.fixity_value) for r in asked[0]}
    assert sha256["minutes.pdf"] == ("SHA-256", hashlib.sha256(FILES["minutes.pdf"]).hexdigest())  # content asked
    minutes = next(r for r in manifest.files if r.path == "minutes.pdf")
    assert (minutes.outcome, minutes.ref) == ("skipped", "ref-existing")
    assert tree(layout.staged) == {"letters/to-the-mayor.pdf": FILES["letters/to-the-mayor.pdf"]}
    assert (layout.delivery / "minutes.pdf").exists()  # skipped is not filed before the run ends


def test_a_conflict_is_quarantined_with_its_reason_never_skipped(layout):
    ids = uuid_source_ids(DAY)
    why = "SourceID held by asset ref-old below the target, with other content"

    def existing(records: list[FileRecord]) -> Holdings:
        return Holdings(conflicts={ids("minutes.pdf", False): why})

    manifest = stage_delivery(layout, existing=existing)

    minutes = next(r for r in manifest.files if r.path == "minutes.pdf")
    assert (minutes.outcome, minutes.ref, minutes.detail) == ("quarantined", "", f"conflict: {why}")
    assert tree(layout.quarantine("conflict")) == {"minutes.pdf": FILES["minutes.pdf"]}  # kept, not lost
    assert not (layout.delivery / "minutes.pdf").exists()
    assert tree(layout.staged) == {"letters/to-the-mayor.pdf": FILES["letters/to-the-mayor.pdf"]}
    assert manifest.to_ingest == 1


def test_a_failed_lookup_leaves_the_delivery_untouched(layout):
    def unreachable(records: list[FileRecord]) -> Holdings:
        raise ConnectionError("Preservica is down")

    with pytest.raises(ConnectionError):
        stage_delivery(layout, existing=unreachable)
    assert tree(layout.delivery) == FILES
    assert not layout.quarantine("illegal-name").exists()


def test_no_delivery_is_reported_as_such(tmp_path):
    with pytest.raises(NothingDelivered, match=f"no delivery for {DAY}: .* does not exist"):
        stage_delivery(LandingLayout.of(tmp_path, DAY))
    (tmp_path / DAY).mkdir()
    (tmp_path / DAY / "Thumbs.db").write_bytes(b"x")
    with pytest.raises(NothingDelivered, match="holds no files"):
        stage_delivery(LandingLayout.of(tmp_path, DAY))


def test_staging_inside_the_delivery_is_refused(tmp_path):
    (tmp_path / DAY).mkdir()
    (tmp_path / DAY / "a.pdf").write_bytes(b"a")
    with pytest.raises(StagingError, match="overlaps the delivery"):
        stage_delivery(LandingLayout.of(tmp_path, DAY, staging_root=tmp_path / DAY / "work"))
    assert tree(tmp_path / DAY) == {"a.pdf": b"a"}


def test_after_a_verified_ingest_the_sources_are_filed_under_done_and_reported(layout, tmp_path):
    manifest = stage_delivery(layout)
    by_path = {r.path: r.source_id for r in manifest.files}
    record_ingested(manifest, {by_path["minutes.pdf"]: "ref-1", by_path["letters/to-the-mayor.pdf"]: "ref-2"})
    file_delivery(layout, manifest)
    csv_path, summary_path = write_report(manifest, str(tmp_path / "reports" / f"ingest-{DAY}.csv"))

    assert not layout.delivery.exists() and not layout.staged.exists()
    assert tree(layout.done) == {n: FILES[n] for n in ("minutes.pdf", "letters/to-the-mayor.pdf", ".DS_Store")}
    rows = {row["path"]: row for row in csv.DictReader(io.StringIO(Path(csv_path).read_text()))}
    assert {p: (r["outcome"], r["ref"]) for p, r in rows.items()} == {
        "minutes.pdf": ("created", "ref-1"),
        "letters/to-the-mayor.pdf": ("created", "ref-2"),
        "letters/CON.pdf": ("quarantined", ""),
        "bad: name?.tif": ("quarantined", ""),
        "scans/page|1/page.tif": ("quarantined", ""),
    }
    summary = Path(summary_path).read_text()
    assert "5 files (2 created, 3 quarantined)" in summary
    assert f"sources filed to: {layout.done}" in summary


def test_a_file_not_found_after_the_ingest_is_reported_missing(layout):
    manifest = stage_delivery(layout)
    record_ingested(manifest, {})
    assert manifest.count("missing") == 2
    assert "missing         : minutes.pdf: sent, but no asset carries its SourceID" in manifest.summary()


def test_after_a_failure_the_delivery_is_quarantined_with_the_reason(layout):
    manifest = stage_delivery(layout)
    target = file_delivery(layout, manifest, reason="ingest-failed", detail="Preservica ingest t-1 ended FAILED")

    assert target == layout.quarantine("ingest-failed")
    assert tree(target) == {n: FILES[n] for n in ("minutes.pdf", "letters/to-the-mayor.pdf", ".DS_Store")}
    assert {r.outcome for r in manifest.files} == {"quarantined"}
    minutes = next(r for r in manifest.files if r.path == "minutes.pdf")
    assert minutes.detail == "ingest-failed: Preservica ingest t-1 ended FAILED"


def test_filing_into_an_existing_folder_keeps_a_different_file_and_drops_only_identical_copies(tmp_path):
    source, target = tmp_path / "day", tmp_path / "done"
    for folder, files in {
        source: {"same.pdf": b"same", "changed.pdf": b"new version", "new.pdf": b"new"},
        target: {"same.pdf": b"same", "changed.pdf": b"old version"},
    }.items():
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_bytes(content)

    assert move_tree(source, target) == 3

    assert tree(target) == {
        "same.pdf": b"same",
        "changed.pdf": b"old version",
        "changed.1.pdf": b"new version",
        "new.pdf": b"new",
    }
    assert not source.exists()


def test_layout_refuses_a_day_that_is_not_a_folder_name(tmp_path):
    with pytest.raises(StagingError, match="cannot be a folder name"):
        LandingLayout.of(tmp_path, "../etc")
