"""A source file swapped for a symbolic link (or another file) between the scan and staging never gets packaged.

The swap is made deterministically: the tree's scan is wrapped so that, when a scan has listed everything, the
file (or a folder above it) is swapped for a link to an outside secret. Each scan sees the real file (the swap
is undone when the next scan starts), so the swap always lands between the last scan and staging.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_provider_preservica.exceptions import FixityError
from airflow_provider_preservica.ingest import staging
from airflow_provider_preservica.ingest.packaging import build_opex_package
from airflow_provider_preservica.ingest.staging import LandingLayout, StagingError, stage_delivery
from tests.support.packaging import SECRET, Swap, SwappingTree, packaged_bytes, swapping


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "delivery"
    (root / "letters").mkdir(parents=True)
    (root / "letters" / "a.txt").write_bytes(b"A" * len(SECRET))
    (root / "b.txt").write_bytes(b"B" * 10)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "a.txt").write_bytes(SECRET)
    return root


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
        build_opex_package(swapping(source, victim, target), output, security_tag="open", stage=mode)

    assert SECRET not in packaged_bytes(output)
    assert not (output / "delivery.zip").exists()


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
def test_a_file_replaced_by_another_after_the_scan_is_refused(source, tmp_path, mode):
    tree = swapping(source, "letters/a.txt", "unused", replacement=SECRET)  # same size: only the inode tells
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
