"""``unpack_zip``'s free-space rule, which the operator tests cannot reach on a disk with room to spare."""

from __future__ import annotations

import fcntl
import os
import shutil
import zipfile

import pytest

from airflow_provider_preservica.exceptions import UnsafeArchiveError
from airflow_provider_preservica.files.unpack import unpack_zip


def test_an_export_that_would_not_leave_the_free_space_asked_for_is_not_unpacked(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("folder/asset.pax.zip", b"x" * 4096)
    free = shutil.disk_usage(tmp_path).free

    refused = r"declares 4,096 bytes; only [\d,]+ MiB are free in .*: nothing was unpacked"
    with pytest.raises(UnsafeArchiveError, match=refused):
        unpack_zip(export, tmp_path / "unpacked", min_free_bytes=free)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.zip"]


def test_an_unpack_killed_midway_is_cleaned_up_by_the_next_one_and_a_running_one_is_left_alone(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("folder/asset.pax.zip", b"x" * 4096)
    # What a worker killed mid-unpack leaves: its work folder, half written, and its (now free) lock file.
    abandoned = tmp_path / ".unpacked.unpacking-0123456789ab"
    (abandoned / "folder").mkdir(parents=True)
    (abandoned / "folder" / "asset.pax.zip").write_bytes(b"x" * 100)
    abandoned.with_name(abandoned.name + ".lock").touch()
    # An unpack still running elsewhere holds its lock.
    running = tmp_path / ".unpacked.unpacking-ba9876543210"
    running.mkdir()
    held = os.open(running.with_name(running.name + ".lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        result = unpack_zip(export, tmp_path / "unpacked")
    finally:
        os.close(held)

    assert (result.target / "folder" / "asset.pax.zip").read_bytes() == b"x" * 4096
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".unpacked.unpacking-ba9876543210",
        ".unpacked.unpacking-ba9876543210.lock",
        "export.zip",
        "unpacked",
    ]
