"""A source file swapped for a symbolic link (or another file) between the scan and staging never gets packaged.

The swap is made deterministically: the tree's scan is wrapped so that, when a scan has listed everything, the
file (or a folder above it) is swapped for a link to an outside secret. Each scan sees the real file (the swap
is undone when the next scan starts), so the swap always lands between the last scan and staging.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_preservica.exceptions import FixityError
from airflow_provider_preservica.ingest import staging
from airflow_provider_preservica.ingest.packaging import LocalSourceTree, build_opex_package
from airflow_provider_preservica.ingest.packaging.source import Prune, SourceEntry
from airflow_provider_preservica.ingest.staging import LandingLayout, StagingError, stage_delivery

SECRET = b"an outside file that must never reach a package\n"


class Swap:
    """Swap ``victim`` (a file or folder) for a symlink to ``outside`` and back, keeping the original inode."""

    def __init__(self, victim: Path, outside: Path, replacement: bytes | None = None) -> None:
        self.victim, self.outside, self.replacement = victim, outside, replacement
        self.aside = victim.with_name(f".{victim.name}.aside")

    def apply(self) -> None:
        os.rename(self.victim, self.aside)
        if self.replacement is None:
            self.victim.symlink_to(self.outside)
        else:
            self.victim.write_bytes(self.replacement)  # another regular file, same size: only its inode differs

    def undo(self) -> None:
        if os.path.lexists(self.aside):
            os.unlink(self.victim)
            os.rename(self.aside, self.victim)


class SwappingTree(LocalSourceTree):
    """A local tree whose every scan is followed by the swap (undone when the next scan starts)."""

    swap: Swap

    def scan(self, prune: Prune | None = None) -> Iterator[SourceEntry]:
        self.swap.undo()
        yield from super().scan(prune)
        self.swap.apply()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "delivery"
    (root / "letters").mkdir(parents=True)
    (root / "letters" / "a.txt").write_bytes(b"A" * len(SECRET))
    (root / "b.txt").write_bytes(b"B" * 10)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "a.txt").write_bytes(SECRET)
    return root


def _swapping(source: Path, victim: str, target: str, replacement: bytes | None = None) -> SwappingTree:
    tree = SwappingTree(source)
    tree.swap = Swap(source / victim, source.parent / target, replacement)
    return tree


def _packaged_bytes(output: Path) -> bytes:
    found = b""
    for path in output.rglob("*"):
        if path.is_file() and path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                found += b"".join(archive.read(name) for name in archive.namelist())
        elif path.is_file():
            found += path.read_bytes()
    return found


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
@pytest.mark.parametrize(
    ("victim", "target", "says"),
    [
        ("letters/a.txt", "outside/a.txt", "letters/a.txt was replaced by a symbolic link"),
        ("letters", "outside", "letters/a.txt no longer lies in a real folder"),
    ],
    ids=["file", "folder"],
)
def test_a_file_swapped_for_a_link_after_the_scan_is_never_packaged(source, tmp_path, mode, victim, target, says):
    output = tmp_path / "out"

    with pytest.raises(FixityError, match=re.escape(says)):
        build_opex_package(_swapping(source, victim, target), output, security_tag="open", stage=mode)

    assert SECRET not in _packaged_bytes(output)
    assert not (output / "delivery.zip").exists()


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
def test_a_file_replaced_by_another_after_the_scan_is_refused(source, tmp_path, mode):
    tree = _swapping(source, "letters/a.txt", "unused", replacement=SECRET)  # same size: only the inode tells
    with pytest.raises(FixityError, match=r"letters/a\.txt was replaced by another file"):
        build_opex_package(tree, tmp_path / "out", security_tag="open", stage=mode)


def test_a_delivery_file_swapped_for_a_link_is_not_staged(source, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    landing.mkdir()
    day = landing / "2026-11-25"
    source.rename(day)
    swap = Swap(day / "letters" / "a.txt", tmp_path / "outside" / "a.txt")

    class Landing(SwappingTree):
        pass

    Landing.swap = swap
    monkeypatch.setattr(staging, "LocalSourceTree", Landing)  # the delivery's scans, wrapped
    layout = LandingLayout.of(landing, "2026-11-25")

    with pytest.raises(StagingError, match=r"letters/a\.txt was replaced by a symbolic link"):
        stage_delivery(layout)

    staged = [p for p in layout.staged.rglob("*") if p.is_file()] if layout.staged.exists() else []
    assert all(p.read_bytes() != SECRET for p in staged)
    swap.undo()
    assert (day / "letters" / "a.txt").read_bytes() == b"A" * len(SECRET)  # the delivery is untouched
