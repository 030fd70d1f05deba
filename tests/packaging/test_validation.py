"""Validation finds every problem of a source tree at once, before anything is packaged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_provider_preservica.ingest.packaging import (
    LocalSourceTree,
    PackageValidationError,
    ValidationOptions,
    scan_source,
    validate_source,
)
from airflow_provider_preservica.ingest.packaging.validation import check_name
from tests.support.packaging import make


def codes(issues: list, path: str) -> set[str]:
    return {i.code for i in issues if i.path == path}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = make(tmp_path / "batch", {"a.txt": b"a", "d/b.pdf": b"b", "d/e/c.tif": b"c"})
    result = validate_source(LocalSourceTree(root))
    assert [f.path for f in result.files] == ["a.txt", "d/b.pdf", "d/e/c.tif"]
    assert [f.path for f in result.folders] == ["", "d", "d/e"]
    assert result.errors == [] and result.warnings == [] and result.total_bytes == 3


def test_every_bad_path_is_reported_in_one_error(tmp_path: Path) -> None:
    root = make(
        tmp_path / "batch",
        {
            "good.txt": b"ok",
            "bad:colon.txt": b"x",
            "bad<lt>.txt": b"x",
            "pipe|name.txt": b"x",
            "ques?tion.txt": b"x",
            "star*.txt": b"x",
            'quote".txt': b"x",
            "back\\slash.txt": b"x",
            "tab\tname.txt": b"x",
            "trailing.": b"x",
            "trailing ": b"x",
            "CON": b"x",
            "aux.txt": b"x",
            "com1.log": b"x",
            "lpt9": b"x",
            ("n" * 251): b"x",
            "Report.PDF": b"x",
            "report.pdf": b"x",
            "caf\u00e9.txt": b"x",
            "own.opex": b"x",
            "empty-folder": None,
            "sub/sub": b"same name as its folder",
            "sub/ok.txt": b"x",
        },
    )
    os.symlink(root / "good.txt", root / "link.txt")
    os.mkfifo(root / "fifo")
    with pytest.raises(PackageValidationError) as caught:
        validate_source(LocalSourceTree(root))
    error = caught.value
    expected = {
        "bad:colon.txt": "illegal-character",
        "bad<lt>.txt": "illegal-character",
        "pipe|name.txt": "illegal-character",
        "ques?tion.txt": "illegal-character",
        "star*.txt": "illegal-character",
        'quote".txt': "illegal-character",
        "back\\slash.txt": "illegal-character",
        "tab\tname.txt": "control-character",
        "trailing.": "trailing-dot-or-space",
        "trailing ": "trailing-dot-or-space",
        "CON": "reserved-name",
        "aux.txt": "reserved-name",
        "com1.log": "reserved-name",
        "lpt9": "reserved-name",
        "n" * 251: "name-too-long",
        "Report.PDF": "case-collision",
        "report.pdf": "case-collision",
        "caf\u00e9.txt": "non-ascii",
        "own.opex": "opex-in-source",
        "empty-folder": "empty-folder",
        "sub/sub": "sidecar-manifest-clash",
        "link.txt": "symlink",
        "fifo": "not-a-regular-file",
    }
    for path, code in expected.items():
        assert code in codes(error.issues, path), f"{path!r} should be reported as {code}"
        assert path in str(error)
    assert set(error.paths) == set(expected)
    assert all(i.fix and i.problem for i in error.issues)
    assert "good.txt" not in error.paths and "sub/ok.txt" not in error.paths


def test_names_at_the_length_limit() -> None:
    options = ValidationOptions()
    assert check_name("a" * 250, "a" * 250, options) == []
    assert [i.code for i in check_name("a" * 251, "x", options)] == ["name-too-long"]
    assert [i.code for i in check_name("\u00e9" * 126, "x", options)] == ["name-too-long", "non-ascii"]  # 252 bytes
    assert check_name("CONSOLE.txt", "x", options) == []  # only the exact device names are reserved
    assert check_name("my.con", "x", options) == []


def test_zero_byte_files_are_a_warning_or_an_error(tmp_path: Path) -> None:
    root = make(tmp_path / "batch", {"empty.txt": b"", "full.txt": b"1"})
    result = validate_source(LocalSourceTree(root))
    assert [(w.path, w.code, w.severity) for w in result.warnings] == [("empty.txt", "zero-byte", "warning")]
    assert [f.path for f in result.files] == ["empty.txt", "full.txt"]
    with pytest.raises(PackageValidationError, match=r"empty\.txt"):
        validate_source(LocalSourceTree(root), ValidationOptions(allow_zero_byte_files=False))


def test_hidden_and_system_files_are_excluded_and_listed(tmp_path: Path) -> None:
    root = make(
        tmp_path / "batch",
        {
            "keep.txt": b"k",
            ".DS_Store": b"x",
            "Thumbs.db": b"x",
            "desktop.ini": b"x",
            "~$report.docx": b"x",
            ".hidden.txt": b"x",
            ".git/config": b"x",
            ".git/objects/ab/cdef": b"x",
            "d/keep2.txt": b"k",
            "d/.DS_Store": b"x",
            "only-hidden/.DS_Store": b"x",
        },
    )
    result = scan_source(LocalSourceTree(root), ValidationOptions(allow_empty_folders=True))
    assert result.excluded == [
        ".DS_Store",
        ".git",  # listed once, not entered
        ".hidden.txt",
        "Thumbs.db",
        "d/.DS_Store",
        "desktop.ini",
        "only-hidden/.DS_Store",
        "~$report.docx",
    ]
    assert [f.path for f in result.files] == ["d/keep2.txt", "keep.txt"]
    hidden = [w.path for w in result.warnings if w.code == "hidden-excluded"]
    assert hidden == result.excluded
    # a folder holding nothing but clutter is empty for Preservica
    assert [(w.path, w.code) for w in result.warnings if w.code == "empty-folder"] == [("only-hidden", "empty-folder")]
    assert result.errors == []
    with pytest.raises(PackageValidationError) as caught:
        validate_source(LocalSourceTree(root))
    assert caught.value.paths == ["only-hidden"]


def test_non_ascii_can_be_allowed_as_a_warning(tmp_path: Path) -> None:
    root = make(tmp_path / "batch", {"M\u00fcller.pdf": b"x"})
    with pytest.raises(PackageValidationError, match="non-ASCII"):
        validate_source(LocalSourceTree(root))
    result = validate_source(LocalSourceTree(root), ValidationOptions(allow_non_ascii=True))
    assert [w.code for w in result.warnings] == ["non-ascii"]


def test_unicode_normalisation_collision(tmp_path: Path) -> None:
    nfc, nfd = "caf\u00e9.txt", "cafe\u0301.txt"
    root = make(tmp_path / "batch", {nfc: b"1", nfd: b"2"})
    result = scan_source(LocalSourceTree(root), ValidationOptions(allow_non_ascii=True))
    assert {i.path for i in result.errors if i.code == "case-collision"} == {nfc, nfd}


def test_unreadable_files_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path / "batch", {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"})
    tree = LocalSourceTree(root)
    monkeypatch.setattr(tree, "check_readable", lambda p: "Permission denied" if p != "b.txt" else None)
    with pytest.raises(PackageValidationError) as caught:
        validate_source(tree)
    assert caught.value.paths == ["a.txt", "c.txt"]
    assert "cannot be read: Permission denied" in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its mode")
def test_unreadable_file_and_folder_by_permission(tmp_path: Path) -> None:
    root = make(tmp_path / "batch", {"locked.txt": b"x", "closed/inner.txt": b"x", "ok.txt": b"x"})
    (root / "locked.txt").chmod(0)
    (root / "closed").chmod(0)
    try:
        with pytest.raises(PackageValidationError) as caught:
            validate_source(LocalSourceTree(root))
        assert set(caught.value.paths) == {"locked.txt", "closed"}
    finally:
        (root / "closed").chmod(0o755)


def test_an_empty_source_is_an_error(tmp_path: Path) -> None:
    root = make(tmp_path / "batch", {".DS_Store": b"x"})
    with pytest.raises(PackageValidationError, match="nothing to package"):
        validate_source(LocalSourceTree(root))


def test_package_name_is_checked_too(tmp_path: Path) -> None:
    root = make(tmp_path / "batch", {"a.txt": b"a", "nightly": b"a file named like the package"})
    with pytest.raises(PackageValidationError) as caught:
        validate_source(LocalSourceTree(root), top_name="nightly:1")
    assert {i.code for i in caught.value.issues} == {"illegal-character"}
    with pytest.raises(PackageValidationError) as caught:
        validate_source(LocalSourceTree(root), top_name="nightly")
    assert [(i.path, i.code) for i in caught.value.issues] == [("nightly", "sidecar-manifest-clash")]
