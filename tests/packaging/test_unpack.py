"""``unpack_zip``'s free-space rule, which the operator tests cannot reach on a disk with room to spare."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from airflow_provider_preservica.packaging.errors import UnsafeArchiveError
from airflow_provider_preservica.packaging.unpack import unpack_zip


def test_an_export_that_would_not_leave_the_free_space_asked_for_is_not_unpacked(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("folder/asset.pax.zip", b"x" * 4096)
    free = shutil.disk_usage(tmp_path).free

    refused = r"declares 4,096 bytes; only [\d,]+ MiB are free in .*: nothing was unpacked"
    with pytest.raises(UnsafeArchiveError, match=refused):
        unpack_zip(export, tmp_path / "unpacked", min_free_bytes=free)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.zip"]
