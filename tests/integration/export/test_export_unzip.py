"""``unzip_to`` with exports from elsewhere: all or nothing, never over other files, never outside the folder.

The operator runs for real against the sandbox; the sandbox's ``hostile_export`` fault serves the real export
plus one crafted member. ``verify=False`` here, so that the unpacking itself is what must refuse it (with
verification on, verification refuses these first: see the fault matrix).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_provider_preservica.compat import AirflowFailException
from airflow_provider_preservica.operators.export import PreservicaExportOperator
from tests.support.operators import FakeTaskInstance
from tests.support.sandbox import MAPS_FOLDER, inject

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


@pytest.fixture
def quick_exports(small_repository):
    small_repository.state.update_config({"export_seconds": 0.2})
    return small_repository


def _export(tmp_path: Path, unzip_to: Path, **options: object) -> dict:
    operator = PreservicaExportOperator(
        task_id="export",
        entity_ref=MAPS_FOLDER,
        destination=str(tmp_path / "maps.zip"),
        unzip_to=str(unzip_to),
        min_free_bytes=0,
        poll_interval=0.1,
        deferrable=False,
        **options,
    )
    return operator.execute({"ti": FakeTaskInstance()})


def _everything(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize(
    ("variant", "words"),
    [
        ("traversal", "climbs out with '..'"),
        ("absolute", "member '/tmp/preservica-absolute.txt' has an absolute path"),
        ("symlink", "is a symbolic link"),
        ("zip_bomb", "refused as a zip bomb"),
        ("lying_size", "expands beyond the 1,024 bytes it declares|is damaged"),
    ],
)
def test_a_hostile_export_is_not_unpacked_at_all(quick_exports, tmp_path, variant, words):
    inject(quick_exports, kind="hostile_export", variant=variant, ref="*", bytes=256 * MiB)
    work = tmp_path / "work"
    work.mkdir()
    unpacked = work / "unpacked"

    with pytest.raises(AirflowFailException, match=words):
        _export(work, unpacked, verify=False)

    assert not unpacked.exists()
    assert _everything(work) == ["maps.zip"]  # no partial tree, no hidden work folder, nothing outside
    assert not (tmp_path / "escaped.txt").exists()


def test_a_symlink_already_in_the_target_is_never_followed(quick_exports, tmp_path):
    outside, unpacked = tmp_path / "outside", tmp_path / "unpacked"
    outside.mkdir()
    unpacked.mkdir()
    (unpacked / MAPS_FOLDER).symlink_to(outside, target_is_directory=True)  # the export's top folder

    with pytest.raises(AirflowFailException, match="already holds other files; nothing was unpacked"):
        _export(tmp_path, unpacked)

    assert _everything(outside) == []
    assert _everything(unpacked) == [MAPS_FOLDER]


def test_existing_files_in_the_target_are_never_overwritten(quick_exports, tmp_path):
    unpacked = tmp_path / "unpacked"
    mine = unpacked / MAPS_FOLDER / f"{MAPS_FOLDER}.opex"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"the archivist's own notes")

    with pytest.raises(AirflowFailException, match="already holds other files; nothing was unpacked and nothing"):
        _export(tmp_path, unpacked)

    assert mine.read_bytes() == b"the archivist's own notes"
    assert _everything(unpacked) == [MAPS_FOLDER, f"{MAPS_FOLDER}/{MAPS_FOLDER}.opex"]


def test_a_retry_finds_its_own_unpacked_export_and_leaves_it(quick_exports, tmp_path):
    unpacked = tmp_path / "unpacked"
    first = _export(tmp_path, unpacked)
    files = {p: p.stat().st_mtime_ns for p in unpacked.rglob("*") if p.is_file()}

    again = _export(tmp_path, unpacked)  # e.g. a retry after a later step failed

    assert first["unzipped_to"] == again["unzipped_to"] == str(unpacked)
    assert {p: p.stat().st_mtime_ns for p in unpacked.rglob("*") if p.is_file()} == files
    assert len([p for p in files if p.name.endswith(".pax.zip")]) == 4
    assert sorted(os.listdir(tmp_path)) == ["maps.zip", "unpacked"]
