"""A package built with ``keep_staged=False`` (what an ingest builds) is written straight into the zip.

Nothing is staged and no sidecar or manifest is written to disk: the zip is the one the staged build writes for
the same source, byte for byte, and the same checks hold (links never followed, a file replaced, deleted or
changing size while it is zipped fails the build and leaves nothing behind).
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_preservica.exceptions import FixityError, MissingSourceFilesError
from airflow_provider_preservica.ingest.packaging import build_opex_package, read_opex
from airflow_provider_preservica.ingest.packaging import straight as straight_module
from tests.support.packaging import SECRET, InMemoryTree, accession_42, make, packaged_bytes, swapping

OPTIONS: list[dict[str, Any]] = [
    {},
    {"top_folder": False},
    {"fixity": ["SHA-256", "MD5"], "fixity_identifier": "SourceFixity"},
    {"metadata": {"": {"title": "The accession"}, "photos/img002.tif": {"title": "Second", "description": "d"}}},
]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return accession_42(tmp_path)


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "no-top-folder", "two-algorithms", "metadata"])
def test_the_zip_written_straight_equals_the_zip_of_the_staged_tree(source, tmp_path, options):
    staged = build_opex_package(source, tmp_path / "staged", security_tag="open", **options)
    straight = build_opex_package(source, tmp_path / "straight", security_tag="open", keep_staged=False, **options)

    assert straight.zip_sha256 == staged.zip_sha256  # the same members, order, headers and OPEX bytes
    assert (straight.assets, straight.folders, straight.zip_size) == (staged.assets, staged.folders, staged.zip_size)
    assert straight.staged_path is None and straight.package_path == straight.zip_path
    assert sorted(os.listdir(tmp_path / "straight")) == ["accession-42.zip"]  # nothing staged, nothing partial
    with zipfile.ZipFile(straight.zip_path or "") as archive:
        assert archive.testzip() is None
        top = "accession-42/" if options.get("top_folder", True) else ""
        sidecar = read_opex(archive.read(f"{top}letter.pdf.opex"))
    assert sidecar.fixities[0].value == hashlib.sha256(b"%PDF-1.7 letter").hexdigest()


def test_a_non_local_tree_is_zipped_straight_too(tmp_path):
    tree = InMemoryTree("remote", {"a.txt": b"alpha", "sub/b.txt": b"beta"})
    manifest = build_opex_package(tree, tmp_path / "out", security_tag="closed", keep_staged=False, zip_checksum=False)
    assert manifest.zip_sha256 is None and manifest.zip_size == Path(manifest.package_path).stat().st_size
    with zipfile.ZipFile(manifest.zip_path or "") as archive:
        assert archive.namelist() == [
            "remote/",
            "remote/sub/",
            "remote/a.txt",
            "remote/a.txt.opex",
            "remote/sub/b.txt",
            "remote/sub/b.txt.opex",
            "remote/sub/sub.opex",
            "remote/remote.opex",
        ]
        assert archive.read("remote/sub/b.txt") == b"beta"
    assert {a.path: a.fixity_value() for a in manifest.assets} == {
        "a.txt": hashlib.sha256(b"alpha").hexdigest(),
        "sub/b.txt": hashlib.sha256(b"beta").hexdigest(),
    }


@pytest.mark.parametrize(
    ("victim", "target", "says"),
    [
        ("letters/a.txt", "outside/a.txt", "letters/a.txt was replaced by a symbolic link"),
        ("letters", "outside", "letters/a.txt no longer lies in a real folder"),
    ],
    ids=["file", "folder"],
)
def test_a_file_swapped_for_a_link_after_the_scan_is_never_zipped(tmp_path, victim, target, says):
    root = make(tmp_path / "delivery", {"letters/a.txt": b"A" * len(SECRET), "b.txt": b"B" * 10})
    make(tmp_path / "outside", {"a.txt": SECRET})
    output = tmp_path / "out"

    with pytest.raises(FixityError, match=re.escape(says)):
        build_opex_package(swapping(root, victim, target), output, security_tag="open", keep_staged=False)

    assert SECRET not in packaged_bytes(output)
    assert list(output.iterdir()) == []


def test_a_file_replaced_by_another_after_the_scan_is_refused(tmp_path):
    root = make(tmp_path / "delivery", {"letters/a.txt": b"A" * len(SECRET), "b.txt": b"B" * 10})
    tree = swapping(root, "letters/a.txt", "unused", replacement=SECRET)  # same size: only the inode tells
    with pytest.raises(FixityError, match=r"letters/a\.txt was replaced by another file"):
        build_opex_package(tree, tmp_path / "out", security_tag="open", keep_staged=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_file_deleted_while_zipping_is_named_and_nothing_is_left(source, tmp_path):
    def delete_the_next_file(phase: str, done: int, total: int) -> None:
        assert phase == "zip"  # hashed while zipped: no separate phases
        (source / "photos" / "img001.tif").unlink(missing_ok=True)  # zipped after letter.pdf

    with pytest.raises(MissingSourceFilesError, match=r"photos/img001\.tif") as failure:
        build_opex_package(
            source, tmp_path / "out", security_tag="open", keep_staged=False, progress=delete_the_next_file
        )
    assert failure.value.paths == ["photos/img001.tif"]
    assert list((tmp_path / "out").iterdir()) == []


def test_files_changing_size_or_unreadable_while_zipping_are_all_named(source, tmp_path, monkeypatch):
    def grow(phase: str, done: int, total: int) -> None:
        if done == len(b"%PDF-1.7 letter"):  # letter.pdf is in: photos/img002.tif grows before it is read
            with open(source / "photos" / "img002.tif", "ab") as handle:
                handle.write(b"late bytes")

    with pytest.raises(FixityError, match=r"changed size .*photos/img002\.tif \(74 -> 84 bytes\)"):
        build_opex_package(source, tmp_path / "out", security_tag="open", keep_staged=False, progress=grow)
    assert list((tmp_path / "out").iterdir()) == []

    real = straight_module.open_file

    def refuse(root: Path, path: str, **kwargs: Any) -> Any:
        if path.startswith("photos/"):
            raise PermissionError(13, "Permission denied")
        return real(root, path, **kwargs)

    monkeypatch.setattr(straight_module, "open_file", refuse)
    with pytest.raises(FixityError, match=r"3 file\(s\) could not be hashed") as failure:
        build_opex_package(source, tmp_path / "out", security_tag="open", keep_staged=False)
    assert failure.value.paths == ["photos/img001.tif", "photos/img002.tif", "photos/negatives/neg01.tif"]
    assert "  - photos/img001.tif: Permission denied" in str(failure.value)
    assert list((tmp_path / "out").iterdir()) == []
